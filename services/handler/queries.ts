/**
 * What the gateway reads from the handler's state: k-lines in Binance's row shape (Redis, and ClickHouse for
 * what Redis no longer keeps), the 24h and rolling window tickers and the recent trades.
 */
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import type { PubSubCache } from '../../adapters/pubsub/index.ts'
import { invalidInput } from '../../lib/errors.ts'
import { analyticsKlines } from './clickhouse.ts'
import { bucketStart, firstOpenFrom, type Interval, nextBucketStart, zonedSource } from './intervals.ts'
import { keys, klineIndexCap } from './keys.ts'
import { type BinanceKline, type Kline, klineFromHash, mergeInto, toBinanceKline } from './klines.ts'
import { idleTicker, type Ticker24h, tickerOf } from './ticker.ts'

const HOUR = 3_600_000

export interface KlineQuery {
  startTime?: number
  endTime?: number
  /** Default 500, at most 1000, as on Binance. */
  limit?: number
  /** Binance's `timeZone` as an offset from UTC: the buckets open and close in that zone. */
  offsetMs?: number
}

/**
 * K-lines by open time, oldest first, as Binance's GET /api/v3/klines: open time within [startTime, endTime]
 * (always UTC); with a startTime the first `limit` from it, otherwise the newest `limit`. Redis keeps the
 * newest buckets of each interval; with `analytics` the older ones come from ClickHouse, so a client paging
 * back through history does not see where one store ends and the other begins.
 */
export async function klines(
  cache: PubSubCache,
  symbol: string,
  interval: Interval,
  query: KlineQuery = {},
  analytics?: Analytics,
): Promise<BinanceKline[]> {
  const { rows, reach } = await klineRows(cache, symbol, interval, query)
  const recent = rows.map(toBinanceKline)
  if (analytics === undefined || interval === '1s' || reach === Number.NEGATIVE_INFINITY) return recent
  const limit = query.limit ?? 500
  const endTime = Math.min(query.endTime ?? Number.POSITIVE_INFINITY, reach - 1)
  const wantsOlder = query.startTime === undefined ? recent.length < limit : query.startTime <= endTime
  if (!wantsOlder) return recent
  const older = await analyticsKlines(analytics, symbol, interval, {
    ...query,
    endTime,
    limit: query.startTime === undefined ? limit - recent.length : limit,
  })
  return [...older, ...recent].slice(0, limit)
}

/**
 * The k-line of the bucket opening at `openTime`, or without it the newest, in a zone `offsetMs` from UTC;
 * undefined when that bucket had no trade.
 */
export async function klineAt(
  cache: PubSubCache,
  symbol: string,
  interval: Interval,
  offsetMs: number,
  openTime?: number,
): Promise<Kline | undefined> {
  const bucket = openTime === undefined ? {} : { startTime: openTime, endTime: openTime }
  return (await klineRows(cache, symbol, interval, { limit: 1, offsetMs, ...bucket })).rows.at(-1)
}

type Range = Pick<KlineQuery, 'startTime' | 'endTime'> & { limit: number }

/**
 * The k-lines Redis holds for the query, and its reach: the open time from which on it holds every bucket
 * whole (-Infinity when nothing was trimmed off the index yet).
 */
async function klineRows(
  cache: PubSubCache,
  symbol: string,
  interval: Interval,
  query: KlineQuery,
): Promise<{ rows: Kline[]; reach: number }> {
  const limit = query.limit ?? 500
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalidInput('limit', 'must be 1-1000')
  const offsetMs = query.offsetMs ?? 0
  const source = offsetMs === 0 ? interval : zonedSource(interval, offsetMs)
  const { starts, trimmed } = await listedOpenTimes(cache, symbol, source)
  const oldest = starts[0] ?? Number.NEGATIVE_INFINITY
  const reach = trimmed ? firstOpenFrom(interval, oldest, offsetMs) : Number.NEGATIVE_INFINITY
  const whole = { ...query, limit, offsetMs }
  const rows =
    source === interval
      ? await klinesAt(cache, symbol, interval, pick(starts, whole))
      : await zonedKlines(
          cache,
          symbol,
          interval,
          source,
          starts.filter((t) => t >= reach),
          whole,
        )
  return { rows, reach }
}

/** The open times (oldest first) within [startTime, endTime]: with a startTime the first `limit`, otherwise the last. */
function pick(sorted: number[], query: Range): number[] {
  const within = sorted.filter(
    (t) =>
      (query.startTime === undefined || t >= query.startTime) &&
      (query.endTime === undefined || t <= query.endTime),
  )
  return query.startTime !== undefined ? within.slice(0, query.limit) : within.slice(-query.limit)
}

async function klinesAt(
  cache: PubSubCache,
  symbol: string,
  interval: Interval,
  starts: number[],
): Promise<Kline[]> {
  const hashes = await Promise.all(starts.map((t) => cache.hashGetAll(keys.kline(symbol, interval, t))))
  const rows: Kline[] = []
  for (const hash of hashes) {
    const k = klineFromHash(hash)
    if (k !== undefined) rows.push(k)
  }
  return rows
}

/** The open times the interval's index lists, oldest first, and whether older ones were trimmed off it. */
async function listedOpenTimes(
  cache: PubSubCache,
  symbol: string,
  interval: Interval,
): Promise<{ starts: number[]; trimmed: boolean }> {
  const cap = klineIndexCap(interval)
  const listed = await cache.range(keys.klineIndex(symbol, interval), cap)
  return { starts: [...new Set(listed.map(Number))].sort((a, b) => a - b), trimmed: listed.length >= cap }
}

/**
 * The k-lines of a zone's buckets, each merged from the UTC k-lines of `source` it spans (`starts`: those
 * listed, from the first bucket they hold whole on).
 */
async function zonedKlines(
  cache: PubSubCache,
  symbol: string,
  interval: Interval,
  source: Interval,
  starts: number[],
  query: Range & { offsetMs: number },
): Promise<Kline[]> {
  const open = (t: number) => bucketStart(interval, t, query.offsetMs)
  const wanted = new Set(pick([...new Set(starts.map(open))], query))
  const buckets = new Map<number, Kline>()
  const parts = await klinesAt(
    cache,
    symbol,
    source,
    starts.filter((t) => wanted.has(open(t))),
  )
  for (const part of parts) {
    const openTime = open(part.openTime)
    const bucket = buckets.get(openTime)
    if (bucket !== undefined) mergeInto(bucket, part)
    else {
      const closeTime = nextBucketStart(interval, openTime, query.offsetMs) - 1
      buckets.set(openTime, { ...part, interval, openTime, closeTime })
    }
  }
  return [...buckets.values()]
}

/**
 * The statistics of Binance's rolling window (GET /api/v3/ticker) and trading day tickers: the trades from
 * `openTime`, the start of a minute, until `now`. The whole hours inside the window come from 1h k-lines and
 * the minutes at its two ends from 1m k-lines, so a 7-day window reads at most 287 k-lines (the 1m index
 * keeps only a day and a bit). A window without trades is idle, with the last price of the 24h ticker (0
 * before the symbol's first trade).
 */
export async function rollingTicker(
  cache: PubSubCache,
  symbol: string,
  openTime: number,
  now: number,
): Promise<Ticker24h> {
  const firstHour = bucketStart('1h', openTime + HOUR - 1)
  const lastHour = bucketStart('1h', now)
  const range = async (interval: Interval, startTime: number, endTime: number) =>
    (await klineRows(cache, symbol, interval, { startTime, endTime, limit: 1000 })).rows
  const parts =
    firstHour >= lastHour
      ? [range('1m', openTime, now)]
      : [
          range('1m', openTime, firstHour - 1),
          range('1h', firstHour, lastHour - 1),
          range('1m', lastHour, now),
        ]
  let total: Kline | undefined
  for (const k of (await Promise.all(parts)).flat()) total = total === undefined ? k : mergeInto(total, k)
  if (total !== undefined) return tickerOf(symbol, total, openTime, now)
  const day = await ticker24h(cache, symbol)
  return idleTicker(symbol, day?.lastPrice ?? '0', openTime, now)
}

/** The 24h ticker as Binance's GET /api/v3/ticker/24hr fields; undefined before the symbol's first trade. */
export async function ticker24h(cache: PubSubCache, symbol: string): Promise<Ticker24h | undefined> {
  const hash = await cache.hashGetAll(keys.ticker(symbol))
  if (hash.symbol === undefined) return undefined
  return {
    symbol: hash.symbol,
    priceChange: hash.priceChange!,
    priceChangePercent: hash.priceChangePercent!,
    weightedAvgPrice: hash.weightedAvgPrice!,
    lastPrice: hash.lastPrice!,
    lastQty: hash.lastQty!,
    openPrice: hash.openPrice!,
    highPrice: hash.highPrice!,
    lowPrice: hash.lowPrice!,
    volume: hash.volume!,
    quoteVolume: hash.quoteVolume!,
    openTime: Number(hash.openTime),
    closeTime: Number(hash.closeTime),
    firstId: Number(hash.firstId),
    lastId: Number(hash.lastId),
    count: Number(hash.count),
  }
}

export interface RecentTrade {
  id: number
  price: string
  qty: string
  quoteQty: string
  time: number
  isBuyerMaker: boolean
  isBestMatch: boolean
}

/** The newest trades, newest first (Binance's GET /api/v3/trades lists them oldest first: reverse to serve). */
export async function recentTrades(cache: PubSubCache, symbol: string, limit = 500): Promise<RecentTrade[]> {
  const items = await cache.range(keys.trades(symbol), limit)
  return items.map((item) => JSON.parse(item) as RecentTrade)
}
