/**
 * The market-data handler: consumes the `trades` topic (channel `handler`) and keeps, per symbol, the k-lines
 * of every interval, the 24h ticker and the recent trades in Redis, publishes their updates on the symbol's
 * sharded pub/sub channels for ws, and stores each trade once in ClickHouse (k-lines follow by view).
 *
 * NSQ delivers at least once and in no order, so:
 * - open/close are chosen by trade id (klines.ts), never by arrival;
 * - Redis remembers the ids of counted trades per minute (`md:{S}:ids:<minute>`, two days) and writes that
 *   memory in the same atomic commit as the k-lines it protects (store.ts), so a handler killed at any point
 *   neither loses a trade nor counts one twice when NSQ redelivers it;
 * - commits are compare-and-set on a per-symbol revision: replicas sharing the channel may interleave one
 *   symbol's trades; the loser of a race reloads the symbol's state from Redis and applies its trades again;
 * - ClickHouse gets a trade from the delivery that counted it in Redis, and from any redelivery (attempts > 1)
 *   in case the counting one died between Redis and ClickHouse; the writer checks its own table before each
 *   batch insert (clickhouse.ts), so a trade is stored once either way.
 * A message is acknowledged only after its Redis commit and (when due) its ClickHouse insert.
 */
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import type { Bus, Subscription } from '../../adapters/bus/index.ts'
import type { PubSubCache } from '../../adapters/pubsub/index.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Histogram, type Registry } from '../../lib/metrics.ts'
import { formatDecimal } from '../../lib/money.ts'
import type { TradeEvent } from '../engine/events.ts'
import { SymbolAggregator } from './aggregator.ts'
import { migrateAnalytics, TradeWriter } from './clickhouse.ts'
import { bucketStart } from './intervals.ts'
import { channels, DEDUP_TTL_MS, keys, klineIndexCap, klineTtlMs, RECENT_TRADES } from './keys.ts'
import {
  type Kline,
  klineFromHash,
  klineToHash,
  SCALE,
  type Trade,
  toKlineStreamPayload,
  tradeFromEvent,
} from './klines.ts'
import { cacheMarketStore, type MarketStore, type WriteOp } from './store.ts'
import { type Ticker24h, WINDOW_MINUTES } from './ticker.ts'

export interface MarketDataHandlerOptions {
  bus: Bus
  /** Reads and pub/sub; also the writes, unless `store` is given. */
  cache: PubSubCache
  analytics: Analytics
  log: Logger
  /** Prefixes the topic name (`${prefix}trades`), for tests sharing one nsqd. */
  topicPrefix?: string
  channel?: string
  /** Atomic commits: `redisMarketStore({ nodes })` on a Redis Cluster; default: through `cache` (embedded mode). */
  store?: MarketStore
  /** Messages in flight; ClickHouse batches can be no larger (default MAX_IN_FLIGHT). */
  maxInFlight?: number
  /** Delay before a failed message comes back (default 1000 ms). */
  requeueDelayMs?: number
  clickhouse?: { maxRows?: number; maxDelayMs?: number }
  registry?: Registry
  /** The clock: the `x` (closed) flag of published k-lines, and the end of the tickers' window. */
  now?: () => number
  /**
   * How often the 24h tickers of the symbols this handler holds roll on to the current minute without a
   * trade (default 60 000 ms; 0: only trades move them).
   */
  tickerRollMs?: number
}

export interface MarketDataHandler {
  start(): Promise<void>
  /** Stops taking messages, finishes those in hand, flushes ClickHouse. */
  stop(): Promise<void>
}

/** Messages taken from NSQ before any is acknowledged: under load, what one pass of commits works on. */
export const MAX_IN_FLIGHT = 1000
const MINUTE = 60_000
/** Minutes of trade ids kept in memory (a trade later than that is checked against Redis). */
const CACHED_ID_MINUTES = 30
/** Trades of one symbol committed together at most. */
const MAX_COMMIT = 500
const MAX_CONFLICTS = 20

interface SymbolState {
  revision: number
  aggregator: SymbolAggregator
  /** Ids of the trades counted, by minute, for the minutes loaded. */
  ids: Map<number, Set<string>>
}

interface Item {
  trade: Trade
  /** With true when this delivery counted the trade, false when it had been counted already. */
  resolve: (counted: boolean) => void
  reject: (error: unknown) => void
}

interface Queue {
  items: Item[]
  running: boolean
  /** The ticker window should move on to the current minute (a quiet market's day passes too). */
  rollDue: boolean
}

function metrics(registry: Registry | undefined) {
  const registers = registry ? [registry] : []
  return {
    trades: new Counter({
      name: 'md_trades_total',
      help: 'Trades counted into k-lines, by result',
      labelNames: ['result'] as const,
      registers,
    }),
    conflicts: new Counter({
      name: 'md_commit_conflicts_total',
      help: 'Commits refused because another writer changed the symbol first',
      registers,
    }),
    clickhouseRows: new Counter({
      name: 'md_clickhouse_insert_rows_total',
      help: 'Trades inserted into ClickHouse, by result',
      labelNames: ['result'] as const,
      registers,
    }),
    clickhouseSeconds: new Histogram({
      name: 'md_clickhouse_insert_seconds',
      help: 'ClickHouse batch insert time',
      registers,
    }),
    tradeAge: new Histogram({
      name: 'md_trade_age_seconds',
      help: 'Now minus the trade time when the trade is handled',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 15, 60],
      registers,
    }),
  }
}

const fmt = (units: bigint) => formatDecimal(units, SCALE, { trimZeros: true })

function tickerOp(ticker: Ticker24h): WriteOp {
  return {
    op: 'hset',
    key: keys.ticker(ticker.symbol),
    fields: Object.fromEntries(Object.entries(ticker).map(([k, v]) => [k, String(v)])),
  }
}

export function createMarketDataHandler(options: MarketDataHandlerOptions): MarketDataHandler {
  const { bus, cache, analytics, log } = options
  const store = options.store ?? cacheMarketStore(cache)
  const now = options.now ?? Date.now
  const topic = `${options.topicPrefix ?? ''}trades`
  const channel = options.channel ?? 'handler'
  const maxInFlight = options.maxInFlight ?? MAX_IN_FLIGHT
  const m = metrics(options.registry)
  const writer = new TradeWriter(analytics, {
    maxRows: Math.min(options.clickhouse?.maxRows ?? 1000, maxInFlight),
    maxDelayMs: options.clickhouse?.maxDelayMs ?? 200,
    onFlush: (inserted, skipped, seconds) => {
      m.clickhouseRows.inc({ result: 'inserted' }, inserted)
      m.clickhouseRows.inc({ result: 'duplicate' }, skipped)
      m.clickhouseSeconds.observe(seconds)
    },
  })
  const states = new Map<string, SymbolState>()
  const queues = new Map<string, Queue>()
  let subscription: Subscription | undefined
  let rollTimer: NodeJS.Timeout | undefined
  const draining = new Set<Promise<void>>()
  const track = (work: Promise<void>) => {
    draining.add(work)
    void work.finally(() => draining.delete(work))
  }

  async function load(symbol: string): Promise<SymbolState> {
    // The revision first: anything written after this read makes our commit fail and reload.
    const revision = await store.revision(symbol)
    const listed = await cache.range(keys.klineIndex(symbol, '1m'), klineIndexCap('1m'))
    const starts = [...new Set(listed.map(Number))]
    const newest = Math.max(...starts)
    const inWindow = starts.filter((t) => t > newest - WINDOW_MINUTES * MINUTE)
    const minutes = (
      await Promise.all(inWindow.map((t) => cache.hashGetAll(keys.kline(symbol, '1m', t))))
    ).flatMap((hash) => klineFromHash(hash) ?? [])
    return { revision, aggregator: new SymbolAggregator(symbol, minutes), ids: new Map() }
  }

  /** Loads from Redis what the trades will touch and the state does not hold yet. */
  async function prefetch(symbol: string, state: SymbolState, trades: readonly Trade[]): Promise<void> {
    const loads: Promise<void>[] = []
    const asked = new Set<string>()
    for (const trade of trades) {
      const minute = bucketStart('1m', trade.time)
      if (!state.ids.has(minute) && !asked.has(`ids:${minute}`)) {
        asked.add(`ids:${minute}`)
        loads.push(
          cache.hashGetAll(keys.tradeIds(symbol, minute)).then((hash) => {
            state.ids.set(minute, new Set(Object.keys(hash)))
          }),
        )
      }
    }
    for (const { interval, openTime } of state.aggregator.missing(trades)) {
      loads.push(
        cache.hashGetAll(keys.kline(symbol, interval, openTime)).then((hash) => {
          const k = klineFromHash(hash)
          if (k !== undefined) state.aggregator.put(k)
        }),
      )
    }
    await Promise.all(loads)
  }

  /** Applies the trades to the state in memory and returns what to write and publish; undefined when all were duplicates. */
  function apply(symbol: string, state: SymbolState, trades: readonly Trade[]) {
    const fresh: Trade[] = []
    const newIds = new Map<number, string[]>()
    for (const trade of trades) {
      const minute = bucketStart('1m', trade.time)
      const ids = state.ids.get(minute)!
      const id = trade.id.toString()
      if (ids.has(id)) continue
      ids.add(id)
      const added = newIds.get(minute) ?? []
      added.push(id)
      newIds.set(minute, added)
      fresh.push(trade)
    }
    if (fresh.length === 0) return undefined
    const { touched, created } = state.aggregator.apply(fresh)
    const ops: WriteOp[] = []
    for (const k of touched) {
      const key = keys.kline(symbol, k.interval, k.openTime)
      ops.push({ op: 'hset', key, fields: klineToHash(k) })
      const ttlMs = klineTtlMs(k.interval)
      if (ttlMs !== undefined) ops.push({ op: 'expire', key, ttlMs })
    }
    for (const k of created) {
      ops.push({
        op: 'push',
        key: keys.klineIndex(symbol, k.interval),
        value: String(k.openTime),
        maxLen: klineIndexCap(k.interval),
      })
    }
    for (const [minute, ids] of newIds) {
      const key = keys.tradeIds(symbol, minute)
      ops.push({ op: 'hset', key, fields: Object.fromEntries(ids.map((id) => [id, '1'])) })
      ops.push({ op: 'expire', key, ttlMs: DEDUP_TTL_MS })
    }
    const ticker = state.aggregator.ticker.snapshot()
    if (ticker !== undefined) ops.push(tickerOp(ticker))
    fresh.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const tradeJson = fresh.map((t) =>
      JSON.stringify({
        id: Number(t.id),
        price: fmt(t.price),
        qty: fmt(t.qty),
        quoteQty: fmt(t.quoteQty),
        time: t.time,
        isBuyerMaker: t.buyerIsMaker,
        isBestMatch: true,
      }),
    )
    for (const value of tradeJson)
      ops.push({ op: 'push', key: keys.trades(symbol), value, maxLen: RECENT_TRADES })
    return { fresh, ops, touched, ticker }
  }

  /** Keeps the state small: recent buckets per interval, the ticker's minutes, recent trade-id sets. */
  function trim(state: SymbolState): void {
    state.aggregator.trim()
    if (state.ids.size > CACHED_ID_MINUTES) {
      const minutes = [...state.ids.keys()].sort((a, b) => b - a)
      for (const minute of minutes.slice(CACHED_ID_MINUTES)) state.ids.delete(minute)
    }
  }

  async function publish(symbol: string, fresh: Trade[], touched: Kline[], ticker: Ticker24h | undefined) {
    const eventTime = now()
    const messages: [string, string][] = []
    for (const t of fresh) {
      messages.push([
        channels.trade(symbol),
        JSON.stringify({
          e: 'trade',
          E: eventTime,
          s: symbol,
          t: Number(t.id),
          p: fmt(t.price),
          q: fmt(t.qty),
          T: t.time,
          m: t.buyerIsMaker,
          M: true,
        }),
      ])
    }
    for (const k of touched) {
      messages.push([
        channels.kline(symbol, k.interval),
        JSON.stringify({
          e: 'kline',
          E: eventTime,
          s: symbol,
          k: toKlineStreamPayload(symbol, k, eventTime),
        }),
      ])
    }
    if (ticker !== undefined) {
      messages.push([
        channels.ticker(symbol),
        JSON.stringify({
          e: '24hrTicker',
          E: eventTime,
          s: symbol,
          p: ticker.priceChange,
          P: ticker.priceChangePercent,
          w: ticker.weightedAvgPrice,
          c: ticker.lastPrice,
          Q: ticker.lastQty,
          o: ticker.openPrice,
          h: ticker.highPrice,
          l: ticker.lowPrice,
          v: ticker.volume,
          q: ticker.quoteVolume,
          O: ticker.openTime,
          C: ticker.closeTime,
          F: ticker.firstId,
          L: ticker.lastId,
          n: ticker.count,
        }),
      ])
    }
    // After the commit: a lost publish costs a client one update, never a wrong count.
    const results = await Promise.allSettled(messages.map(([ch, message]) => cache.publish(ch, message)))
    const failed = results.filter((r) => r.status === 'rejected')
    if (failed.length > 0)
      log.warn({ symbol, failed: failed.length, err: failed[0]!.reason }, 'publish failed')
  }

  /** Counts the trades into Redis; returns the ids it counted (the others had been counted before). */
  async function commitTrades(symbol: string, trades: readonly Trade[]): Promise<Set<bigint>> {
    for (let attempt = 0; ; attempt++) {
      let state = states.get(symbol)
      try {
        if (state === undefined) {
          state = await load(symbol)
          states.set(symbol, state)
        }
        await prefetch(symbol, state, trades)
        const result = apply(symbol, state, trades)
        if (result === undefined) {
          m.trades.inc({ result: 'duplicate' }, trades.length)
          return new Set()
        }
        if (!(await store.commit(symbol, state.revision, result.ops))) {
          // Someone else wrote the symbol: what we hold (and just changed) is stale.
          states.delete(symbol)
          m.conflicts.inc()
          if (attempt >= MAX_CONFLICTS) throw new Error(`${symbol}: ${attempt} commit conflicts in a row`)
          continue
        }
        state.revision++
        trim(state)
        m.trades.inc({ result: 'counted' }, result.fresh.length)
        m.trades.inc({ result: 'duplicate' }, trades.length - result.fresh.length)
        await publish(symbol, result.fresh, result.touched, result.ticker)
        return new Set(result.fresh.map((t) => t.id))
      } catch (error) {
        // The state may hold changes that were never committed.
        states.delete(symbol)
        throw error
      }
    }
  }

  /** Moves the symbol's ticker window on to the current minute, if it has not got there with a trade. */
  async function rollTicker(symbol: string): Promise<void> {
    for (let attempt = 0; attempt <= MAX_CONFLICTS; attempt++) {
      let state = states.get(symbol)
      try {
        if (state === undefined) {
          state = await load(symbol)
          states.set(symbol, state)
        }
        if (!state.aggregator.ticker.advanceTo(bucketStart('1m', now()))) return
        const ticker = state.aggregator.ticker.snapshot()
        if (ticker === undefined) return
        if (!(await store.commit(symbol, state.revision, [tickerOp(ticker)]))) {
          states.delete(symbol)
          m.conflicts.inc()
          continue
        }
        state.revision++
        trim(state)
        await publish(symbol, [], [], ticker)
        return
      } catch (error) {
        states.delete(symbol)
        throw error
      }
    }
  }

  async function drain(symbol: string, queue: Queue): Promise<void> {
    queue.running = true
    try {
      while (queue.items.length > 0 || queue.rollDue) {
        if (queue.items.length === 0) {
          queue.rollDue = false
          await rollTicker(symbol).catch((error) =>
            log.warn({ err: error, symbol }, 'rolling the ticker failed'),
          )
          continue
        }
        const batch = queue.items.splice(0, MAX_COMMIT)
        try {
          const counted = await commitTrades(
            symbol,
            batch.map((item) => item.trade),
          )
          // A trade delivered twice in one batch was counted by the first of the two.
          for (const item of batch) item.resolve(counted.delete(item.trade.id))
        } catch (error) {
          for (const item of batch) item.reject(error)
        }
      }
    } finally {
      queue.running = false
    }
  }

  /** Counts the trade into Redis; trades of one symbol are committed in order of arrival, in batches. */
  function enqueue(trade: Trade): Promise<boolean> {
    return new Promise((resolve, reject) => {
      let queue = queues.get(trade.symbol)
      if (queue === undefined) {
        queue = { items: [], running: false, rollDue: false }
        queues.set(trade.symbol, queue)
      }
      queue.items.push({ trade, resolve, reject })
      if (!queue.running) track(drain(trade.symbol, queue))
    })
  }

  return {
    async start() {
      await migrateAnalytics(analytics)
      subscription = await bus.subscribe(
        topic,
        channel,
        async (message) => {
          let trade: Trade
          try {
            const event = message.json<TradeEvent>()
            trade = tradeFromEvent(event)
            keys.ticker(trade.symbol) // checks the symbol
          } catch (error) {
            // Redelivering a malformed message would fail the same way forever.
            m.trades.inc({ result: 'malformed' })
            log.error({ err: error, messageId: message.id }, 'dropping a malformed trade event')
            return
          }
          m.tradeAge.observe(Math.max(0, now() - trade.time) / 1000)
          const counted = await enqueue(trade)
          // The delivery that counted a trade stores it. A redelivery stores it too (the writer skips what
          // `trades` already holds): the first delivery may have died between Redis and ClickHouse. A copy
          // delivered once more while the first is still in hand is left alone, so that two replicas do not
          // race to insert one trade.
          if (counted || message.attempts > 1) await writer.add(trade)
        },
        { maxInFlight, requeueDelayMs: options.requeueDelayMs ?? 1000 },
      )
      const rollMs = options.tickerRollMs ?? 60_000
      if (rollMs > 0) {
        rollTimer = setInterval(() => {
          for (const [symbol, queue] of queues) {
            queue.rollDue = true
            if (!queue.running) track(drain(symbol, queue))
          }
        }, rollMs)
        rollTimer.unref()
      }
      log.info({ topic, channel }, 'market-data handler started')
    },
    async stop() {
      clearInterval(rollTimer)
      rollTimer = undefined
      await subscription?.close()
      subscription = undefined
      await Promise.all(draining)
      await writer.close()
      log.info({ topic, channel }, 'market-data handler stopped')
    },
  }
}
