/**
 * Leader election on a coordination.k8s.io Lease, client-go's algorithm (client-node has none): read the
 * Lease; take it when it is free, ours, or its record has not changed for leaseDuration (measured on our own
 * clock since we last saw it change, so skewed clocks don't matter); write with the resourceVersion read,
 * so two candidates cannot both win; renew every retryPeriod; stop leading when no renewal succeeded within
 * renewDeadline. Defaults are controller-runtime's: 15 s / 10 s / 2 s. On stop, a leader releases the Lease
 * (holder cleared) so a successor does not wait out the duration.
 */
import { ApiException, type CoordinationV1Api, type V1Lease } from '@kubernetes/client-node'
import type { Logger } from '../lib/log.ts'
import type { OperatorMetrics } from './metrics.ts'

export interface LeaderElectionOptions {
  coordination: CoordinationV1Api
  namespace: string
  name: string
  identity: string
  leaseDurationMs?: number
  renewDeadlineMs?: number
  retryPeriodMs?: number
  log: Logger
  metrics?: OperatorMetrics
  onStartedLeading: () => void
  onStoppedLeading: () => void
}

/** A MicroTime as the API server parses it (RFC 3339 with exactly six fractional digits). */
export function microTime(date: Date = new Date()): Date {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export class LeaderElector {
  private leading = false
  private stopped = false
  private observedRecord = ''
  private observedAt = 0
  private lastRenew = 0
  private readonly leaseMs: number
  private readonly renewMs: number
  private readonly retryMs: number
  private loop: Promise<void> | undefined

  private readonly o: LeaderElectionOptions

  constructor(o: LeaderElectionOptions) {
    this.o = o
    this.leaseMs = o.leaseDurationMs ?? 15_000
    this.renewMs = o.renewDeadlineMs ?? 10_000
    this.retryMs = o.retryPeriodMs ?? 2_000
  }

  get isLeader(): boolean {
    return this.leading
  }

  start(): void {
    this.o.metrics?.leaderStatus.set({ name: this.o.name }, 0)
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
    if (this.leading) {
      this.leading = false
      this.o.metrics?.leaderStatus.set({ name: this.o.name }, 0)
      await this.release().catch((err: unknown) => this.o.log.warn({ err }, 'could not release the lease'))
      this.o.onStoppedLeading()
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const ok = await this.tryAcquireOrRenew().catch((err: unknown) => {
        this.o.log.warn({ err }, 'leader election: lease request failed')
        return false
      })
      const now = Date.now()
      if (ok) {
        this.lastRenew = now
        if (!this.leading) {
          this.leading = true
          this.o.metrics?.leaderStatus.set({ name: this.o.name }, 1)
          this.o.log.info({ lease: this.o.name, identity: this.o.identity }, 'became leader')
          this.o.onStartedLeading()
        }
      } else if (this.leading && now - this.lastRenew > this.renewMs) {
        this.leading = false
        this.o.metrics?.leaderStatus.set({ name: this.o.name }, 0)
        this.o.log.error({ lease: this.o.name }, 'leader election lost: no renewal within the renew deadline')
        this.o.onStoppedLeading()
      }
      await sleep(this.retryMs)
    }
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { coordination, namespace, name, identity } = this.o
    const seconds = Math.max(1, Math.round(this.leaseMs / 1000))
    let lease: V1Lease
    try {
      lease = await coordination.readNamespacedLease({ name, namespace })
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 404)) throw err
      await coordination.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: seconds,
            acquireTime: microTime(),
            renewTime: microTime(),
            leaseTransitions: 0,
          },
        },
      })
      return true
    }
    const spec = lease.spec ?? {}
    const record = `${spec.holderIdentity ?? ''}/${String(spec.renewTime ?? '')}/${spec.leaseTransitions ?? 0}`
    if (record !== this.observedRecord) {
      this.observedRecord = record
      this.observedAt = Date.now()
    }
    const holder = spec.holderIdentity ?? ''
    const ours = holder === identity
    const duration = (spec.leaseDurationSeconds ?? seconds) * 1000
    if (!ours && holder !== '' && Date.now() < this.observedAt + duration) return false
    if (!ours) this.o.metrics?.leaderSlowpath.inc({ name })
    const now = microTime()
    try {
      await coordination.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: { ...lease.metadata, name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: seconds,
            acquireTime: ours ? spec.acquireTime : now,
            renewTime: now,
            leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
          },
        },
      })
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return false
      throw err
    }
    return true
  }

  private async release(): Promise<void> {
    const { coordination, namespace, name, identity } = this.o
    const lease = await coordination.readNamespacedLease({ name, namespace })
    if (lease.spec?.holderIdentity !== identity) return
    await coordination.replaceNamespacedLease({
      name,
      namespace,
      body: {
        metadata: lease.metadata!,
        spec: {
          ...lease.spec,
          holderIdentity: '',
          leaseDurationSeconds: 1,
          renewTime: microTime(),
          acquireTime: microTime(),
        },
      },
    })
  }
}
