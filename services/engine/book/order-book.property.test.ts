/**
 * Property tests: random command sequences, with the book's invariants checked after every command.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { OrderBook } from './order-book.ts'
import type {
  BookCommand,
  BookEvent,
  BookSnapshot,
  MarketConfig,
  Side,
  StpMode,
  TimeInForce,
} from './types.ts'

const config: MarketConfig = {
  symbol: 'TEST-USD',
  tickSize: '1',
  lotSize: '1',
  minNotional: 1,
  makerFeeRate: '0',
  takerFeeRate: '0',
  defaultStpMode: 'NONE',
}

/** An abstract step; ids and cancel targets become concrete when it runs against the current book. */
type Step =
  | {
      kind: 'limit'
      user: number
      side: Side
      price: number
      quantity: number
      tif: TimeInForce
      postOnly: boolean
      stp: StpMode
    }
  | { kind: 'market'; user: number; side: Side; quantity: number; byQuote: boolean; stp: StpMode }
  | { kind: 'cancel'; pick: number; asOwner: boolean }
  | { kind: 'cancelAll'; user: number }
  | { kind: 'halt' }
  | { kind: 'resume' }
  | { kind: 'batch'; steps: Step[]; commit: boolean }

const side = fc.constantFrom<Side>('BUY', 'SELL')
const stp = fc.constantFrom<StpMode>('NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH')
const user = fc.integer({ min: 0, max: 3 })
const simpleStep: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('limit' as const),
      user,
      side,
      price: fc.integer({ min: 95, max: 105 }),
      quantity: fc.integer({ min: 0, max: 12 }),
      tif: fc.constantFrom<TimeInForce>('GTC', 'GTC', 'IOC', 'FOK'),
      postOnly: fc.boolean(),
      stp,
    }),
    weight: 8,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('market' as const),
      user,
      side,
      quantity: fc.integer({ min: 1, max: 30 }),
      byQuote: fc.boolean(),
      stp,
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat(), asOwner: fc.boolean() }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('cancelAll' as const), user }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'halt' as const }), weight: 1 },
  { arbitrary: fc.constant({ kind: 'resume' as const }), weight: 1 },
)
const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: simpleStep, weight: 6 },
  {
    arbitrary: fc.record({
      kind: fc.constant('batch' as const),
      steps: fc.array(simpleStep, { maxLength: 15 }),
      commit: fc.boolean(),
    }),
    weight: 1,
  },
)

interface Known {
  userId: string
  side: Side
  /** Null for market orders. */
  limit: number | null
  /** Null for market orders by quote amount. */
  quantity: number | null
  postOnly: boolean
  fok: boolean
  stp: StpMode
  filled: number
  filledQuote: number
  done: boolean
}

/** Runs the steps and checks every invariant after every command. */
class Checker {
  readonly book = new OrderBook(config)
  private readonly known = new Map<string, Known>()
  private nextId = 0

  run(steps: Step[]): void {
    for (const s of steps) this.runStep(s)
  }

  private runStep(s: Step): void {
    if (s.kind === 'batch') this.runBatch(s.steps, s.commit)
    else this.execute(this.command(s))
  }

  private runBatch(steps: Step[], commit: boolean): void {
    const before = this.book.snapshot()
    const knownBefore = structuredClone(this.known)
    this.book.beginBatch()
    for (const inner of steps) this.runStep(inner)
    if (commit) {
      this.book.commitBatch()
      return
    }
    this.book.rollbackBatch()
    expect(this.book.snapshot()).toEqual(before)
    this.known.clear()
    for (const [id, k] of knownBefore) this.known.set(id, k)
  }

  private command(s: Exclude<Step, { kind: 'batch' }>): BookCommand {
    switch (s.kind) {
      case 'limit':
        return {
          type: 'limit',
          orderId: `o${++this.nextId}`,
          userId: `u${s.user}`,
          side: s.side,
          price: s.price,
          quantity: s.quantity,
          timeInForce: s.tif,
          postOnly: s.postOnly && s.tif === 'GTC',
          stpMode: s.stp,
        }
      case 'market': {
        const size = s.byQuote ? { quoteAmount: s.quantity * 50 } : { quantity: s.quantity }
        return {
          type: 'market',
          orderId: `o${++this.nextId}`,
          userId: `u${s.user}`,
          side: s.side,
          stpMode: s.stp,
          ...size,
        }
      }
      case 'cancel': {
        const { bids, asks } = this.book.snapshot()
        const open = [...bids, ...asks]
        const target = open[s.pick % Math.max(open.length, 1)]
        if (target === undefined) return { type: 'cancel', orderId: 'missing', userId: 'u0' }
        return { type: 'cancel', orderId: target.orderId, userId: s.asOwner ? target.userId : 'intruder' }
      }
      case 'cancelAll':
        return { type: 'cancelAll', userId: `u${s.user}` }
      default:
        return { type: s.kind }
    }
  }

  private execute(command: BookCommand): void {
    const before = this.book.snapshot()
    const events = this.book.execute(command)
    if (command.type === 'limit' || command.type === 'market') this.register(command, events)
    for (const event of events) this.check(event)
    const after = this.book.snapshot()
    checkNotCrossed(after)
    this.checkOpenOrders(after)
    if (command.type === 'limit' && command.timeInForce === 'FOK')
      this.checkFok(command.orderId, before, after, events)
    if (events[0]?.type === 'rejected') expect(after).toEqual(before)
  }

  private register(command: Extract<BookCommand, { type: 'limit' | 'market' }>, events: BookEvent[]): void {
    if (events[0]?.type !== 'accepted') return
    this.known.set(command.orderId, {
      userId: command.userId,
      side: command.side,
      limit: command.type === 'limit' ? command.price : null,
      quantity: command.quantity ?? null,
      postOnly: command.type === 'limit' && command.postOnly === true,
      fok: command.type === 'limit' && command.timeInForce === 'FOK',
      stp: command.stpMode ?? 'NONE',
      filled: 0,
      filledQuote: 0,
      done: false,
    })
  }

  private check(event: BookEvent): void {
    if (event.type === 'trade') {
      const maker = this.known.get(event.makerOrderId)!
      const taker = this.known.get(event.takerOrderId)!
      expect(event.price).toBe(maker.limit)
      expect(maker.side).not.toBe(taker.side)
      expect(event.takerSide).toBe(taker.side)
      if (taker.limit !== null) {
        expect(taker.side === 'BUY' ? event.price <= taker.limit : event.price >= taker.limit).toBe(true)
      }
      expect(event.quoteAmount).toBe(event.price * event.quantity)
      expect(taker.postOnly).toBe(false)
      if (taker.stp !== 'NONE') expect(event.makerUserId).not.toBe(event.takerUserId)
      for (const order of [maker, taker]) {
        expect(order.done).toBe(false)
        order.filled += event.quantity
        order.filledQuote += event.quoteAmount
        if (order.quantity !== null) expect(order.filled).toBeLessThanOrEqual(order.quantity)
      }
    }
    if (event.type === 'order') {
      const order = this.known.get(event.orderId)!
      expect(event.executedQuantity).toBe(order.filled)
      expect(event.executedQuote).toBe(order.filledQuote)
      if (event.status === 'FILLED' && order.quantity !== null) expect(order.filled).toBe(order.quantity)
      if (event.status === 'NEW' || event.status === 'PARTIALLY_FILLED') {
        expect(event.remainingQuantity).toBe(order.quantity! - order.filled)
      } else {
        expect(event.remainingQuantity).toBe(0)
        order.done = true
      }
    }
  }

  /** Every resting order: filled + remaining = original, and it is not done. */
  private checkOpenOrders(snapshot: BookSnapshot): void {
    for (const open of [...snapshot.bids, ...snapshot.asks]) {
      const order = this.known.get(open.orderId)!
      expect(order.done).toBe(false)
      expect(open.remainingQuantity + order.filled).toBe(order.quantity)
      expect(open.executedQuote).toBe(order.filledQuote)
    }
    const openIds = new Set([...snapshot.bids, ...snapshot.asks].map((o) => o.orderId))
    for (const [id, order] of this.known) {
      if (!order.done && order.limit !== null && !openIds.has(id))
        throw new Error(`${id} vanished without an event`)
    }
  }

  private checkFok(orderId: string, before: BookSnapshot, after: BookSnapshot, events: BookEvent[]): void {
    const order = this.known.get(orderId)
    if (order === undefined) return
    if (order.filled === order.quantity) return
    expect(order.filled).toBe(0)
    expect(after).toEqual(before)
    expect(events.map((e) => e.type)).toEqual(['accepted', 'order'])
  }
}

function checkNotCrossed(snapshot: BookSnapshot): void {
  const bid = snapshot.bids[0]?.price
  const ask = snapshot.asks[0]?.price
  if (bid !== undefined && ask !== undefined) expect(bid).toBeLessThan(ask)
}

describe('OrderBook properties', () => {
  it('keeps every invariant over random command sequences, with batches rolled back exactly', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 80 }), (steps) => {
        new Checker().run(steps)
      }),
      { numRuns: 400 },
    )
  })

  it('rebuilds an identical book from its own open orders', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const checker = new Checker()
        checker.run(steps)
        if (checker.book.inBatch) return
        const snapshot = checker.book.snapshot()
        const rebuilt = new OrderBook(config)
        rebuilt.restore([...snapshot.bids, ...snapshot.asks])
        if (snapshot.halted) rebuilt.halt()
        expect(rebuilt.snapshot()).toEqual(snapshot)
      }),
      { numRuns: 200 },
    )
  })
})
