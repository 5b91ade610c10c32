/**
 * The 24h rolling ticker of a symbol, Binance's ticker/24hr fields, computed from 1m k-lines: the window is
 * the 1440 minute buckets ending with the minute of the newest trade seen, so it rolls forward one minute at
 * a time (Binance's own rolling statistics are minute-granular too). Sums are kept incrementally as trades
 * come in and minutes leave the window; high, low, open and close are recomputed from the window's k-lines
 * only after a minute has left it.
 */
import { div, formatDecimal } from '../../lib/money.ts'
import { bucketStart } from './intervals.ts'
import { type Kline, mergeKlines, SCALE } from './klines.ts'

export const WINDOW_MINUTES = 1440
const MINUTE = 60_000
const WINDOW_MS = WINDOW_MINUTES * MINUTE

export interface Ticker24h {
  symbol: string
  priceChange: string
  priceChangePercent: string
  weightedAvgPrice: string
  lastPrice: string
  lastQty: string
  openPrice: string
  highPrice: string
  lowPrice: string
  volume: string
  quoteVolume: string
  /** Start of the window's first minute. */
  openTime: number
  /** End of the window's last minute (the minute of the newest trade): openTime + 24h − 1 ms. */
  closeTime: number
  firstId: number
  lastId: number
  count: number
}

const fmt = (units: bigint) => formatDecimal(units, SCALE, { trimZeros: true })

/** The ticker of the 1m k-lines of the window ending with minute `endMinute`; undefined when none is in it. */
export function tickerFromKlines(
  symbol: string,
  minuteKlines: Iterable<Kline>,
  endMinute: number,
): Ticker24h | undefined {
  const windowStart = endMinute - WINDOW_MS + MINUTE
  let total: Kline | undefined
  for (const k of minuteKlines) {
    if (k.openTime < windowStart || k.openTime > endMinute) continue
    total = total === undefined ? { ...k } : mergeKlines(total, k)
  }
  return total === undefined ? undefined : tickerOf(symbol, total, windowStart, windowStart + WINDOW_MS - 1)
}

/** The ticker fields of the trades summed in `total`, over the window from `openTime` to `closeTime`. */
export function tickerOf(symbol: string, total: Kline, openTime: number, closeTime: number): Ticker24h {
  const change = total.close - total.open
  return {
    symbol,
    priceChange: fmt(change),
    priceChangePercent: formatDecimal(div(change * 100n, SCALE, total.open, SCALE, 3, 'half-up'), 3),
    weightedAvgPrice:
      total.volume === 0n ? '0' : fmt(div(total.quoteVolume, SCALE, total.volume, SCALE, SCALE, 'half-up')),
    lastPrice: fmt(total.close),
    lastQty: fmt(total.closeQty),
    openPrice: fmt(total.open),
    highPrice: fmt(total.high),
    lowPrice: fmt(total.low),
    volume: fmt(total.volume),
    quoteVolume: fmt(total.quoteVolume),
    openTime,
    closeTime,
    firstId: Number(total.firstId),
    lastId: Number(total.lastId),
    count: total.count,
  }
}

/**
 * A window without trades: zero volume, count and prices, except the last price, and first/last id -1, as
 * Binance shows an idle symbol.
 */
export function idleTicker(
  symbol: string,
  lastPrice: string,
  openTime: number,
  closeTime: number,
): Ticker24h {
  return {
    symbol,
    priceChange: '0',
    priceChangePercent: '0.000',
    weightedAvgPrice: '0',
    lastPrice,
    lastQty: '0',
    openPrice: '0',
    highPrice: '0',
    lowPrice: '0',
    volume: '0',
    quoteVolume: '0',
    openTime,
    closeTime,
    firstId: -1,
    lastId: -1,
    count: 0,
  }
}

/**
 * The rolling ticker of one symbol over the 1m k-lines it is given. The caller merges new trades (duplicates
 * dropped) into their 1m k-line first, then calls `add` with their sum and the k-line; the ticker keeps a
 * reference to the k-line.
 */
export class RollingTicker {
  readonly symbol: string
  readonly #minutes = new Map<number, Kline>()
  #endMinute = Number.NEGATIVE_INFINITY
  /** Every minute before this one has been dropped. */
  #oldestKept = Number.NEGATIVE_INFINITY
  /** The totals of the window, as one k-line; undefined when the window is empty. Its sums are always right. */
  #total: Kline | undefined
  /** High, low, open and close must be recomputed from the minutes (a minute holding one left the window). */
  #stale = false
  #lastPrice: bigint | undefined

  constructor(symbol: string, minuteKlines: Iterable<Kline> = []) {
    this.symbol = symbol
    for (const k of minuteKlines) {
      this.#minutes.set(k.openTime, k)
      if (k.openTime > this.#endMinute) this.#endMinute = k.openTime
    }
    const oldest = this.#endMinute - WINDOW_MS + MINUTE
    for (const minute of this.#minutes.keys()) if (minute < oldest) this.#minutes.delete(minute)
    this.#oldestKept = oldest
    this.#total = totalOf(this.#minutes.values())
  }

  get endMinute(): number {
    return this.#endMinute
  }

  /** True when a trade at `timeMs` is older than the window and so no longer counts. */
  tooOld(timeMs: number): boolean {
    return bucketStart('1m', timeMs) <= this.#endMinute - WINDOW_MS
  }

  /** The window's 1m k-lines, oldest first. */
  minutes(): Kline[] {
    return [...this.#minutes.values()].sort((a, b) => a.openTime - b.openTime)
  }

  /**
   * Counts the trades summed in `delta` (new trades of one minute, already merged into `minuteKline`, that
   * minute's 1m k-line). Returns false when the minute is older than the window. A newer minute moves the
   * window forward.
   */
  add(delta: Kline, minuteKline: Kline): boolean {
    const minute = minuteKline.openTime
    if (minute <= this.#endMinute - WINDOW_MS) return false
    this.#minutes.set(minute, minuteKline)
    if (minute > this.#endMinute) {
      this.#endMinute = minute
      this.#evict()
    }
    const t = this.#total
    if (t === undefined) {
      this.#total = { ...minuteKline }
      return true
    }
    t.volume += delta.volume
    t.quoteVolume += delta.quoteVolume
    t.takerBuyVolume += delta.takerBuyVolume
    t.takerBuyQuoteVolume += delta.takerBuyQuoteVolume
    t.count += delta.count
    if (this.#stale) return true
    if (delta.high > t.high) t.high = delta.high
    if (delta.low < t.low) t.low = delta.low
    if (delta.firstId < t.firstId) {
      t.firstId = delta.firstId
      t.open = delta.open
    }
    if (delta.lastId > t.lastId) {
      t.lastId = delta.lastId
      t.close = delta.close
      t.closeQty = delta.closeQty
      t.closeTradeTime = delta.closeTradeTime
    }
    return true
  }

  /**
   * Moves the window to end with `minute` even without a trade in it (a quiet market's day passes too).
   * True when the window moved.
   */
  advanceTo(minute: number): boolean {
    if (minute <= this.#endMinute) return false
    this.#refresh()
    this.#endMinute = minute
    this.#evict()
    return true
  }

  /** The ticker now; undefined before the first trade; an idle ticker when none was in the last 24h. */
  snapshot(): Ticker24h | undefined {
    const windowStart = this.#endMinute - WINDOW_MS + MINUTE
    this.#refresh()
    const closeTime = windowStart + WINDOW_MS - 1
    if (this.#total !== undefined) return tickerOf(this.symbol, this.#total, windowStart, closeTime)
    if (this.#lastPrice === undefined) return undefined
    return idleTicker(this.symbol, fmt(this.#lastPrice), windowStart, closeTime)
  }

  /** Brings high, low, open and close up to date; remembers the last price for when the window empties. */
  #refresh(): void {
    if (this.#total === undefined) return
    if (this.#stale) {
      extremesOf(this.#total, this.#minutes.values())
      this.#stale = false
    }
    this.#lastPrice = this.#total.close
  }

  /** Drops the minutes that left the window, taking their sums off the totals. */
  #evict(): void {
    const oldest = this.#endMinute - WINDOW_MS + MINUTE
    if (oldest <= this.#oldestKept) return
    // Usually the window moved a minute or two: step over those minutes instead of scanning the window.
    const steps = (oldest - this.#oldestKept) / MINUTE
    if (steps <= this.#minutes.size) {
      for (let minute = this.#oldestKept; minute < oldest; minute += MINUTE) this.#drop(minute)
    } else {
      for (const minute of this.#minutes.keys()) if (minute < oldest) this.#drop(minute)
    }
    this.#oldestKept = oldest
  }

  #drop(minute: number): void {
    const k = this.#minutes.get(minute)
    if (k === undefined) return
    this.#minutes.delete(minute)
    const t = this.#total!
    t.volume -= k.volume
    t.quoteVolume -= k.quoteVolume
    t.takerBuyVolume -= k.takerBuyVolume
    t.takerBuyQuoteVolume -= k.takerBuyQuoteVolume
    t.count -= k.count
    if (this.#minutes.size === 0) {
      this.#total = undefined
      this.#stale = false
    } else if (k.high >= t.high || k.low <= t.low || k.firstId <= t.firstId || k.lastId >= t.lastId) {
      this.#stale = true
    }
  }
}

/** Sets high, low, open and close of `total` from the minutes, by comparisons only. */
function extremesOf(total: Kline, minutes: Iterable<Kline>): void {
  let first = true
  for (const k of minutes) {
    if (first || k.high > total.high) total.high = k.high
    if (first || k.low < total.low) total.low = k.low
    if (first || k.firstId < total.firstId) {
      total.firstId = k.firstId
      total.open = k.open
    }
    if (first || k.lastId > total.lastId) {
      total.lastId = k.lastId
      total.close = k.close
      total.closeQty = k.closeQty
      total.closeTradeTime = k.closeTradeTime
    }
    first = false
  }
}

/** The window's totals in one pass, without allocating per minute. */
function totalOf(minutes: Iterable<Kline>): Kline | undefined {
  let total: Kline | undefined
  for (const k of minutes) {
    if (total === undefined) {
      total = { ...k }
      continue
    }
    if (k.high > total.high) total.high = k.high
    if (k.low < total.low) total.low = k.low
    if (k.firstId < total.firstId) {
      total.firstId = k.firstId
      total.open = k.open
    }
    if (k.lastId > total.lastId) {
      total.lastId = k.lastId
      total.close = k.close
      total.closeQty = k.closeQty
      total.closeTradeTime = k.closeTradeTime
    }
    total.volume += k.volume
    total.quoteVolume += k.quoteVolume
    total.takerBuyVolume += k.takerBuyVolume
    total.takerBuyQuoteVolume += k.takerBuyQuoteVolume
    total.count += k.count
  }
  return total
}
