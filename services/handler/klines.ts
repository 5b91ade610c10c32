/**
 * Pure k-line aggregation with exact decimals. Trades arrive at least once and in any order, so a k-line
 * keeps the ids of its first and last trade: open is the price of the trade with the smallest id, close
 * the price of the one with the largest, whatever the arrival order. Dropping duplicates is the caller's job
 * (a trade applied twice counts twice); `aggregate` shows the contract the handler keeps.
 */

import { formatDecimal, parseDecimal } from '../../lib/money.ts'
import type { TradeEvent } from '../engine/events.ts'
import { bucketEnd, bucketStart, type Interval } from './intervals.ts'

/** Every amount is held at this scale: ClickHouse's Decimal(38, 18). */
export const SCALE = 18

/** A trade as the aggregation needs it: ids and amounts parsed once. */
export interface Trade {
  symbol: string
  id: bigint
  price: bigint
  qty: bigint
  quoteQty: bigint
  time: number
  /** True when the buyer's order rested in the book, so the seller was the taker. */
  buyerIsMaker: boolean
}

export interface Kline {
  interval: Interval
  openTime: number
  closeTime: number
  open: bigint
  high: bigint
  low: bigint
  close: bigint
  /** Base asset volume. */
  volume: bigint
  quoteVolume: bigint
  takerBuyVolume: bigint
  takerBuyQuoteVolume: bigint
  count: number
  firstId: bigint
  lastId: bigint
  /** Quantity of the last trade (the ticker's lastQty). */
  closeQty: bigint
  /** Time of the last trade (by id). */
  closeTradeTime: number
}

// Made once: tradeFromEvent runs for every trade.
const PRICE = { field: 'price' }
const QUANTITY = { field: 'quantity' }
const QUOTE_QUANTITY = { field: 'quoteQuantity' }
const TRADE_ID = /^\d{1,20}$/

/** Parses a trade event from the bus; throws a BourseError naming the bad field. */
export function tradeFromEvent(event: TradeEvent): Trade {
  if (typeof event.tradeId !== 'string' || !TRADE_ID.test(event.tradeId)) {
    throw new TypeError(`tradeId must be a decimal integer string, got ${JSON.stringify(event.tradeId)}`)
  }
  if (!Number.isSafeInteger(event.time)) throw new TypeError(`time must be epoch ms, got ${event.time}`)
  return {
    symbol: event.market,
    id: BigInt(event.tradeId),
    price: parseDecimal(event.price, SCALE, PRICE),
    qty: parseDecimal(event.quantity, SCALE, QUANTITY),
    quoteQty: parseDecimal(event.quoteQuantity, SCALE, QUOTE_QUANTITY),
    time: event.time,
    buyerIsMaker: event.buyerIsMaker === true,
  }
}

/** The k-line of `interval` holding only `trade`. */
export function newKline(interval: Interval, trade: Trade): Kline {
  const takerBuy = !trade.buyerIsMaker
  return {
    interval,
    openTime: bucketStart(interval, trade.time),
    closeTime: bucketEnd(interval, trade.time),
    open: trade.price,
    high: trade.price,
    low: trade.price,
    close: trade.price,
    volume: trade.qty,
    quoteVolume: trade.quoteQty,
    takerBuyVolume: takerBuy ? trade.qty : 0n,
    takerBuyQuoteVolume: takerBuy ? trade.quoteQty : 0n,
    count: 1,
    firstId: trade.id,
    lastId: trade.id,
    closeQty: trade.qty,
    closeTradeTime: trade.time,
  }
}

/**
 * Adds a trade of the k-line's bucket to it, in place, and returns it; with no k-line yet, a new one.
 * Throws when the trade belongs to another bucket.
 */
export function applyTrade(kline: Kline | undefined, interval: Interval, trade: Trade): Kline {
  if (kline === undefined) return newKline(interval, trade)
  if (trade.time < kline.openTime || trade.time > kline.closeTime) {
    throw new RangeError(
      `trade ${trade.id} at ${trade.time} is outside the ${interval} k-line at ${kline.openTime}`,
    )
  }
  if (trade.price > kline.high) kline.high = trade.price
  if (trade.price < kline.low) kline.low = trade.price
  if (trade.id < kline.firstId) {
    kline.firstId = trade.id
    kline.open = trade.price
  }
  if (trade.id > kline.lastId) {
    kline.lastId = trade.id
    kline.close = trade.price
    kline.closeQty = trade.qty
    kline.closeTradeTime = trade.time
  }
  kline.volume += trade.qty
  kline.quoteVolume += trade.quoteQty
  if (!trade.buyerIsMaker) {
    kline.takerBuyVolume += trade.qty
    kline.takerBuyQuoteVolume += trade.quoteQty
  }
  kline.count++
  return kline
}

/** Merges k-lines of disjoint trade sets (e.g. 1m k-lines into an hour or a rolling day) into a new k-line. */
export function mergeKlines(into: Kline, other: Kline): Kline {
  return mergeInto({ ...into }, other)
}

/** Adds the trades summed in `other` (disjoint from the target's) to `target`, in place, and returns it. */
export function mergeInto(target: Kline, other: Kline): Kline {
  if (other.high > target.high) target.high = other.high
  if (other.low < target.low) target.low = other.low
  if (other.firstId < target.firstId) {
    target.firstId = other.firstId
    target.open = other.open
  }
  if (other.lastId > target.lastId) {
    target.lastId = other.lastId
    target.close = other.close
    target.closeQty = other.closeQty
    target.closeTradeTime = other.closeTradeTime
  }
  target.volume += other.volume
  target.quoteVolume += other.quoteVolume
  target.takerBuyVolume += other.takerBuyVolume
  target.takerBuyQuoteVolume += other.takerBuyQuoteVolume
  target.count += other.count
  return target
}

/**
 * The k-lines of `interval` for a set of trades, by open time: trades with an id already seen are dropped,
 * so any arrival order, duplicates included, gives the same result.
 */
export function aggregate(trades: Iterable<Trade>, interval: Interval): Map<number, Kline> {
  const seen = new Set<bigint>()
  const klines = new Map<number, Kline>()
  for (const trade of trades) {
    if (seen.has(trade.id)) continue
    seen.add(trade.id)
    const start = bucketStart(interval, trade.time)
    klines.set(start, applyTrade(klines.get(start), interval, trade))
  }
  return klines
}

const fmt = (units: bigint) => formatDecimal(units, SCALE, { trimZeros: true })

/**
 * A k-line as a Redis hash, with the field names of Binance's kline stream (`t`, `T`, `o`, … `Q`) plus the
 * close quantity (`cq`) and close trade time (`ct`). Amounts are decimal strings.
 */
export function klineToHash(k: Kline): Record<string, string> {
  return {
    i: k.interval,
    t: String(k.openTime),
    T: String(k.closeTime),
    o: fmt(k.open),
    h: fmt(k.high),
    l: fmt(k.low),
    c: fmt(k.close),
    v: fmt(k.volume),
    q: fmt(k.quoteVolume),
    V: fmt(k.takerBuyVolume),
    Q: fmt(k.takerBuyQuoteVolume),
    n: String(k.count),
    f: k.firstId.toString(),
    L: k.lastId.toString(),
    cq: fmt(k.closeQty),
    ct: String(k.closeTradeTime),
  }
}

const amount = (text: string | undefined, field: string) =>
  parseDecimal(text ?? '', SCALE, { field, allowZero: true })

/** The k-line stored by `klineToHash`; undefined for an empty hash (no such k-line). */
export function klineFromHash(hash: Record<string, string>): Kline | undefined {
  if (hash.t === undefined) return undefined
  return {
    interval: hash.i as Interval,
    openTime: Number(hash.t),
    closeTime: Number(hash.T),
    open: amount(hash.o, 'o'),
    high: amount(hash.h, 'h'),
    low: amount(hash.l, 'l'),
    close: amount(hash.c, 'c'),
    volume: amount(hash.v, 'v'),
    quoteVolume: amount(hash.q, 'q'),
    takerBuyVolume: amount(hash.V, 'V'),
    takerBuyQuoteVolume: amount(hash.Q, 'Q'),
    count: Number(hash.n),
    firstId: BigInt(hash.f ?? '0'),
    lastId: BigInt(hash.L ?? '0'),
    closeQty: amount(hash.cq, 'cq'),
    closeTradeTime: Number(hash.ct),
  }
}

/** Binance's REST kline row: open time, OHLCV, close time, quote volume, trades, taker buy base/quote, ignore. */
export type BinanceKline = [
  number,
  string,
  string,
  string,
  string,
  string,
  number,
  string,
  number,
  string,
  string,
  string,
]

export function toBinanceKline(k: Kline): BinanceKline {
  return [
    k.openTime,
    fmt(k.open),
    fmt(k.high),
    fmt(k.low),
    fmt(k.close),
    fmt(k.volume),
    k.closeTime,
    fmt(k.quoteVolume),
    k.count,
    fmt(k.takerBuyVolume),
    fmt(k.takerBuyQuoteVolume),
    '0',
  ]
}

/** The `k` object of Binance's kline stream event; `x` tells whether the bucket is over at `nowMs`. */
export function toKlineStreamPayload(symbol: string, k: Kline, nowMs: number): Record<string, unknown> {
  return {
    t: k.openTime,
    T: k.closeTime,
    s: symbol,
    i: k.interval,
    f: Number(k.firstId),
    L: Number(k.lastId),
    o: fmt(k.open),
    c: fmt(k.close),
    h: fmt(k.high),
    l: fmt(k.low),
    v: fmt(k.volume),
    n: k.count,
    x: nowMs > k.closeTime,
    q: fmt(k.quoteVolume),
    V: fmt(k.takerBuyVolume),
    Q: fmt(k.takerBuyQuoteVolume),
    B: '0',
  }
}
