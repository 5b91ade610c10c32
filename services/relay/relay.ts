/**
 * The outbox relay: publishes the events the engine committed into `outbox` to the bus, in seq order per
 * market, then marks them sent. At least once: a crash (or a lost acknowledgement) between publishing and
 * marking publishes the same events again, and nothing is ever skipped. Consumers drop duplicates by
 * (market, seq) and notice gaps, since every message carries `market`, `seq` (a decimal string, as in
 * services/engine/events.ts) and `topic`.
 *
 * One batch of a market is read, published and marked inside one transaction that holds a per-market
 * advisory lock, so two relays (a restarted pod overlapping the old one, or a relay per engine plus one for
 * everything) never interleave one market's events. Each market backs off on its own when publishing fails,
 * so a market whose events cannot be published never holds the others up, and the loop never throws.
 */
import { type SQL, sql } from 'drizzle-orm'
import type { Bus } from '../../adapters/bus/index.ts'
import { type Database, type Executor, queryRows } from '../../adapters/db/database.ts'
import { BourseError, invalidInput } from '../../lib/errors.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, metricsRegistry, type Registry } from '../../lib/metrics.ts'

export interface OutboxRelayOptions {
  db: Database
  bus: Bus
  /** Relay this market only; omitted, every market with unsent events. */
  market?: string
  /** Events read, published and marked per market per round. */
  batchSize: number
  /** How often the outbox is polled when nobody calls wake(). */
  pollIntervalMs: number
  log: Logger
  /** Put before each event topic to name the bus topic (`trades` → `${topicPrefix}trades`); default none. */
  topicPrefix?: string
  /** The first retry after a failure waits this long, doubling up to `maxBackoffMs`; default 100 ms. */
  minBackoffMs?: number
  /** Default 30 s. */
  maxBackoffMs?: number
  /**
   * How long a market waits for a missing seq to appear before its later events are published anyway (the
   * gap is then logged, and consumers see it too); default 10 s. The engine allocates seqs under the market's
   * row lock, so a committed gap means an event was lost before the outbox, not one still in flight.
   */
  gapTimeoutMs?: number
  /** A publish not acknowledged within this long counts as failed (and is retried); default 10 s. */
  publishTimeoutMs?: number
  /** Default: the process registry of lib/metrics.ts. */
  registry?: Registry
}

export interface OutboxRelayStats {
  /** Events published and marked sent by this relay (a re-publish after a failure counts again). */
  readonly published: number
  /** Failed publish attempts (one per failed topic run). */
  readonly publishErrors: number
  /** Failed rounds for any other reason (the database unreachable, say). */
  readonly otherErrors: number
  /** Unsent events at the last look, summed over the markets relayed. */
  readonly backlog: number
  /** Unsent events per market at the last look. */
  readonly backlogByMarket: Readonly<Record<string, number>>
  /** Markets waiting to retry after a failure. */
  readonly backingOff: readonly string[]
}

export interface OutboxRelay {
  /** Starts the loop; a second call does nothing. */
  start(): void
  /** Finishes the round under way (publishing and marking what it read) and stops. The bus and db stay open. */
  stop(): Promise<void>
  /** Relays now instead of at the next poll (call it after committing events). Markets backing off still wait. */
  wake(): void
  readonly stats: OutboxRelayStats
}

interface OutboxRow extends Record<string, unknown> {
  id: bigint
  seq: bigint
  topic: string
  /** The message to publish: the payload with market, seq and topic put in, as JSON text. */
  message: string
}

interface MarketState {
  failures: number
  retryAt: number
  /** When a missing seq was first seen in front of this market's unsent events. */
  gapSince: number | undefined
}

// The first key of the two-int advisory lock: the relay's own lock space ('outb').
const LOCK_CLASS = 0x6f757462

export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  return new Relay(options)
}

interface RelayMetrics {
  published: Counter<'market' | 'topic'>
  backlog: Gauge<'market'>
  errors: Counter<'market'>
}

class Relay implements OutboxRelay {
  readonly #db: Database
  readonly #bus: Bus
  readonly #market: string | undefined
  readonly #batchSize: number
  readonly #pollIntervalMs: number
  readonly #log: Logger
  readonly #topicPrefix: string
  readonly #minBackoffMs: number
  readonly #maxBackoffMs: number
  readonly #gapTimeoutMs: number
  readonly #publishTimeoutMs: number
  readonly #metrics: RelayMetrics
  readonly #markets = new Map<string, MarketState>()
  readonly #backlog = new Map<string, number>()
  #published = 0
  #publishErrors = 0
  #otherErrors = 0
  #globalFailures = 0
  #running = false
  #loop: Promise<void> | undefined
  #woken = false
  #interrupt: (() => void) | undefined

  constructor(options: OutboxRelayOptions) {
    if (!Number.isInteger(options.batchSize) || options.batchSize < 1) {
      throw invalidInput('batchSize', 'must be a positive integer')
    }
    if (!(options.pollIntervalMs > 0)) throw invalidInput('pollIntervalMs', 'must be positive')
    this.#db = options.db
    this.#bus = options.bus
    this.#market = options.market
    this.#batchSize = options.batchSize
    this.#pollIntervalMs = options.pollIntervalMs
    this.#log = options.log
    this.#topicPrefix = options.topicPrefix ?? ''
    this.#minBackoffMs = options.minBackoffMs ?? 100
    this.#maxBackoffMs = Math.max(options.maxBackoffMs ?? 30_000, this.#minBackoffMs)
    this.#gapTimeoutMs = options.gapTimeoutMs ?? 10_000
    this.#publishTimeoutMs = options.publishTimeoutMs ?? 10_000
    this.#metrics = relayMetrics(options.registry ?? metricsRegistry())
  }

  get stats(): OutboxRelayStats {
    const now = Date.now()
    return {
      published: this.#published,
      publishErrors: this.#publishErrors,
      otherErrors: this.#otherErrors,
      backlog: [...this.#backlog.values()].reduce((sum, count) => sum + count, 0),
      backlogByMarket: Object.fromEntries(this.#backlog),
      backingOff: [...this.#markets].filter(([, state]) => state.retryAt > now).map(([market]) => market),
    }
  }

  start(): void {
    if (this.#running) return
    this.#running = true
    this.#loop = this.#run()
  }

  async stop(): Promise<void> {
    this.#running = false
    this.#interrupt?.()
    await this.#loop
    this.#loop = undefined
  }

  wake(): void {
    this.#woken = true
    this.#interrupt?.()
  }

  async #run(): Promise<void> {
    while (this.#running) {
      let delayMs: number
      this.#woken = false
      try {
        const more = await this.#round()
        this.#globalFailures = 0
        delayMs = more ? 0 : this.#untilNextRetry(this.#pollIntervalMs)
      } catch (error) {
        // Only the listing of markets gets here: publishing failures are handled per market.
        this.#otherErrors++
        this.#globalFailures++
        delayMs = this.#backoff(this.#globalFailures)
        this.#log.warn({ err: error, retryInMs: delayMs }, 'outbox relay round failed')
        await this.#sleep(delayMs, false)
        continue
      }
      if (delayMs > 0 && !this.#woken) await this.#sleep(delayMs, true)
    }
  }

  /** One batch for each market ready; true when some market may have more right away. */
  async #round(): Promise<boolean> {
    const backlog = await this.#readBacklog()
    let more = false
    const now = Date.now()
    for (const [market, count] of backlog) {
      if (!this.#running) break
      if (count === 0) continue
      const state = this.#state(market)
      if (state.retryAt > now) continue
      try {
        const published = await this.#relayBatch(market, state)
        this.#backlog.set(market, Math.max(0, count - published))
        this.#metrics.backlog.set({ market }, Math.max(0, count - published))
        if (published === this.#batchSize) more = true
        if (state.failures > 0) this.#log.info({ market, failures: state.failures }, 'outbox relay recovered')
        state.failures = 0
        state.retryAt = 0
      } catch (error) {
        if (!(error instanceof PublishFailure)) this.#otherErrors++
        state.failures++
        const delayMs = this.#backoff(state.failures)
        state.retryAt = Date.now() + delayMs
        const err = error instanceof PublishFailure ? error.cause : error
        this.#log.warn({ err, market, failures: state.failures, retryInMs: delayMs }, 'outbox relay')
      }
    }
    return more
  }

  /** Unsent events per market (the markets known to have none reported as 0), updating the gauge. */
  async #readBacklog(): Promise<Map<string, number>> {
    const filter = this.#market === undefined ? sql`` : sql` and market = ${this.#market}`
    const rows = await queryRows<{ market: string; n: bigint }>(
      this.#db,
      sql`select market, count(*)::int8 as n from outbox where sent_at is null${filter} group by market`,
    )
    const counts = new Map<string, number>()
    for (const market of this.#backlog.keys()) counts.set(market, 0)
    if (this.#market !== undefined) counts.set(this.#market, 0)
    for (const row of rows) counts.set(row.market, Number(row.n))
    for (const [market, count] of counts) {
      this.#backlog.set(market, count)
      this.#metrics.backlog.set({ market }, count)
    }
    return counts
  }

  /**
   * Reads the market's next unsent events (contiguous seqs only), publishes them one topic run at a time and
   * marks them sent, under the market's lock. Returns how many were published. When a run fails, the runs
   * before it are still marked sent before the error is passed on.
   */
  async #relayBatch(market: string, state: MarketState): Promise<number> {
    let failure: unknown
    const sentRuns = await this.#db.transaction(async (tx) => {
      const [lock] = await queryRows<{ locked: boolean }>(
        tx,
        sql`select pg_try_advisory_xact_lock(${sql.raw(String(LOCK_CLASS))}, hashtext(${market})) as locked`,
      )
      if (!lock?.locked) return [] // another relay has this market now; its batch is its own
      const rows = await this.#nextEvents(tx, market, state)
      const sent: TopicRun[] = []
      for (const run of topicRuns(rows)) {
        try {
          await withTimeout(
            this.#bus.publishMany(
              this.#topicPrefix + run.topic,
              run.rows.map((row) => row.message),
            ),
            this.#publishTimeoutMs,
          )
        } catch (error) {
          this.#publishErrors++
          this.#metrics.errors.inc({ market })
          failure = error
          break
        }
        sent.push(run)
      }
      const last = sent.at(-1)?.rows.at(-1)
      if (last) {
        await tx.execute(
          sql`update outbox set sent_at = now()
              where market = ${market} and seq between ${rows[0]!.seq} and ${last.seq} and sent_at is null`,
        )
      }
      return sent
    })
    // Counted once the transaction that marks them has committed: had it failed, they would go out again.
    let published = 0
    for (const run of sentRuns) {
      this.#metrics.published.inc({ market, topic: run.topic }, run.rows.length)
      published += run.rows.length
    }
    this.#published += published
    if (failure !== undefined) throw new PublishFailure(failure)
    return published
  }

  /** Up to a batch of the market's unsent events after the last one sent, stopping at the first missing seq. */
  async #nextEvents(tx: Executor, market: string, state: MarketState): Promise<OutboxRow[]> {
    const [last] = await queryRows<{ seq: bigint | null }>(
      tx,
      sql`select max(seq) as seq from outbox where market = ${market} and sent_at is not null`,
    )
    const lastSent = last?.seq ?? null
    const after: SQL = lastSent === null ? sql`` : sql` and seq > ${lastSent}`
    const rows = await queryRows<OutboxRow>(
      tx,
      sql`select id, seq, topic,
            ((case when jsonb_typeof(payload) = 'object' then payload else jsonb_build_object('data', payload) end)
              || jsonb_build_object('market', market, 'seq', seq::text, 'topic', topic))::text as message
          from outbox
          where market = ${market} and sent_at is null${after}
          order by seq
          limit ${this.#batchSize}`,
    )
    if (rows.length === 0) return rows
    const first = rows[0]!.seq
    if (lastSent !== null && first !== lastSent + 1n) {
      const now = Date.now()
      if (state.gapSince === undefined) {
        state.gapSince = now
        this.#log.warn({ market, lastSent: String(lastSent), next: String(first) }, 'outbox gap: waiting')
      }
      if (now - state.gapSince < this.#gapTimeoutMs) return []
      this.#log.error(
        { market, lastSent: String(lastSent), next: String(first) },
        'outbox gap never filled: publishing past it',
      )
    }
    state.gapSince = undefined
    let end = 1
    while (end < rows.length && rows[end]!.seq === rows[end - 1]!.seq + 1n) end++
    return rows.slice(0, end)
  }

  #state(market: string): MarketState {
    let state = this.#markets.get(market)
    if (!state) {
      state = { failures: 0, retryAt: 0, gapSince: undefined }
      this.#markets.set(market, state)
    }
    return state
  }

  #backoff(failures: number): number {
    return Math.min(this.#maxBackoffMs, this.#minBackoffMs * 2 ** Math.min(failures - 1, 30))
  }

  /** The poll interval, or less when a market's retry falls due sooner. */
  #untilNextRetry(pollMs: number): number {
    const now = Date.now()
    let delay = pollMs
    for (const state of this.#markets.values()) {
      if (state.retryAt > now) delay = Math.min(delay, state.retryAt - now)
    }
    return delay
  }

  /** Sleeps; stop() always cuts it short, wake() only when `wakeable`. */
  #sleep(ms: number, wakeable: boolean): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        this.#interrupt = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      this.#interrupt = wakeable ? done : () => (this.#running ? undefined : done())
    })
  }
}

/** The bus refused or did not acknowledge a publish (as opposed to the database failing). */
class PublishFailure extends Error {
  constructor(cause: unknown) {
    super('publish failed', { cause })
  }
}

/** The promise's outcome, or a retryable error once `ms` have passed without one. */
async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new BourseError('unavailable', `the bus did not acknowledge a publish within ${ms} ms`)),
      ms,
    )
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

interface TopicRun {
  topic: string
  rows: OutboxRow[]
}

/** Consecutive events of one topic, in seq order: each run is one publishMany. */
function topicRuns(rows: readonly OutboxRow[]): TopicRun[] {
  const runs: TopicRun[] = []
  for (const row of rows) {
    const current = runs.at(-1)
    if (current?.topic === row.topic) current.rows.push(row)
    else runs.push({ topic: row.topic, rows: [row] })
  }
  return runs
}

const relayMetricsByRegistry = new WeakMap<Registry, RelayMetrics>()

/** The relay's metrics on a registry, created on first use (several relays in one process share them). */
function relayMetrics(registry: Registry): RelayMetrics {
  let metrics = relayMetricsByRegistry.get(registry)
  if (!metrics) {
    metrics = {
      published: new Counter({
        name: 'bourse_outbox_published_total',
        help: 'Outbox events published to the bus and marked sent',
        labelNames: ['market', 'topic'],
        registers: [registry],
      }),
      backlog: new Gauge({
        name: 'bourse_outbox_backlog',
        help: 'Outbox events committed and not yet sent',
        labelNames: ['market'],
        registers: [registry],
      }),
      errors: new Counter({
        name: 'bourse_outbox_publish_errors_total',
        help: 'Failed attempts to publish outbox events (each is retried)',
        labelNames: ['market'],
        registers: [registry],
      }),
    }
    relayMetricsByRegistry.set(registry, metrics)
  }
  return metrics
}

/**
 * Deletes the events sent before `before`, in chunks so that no statement holds many locks, and returns how
 * many went. The last sent event of each market is kept: it tells the relay where the market's seqs resume.
 */
export async function deleteSentBefore(db: Database, before: Date, chunkSize = 10_000): Promise<number> {
  let deleted = 0
  for (;;) {
    const rows = await queryRows<{ id: bigint }>(
      db,
      sql`delete from outbox where id in (
            select o.id from outbox o
            where o.sent_at < ${before.toISOString()}::timestamptz
              and o.seq < (select max(k.seq) from outbox k where k.market = o.market and k.sent_at is not null)
            limit ${chunkSize})
          returning id`,
    )
    deleted += rows.length
    if (rows.length < chunkSize) return deleted
  }
}
