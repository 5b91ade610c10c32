/**
 * A client-node informer (list, then watch, relisting on 410) that restarts itself after an error with a
 * growing delay (1 s doubling to 30 s), as client-node's own example advises; `synced` turns true after the
 * first successful list and feeds /readyz.
 */
import {
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  makeInformer,
} from '@kubernetes/client-node'
import type { Logger } from '../lib/log.ts'

export interface Informer<T extends KubernetesObject> {
  readonly synced: boolean
  /** The cached object namespace/name, if any. */
  get(namespace: string, name: string): T | undefined
  list(namespace?: string): T[]
  stop(): Promise<void>
}

export async function startInformer<T extends KubernetesObject>(opts: {
  kc: KubeConfig
  path: string
  list: () => Promise<KubernetesListObject<T>>
  labelSelector?: string
  log: Logger
  /** Called for each added, updated or deleted object. */
  onChange: (obj: T, verb: 'add' | 'update' | 'delete') => void
}): Promise<Informer<T>> {
  const informer = makeInformer<T>(opts.kc, opts.path, opts.list, opts.labelSelector)
  let synced = false
  let stopped = false
  let delay = 1000
  let timer: NodeJS.Timeout | undefined
  informer.on('add', (obj) => opts.onChange(obj, 'add'))
  informer.on('update', (obj) => opts.onChange(obj, 'update'))
  informer.on('delete', (obj) => opts.onChange(obj, 'delete'))
  informer.on('connect', () => {
    synced = true
    delay = 1000
  })
  informer.on('error', (err) => {
    if (stopped) return
    opts.log.warn({ err, path: opts.path, retryInMs: delay }, 'informer failed; restarting')
    timer = setTimeout(() => {
      if (!stopped) informer.start().catch(() => {})
    }, delay)
    delay = Math.min(30_000, delay * 2)
  })
  await informer.start()
  synced = true
  return {
    get synced() {
      return synced
    },
    get: (namespace, name) => informer.get(name, namespace),
    list: (namespace) => [...informer.list(namespace)],
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      await informer.stop()
    },
  }
}
