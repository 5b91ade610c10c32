/**
 * What the gateway reads from the handler's Redis state: k-lines in Binance's row shape, the 24h ticker and
 * the recent trades.
 */
import type { PubSubCache } from '../../adapters/pubsub/index.ts'
import { invalidInput } from '../../lib/errors.ts'
import type { Interval } from './intervals.ts'
import { keys, klineIndexCap } from './keys.ts'
import { type BinanceKline, klineFromHash, toBinanceKline } from './klines.ts'
import type { Ticker24h } from './ticker.ts'

export interface KlineQuery {
  startTime?: number
  endTime?: number
  /** Default 500, at most 1000, as on Binance. */
  limit?: number
}

/**
 * K-lines by open time, oldest first, as Binance's GET /api/v3/klines: open time within [startTime, endTime];
 * with a startTime the first `limit` from it, otherwise the newest `limit`.
 */
export async function klines(
  cache: PubSubCache,
  symbol: string,
  interval: Interval,
  query: KlineQuery = {},
): Promise<BinanceKline[]> {
  const limit = query.limit ?? 500
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw invalidInput('limit', 'must be 1-1000')
  const listed = await cache.range(keys.klineIndex(symbol, interval), klineIndexCap(interval))
  let starts = [...new Set(listed.map(Number))]
    .filter(
      (t) =>
        (query.startTime === undefined || t >= query.startTime) &&
        (query.endTime === undefined || t <= query.endTime),
    )
    .sort((a, b) => a - b)
  starts = query.startTime !== undefined ? starts.slice(0, limit) : starts.slice(-limit)
  const hashes = await Promise.all(starts.map((t) => cache.hashGetAll(keys.kline(symbol, interval, t))))
  const rows: BinanceKline[] = []
  for (const hash of hashes) {
    const k = klineFromHash(hash)
    if (k !== undefined) rows.push(toBinanceKline(k))
  }
  return rows
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
