/**
 * The market-data handler's in-memory path: trade messages (the bus's JSON) parsed and checked, duplicates
 * dropped by trade id, then, per batch of the handler's messages in flight (what it works on at a time under
 * load: 200 k trades/s keeps its window full), each symbol's new trades applied to the k-lines of all 18
 * intervals and to the 24h rolling ticker (SymbolAggregator, as the handler does per commit), old buckets
 * trimmed and the ticker rendered. Baseline, in the same run: the raw cost
 * of JSON.parse on the same messages. Redis and ClickHouse are not in this path.
 */
import { formatDecimal } from '../lib/money.ts'
import type { TradeEvent } from '../services/engine/events.ts'
import { SymbolAggregator } from '../services/handler/aggregator.ts'
import { MAX_IN_FLIGHT } from '../services/handler/handler.ts'
import { INTERVALS } from '../services/handler/intervals.ts'
import { type Trade, tradeFromEvent } from '../services/handler/klines.ts'
import { opsPerSecond, report, round, seededRandom } from './report.ts'

const COUNT = 100_000
const SYMBOLS = ['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'XRPUSDT']
const START = Date.parse('2024-05-05T00:00:00Z')
/** Messages per batch (the handler commits each symbol's share of what is in flight together). */
const BATCH = MAX_IN_FLIGHT

/**
 * A busy half hour on four markets (a trade every 18 ms on average: the ticker window rolls once a minute, as
 * in production, and each 1s k-line gets some fifty trades), 1% redelivered, a little out of order.
 */
function messages(): string[] {
  const next = seededRandom(7)
  const out: string[] = []
  const ids = new Map(SYMBOLS.map((s) => [s, 0]))
  let time = START
  for (let i = 0; i < COUNT; i++) {
    const market = SYMBOLS[i % SYMBOLS.length]!
    const id = ids.get(market)! + 1
    ids.set(market, id)
    time += Math.floor(next() * 36)
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
  aggregator: SymbolAggregator
  ids: Set<string>
  batch: Trade[]
}

/** As the handler runs it: messages taken in batches, trades of a symbol applied and the ticker rendered per batch. */
function aggregateAll(input: readonly string[]): number {
  const states = new Map<string, SymbolState>()
  for (let from = 0; from < input.length; from += BATCH) {
    const end = Math.min(from + BATCH, input.length)
    for (let i = from; i < end; i++) {
      const event = JSON.parse(input[i]!) as TradeEvent
      let state = states.get(event.market)
      if (state === undefined) {
        state = { aggregator: new SymbolAggregator(event.market), ids: new Set(), batch: [] }
        states.set(event.market, state)
      }
      if (state.ids.has(event.tradeId)) continue
      state.ids.add(event.tradeId)
      state.batch.push(tradeFromEvent(event))
    }
    for (const state of states.values()) {
      if (state.batch.length === 0) continue
      state.aggregator.apply(state.batch)
      state.aggregator.trim()
      state.aggregator.ticker.snapshot()
      state.batch = []
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
