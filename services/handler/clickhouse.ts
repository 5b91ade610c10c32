/**
 * The handler's ClickHouse side: every trade once in `trades`, and 1m k-lines in an AggregatingMergeTree fed
 * by a materialized view (argMin/argMax states keyed by trade id, so insert order does not matter; higher
 * intervals merge those states at query time). Trades are inserted in batches (by count or time).
 *
 * A redelivered trade must never count twice, and the materialized view counts whatever reaches `trades`,
 * so a batch is checked against `trades` before it is inserted (the writer flushes one batch at a time), and
 * each insert carries a deduplication token derived from its trade ids, with the deduplication window on the
 * view's target too, so that a retried insert whose first attempt did land is dropped. `trades` is also a
 * ReplacingMergeTree on (symbol, time, id), so even two replicas racing on one trade leave one row of it.
 */
import { createHash } from 'node:crypto'
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import { formatDecimal } from '../../lib/money.ts'
import { firstOpenFrom, type Interval, nextBucketStart } from './intervals.ts'
import { type BinanceKline, SCALE, type Trade } from './klines.ts'

const D = 'Decimal(38, 18)'

export const TRADES_TABLE = 'trades'
export const KLINES_TABLE = 'klines_1m'

/** Creates the tables and the view if they are missing; safe to run on every start. */
export async function migrateAnalytics(client: Analytics): Promise<void> {
  const statements = [
    `CREATE TABLE IF NOT EXISTS ${TRADES_TABLE} (
      symbol LowCardinality(String),
      id UInt64,
      time DateTime64(3, 'UTC'),
      price ${D},
      qty ${D},
      quote_qty ${D},
      buyer_is_maker Bool
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(time)
    ORDER BY (symbol, time, id)
    SETTINGS non_replicated_deduplication_window = 10000`,
    `CREATE TABLE IF NOT EXISTS ${KLINES_TABLE} (
      symbol LowCardinality(String),
      open_time DateTime('UTC'),
      open AggregateFunction(argMin, ${D}, UInt64),
      close AggregateFunction(argMax, ${D}, UInt64),
      high SimpleAggregateFunction(max, ${D}),
      low SimpleAggregateFunction(min, ${D}),
      volume SimpleAggregateFunction(sum, ${D}),
      quote_volume SimpleAggregateFunction(sum, ${D}),
      taker_buy_volume SimpleAggregateFunction(sum, ${D}),
      taker_buy_quote_volume SimpleAggregateFunction(sum, ${D}),
      trades SimpleAggregateFunction(sum, UInt64),
      first_id SimpleAggregateFunction(min, UInt64),
      last_id SimpleAggregateFunction(max, UInt64)
    ) ENGINE = AggregatingMergeTree
    PARTITION BY toYYYYMM(open_time)
    ORDER BY (symbol, open_time)
    SETTINGS non_replicated_deduplication_window = 10000`,
    `CREATE MATERIALIZED VIEW IF NOT EXISTS ${KLINES_TABLE}_mv TO ${KLINES_TABLE} AS
    SELECT
      symbol,
      toStartOfMinute(time) AS open_time,
      argMinState(price, id) AS open,
      argMaxState(price, id) AS close,
      max(price) AS high,
      min(price) AS low,
      sum(qty) AS volume,
      sum(quote_qty) AS quote_volume,
      sumIf(qty, NOT buyer_is_maker) AS taker_buy_volume,
      sumIf(quote_qty, NOT buyer_is_maker) AS taker_buy_quote_volume,
      count() AS trades,
      min(id) AS first_id,
      max(id) AS last_id
    FROM ${TRADES_TABLE}
    GROUP BY symbol, open_time`,
  ]
  for (const query of statements) await client.command({ query })
}

interface TradeRow {
  symbol: string
  id: string
  /** 'YYYY-MM-DD hh:mm:ss.sss' in UTC, which DateTime64(3, 'UTC') reads without settings. */
  time: string
  price: string
  qty: string
  quote_qty: string
  buyer_is_maker: boolean
}

const fmt = (units: bigint) => formatDecimal(units, SCALE, { trimZeros: true })

function rowOf(trade: Trade): TradeRow {
  return {
    symbol: trade.symbol,
    id: trade.id.toString(),
    time: new Date(trade.time).toISOString().replace('T', ' ').replace('Z', ''),
    price: fmt(trade.price),
    qty: fmt(trade.qty),
    quote_qty: fmt(trade.quoteQty),
    buyer_is_maker: trade.buyerIsMaker,
  }
}

export interface TradeWriterOptions {
  /** Flush when this many trades wait (default 1000). */
  maxRows?: number
  /** Flush at the latest this long after the first trade of a batch arrived (default 200 ms). */
  maxDelayMs?: number
  /** Told after each insert: rows inserted and rows dropped as already stored. */
  onFlush?: (inserted: number, skipped: number, seconds: number) => void
}

interface Pending {
  row: TradeRow
  resolve: () => void
  reject: (error: unknown) => void
}

/**
 * Collects trades and inserts them in batches. `add` resolves once its trade is stored (or found already
 * stored) and rejects when its batch failed, so the caller can acknowledge or requeue the message.
 */
export class TradeWriter {
  readonly #client: Analytics
  readonly #maxRows: number
  readonly #maxDelayMs: number
  readonly #onFlush: TradeWriterOptions['onFlush']
  #pending: Pending[] = []
  #timer: NodeJS.Timeout | undefined
  /** The flush running now: one at a time, so a batch sees everything the previous one stored. */
  #flushing: Promise<void> = Promise.resolve()

  constructor(client: Analytics, options: TradeWriterOptions = {}) {
    this.#client = client
    this.#maxRows = options.maxRows ?? 1000
    this.#maxDelayMs = options.maxDelayMs ?? 200
    this.#onFlush = options.onFlush
  }

  add(trade: Trade): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ row: rowOf(trade), resolve, reject })
      if (this.#pending.length >= this.#maxRows) void this.flush()
      else this.#timer ??= setTimeout(() => void this.flush(), this.#maxDelayMs)
    })
  }

  /** Inserts what waits now; resolves when that batch (and any before it) is done. Never rejects. */
  flush(): Promise<void> {
    clearTimeout(this.#timer)
    this.#timer = undefined
    const batch = this.#pending
    this.#pending = []
    this.#flushing = this.#flushing.then(() => (batch.length > 0 ? this.#insert(batch) : undefined))
    return this.#flushing
  }

  async #insert(batch: Pending[]): Promise<void> {
    const started = process.hrtime.bigint()
    try {
      const unique = new Map<string, TradeRow>()
      for (const { row } of batch) unique.set(`${row.symbol}:${row.id}`, row)
      const stored = await this.#alreadyStored([...unique.values()])
      const rows = [...unique.values()].filter((row) => !stored.has(`${row.symbol}:${row.id}`))
      if (rows.length > 0) {
        await this.#client.insert({
          table: TRADES_TABLE,
          values: rows,
          format: 'JSONEachRow',
          clickhouse_settings: {
            insert_deduplication_token: dedupToken(rows),
            deduplicate_blocks_in_dependent_materialized_views: 1,
          },
        })
      }
      this.#onFlush?.(rows.length, unique.size - rows.length, Number(process.hrtime.bigint() - started) / 1e9)
      for (const item of batch) item.resolve()
    } catch (error) {
      for (const item of batch) item.reject(error)
    }
  }

  /** The (symbol, id) of the rows `trades` already holds; the batch's time span prunes partitions. */
  async #alreadyStored(rows: TradeRow[]): Promise<Set<string>> {
    const bySymbol = new Map<string, TradeRow[]>()
    for (const row of rows) {
      const group = bySymbol.get(row.symbol) ?? []
      group.push(row)
      bySymbol.set(row.symbol, group)
    }
    const stored = new Set<string>()
    for (const [symbol, group] of bySymbol) {
      const times = group.map((row) => row.time).sort()
      const result = await this.#client.query({
        query: `SELECT DISTINCT toString(id) AS id FROM ${TRADES_TABLE}
                WHERE symbol = {symbol:String}
                  AND time BETWEEN toDateTime64({from:String}, 3, 'UTC') AND toDateTime64({to:String}, 3, 'UTC')
                  AND toString(id) IN {ids:Array(String)}`,
        query_params: { symbol, from: times[0], to: times.at(-1), ids: group.map((row) => row.id) },
        format: 'JSONEachRow',
      })
      for (const { id } of await result.json<{ id: string }>()) stored.add(`${symbol}:${id}`)
    }
    return stored
  }

  /** Flushes what waits and stops the timer. */
  async close(): Promise<void> {
    await this.flush()
  }
}

/** The same trades give the same token, whatever order they came in. */
function dedupToken(rows: TradeRow[]): string {
  const keys = rows.map((row) => `${row.symbol}:${row.id}`).sort()
  return `handler-trades-${createHash('sha256').update(keys.join(',')).digest('hex')}`
}

const CH_INTERVALS: Partial<Record<Interval, string>> = {
  '1m': 'INTERVAL 1 MINUTE',
  '3m': 'INTERVAL 3 MINUTE',
  '5m': 'INTERVAL 5 MINUTE',
  '15m': 'INTERVAL 15 MINUTE',
  '30m': 'INTERVAL 30 MINUTE',
  '45m': 'INTERVAL 45 MINUTE',
  '1h': 'INTERVAL 1 HOUR',
  '2h': 'INTERVAL 2 HOUR',
  '3h': 'INTERVAL 3 HOUR',
  '4h': 'INTERVAL 4 HOUR',
  '6h': 'INTERVAL 6 HOUR',
  '8h': 'INTERVAL 8 HOUR',
  '12h': 'INTERVAL 12 HOUR',
  '1d': 'INTERVAL 1 DAY',
  '3d': 'INTERVAL 3 DAY',
  '1w': 'INTERVAL 1 WEEK',
  '1M': 'INTERVAL 1 MONTH',
}

/**
 * K-lines of any interval from 1m up, merged from the 1m aggregate states, in Binance's row shape, oldest
 * first, with what GET /api/v3/klines asks of them: whole buckets (in the zone `offsetMs` from UTC) whose
 * open time is within [startTime, endTime]; with a startTime the first `limit`, otherwise the newest. `1s`
 * is not kept in ClickHouse. For history beyond what Redis keeps.
 */
export async function analyticsKlines(
  client: Analytics,
  symbol: string,
  interval: Interval,
  query: { startTime?: number; endTime: number; limit?: number; offsetMs?: number },
): Promise<BinanceKline[]> {
  const unit = CH_INTERVALS[interval]
  if (unit === undefined) throw new RangeError(`${interval} k-lines are not kept in ClickHouse`)
  const offsetMs = query.offsetMs ?? 0
  const start = query.startTime === undefined ? 0 : firstOpenFrom(interval, query.startTime, offsetMs)
  const end = nextBucketStart(interval, query.endTime, offsetMs) - 1
  const newest = query.startTime === undefined
  const result = await client.query({
    query: `SELECT
        toUnixTimestamp(toStartOfInterval(open_time + toIntervalSecond({offset:Int64}), ${unit})) * 1000
          - {offset:Int64} * 1000 AS t,
        toString(argMinMerge(open)) AS o, toString(max(high)) AS h, toString(min(low)) AS l,
        toString(argMaxMerge(close)) AS c, toString(sum(volume)) AS v, toString(sum(quote_volume)) AS q,
        toString(sum(trades)) AS n, toString(sum(taker_buy_volume)) AS V, toString(sum(taker_buy_quote_volume)) AS Q
      FROM ${KLINES_TABLE}
      WHERE symbol = {symbol:String}
        AND open_time >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')
        AND open_time <= fromUnixTimestamp64Milli({end:Int64}, 'UTC')
      GROUP BY t ORDER BY t ${newest ? 'DESC' : 'ASC'}${query.limit === undefined ? '' : ' LIMIT {limit:UInt32}'}`,
    query_params: { symbol, start, end, offset: offsetMs / 1000, limit: query.limit },
    format: 'JSONEachRow',
  })
  const rows = await result.json<Record<string, string>>()
  if (newest) rows.reverse()
  const trim = (text: string | undefined) => (text ?? '0').replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '')
  return rows.map((row) => {
    const openTime = Number(row.t)
    return [
      openTime,
      trim(row.o),
      trim(row.h),
      trim(row.l),
      trim(row.c),
      trim(row.v),
      nextBucketStart(interval, openTime, offsetMs) - 1,
      trim(row.q),
      Number(row.n),
      trim(row.V),
      trim(row.Q),
      '0',
    ]
  })
}
