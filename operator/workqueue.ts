/**
 * A keyed work queue in the shape of client-go's: a key waits at most once in the queue however often it
 * is added, is handed to one worker at a time (a key added while it is being processed is queued again when
 * that worker is done), and failed keys come back after a per-key exponential backoff (5 ms doubling up to
 * 1000 s, as controller-runtime's default rate limiter), while an overall token bucket (10 per second, burst
 * 100) bounds how fast rate-limited requeues come back.
 */
import type { OperatorMetrics } from './metrics.ts'

export interface BackoffOptions {
  baseDelayMs?: number
  maxDelayMs?: number
  /** Overall bucket: tokens per second and burst, for rate-limited requeues. */
  qps?: number
  burst?: number
}

export class RateLimiter {
  private readonly failures = new Map<string, number>()
  private readonly base: number
  private readonly max: number
  private readonly qps: number
  private readonly burst: number
  private tokens: number
  private last = Date.now()

  constructor(opts: BackoffOptions = {}) {
    this.base = opts.baseDelayMs ?? 5
    this.max = opts.maxDelayMs ?? 1_000_000
    this.qps = opts.qps ?? 10
    this.burst = opts.burst ?? 100
    this.tokens = this.burst
  }

  /** The delay before `key` may come back: the larger of its own backoff and the overall bucket's wait. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0
    this.failures.set(key, n + 1)
    const own = Math.min(this.max, this.base * 2 ** n)
    const now = Date.now()
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps)
    this.last = now
    this.tokens -= 1
    const bucket = this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000
    return Math.max(own, bucket)
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0
  }

  forget(key: string): void {
    this.failures.delete(key)
  }
}

export class WorkQueue {
  private readonly queue: string[] = []
  private readonly dirty = new Set<string>()
  private readonly processing = new Set<string>()
  private readonly addedAt = new Map<string, number>()
  private readonly timers = new Map<string, NodeJS.Timeout>()
  private readonly waiters: Array<(key: string | undefined) => void> = []
  private shuttingDown = false
  readonly limiter: RateLimiter

  readonly name: string
  private readonly metrics: OperatorMetrics | undefined

  constructor(name: string, metrics?: OperatorMetrics, backoff: BackoffOptions = {}) {
    this.name = name
    this.metrics = metrics
    this.limiter = new RateLimiter(backoff)
  }

  get length(): number {
    return this.queue.length
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return
    this.metrics?.workqueueAdds.inc({ name: this.name })
    this.dirty.add(key)
    this.addedAt.set(key, Date.now())
    if (this.processing.has(key)) return
    const waiter = this.waiters.shift()
    if (waiter) {
      this.dirty.delete(key)
      this.start(key)
      waiter(key)
      return
    }
    this.queue.push(key)
    this.depth()
  }

  /** Adds `key` after `ms`; a later, sooner addAfter for the same key wins over a pending one. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return
    if (ms <= 0) {
      this.add(key)
      return
    }
    const pending = this.timers.get(key)
    if (pending) clearTimeout(pending)
    const timer = setTimeout(() => {
      this.timers.delete(key)
      this.add(key)
    }, ms)
    timer.unref()
    this.timers.set(key, timer)
  }

  /** Adds `key` after its backoff (a failed reconcile). */
  addRateLimited(key: string): void {
    this.metrics?.workqueueRetries.inc({ name: this.name })
    this.addAfter(key, this.limiter.when(key))
  }

  forget(key: string): void {
    this.limiter.forget(key)
  }

  /** The next key (marked as being processed), or undefined once shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift()
    if (key !== undefined) {
      this.dirty.delete(key)
      this.start(key)
      this.depth()
      return Promise.resolve(key)
    }
    if (this.shuttingDown) return Promise.resolve(undefined)
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  /** Marks `key` processed; if it was added meanwhile it goes back in the queue now. */
  done(key: string): void {
    this.processing.delete(key)
    if (this.dirty.has(key)) {
      this.dirty.delete(key)
      this.add(key)
    }
  }

  shutDown(): void {
    this.shuttingDown = true
    for (const timer of this.timers.values()) clearTimeout(timer)
    this.timers.clear()
    for (const waiter of this.waiters.splice(0)) waiter(undefined)
  }

  private start(key: string): void {
    this.processing.add(key)
    const added = this.addedAt.get(key)
    this.addedAt.delete(key)
    if (added !== undefined)
      this.metrics?.workqueueQueueDuration.observe({ name: this.name }, (Date.now() - added) / 1000)
  }

  private depth(): void {
    this.metrics?.workqueueDepth.set({ name: this.name }, this.queue.length)
  }
}
