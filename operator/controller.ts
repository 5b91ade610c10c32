/**
 * A controller in controller-runtime's shape: a keyed work queue fed by informers, `workers` reconciles at
 * a time (never two for one key), errors retried with exponential backoff, a result may ask to come back
 * after a while, and every pass is counted under controller-runtime's metric names. Workers run only
 * while `start()`ed: the operator starts them when it becomes leader.
 */
import type { Logger } from '../lib/log.ts'
import type { OperatorMetrics } from './metrics.ts'
import { initController } from './metrics.ts'
import { WorkQueue } from './workqueue.ts'

export interface ReconcileResult {
  requeueAfterMs?: number
}

export type Reconciler = (key: string) => Promise<ReconcileResult | undefined>

export class Controller {
  readonly queue: WorkQueue
  private running: Promise<void>[] = []
  private active = 0

  readonly name: string
  private readonly reconcile: Reconciler
  private readonly o: { log: Logger; metrics: OperatorMetrics; workers?: number }

  constructor(
    name: string,
    reconcile: Reconciler,
    o: { log: Logger; metrics: OperatorMetrics; workers?: number },
  ) {
    this.name = name
    this.reconcile = reconcile
    this.o = o
    this.queue = new WorkQueue(name, o.metrics)
    initController(o.metrics, name, o.workers ?? 2)
  }

  start(): void {
    if (this.running.length > 0) return
    for (let i = 0; i < (this.o.workers ?? 2); i++) this.running.push(this.worker())
  }

  async stop(): Promise<void> {
    this.queue.shutDown()
    await Promise.all(this.running)
    this.running = []
  }

  private async worker(): Promise<void> {
    const { metrics, log } = this.o
    const controller = this.name
    for (;;) {
      const key = await this.queue.get()
      if (key === undefined) return
      const started = performance.now()
      metrics.activeWorkers.set({ controller }, ++this.active)
      try {
        const result = await this.reconcile(key)
        this.queue.forget(key)
        if (result?.requeueAfterMs !== undefined) {
          metrics.reconcileTotal.inc({ controller, result: 'requeue_after' })
          this.queue.addAfter(key, result.requeueAfterMs)
        } else {
          metrics.reconcileTotal.inc({ controller, result: 'success' })
        }
      } catch (err) {
        metrics.reconcileTotal.inc({ controller, result: 'error' })
        metrics.reconcileErrors.inc({ controller })
        log.warn({ err, controller, key, retries: this.queue.limiter.retries(key) }, 'reconcile failed')
        this.queue.addRateLimited(key)
      } finally {
        const seconds = (performance.now() - started) / 1000
        metrics.reconcileTime.observe({ controller }, seconds)
        metrics.workqueueWorkDuration.observe({ name: controller }, seconds)
        metrics.activeWorkers.set({ controller }, --this.active)
        this.queue.done(key)
      }
    }
  }
}
