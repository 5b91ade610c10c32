/**
 * events.k8s.io/v1 Events about an object, from `reportingController` bourse.dev/operator. client-node
 * has no recorder, so repeats are deduplicated here: the same reason and note on the same object are
 * written at most once per 10 minutes.
 */
import type { EventsV1Api } from '@kubernetes/client-node'
import type { Logger } from '../lib/log.ts'
import { microTime } from './leader.ts'

export interface Regarding {
  apiVersion: string
  kind: string
  name: string
  namespace: string
  uid: string
  resourceVersion?: string
}

export const REPORTING_CONTROLLER = 'bourse.dev/operator'

export class EventRecorder {
  private readonly recent = new Map<string, number>()

  private readonly api: EventsV1Api
  private readonly instance: string
  private readonly log: Logger
  private readonly dedupeMs: number

  constructor(api: EventsV1Api, instance: string, log: Logger, dedupeMs = 600_000) {
    this.api = api
    this.instance = instance
    this.log = log
    this.dedupeMs = dedupeMs
  }

  async record(
    regarding: Regarding,
    type: 'Normal' | 'Warning',
    reason: string,
    action: string,
    note: string,
  ): Promise<void> {
    const key = `${regarding.uid}/${type}/${reason}/${note}`
    const now = Date.now()
    const last = this.recent.get(key)
    if (last !== undefined && now - last < this.dedupeMs) return
    this.recent.set(key, now)
    if (this.recent.size > 10_000) this.recent.clear()
    const suffix = `${now.toString(36)}${Math.random().toString(36).slice(2, 6)}`
    try {
      await this.api.createNamespacedEvent({
        namespace: regarding.namespace,
        body: {
          metadata: { name: `${regarding.name}.${suffix}`, namespace: regarding.namespace },
          eventTime: microTime(),
          reportingController: REPORTING_CONTROLLER,
          reportingInstance: this.instance,
          action,
          reason,
          type,
          note: note.slice(0, 1000),
          regarding,
        },
      })
    } catch (err) {
      this.log.warn({ err, reason }, 'could not write an Event')
    }
  }
}
