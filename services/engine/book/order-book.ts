/**
 * The order book of one market, in memory: price-time priority, fills at the maker's price.
 *
 * Every command returns the events it caused (pushed onto the array passed in, so a batch loop can
 * collect a whole batch in one array). A command either changes the book and says how, or is
 * rejected and changes nothing. Between beginBatch() and commitBatch() every change is journaled,
 * and rollbackBatch() undoes them in reverse: the book is then as if the batch never happened.
 */
import { BourseError, invalidInput } from '../../../lib/errors.ts'
import { BookOrder, BookSide, type PriceLevel } from './book-side.ts'
import {
  checkLimitOrder,
  checkMarketOrder,
  isCount,
  type MarketRules,
  marketRules,
  type Rejection,
} from './rules.ts'
import type {
  BookCommand,
  BookEvent,
  BookSnapshot,
  CancelAllCommand,
  CancelCommand,
  Depth,
  DepthLevel,
  LimitOrderCommand,
  MarketConfig,
  MarketOrderCommand,
  OpenOrder,
  OrderEndReason,
  OrderStatus,
  Side,
  StpMode,
  TimeInForce,
} from './types.ts'

/** How to undo one change; applied newest first on rollback. */
type UndoEntry =
  | { kind: 'rested'; order: BookOrder }
  | { kind: 'removed'; order: BookOrder; prev: BookOrder | null }
  | { kind: 'reduced'; order: BookOrder; lots: number; quote: number }
  | { kind: 'halted'; halted: boolean }

const halted: Rejection = { code: 'rejected', reason: 'Market is halted.', field: null }
const duplicate: Rejection = { code: 'conflict', reason: 'Duplicate order sent.', field: 'orderId' }
const unknownOrder: Rejection = { code: 'not_found', reason: 'Unknown order sent.', field: 'orderId' }
const wouldTake: Rejection = {
  code: 'rejected',
  reason: 'Order would immediately match and take.',
  field: 'price',
}

export interface Savepoint {
  readonly journalLength: number
  readonly nextSeq: number
}

/** The incoming order while it matches. Market orders have an unbounded limit price. */
class Taker {
  readonly id: string
  readonly userId: string
  readonly side: Side
  readonly limit: number
  readonly stpMode: StpMode
  readonly timeInForce: TimeInForce
  readonly quantity: number
  remaining: number
  /** Quote still to spend (market by quote amount); unbounded otherwise. */
  quoteLeft: number
  executedQuantity = 0
  executedQuote = 0
  endReason: OrderEndReason | null = null

  constructor(
    command: LimitOrderCommand | MarketOrderCommand,
    limit: number,
    timeInForce: TimeInForce,
    stpMode: StpMode,
  ) {
    this.id = command.orderId
    this.userId = command.userId
    this.side = command.side
    this.limit = limit
    this.timeInForce = timeInForce
    this.stpMode = stpMode
    this.quantity = command.quantity ?? Number.MAX_SAFE_INTEGER
    this.remaining = this.quantity
    this.quoteLeft =
      command.type === 'market' && command.quoteAmount !== undefined
        ? command.quoteAmount
        : Number.POSITIVE_INFINITY
  }

  reaches(price: number): boolean {
    return this.side === 'BUY' ? price <= this.limit : price >= this.limit
  }

  /** Nothing left to buy or sell, or nothing left to spend. */
  get filled(): boolean {
    return this.remaining === 0 || this.quoteLeft === 0
  }

  get done(): boolean {
    return this.filled || this.endReason !== null
  }
}

export class OrderBook {
  readonly rules: MarketRules
  private readonly bids = new BookSide('BUY')
  private readonly asks = new BookSide('SELL')
  private readonly orders = new Map<string, BookOrder>()
  private readonly ordersByUser = new Map<string, Set<BookOrder>>()
  private isHalted = false
  private nextSeq = 1
  private journal: UndoEntry[] | null = null
  private batchStartSeq = 0

  constructor(config: MarketConfig) {
    this.rules = marketRules(config)
  }

  execute(command: BookCommand, events: BookEvent[] = []): BookEvent[] {
    switch (command.type) {
      case 'limit':
        return this.placeLimit(command, events)
      case 'market':
        return this.placeMarket(command, events)
      case 'cancel':
        return this.cancel(command, events)
      case 'cancelAll':
        return this.cancelAll(command, events)
      case 'halt':
        return this.setHalted(true, events)
      case 'resume':
        return this.setHalted(false, events)
    }
  }

  placeLimit(command: LimitOrderCommand, events: BookEvent[] = []): BookEvent[] {
    const rejection =
      this.admission(command) ?? checkLimitOrder(this.rules, command) ?? this.postOnlyCheck(command)
    if (rejection !== null) return this.reject(command, rejection, events)
    const timeInForce = command.timeInForce ?? 'GTC'
    const taker = new Taker(command, command.price, timeInForce, command.stpMode ?? this.rules.defaultStpMode)
    events.push({
      type: 'accepted',
      orderId: command.orderId,
      userId: command.userId,
      side: command.side,
      orderType: 'LIMIT',
      price: command.price,
      quantity: command.quantity,
      quoteAmount: null,
      timeInForce,
      postOnly: command.postOnly === true,
      stpMode: taker.stpMode,
    })
    if (timeInForce === 'FOK' && !this.canFillCompletely(taker)) {
      taker.endReason = 'UNFILLED_FOK_ORDER_EXPIRED'
      return this.pushTakerUpdate(taker, 'EXPIRED', 0, events)
    }
    this.match(taker, events)
    return this.finishTaker(taker, events)
  }

  placeMarket(command: MarketOrderCommand, events: BookEvent[] = []): BookEvent[] {
    const best = this.opposite(command.side).best()
    const rejection = this.admission(command) ?? checkMarketOrder(this.rules, command, best?.price ?? null)
    if (rejection !== null) return this.reject(command, rejection, events)
    const limit = command.side === 'BUY' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY
    const taker = new Taker(command, limit, 'IOC', command.stpMode ?? this.rules.defaultStpMode)
    events.push({
      type: 'accepted',
      orderId: command.orderId,
      userId: command.userId,
      side: command.side,
      orderType: 'MARKET',
      price: null,
      quantity: command.quantity ?? null,
      quoteAmount: command.quoteAmount ?? null,
      timeInForce: 'IOC',
      postOnly: false,
      stpMode: taker.stpMode,
    })
    this.match(taker, events)
    return this.finishTaker(taker, events)
  }

  cancel(command: CancelCommand, events: BookEvent[] = []): BookEvent[] {
    const order = this.orders.get(command.orderId)
    if (order === undefined || order.userId !== command.userId)
      return this.reject(command, unknownOrder, events)
    this.endOrder(order, 'CANCELED', 'CANCELED_BY_USER', events)
    return events
  }

  /** Cancels every open order of the user, oldest first; no events when there are none. */
  cancelAll(command: CancelAllCommand, events: BookEvent[] = []): BookEvent[] {
    const owned = this.ordersByUser.get(command.userId)
    if (owned === undefined) return events
    for (const order of [...owned].sort((a, b) => a.seq - b.seq)) {
      this.endOrder(order, 'CANCELED', 'CANCELED_BY_USER', events)
    }
    return events
  }

  /** While halted, new orders are rejected; cancels still work. */
  halt(events: BookEvent[] = []): BookEvent[] {
    return this.setHalted(true, events)
  }

  resume(events: BookEvent[] = []): BookEvent[] {
    return this.setHalted(false, events)
  }

  get halted(): boolean {
    return this.isHalted
  }

  beginBatch(): void {
    if (this.journal !== null) throw new BourseError('conflict', 'A batch is already open')
    this.journal = []
    this.batchStartSeq = this.nextSeq
  }

  /** Keeps the batch's changes. */
  commitBatch(): void {
    this.closeBatch()
  }

  /** Undoes every change since beginBatch(). */
  rollbackBatch(): void {
    const journal = this.closeBatch()
    for (let i = journal.length - 1; i >= 0; i--) this.undo(journal[i]!)
    this.nextSeq = this.batchStartSeq
  }

  /** A point inside the open batch that rollbackTo() can return to, undoing only what came after it. */
  savepoint(): Savepoint {
    const journal = this.openJournal()
    return { journalLength: journal.length, nextSeq: this.nextSeq }
  }

  /** Undoes the changes made since the savepoint (the durable layer refuses one order that lacks funds). */
  rollbackTo(savepoint: Savepoint): void {
    const journal = this.openJournal()
    for (let i = journal.length - 1; i >= savepoint.journalLength; i--) this.undo(journal[i]!)
    journal.length = savepoint.journalLength
    this.nextSeq = savepoint.nextSeq
  }

  get inBatch(): boolean {
    return this.journal !== null
  }

  /**
   * Loads the open orders of a freshly started engine into an empty book, in time priority (as stored,
   * with what remains of each). Refuses input that no real book could have produced.
   */
  restore(openOrders: readonly OpenOrder[]): void {
    if (this.orders.size > 0 || this.inBatch) throw new BourseError('conflict', 'restore needs an empty book')
    const ids = new Set<string>()
    let bestBid = Number.NEGATIVE_INFINITY
    let bestAsk = Number.POSITIVE_INFINITY
    openOrders.forEach((open, index) => {
      checkOpenOrder(open, `openOrders[${index}]`, ids)
      if (open.side === 'BUY') bestBid = Math.max(bestBid, open.price)
      else bestAsk = Math.min(bestAsk, open.price)
    })
    if (bestBid >= bestAsk) throw invalidInput('openOrders', `crossed book: bid ${bestBid} >= ask ${bestAsk}`)
    for (const open of openOrders) this.rest(new BookOrder(open, this.nextSeq++))
  }

  snapshot(): BookSnapshot {
    return { halted: this.isHalted, bids: openOrdersOf(this.bids), asks: openOrdersOf(this.asks) }
  }

  /** Aggregated depth, best first, at most `depth` levels a side. */
  levels(depth = Number.POSITIVE_INFINITY): Depth {
    return { bids: depthOf(this.bids, depth), asks: depthOf(this.asks, depth) }
  }

  /** The lots resting on `side` at `price` (0 when none). */
  quantityAt(side: Side, price: number): number {
    return (side === 'BUY' ? this.bids : this.asks).quantityAt(price)
  }

  bestBid(): number | null {
    return this.bids.best()?.price ?? null
  }

  bestAsk(): number | null {
    return this.asks.best()?.price ?? null
  }

  order(orderId: string): OpenOrder | undefined {
    return this.orders.get(orderId)?.toOpenOrder()
  }

  get openOrderCount(): number {
    return this.orders.size
  }

  private admission(command: LimitOrderCommand | MarketOrderCommand): Rejection | null {
    if (this.isHalted) return halted
    return this.orders.has(command.orderId) ? duplicate : null
  }

  private postOnlyCheck(command: LimitOrderCommand): Rejection | null {
    if (command.postOnly !== true) return null
    const best = this.opposite(command.side).best()
    if (best === undefined) return null
    return (command.side === 'BUY' ? best.price <= command.price : best.price >= command.price)
      ? wouldTake
      : null
  }

  private reject(
    command: LimitOrderCommand | MarketOrderCommand | CancelCommand,
    rejection: Rejection,
    events: BookEvent[],
  ): BookEvent[] {
    events.push({
      type: 'rejected',
      command: command.type,
      orderId: command.orderId,
      userId: command.userId,
      ...rejection,
    })
    return events
  }

  private opposite(side: Side): BookSide {
    return side === 'BUY' ? this.asks : this.bids
  }

  private sideOf(order: BookOrder): BookSide {
    return order.side === 'BUY' ? this.bids : this.asks
  }

  /** Walks the opposite side best first, taking liquidity until the taker is done or out of reach. */
  private match(taker: Taker, events: BookEvent[]): void {
    const side = this.opposite(taker.side)
    for (let level = side.best(); level !== undefined && taker.reaches(level.price); level = side.best()) {
      let maker = level.head
      while (maker !== null) {
        const next = maker.next
        if (taker.stpMode !== 'NONE' && maker.userId === taker.userId)
          this.preventSelfTrade(taker, maker, events)
        else this.fill(taker, maker, side, events)
        if (taker.done) return
        maker = next
      }
    }
  }

  private fill(taker: Taker, maker: BookOrder, side: BookSide, events: BookEvent[]): void {
    const price = maker.price
    const lots = Math.min(maker.remaining, taker.remaining, Math.floor(taker.quoteLeft / price))
    if (lots === 0) {
      taker.endReason = 'QUOTE_AMOUNT_BELOW_ONE_LOT'
      return
    }
    const quote = lots * price
    taker.remaining -= lots
    taker.quoteLeft -= quote
    taker.executedQuantity += lots
    taker.executedQuote += quote
    events.push({
      type: 'trade',
      price,
      quantity: lots,
      quoteAmount: quote,
      takerSide: taker.side,
      makerOrderId: maker.id,
      makerUserId: maker.userId,
      takerOrderId: taker.id,
      takerUserId: taker.userId,
    })
    this.journal?.push({ kind: 'reduced', order: maker, lots, quote })
    side.reduce(maker, lots)
    maker.executedQuote += quote
    const filled = maker.remaining === 0
    if (filled) this.removeOrder(maker)
    pushUpdate(maker, filled ? 'FILLED' : 'PARTIALLY_FILLED', null, events)
  }

  private preventSelfTrade(taker: Taker, maker: BookOrder, events: BookEvent[]): void {
    const mode = taker.stpMode
    events.push({
      type: 'preventedMatch',
      takerOrderId: taker.id,
      makerOrderId: maker.id,
      userId: maker.userId,
      stpMode: mode,
      price: maker.price,
      makerPreventedQuantity: maker.remaining,
    })
    if (mode !== 'EXPIRE_TAKER') this.endOrder(maker, 'EXPIRED_IN_MATCH', 'SELF_TRADE_PREVENTION', events)
    if (mode !== 'EXPIRE_MAKER') taker.endReason = 'SELF_TRADE_PREVENTION'
  }

  /** FOK pre-check: would matching fill the taker entirely? Mirrors match() without changing anything. */
  private canFillCompletely(taker: Taker): boolean {
    let available = 0
    for (const level of this.opposite(taker.side).levels()) {
      if (!taker.reaches(level.price)) return false
      if (taker.stpMode === 'NONE') available += level.quantity
      else {
        for (let maker = level.head; maker !== null; maker = maker.next) {
          if (maker.userId !== taker.userId) available += maker.remaining
          // The taker itself would expire here, unless only the maker does.
          else if (taker.stpMode !== 'EXPIRE_MAKER') return available >= taker.remaining
          if (available >= taker.remaining) return true
        }
      }
      if (available >= taker.remaining) return true
    }
    return false
  }

  private finishTaker(taker: Taker, events: BookEvent[]): BookEvent[] {
    if (taker.endReason === 'SELF_TRADE_PREVENTION')
      return this.pushTakerUpdate(taker, 'EXPIRED_IN_MATCH', 0, events)
    if (taker.filled) return this.pushTakerUpdate(taker, 'FILLED', 0, events)
    if (taker.endReason === 'QUOTE_AMOUNT_BELOW_ONE_LOT' && taker.executedQuantity > 0) {
      taker.endReason = null
      return this.pushTakerUpdate(taker, 'FILLED', 0, events)
    }
    if (taker.endReason !== null) return this.pushTakerUpdate(taker, 'EXPIRED', 0, events)
    if (taker.timeInForce === 'GTC') return this.restTaker(taker, events)
    taker.endReason = expiryReason(taker)
    return this.pushTakerUpdate(taker, 'EXPIRED', 0, events)
  }

  private restTaker(taker: Taker, events: BookEvent[]): BookEvent[] {
    const order = new BookOrder(
      {
        orderId: taker.id,
        userId: taker.userId,
        side: taker.side,
        price: taker.limit,
        quantity: taker.quantity,
        remainingQuantity: taker.remaining,
        executedQuote: taker.executedQuote,
      },
      this.nextSeq++,
    )
    this.rest(order)
    this.journal?.push({ kind: 'rested', order })
    return taker.executedQuantity > 0
      ? this.pushTakerUpdate(taker, 'PARTIALLY_FILLED', taker.remaining, events)
      : events
  }

  private pushTakerUpdate(
    taker: Taker,
    status: OrderStatus,
    remaining: number,
    events: BookEvent[],
  ): BookEvent[] {
    events.push({
      type: 'order',
      orderId: taker.id,
      userId: taker.userId,
      side: taker.side,
      status,
      executedQuantity: taker.executedQuantity,
      executedQuote: taker.executedQuote,
      remainingQuantity: remaining,
      reason: taker.endReason,
    })
    return events
  }

  /** Takes a resting order out of the book for good: cancelled or expired. */
  private endOrder(order: BookOrder, status: OrderStatus, reason: OrderEndReason, events: BookEvent[]): void {
    this.removeOrder(order)
    pushUpdate(order, status, reason, events)
  }

  private rest(order: BookOrder): void {
    this.sideOf(order).append(order)
    this.index(order)
  }

  private removeOrder(order: BookOrder): void {
    this.journal?.push({ kind: 'removed', order, prev: order.prev })
    this.sideOf(order).unlink(order)
    this.unindex(order)
  }

  private index(order: BookOrder): void {
    this.orders.set(order.id, order)
    const owned = this.ordersByUser.get(order.userId)
    if (owned === undefined) this.ordersByUser.set(order.userId, new Set([order]))
    else owned.add(order)
  }

  private unindex(order: BookOrder): void {
    this.orders.delete(order.id)
    const owned = this.ordersByUser.get(order.userId)!
    owned.delete(order)
    if (owned.size === 0) this.ordersByUser.delete(order.userId)
  }

  private setHalted(halt: boolean, events: BookEvent[]): BookEvent[] {
    if (this.isHalted === halt) return events
    this.journal?.push({ kind: 'halted', halted: this.isHalted })
    this.isHalted = halt
    events.push({ type: 'marketStatus', status: halt ? 'HALTED' : 'TRADING' })
    return events
  }

  private openJournal(): UndoEntry[] {
    if (this.journal === null) throw new BourseError('conflict', 'No batch is open')
    return this.journal
  }

  private closeBatch(): UndoEntry[] {
    const journal = this.openJournal()
    this.journal = null
    return journal
  }

  private undo(entry: UndoEntry): void {
    switch (entry.kind) {
      case 'rested':
        this.sideOf(entry.order).unlink(entry.order)
        this.unindex(entry.order)
        return
      case 'removed':
        this.sideOf(entry.order).relink(entry.order, entry.prev)
        this.index(entry.order)
        return
      case 'reduced':
        this.sideOf(entry.order).reduce(entry.order, -entry.lots)
        entry.order.executedQuote -= entry.quote
        return
      case 'halted':
        this.isHalted = entry.halted
        return
    }
  }
}

function expiryReason(taker: Taker): OrderEndReason {
  if (taker.timeInForce === 'FOK') return 'UNFILLED_FOK_ORDER_EXPIRED'
  return Number.isFinite(taker.limit) ? 'UNFILLED_IOC_QUANTITY_EXPIRED' : 'INSUFFICIENT_LIQUIDITY'
}

function pushUpdate(
  order: BookOrder,
  status: OrderStatus,
  reason: OrderEndReason | null,
  events: BookEvent[],
): void {
  events.push({
    type: 'order',
    orderId: order.id,
    userId: order.userId,
    side: order.side,
    status,
    executedQuantity: order.quantity - order.remaining,
    executedQuote: order.executedQuote,
    // Only a partially filled maker is still resting.
    remainingQuantity: status === 'PARTIALLY_FILLED' ? order.remaining : 0,
    reason,
  })
}

function openOrdersOf(side: BookSide): OpenOrder[] {
  const orders: OpenOrder[] = []
  for (const level of side.levels()) {
    for (let order = level.head; order !== null; order = order.next) orders.push(order.toOpenOrder())
  }
  return orders
}

function depthOf(side: BookSide, depth: number): DepthLevel[] {
  const levels: DepthLevel[] = []
  for (const level of side.levels()) {
    if (levels.length >= depth) break
    levels.push(depthLevel(level))
  }
  return levels
}

function depthLevel(level: PriceLevel): DepthLevel {
  return { price: level.price, quantity: level.quantity, orderCount: level.orderCount }
}

function checkOpenOrder(open: OpenOrder, path: string, ids: Set<string>): void {
  if (typeof open.orderId !== 'string' || open.orderId === '')
    throw invalidInput(`${path}.orderId`, 'required')
  if (ids.has(open.orderId)) throw invalidInput(`${path}.orderId`, `duplicate ${open.orderId}`)
  ids.add(open.orderId)
  if (typeof open.userId !== 'string' || open.userId === '') throw invalidInput(`${path}.userId`, 'required')
  if (open.side !== 'BUY' && open.side !== 'SELL') throw invalidInput(`${path}.side`, 'expected BUY or SELL')
  for (const field of ['price', 'quantity', 'remainingQuantity'] as const) {
    if (!isCount(open[field])) throw invalidInput(`${path}.${field}`, 'expected a positive safe integer')
  }
  if (open.remainingQuantity > open.quantity)
    throw invalidInput(`${path}.remainingQuantity`, 'exceeds quantity')
  if (!Number.isSafeInteger(open.executedQuote) || open.executedQuote < 0) {
    throw invalidInput(`${path}.executedQuote`, 'expected a non-negative safe integer')
  }
}
