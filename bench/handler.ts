/**
 * The market-data handler's in-memory path: trade messages (the bus's JSON) parsed and checked, duplicates
 * dropped by trade id, every trade applied to the k-line of all 18 intervals and to the 24h rolling ticker
 * (a snapshot per 100 trades, as the handler renders one per commit). Baseline, in the same run: the raw cost
 * of JSON.parse on the same messages. Redis and ClickHouse are not in this path.
 */
import { formatDecimal } from '../lib/money.ts'
import type { TradeEvent } from '../services/engine/events.ts'
import { bucketStart, INTERVALS, type Interval } from '../services/handler/intervals.ts'
import { applyTrade, type Kline, tradeFromEvent } from '../services/handler/klines.ts'
import { RollingTicker } from '../services/handler/ticker.ts'
import { opsPerSecond, report, round } from './report.ts'

const COUNT = 100_000
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT']
const START = Date.parse('2024-05-05T00:00:00Z')
const SNAPSHOT_EVERY = 100

/** Deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** ~2 days of trades (so the ticker window rolls), 1% redelivered, a little out of order. */
function messages(): string[] {
  const next = random(7)
  const out: string[] = []
  const ids = new Map(SYMBOLS.map((s) => [s, 0]))
  let time = START
  for (let i = 0; i < COUNT; i++) {
    const market = SYMBOLS[i % SYMBOLS.length]!
    const id = ids.get(market)! + 1
    ids.set(market, id)
    time += Math.floor(next() * 3500)
    const price = 6_000_000n + BigInt(Math.floor(next() * 100_000)) // cents
    const qty = BigInt(1 + Math.floor(next() * 100_000)) // 1e-5 units
    const event: TradeEvent = {
      topic: 'trades',
      market,
      seq: String(id),
      tradeId: String(id),
      price: formatDecimal(price, 2),
      quantity: formatDecimal(qty, 5),
      quoteQuantity: formatDecimal(price * qty, 7),
      buyerOrderId: String(i * 2),
      sellerOrderId: String(i * 2 + 1),
      buyerUserId: 'u1',
      sellerUserId: 'u2',
      buyerIsMaker: next() < 0.5,
      time,
    }
    const json = JSON.stringify(event)
    out.push(json)
    if (next() < 0.01) out.push(json)
    if (out.length > 2 && next() < 0.02) {
      const last = out.length - 1
      ;[out[last], out[last - 1]] = [out[last - 1]!, out[last]!]
    }
  }
  return out
}

interface SymbolState {
  klines: Map<Interval, Map<number, Kline>>
  /** The newest k-line per interval (index as INTERVALS): most trades land in it. */
  current: (Kline | undefined)[]
  ids: Set<string>
  ticker: RollingTicker
}

/** Buckets kept per interval, as the handler trims its state. */
const KEPT = 4
const MINUTE_INDEX = INTERVALS.indexOf('1m')

function aggregateAll(input: readonly string[]): number {
  const states = new Map<string, SymbolState>()
  let sinceSnapshot = 0
  for (const json of input) {
    const event = JSON.parse(json) as TradeEvent
    let state = states.get(event.market)
    if (state === undefined) {
      state = {
        klines: new Map(INTERVALS.map((i) => [i, new Map()])),
        current: INTERVALS.map(() => undefined),
        ids: new Set(),
        ticker: new RollingTicker(event.market),
      }
      states.set(event.market, state)
    }
    if (state.ids.has(event.tradeId)) continue
    state.ids.add(event.tradeId)
    const trade = tradeFromEvent(event)
    let minute: Kline | undefined
    for (let i = 0; i < INTERVALS.length; i++) {
      const interval = INTERVALS[i]!
      const current = state.current[i]
      let k: Kline
      if (current !== undefined && trade.time >= current.openTime && trade.time <= current.closeTime) {
        k = applyTrade(current, interval, trade)
      } else {
        const byStart = state.klines.get(interval)!
        const start = bucketStart(interval, trade.time)
        const before = byStart.get(start)
        k = applyTrade(before, interval, trade)
        if (before === undefined) {
          byStart.set(start, k)
          if (byStart.size > KEPT) byStart.delete(byStart.keys().next().value!)
        }
        if (current === undefined || k.openTime > current.openTime) state.current[i] = k
      }
      if (i === MINUTE_INDEX) minute = k
    }
    state.ticker.add(trade, minute!)
    if (++sinceSnapshot === SNAPSHOT_EVERY) {
      sinceSnapshot = 0
      state.ticker.snapshot()
    }
  }
  return input.length
}

function parseOnly(input: readonly string[]): number {
  let sink = 0
  for (const json of input) sink += (JSON.parse(json) as TradeEvent).time & 1
  if (sink < 0) console.log(sink)
  return input.length
}

const input = messages()
const baseline = opsPerSecond(() => parseOnly(input), { warmups: 2, repeats: 7 })
const value = opsPerSecond(() => aggregateAll(input), { warmups: 2, repeats: 7 })
console.log(`messages: ${input.length} (${input.length - COUNT} redelivered), intervals: ${INTERVALS.length}`)
console.log(`JSON.parse only: ${baseline} msg/s; parse + k-lines + ticker: ${value} trades/s`)
report({
  bench: 'handler',
  value,
  unit: 'trades/s',
  baseline,
  baselineName: 'JSON.parse of the same trade messages',
  target: 200_000,
  meetsTarget: value >= 200_000,
  microsecondsPerTrade: round(1e6 / value, 3),
})
