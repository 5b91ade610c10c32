/**
 * One side of the book: price levels kept sorted for O(1) best-price access, each level a FIFO of
 * orders as an intrusive doubly linked list, so removing any order is O(1) and a level of thousands
 * of orders costs no more to match against than a level of one.
 */
import type { OpenOrder, Side } from './types.ts'

/** An order inside the book. The links belong to BookSide; everything else to the OrderBook. */
export class BookOrder {
  readonly id: string
  readonly userId: string
  readonly side: Side
  /** Ticks. */
  readonly price: number
  /** Original lots. */
  readonly quantity: number
  /** Arrival order, for time priority across levels (cancel-all reports in this order). */
  readonly seq: number
  remaining: number
  executedQuote: number
  prev: BookOrder | null = null
  next: BookOrder | null = null
  level: PriceLevel | null = null

  constructor(open: OpenOrder, seq: number) {
    this.id = open.orderId
    this.userId = open.userId
    this.side = open.side
    this.price = open.price
    this.quantity = open.quantity
    this.remaining = open.remainingQuantity
    this.executedQuote = open.executedQuote
    this.seq = seq
  }

  toOpenOrder(): OpenOrder {
    return {
      orderId: this.id,
      userId: this.userId,
      side: this.side,
      price: this.price,
      quantity: this.quantity,
      remainingQuantity: this.remaining,
      executedQuote: this.executedQuote,
    }
  }
}

export class PriceLevel {
  readonly price: number
  /** Sort key: larger is better for this side. */
  readonly key: number
  head: BookOrder | null = null
  tail: BookOrder | null = null
  /** Sum of the remaining lots of its orders. */
  quantity = 0
  orderCount = 0

  constructor(price: number, key: number) {
    this.price = price
    this.key = key
  }
}

export class BookSide {
  readonly side: Side
  /** +1 for bids (higher is better), -1 for asks; key = sign × price. */
  private readonly sign: number
  private readonly levelsByPrice = new Map<number, PriceLevel>()
  /** Worst to best by key, so the best level is the last element and leaves with a pop. */
  private readonly sorted: PriceLevel[] = []

  constructor(side: Side) {
    this.side = side
    this.sign = side === 'BUY' ? 1 : -1
  }

  best(): PriceLevel | undefined {
    return this.sorted[this.sorted.length - 1]
  }

  /** Levels from best to worst. */
  *levels(): Generator<PriceLevel> {
    for (let i = this.sorted.length - 1; i >= 0; i--) yield this.sorted[i]!
  }

  /** The lots resting at `price` (0 when no order rests there). */
  quantityAt(price: number): number {
    return this.levelsByPrice.get(price)?.quantity ?? 0
  }

  get levelCount(): number {
    return this.sorted.length
  }

  /** Adds the order at the back of its price's queue. */
  append(order: BookOrder): void {
    const level =
      this.levelsByPrice.get(order.price) ??
      this.addLevel(new PriceLevel(order.price, this.sign * order.price))
    this.linkAfter(order, level, level.tail)
  }

  /** Takes the order out of its level, dropping the level once empty. */
  unlink(order: BookOrder): void {
    const level = order.level!
    if (order.prev === null) level.head = order.next
    else order.prev.next = order.next
    if (order.next === null) level.tail = order.prev
    else order.next.prev = order.prev
    level.quantity -= order.remaining
    level.orderCount--
    order.prev = null
    order.next = null
    if (level.orderCount === 0) this.removeLevel(level)
  }

  /** Puts an unlinked order back right behind `prev` (at the front when null): the undo of unlink. */
  relink(order: BookOrder, prev: BookOrder | null): void {
    const level = order.level!
    if (level.orderCount === 0) this.addLevel(level)
    this.linkAfter(order, level, prev)
  }

  /** Lowers an order's remaining lots in place; it keeps its time priority. */
  reduce(order: BookOrder, lots: number): void {
    order.remaining -= lots
    order.level!.quantity -= lots
  }

  private linkAfter(order: BookOrder, level: PriceLevel, prev: BookOrder | null): void {
    const next = prev === null ? level.head : prev.next
    order.level = level
    order.prev = prev
    order.next = next
    if (prev === null) level.head = order
    else prev.next = order
    if (next === null) level.tail = order
    else next.prev = order
    level.quantity += order.remaining
    level.orderCount++
  }

  private addLevel(level: PriceLevel): PriceLevel {
    this.levelsByPrice.set(level.price, level)
    const sorted = this.sorted
    // New levels mostly land near the best end, so search from there.
    let index = sorted.length
    if (index > 0 && sorted[index - 1]!.key > level.key) index = this.insertionIndex(level.key)
    if (index === sorted.length) sorted.push(level)
    else sorted.splice(index, 0, level)
    return level
  }

  private removeLevel(level: PriceLevel): void {
    this.levelsByPrice.delete(level.price)
    const sorted = this.sorted
    if (sorted[sorted.length - 1] === level) sorted.pop()
    else sorted.splice(this.insertionIndex(level.key) - 1, 1)
  }

  /** The index of the first level whose key is greater than `key`. */
  private insertionIndex(key: number): number {
    let low = 0
    let high = this.sorted.length
    while (low < high) {
      const mid = (low + high) >>> 1
      if (this.sorted[mid]!.key <= key) low = mid + 1
      else high = mid
    }
    return low
  }
}
