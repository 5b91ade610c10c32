/**
 * The matching core alone, in memory: a mixed workload (passive limit orders around a mid price,
 * cancels, crossing orders that fill) replayed on our OrderBook and on the npm nodejs-order-book
 * in the same process. Also single-fill market orders against 1 and 400 resting orders per level,
 * which must cost about the same (a deep queue must not slow matching).
 */
import { OrderBook as BaselineBook, Side as BaselineSide } from 'nodejs-order-book'
import { OrderBook } from '../services/engine/book/order-book.ts'
import type { BookEvent, MarketConfig, Side } from '../services/engine/book/types.ts'
import { median, opsPerSecond, report, round, seededRandom } from './report.ts'

const config: MarketConfig = {
  symbol: 'BENCH-USD',
  tickSize: '0.01',
  lotSize: '0.001',
  minNotional: 1,
  makerFeeRate: '0.001',
  takerFeeRate: '0.002',
  defaultStpMode: 'NONE',
}

type Op =
  | { kind: 'limit'; id: string; userId: string; side: Side; price: number; size: number }
  | { kind: 'cancel'; id: string; userId: string }

const MID = 100_000
const WORKLOAD_SIZE = 200_000
const BATCH_SIZE = 100

/** 60% passive limits within 50 ticks of mid, 25% cancels of earlier orders, 15% crossing limits. */
function mixedWorkload(count: number): Op[] {
  const next = seededRandom(42)
  const placed: Op[] = []
  const ops: Op[] = []
  for (let i = 0; i < count; i++) {
    const roll = next()
    const side: Side = next() < 0.5 ? 'BUY' : 'SELL'
    const direction = side === 'BUY' ? -1 : 1
    const userId = `u${Math.floor(next() * 100)}`
    if (roll < 0.25 && placed.length > 0) {
      const target = placed[Math.floor(next() * placed.length)]!
      ops.push({ kind: 'cancel', id: target.id, userId: target.userId })
      continue
    }
    const crossing = roll > 0.85
    const offset = crossing ? -Math.floor(next() * 5) : 1 + Math.floor(next() * 50)
    const op: Op = {
      kind: 'limit',
      id: `o${i}`,
      userId,
      side,
      price: MID + direction * offset,
      size: 1 + Math.floor(next() * (crossing ? 20 : 10)),
    }
    placed.push(op)
    ops.push(op)
  }
  return ops
}

/**
 * Replays on our book as the engine runs it: commands in batches of BATCH_SIZE, events collected per
 * batch, and (when `journaled`) each batch opened and committed, so the undo journal is recorded.
 */
function runOurs(ops: readonly Op[], journaled: boolean): number {
  const book = new OrderBook(config)
  let events: BookEvent[] = []
  for (let i = 0; i < ops.length; i++) {
    if (i % BATCH_SIZE === 0) {
      if (book.inBatch) book.commitBatch()
      if (journaled) book.beginBatch()
      events = []
    }
    const op = ops[i]!
    if (op.kind === 'limit') {
      book.placeLimit(
        {
          type: 'limit',
          orderId: op.id,
          userId: op.userId,
          side: op.side,
          price: op.price,
          quantity: op.size,
        },
        events,
      )
    } else {
      book.cancel({ type: 'cancel', orderId: op.id, userId: op.userId }, events)
    }
  }
  if (book.inBatch) book.commitBatch()
  return ops.length
}

function runBaseline(ops: readonly Op[]): number {
  const book = new BaselineBook()
  for (const op of ops) {
    if (op.kind === 'limit') {
      const side = op.side === 'BUY' ? BaselineSide.BUY : BaselineSide.SELL
      book.limit({ id: op.id, side, price: op.price, size: op.size })
    } else {
      book.cancel(op.id)
    }
  }
  return ops.length
}

/** Market buys of one lot, each filling exactly one resting order, with `perLevel` orders per level. */
function singleFillMarketOrders(perLevel: number, count: number): number {
  const book = new OrderBook(config)
  const levels = Math.ceil(count / perLevel)
  // Worst price first, so each new level lands at the best end.
  for (let level = levels - 1; level >= 0; level--) {
    for (let i = 0; i < perLevel; i++) {
      const orderId = `a${level}-${i}`
      book.placeLimit({
        type: 'limit',
        orderId,
        userId: 'maker',
        side: 'SELL',
        price: MID + level,
        quantity: 1,
      })
    }
  }
  const start = process.hrtime.bigint()
  for (let i = 0; i < count; i++) {
    book.placeMarket({ type: 'market', orderId: `m${i}`, userId: 'taker', side: 'BUY', quantity: 1 })
  }
  return count / (Number(process.hrtime.bigint() - start) / 1e9)
}

function medianSingleFill(perLevel: number): number {
  singleFillMarketOrders(perLevel, 100_000)
  const rates: number[] = []
  for (let i = 0; i < 7; i++) rates.push(singleFillMarketOrders(perLevel, 100_000))
  return Math.round(median(rates))
}

function checkSameOutcome(ops: readonly Op[]): void {
  const ours = new OrderBook(config)
  const theirs = new BaselineBook()
  for (const op of ops) {
    if (op.kind === 'limit') {
      ours.placeLimit({
        type: 'limit',
        orderId: op.id,
        userId: op.userId,
        side: op.side,
        price: op.price,
        quantity: op.size,
      })
      theirs.limit({
        id: op.id,
        side: op.side === 'BUY' ? BaselineSide.BUY : BaselineSide.SELL,
        price: op.price,
        size: op.size,
      })
    } else {
      ours.cancel({ type: 'cancel', orderId: op.id, userId: op.userId })
      theirs.cancel(op.id)
    }
  }
  const theirDepth = theirs.depth()
  const ourDepth = ours.levels()
  const same =
    JSON.stringify(ourDepth.asks.map((l) => [l.price, l.quantity])) === JSON.stringify(theirDepth[0]) &&
    JSON.stringify(ourDepth.bids.map((l) => [l.price, l.quantity])) === JSON.stringify(theirDepth[1])
  if (!same) throw new Error('the two books disagree on the workload outcome: the comparison would be unfair')
}

const ops = mixedWorkload(WORKLOAD_SIZE)
checkSameOutcome(ops)
const crossing = ops.filter((op) => op.kind === 'limit' && Math.abs(op.price - MID) < 5).length
const cancels = ops.filter((op) => op.kind === 'cancel').length
console.log(`workload: ${ops.length} ops (${cancels} cancels, ~${crossing} crossing limits)`)

const baseline = opsPerSecond(() => runBaseline(ops))
const ours = opsPerSecond(() => runOurs(ops, true))
const oursWithoutJournal = opsPerSecond(() => runOurs(ops, false))
const shallow = medianSingleFill(1)
const deep = medianSingleFill(400)
console.log(
  `ours ${ours} ops/s (without the undo journal ${oursWithoutJournal}), nodejs-order-book ${baseline} ops/s`,
)
console.log(`single-fill market orders: ${shallow}/s at 1 order per level, ${deep}/s at 400 per level`)

report({
  bench: 'engine-inmem',
  value: ours,
  unit: 'ops/s',
  baseline,
  baselineName: 'nodejs-order-book',
  batchSize: BATCH_SIZE,
  valueWithoutJournal: oursWithoutJournal,
  marketSingleFill1PerLevel: shallow,
  marketSingleFill400PerLevel: deep,
  marketDepthSlowdown: round(shallow / deep),
})
