/**
 * One symbol's live k-lines of every interval and its 24h ticker, in memory, updated a batch of trades at a
 * time. Each trade is applied to one k-line only: the batch's running sum for its second; each second's sum
 * is merged into its 1s k-line and the batch's sum for its minute, and each minute's sum once into the 1m
 * k-line and every longer interval (all of them are whole minutes) and into the ticker. Merging sums of disjoint trade sets is exact and order-free (klines.ts), so
 * the result is the same as applying every trade to every interval.
 *
 * Dropping duplicates is the caller's job. The aggregator holds the recent buckets only; the handler loads
 * older ones from Redis (`missing`, `put`) before applying trades that fall in them.
 */
import { bucketEnd, bucketStart, INTERVALS, type Interval } from './intervals.ts'
import { applyTrade, type Kline, mergeInto, type Trade } from './klines.ts'
import { RollingTicker, WINDOW_MINUTES } from './ticker.ts'

const MINUTE = 60_000
/** Buckets kept per interval besides 1m (whose window the ticker needs). */
const KEPT_BUCKETS = 4
const LONGER = INTERVALS.filter((i) => i !== '1s')

export interface Applied {
  /** Every k-line the batch changed, once each. */
  touched: Kline[]
  /** Those that did not exist before (their open time is new to the interval's index). */
  created: Kline[]
}

/**
 * The trades summed per second: each trade is added to one k-line only, and the sums (a few per batch) are
 * merged into the 1s k-lines and the minutes from there.
 */
function secondSums(trades: readonly Trade[]): Map<number, Kline> {
  const sums = new Map<number, Kline>()
  for (const trade of trades) {
    const second = bucketStart('1s', trade.time)
    sums.set(second, applyTrade(sums.get(second), '1s', trade))
  }
  return sums
}

export class SymbolAggregator {
  readonly symbol: string
  readonly ticker: RollingTicker
  readonly #klines = new Map<Interval, Map<number, Kline>>(INTERVALS.map((i) => [i, new Map()]))
  #trimmedAt = Number.NEGATIVE_INFINITY

  /** `minuteKlines`: the 1m k-lines of the last 24h (rebuilding after a restart), shared with the ticker. */
  constructor(symbol: string, minuteKlines: readonly Kline[] = []) {
    this.symbol = symbol
    for (const k of minuteKlines) this.#klines.get('1m')!.set(k.openTime, k)
    this.ticker = new RollingTicker(symbol, minuteKlines)
  }

  /** The k-line of `interval` at `openTime`, if held. */
  get(interval: Interval, openTime: number): Kline | undefined {
    return this.#klines.get(interval)!.get(openTime)
  }

  /** The buckets these trades fall in that are not held: load them (or learn they are empty) before `apply`. */
  missing(trades: readonly Trade[]): { interval: Interval; openTime: number }[] {
    // Every interval but 1s is whole minutes: the trades' distinct minutes name all their buckets.
    const seconds = new Set(trades.map((trade) => bucketStart('1s', trade.time)))
    const minutes = new Set([...seconds].map((second) => bucketStart('1m', second)))
    const wanted = new Map<string, { interval: Interval; openTime: number }>()
    for (const openTime of seconds)
      if (!this.#klines.get('1s')!.has(openTime)) wanted.set(`1s:${openTime}`, { interval: '1s', openTime })
    for (const minute of minutes) {
      for (const interval of LONGER) {
        const openTime = bucketStart(interval, minute)
        if (!this.#klines.get(interval)!.has(openTime))
          wanted.set(`${interval}:${openTime}`, { interval, openTime })
      }
    }
    return [...wanted.values()]
  }

  /** Holds a k-line loaded from elsewhere (Redis). */
  put(kline: Kline): void {
    this.#klines.get(kline.interval)!.set(kline.openTime, kline)
  }

  /** Applies new trades (no duplicates) to every interval and the ticker. */
  apply(trades: readonly Trade[]): Applied {
    // Objects, not "interval:openTime" strings: each k-line object is held once per bucket.
    const touched = new Set<Kline>()
    const created: Kline[] = []
    const seconds = this.#klines.get('1s')!
    const minuteSums = new Map<number, Kline>()
    for (const [second, sum] of secondSums(trades)) {
      let k = seconds.get(second)
      if (k === undefined) {
        k = { ...sum }
        seconds.set(second, k)
        created.push(k)
      } else {
        mergeInto(k, sum)
      }
      touched.add(k)
      const minute = bucketStart('1m', second)
      const minuteSum = minuteSums.get(minute)
      if (minuteSum === undefined)
        minuteSums.set(minute, {
          ...sum,
          interval: '1m',
          openTime: minute,
          closeTime: bucketEnd('1m', minute),
        })
      else mergeInto(minuteSum, sum)
    }
    for (const [minute, sum] of minuteSums) {
      let minuteKline: Kline | undefined
      for (const interval of LONGER) {
        const byStart = this.#klines.get(interval)!
        const openTime = bucketStart(interval, minute)
        let k = byStart.get(openTime)
        if (k === undefined) {
          k = { ...sum, interval, openTime, closeTime: bucketEnd(interval, minute) }
          byStart.set(openTime, k)
          created.push(k)
        } else {
          mergeInto(k, sum)
        }
        touched.add(k)
        if (interval === '1m') minuteKline = k
      }
      this.ticker.add(sum, minuteKline!)
    }
    return { touched: [...touched], created }
  }

  /** Forgets old buckets: keeps a few per interval, and the 1m k-lines of the ticker's window. */
  trim(): void {
    for (const [interval, byStart] of this.#klines) {
      if (interval === '1m') {
        if (this.ticker.endMinute === this.#trimmedAt) continue
        this.#trimmedAt = this.ticker.endMinute
        const oldest = this.ticker.endMinute - WINDOW_MINUTES * MINUTE
        for (const start of byStart.keys()) if (start <= oldest) byStart.delete(start)
      } else if (byStart.size > KEPT_BUCKETS) {
        const starts = [...byStart.keys()].sort((a, b) => b - a)
        for (const start of starts.slice(KEPT_BUCKETS)) byStart.delete(start)
      }
    }
  }
}
