/**
 * The handler's Redis keys and channels, all under the symbol's hash tag (`md:{BTCUSDT}:…`), and how long
 * each is kept. The gateway and ws read what these name.
 */
import { marketKey } from '../../adapters/pubsub/index.ts'
import { type Interval, nominalLengthMs } from './intervals.ts'

/** Buckets listed per interval (Binance's largest `limit`); 1m keeps a day and a bit for the ticker. */
export const KLINE_HISTORY = 1000
export const RECENT_TRADES = 1000
const HOUR = 3_600_000
/** How long trade ids are remembered for dropping redeliveries. */
export const DEDUP_TTL_MS = 48 * HOUR

export const keys = {
  /** Hash: one k-line (fields of klineToHash). */
  kline: (symbol: string, interval: Interval, openTime: number) =>
    marketKey(symbol, 'kline', interval, String(openTime)),
  /** List: open times of the interval's k-lines, newest pushed first (a late trade may push an older one). */
  klineIndex: (symbol: string, interval: Interval) => marketKey(symbol, 'klines', interval),
  /** Hash: trade id → '1' for the trades of one minute already counted. */
  tradeIds: (symbol: string, minute: number) => marketKey(symbol, 'ids', String(minute)),
  /** Hash: the 24h ticker (fields of Ticker24h). */
  ticker: (symbol: string) => marketKey(symbol, 'ticker'),
  /** List: recent trades as JSON (Binance's /api/v3/trades shape), newest first. */
  trades: (symbol: string) => marketKey(symbol, 'trades'),
}

export const channels = {
  trade: (symbol: string) => marketKey(symbol, 'trade'),
  kline: (symbol: string, interval: Interval) => marketKey(symbol, 'kline', interval),
  ticker: (symbol: string) => marketKey(symbol, 'ticker'),
}

export function klineIndexCap(interval: Interval): number {
  return interval === '1m' ? 1500 : KLINE_HISTORY
}

/**
 * How long a k-line hash is kept: twice its index's span, at least two days for 1m (the ticker is rebuilt
 * from them); days and longer are kept (few of them, and nothing else holds the live ones).
 */
export function klineTtlMs(interval: Interval): number | undefined {
  const length = nominalLengthMs(interval)
  if (length >= 24 * HOUR) return undefined
  return Math.max(2 * klineIndexCap(interval) * length, interval === '1m' ? DEDUP_TTL_MS : 0)
}
