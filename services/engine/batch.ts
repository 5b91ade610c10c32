/**
 * One batch of commands applied to the in-memory book, and everything it must write: the ledger movements
 * (funds frozen for new orders, trades settled from frozen funds, what is left unfrozen when an order ends),
 * the orders and trades rows, and the outbox events. Orders are copied on first touch, so a batch that fails
 * to commit leaves the engine's orders exactly as they were (the book rolls itself back).
 */

import type { Movement } from '../../ledger/ledger.ts'
import { freezeMovements, tradeMovements, unfreezeMovements } from '../../ledger/operations.ts'
import { BourseError } from '../../lib/errors.ts'
import type { OrderBook } from './book/order-book.ts'
import { rejectionError } from './book/rules.ts'
import type {
  BookCommand,
  BookEvent,
  OrderStatus,
  OrderUpdated,
  Side,
  StpMode,
  TimeInForce,
  Trade,
} from './book/types.ts'
import type { OrderType, OrderView } from './events.ts'
import type { MarketUnits } from './market.ts'
import { availableKey, type BatchWrite, type OrderRow, type TradeRow } from './store.ts'

/** An order the engine knows: all open orders, and those a batch touches. Amounts in book units. */
export interface LiveOrder {
  id: bigint
  userId: bigint
  clientOrderId: string
  side: Side
  type: OrderType
  timeInForce: TimeInForce
  stpMode: StpMode
  price: number | null
  quantity: number | null
  quoteAmount: number | null
  executedQuantity: number
  executedQuote: number
  /** Still frozen for this order: quote units for a buy, lots for a sell. */
  frozen: number
  status: OrderStatus
  createdAt: Date
  updatedAt: Date
}

/** A new order, validated and converted to book units before it joins a batch. */
export interface PreparedOrder {
  userId: bigint
  clientOrderId: string
  side: Side
  type: OrderType
  timeInForce: TimeInForce
  stpMode: StpMode
  price: number | null
  quantity: number | null
  quoteAmount: number | null
}

export type PreparedCommand =
  | { kind: 'place'; order: PreparedOrder }
  | { kind: 'cancel'; userId: bigint; orderId: bigint | null; clientOrderId: string | null }
  | { kind: 'cancelAll'; userId: bigint }
  | { kind: 'halt' }
  | { kind: 'resume' }

export interface Fill {
  price: string
  qty: string
  commission: string
  commissionAsset: string
  tradeId: string
}

export type CommandResult =
  | { kind: 'order'; order: OrderView; fills: Fill[] }
  | { kind: 'orders'; orders: OrderView[] }
  | { kind: 'market'; status: 'trading' | 'halted' }

export type Outcome = { ok: true; result: CommandResult } | { ok: false; error: BourseError }

/** What the batch reads from and hands back to the engine. */
export interface EngineState {
  readonly units: MarketUnits
  readonly book: OrderBook
  readonly orders: Map<bigint, LiveOrder>
  /** Open orders by `${userId}:${clientOrderId}`. */
  readonly clientIndex: Map<string, bigint>
  lastOrderId: bigint
  lastTradeId: bigint
  status: 'trading' | 'halted'
}

type PendingEvent = { topic: 'orders' | 'trades' | 'market'; payload: Record<string, unknown> }

const terminal = new Set<OrderStatus>(['FILLED', 'CANCELED', 'EXPIRED', 'EXPIRED_IN_MATCH'])
const insufficientBalance = () =>
  new BourseError('insufficient_funds', 'Account has insufficient balance for requested action.', {
    field: 'quantity',
  })
const unknownOrder = () => new BourseError('not_found', 'Unknown order sent.', { field: 'orderId' })

export class Batch {
  private readonly state: EngineState
  private readonly now = new Date()
  private readonly working = new Map<bigint, LiveOrder>()
  private readonly available: Map<string, bigint>
  private readonly movements: Movement[] = []
  private readonly trades: TradeRow[] = []
  private readonly pending: PendingEvent[] = []
  private lastOrderId: bigint
  private lastTradeId: bigint
  private status: 'trading' | 'halted'
  private readonly fills = new Map<bigint, Fill[]>()
  private readonly newClientOrderIds = new Map<string, bigint>()

  /** `available`: balances read before the batch, as decimal strings by availableKey(user, asset). */
  constructor(state: EngineState, available: Map<string, string>) {
    this.state = state
    this.lastOrderId = state.lastOrderId
    this.lastTradeId = state.lastTradeId
    this.status = state.status
    this.available = new Map()
    for (const [key, balance] of available) {
      const asset = key.slice(key.indexOf(':') + 1)
      const units =
        asset === state.units.row.quote
          ? state.units.balanceToQuoteUnits(balance)
          : state.units.balanceToLots(balance)
      this.available.set(key, units)
    }
  }

  apply(command: PreparedCommand): Outcome {
    try {
      return { ok: true, result: this.run(command) }
    } catch (err) {
      if (err instanceof BourseError) return { ok: false, error: err }
      throw err
    }
  }

  get hasWrites(): boolean {
    return this.pending.length > 0
  }

  private run(command: PreparedCommand): CommandResult {
    switch (command.kind) {
      case 'place':
        return this.place(command.order)
      case 'cancel':
        return this.cancel(command)
      case 'cancelAll': {
        const events = this.execute({ type: 'cancelAll', userId: String(command.userId) })
        const ids = events.filter((e): e is OrderUpdated => e.type === 'order').map((e) => BigInt(e.orderId))
        return { kind: 'orders', orders: ids.map((id) => this.view(this.touch(id))) }
      }
      case 'halt':
      case 'resume':
        this.execute({ type: command.kind })
        return { kind: 'market', status: this.status }
    }
  }

  private place(order: PreparedOrder): CommandResult {
    if (this.openIdByClientOrderId(order.userId, order.clientOrderId) !== undefined) {
      throw new BourseError('conflict', 'Duplicate order sent.', { field: 'newClientOrderId' })
    }
    const id = this.lastOrderId + 1n
    const savepoint = this.state.book.savepoint()
    const events = this.execute(bookCommand(order, id))
    const consumed = consumption(events, String(id), order)
    const fundsKey = availableKey(
      order.userId,
      order.side === 'BUY' ? this.state.units.row.quote : this.state.units.row.base,
    )
    const funds = this.available.get(fundsKey) ?? 0n
    if (BigInt(consumed) > funds) {
      this.state.book.rollbackTo(savepoint)
      throw insufficientBalance()
    }
    this.available.set(fundsKey, funds - BigInt(consumed))
    this.lastOrderId = id
    const live: LiveOrder = {
      ...order,
      id,
      executedQuantity: 0,
      executedQuote: 0,
      frozen: consumed,
      status: 'NEW',
      createdAt: this.now,
      updatedAt: this.now,
    }
    this.working.set(id, live)
    this.newClientOrderIds.set(`${order.userId}:${order.clientOrderId}`, id)
    if (consumed > 0)
      this.movements.push(...freezeMovements(this.userAmount(live, consumed), 'order', this.ref(id)))
    this.pending.push(this.orderEvent(live))
    this.applyEvents(events)
    return { kind: 'order', order: this.view(live), fills: this.fills.get(id) ?? [] }
  }

  private cancel(command: Extract<PreparedCommand, { kind: 'cancel' }>): CommandResult {
    const id = command.orderId ?? this.openIdByClientOrderId(command.userId, command.clientOrderId!)
    const order = id === undefined ? undefined : (this.working.get(id) ?? this.state.orders.get(id))
    if (order === undefined || order.userId !== command.userId || terminal.has(order.status))
      throw unknownOrder()
    this.execute({ type: 'cancel', orderId: String(order.id), userId: String(command.userId) })
    return { kind: 'order', order: this.view(this.touch(order.id)), fills: [] }
  }

  /** The open order with this client order id, counting what this batch has done so far. */
  private openIdByClientOrderId(userId: bigint, clientOrderId: string): bigint | undefined {
    const key = `${userId}:${clientOrderId}`
    const id = this.newClientOrderIds.get(key) ?? this.state.clientIndex.get(key)
    if (id === undefined) return undefined
    const order = this.working.get(id) ?? this.state.orders.get(id)
    return order === undefined || terminal.has(order.status) ? undefined : id
  }

  /** Runs a command on the book; a rejection becomes the caller's error and changed nothing. */
  private execute(command: BookCommand): BookEvent[] {
    const events = this.state.book.execute(command)
    const rejected = events.find((e) => e.type === 'rejected')
    if (rejected !== undefined) throw rejectionError(rejected)
    if (command.type !== 'limit' && command.type !== 'market') this.applyEvents(events)
    return events
  }

  private applyEvents(events: readonly BookEvent[]): void {
    for (const event of events) {
      if (event.type === 'trade') this.settle(event)
      else if (event.type === 'order') this.update(event)
      else if (event.type === 'marketStatus') {
        this.status = event.status === 'HALTED' ? 'halted' : 'trading'
        this.pending.push({ topic: 'market', payload: { status: this.status, time: this.now.getTime() } })
      }
    }
  }

  private settle(trade: Trade): void {
    const units = this.state.units
    const maker = this.touch(BigInt(trade.makerOrderId))
    const taker = this.touch(BigInt(trade.takerOrderId))
    for (const order of [maker, taker])
      order.frozen -= order.side === 'BUY' ? trade.quoteAmount : trade.quantity
    const [buyer, seller] = taker.side === 'BUY' ? [taker, maker] : [maker, taker]
    const buyerRole = buyer === maker ? 'maker' : 'taker'
    const sellerRole = seller === maker ? 'maker' : 'taker'
    const id = ++this.lastTradeId
    const row: TradeRow = {
      id,
      takerOrderId: taker.id,
      makerOrderId: maker.id,
      buyerUserId: buyer.userId,
      sellerUserId: seller.userId,
      buyerIsMaker: buyer === maker,
      price: units.price(trade.price),
      quantity: units.quantity(trade.quantity),
      quoteQuantity: units.quote(trade.quoteAmount),
      buyerFee: units.baseFee(trade.quantity, buyerRole),
      sellerFee: units.quoteFee(trade.quoteAmount, sellerRole),
      createdAt: this.now,
    }
    this.trades.push(row)
    this.movements.push(
      ...tradeMovements({
        tradeRef: this.ref(id),
        market: units.symbol,
        base: units.row.base,
        quote: units.row.quote,
        buyerUserId: row.buyerUserId,
        sellerUserId: row.sellerUserId,
        quantity: row.quantity,
        quoteQuantity: row.quoteQuantity,
        buyerFee: row.buyerFee,
        sellerFee: row.sellerFee,
      }),
    )
    const takerFee = taker === buyer ? [row.buyerFee, units.row.base] : [row.sellerFee, units.row.quote]
    const fills = this.fills.get(taker.id) ?? []
    fills.push({
      price: row.price,
      qty: row.quantity,
      commission: takerFee[0]!,
      commissionAsset: takerFee[1]!,
      tradeId: String(id),
    })
    this.fills.set(taker.id, fills)
    this.pending.push({
      topic: 'trades',
      payload: {
        tradeId: String(id),
        price: row.price,
        quantity: row.quantity,
        quoteQuantity: row.quoteQuantity,
        buyerOrderId: String(buyer.id),
        sellerOrderId: String(seller.id),
        buyerUserId: String(buyer.userId),
        sellerUserId: String(seller.userId),
        buyerIsMaker: row.buyerIsMaker,
        buyerCommission: row.buyerFee,
        buyerCommissionAsset: units.row.base,
        sellerCommission: row.sellerFee,
        sellerCommissionAsset: units.row.quote,
        time: this.now.getTime(),
      },
    })
  }

  private update(event: OrderUpdated): void {
    const order = this.touch(BigInt(event.orderId))
    order.status = event.status
    order.executedQuantity = event.executedQuantity
    order.executedQuote = event.executedQuote
    order.updatedAt = this.now
    if (terminal.has(order.status) && order.frozen > 0) {
      this.movements.push(
        ...unfreezeMovements(this.userAmount(order, order.frozen), 'order', this.ref(order.id)),
      )
      order.frozen = 0
    }
    this.pending.push(this.orderEvent(order))
  }

  /** The working copy of an order, copied from the engine's on first touch. */
  private touch(id: bigint): LiveOrder {
    let order = this.working.get(id)
    if (order === undefined) {
      const live = this.state.orders.get(id)
      if (live === undefined)
        throw new BourseError('internal', `order ${id} is in the book but not known to the engine`)
      order = { ...live }
      this.working.set(id, order)
    }
    return order
  }

  private userAmount(order: LiveOrder, amount: number) {
    const units = this.state.units
    return order.side === 'BUY'
      ? { userId: order.userId, asset: units.row.quote, amount: units.quote(amount) }
      : { userId: order.userId, asset: units.row.base, amount: units.quantity(amount) }
  }

  private ref(id: bigint): string {
    return `${this.state.units.symbol}:${id}`
  }

  private orderEvent(order: LiveOrder): PendingEvent {
    return { topic: 'orders', payload: { order: this.view(order) } }
  }

  private view(order: LiveOrder): OrderView {
    return orderView(this.state.units, order)
  }

  /**
   * The price levels the batch may have changed: those of every limit order it touched (new, filled,
   * cancelled or expired). A market order never rests, and makers it fills are touched orders too.
   */
  touchedLevels(): { side: Side; price: number }[] {
    const seen = new Set<string>()
    const levels: { side: Side; price: number }[] = []
    for (const order of this.working.values()) {
      if (order.price === null) continue
      const key = `${order.side}:${order.price}`
      if (seen.has(key)) continue
      seen.add(key)
      levels.push({ side: order.side, price: order.price })
    }
    return levels
  }

  /** The batch's writes; its outbox events are numbered from `firstSeq` on. */
  write(symbol: string, epoch: bigint, firstSeq: bigint): BatchWrite {
    return {
      symbol,
      epoch,
      firstSeq,
      lastOrderId: this.lastOrderId,
      lastTradeId: this.lastTradeId,
      status: this.status,
      time: this.now.getTime(),
      movements: this.movements,
      orders: [...this.working.values()].map((o) => this.row(o)),
      trades: this.trades,
      events: this.pending,
    }
  }

  private row(order: LiveOrder): OrderRow {
    const units = this.state.units
    return {
      id: order.id,
      userId: order.userId,
      clientOrderId: order.clientOrderId,
      side: order.side,
      type: order.type,
      timeInForce: order.timeInForce,
      selfTradePrevention: order.stpMode,
      price: order.price === null ? null : units.price(order.price),
      quantity: order.quantity === null ? null : units.quantity(order.quantity),
      quoteQuantity: order.quoteAmount === null ? null : units.quote(order.quoteAmount),
      executedQuantity: units.quantity(order.executedQuantity),
      cumulativeQuoteQuantity: units.quote(order.executedQuote),
      frozenRemaining: order.side === 'BUY' ? units.quote(order.frozen) : units.quantity(order.frozen),
      status: order.status,
      createdAt: order.createdAt,
      updatedAt: order.updatedAt,
    }
  }

  /** After the commit: the engine keeps the batch's orders (open ones only), ids and status. */
  commitTo(state: EngineState): void {
    for (const order of this.working.values()) {
      const key = `${order.userId}:${order.clientOrderId}`
      if (terminal.has(order.status)) {
        state.orders.delete(order.id)
        if (state.clientIndex.get(key) === order.id) state.clientIndex.delete(key)
      } else {
        state.orders.set(order.id, order)
        state.clientIndex.set(key, order.id)
      }
    }
    state.lastOrderId = this.lastOrderId
    state.lastTradeId = this.lastTradeId
    state.status = this.status
  }
}

function bookCommand(order: PreparedOrder, id: bigint): BookCommand {
  const common = {
    orderId: String(id),
    userId: String(order.userId),
    side: order.side,
    stpMode: order.stpMode,
  }
  if (order.type === 'MARKET') {
    return order.quantity === null
      ? { type: 'market', ...common, quoteAmount: order.quoteAmount! }
      : { type: 'market', ...common, quantity: order.quantity }
  }
  return {
    type: 'limit',
    ...common,
    price: order.price!,
    quantity: order.quantity!,
    timeInForce: order.timeInForce,
    postOnly: order.type === 'LIMIT_MAKER',
  }
}

/**
 * What a new order takes from its owner's available funds: what it paid in its own trades plus what rests
 * in the book (quote units for a buy, lots for a sell). Trades settle from exactly this frozen amount.
 */
function consumption(events: readonly BookEvent[], orderId: string, order: PreparedOrder): number {
  let taken = 0
  let resting = 0
  for (const e of events) {
    if (e.type === 'trade' && e.takerOrderId === orderId)
      taken += order.side === 'BUY' ? e.quoteAmount : e.quantity
  }
  const finalUpdate = events.findLast((e): e is OrderUpdated => e.type === 'order' && e.orderId === orderId)
  const rests =
    finalUpdate === undefined ? events.some((e) => e.type === 'accepted') : !terminal.has(finalUpdate.status)
  if (rests) {
    const remaining = finalUpdate?.remainingQuantity ?? order.quantity!
    resting = order.side === 'BUY' ? remaining * order.price! : remaining
  }
  return taken + resting
}

export function orderView(units: MarketUnits, order: LiveOrder): OrderView {
  return {
    symbol: units.symbol,
    orderId: String(order.id),
    clientOrderId: order.clientOrderId,
    userId: String(order.userId),
    side: order.side,
    type: order.type,
    timeInForce: order.timeInForce,
    selfTradePreventionMode: order.stpMode,
    price: order.price === null ? units.price(0) : units.price(order.price),
    origQty: units.quantity(order.quantity ?? order.executedQuantity),
    origQuoteOrderQty: order.quoteAmount === null ? units.quote(0) : units.quote(order.quoteAmount),
    executedQty: units.quantity(order.executedQuantity),
    cummulativeQuoteQty: units.quote(order.executedQuote),
    status: order.status,
    time: order.createdAt.getTime(),
    updateTime: order.updatedAt.getTime(),
  }
}
