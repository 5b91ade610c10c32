/**
 * The events an engine commits to the outbox with each batch and the relay publishes on the bus, one topic
 * each. Every event carries its market and the market's sequence number (`seq`, 1, 2, 3, … without gaps),
 * so consumers drop duplicates and notice gaps. Amounts are decimal strings; times are epoch milliseconds.
 */
import type { OrderStatus, Side, StpMode, TimeInForce } from './book/types.ts'

export type OrderType = 'LIMIT' | 'MARKET' | 'LIMIT_MAKER'

interface Sequenced {
  market: string
  seq: string
}

export interface TradeEvent extends Sequenced {
  topic: 'trades'
  tradeId: string
  price: string
  quantity: string
  quoteQuantity: string
  buyerOrderId: string
  sellerOrderId: string
  buyerUserId: string
  sellerUserId: string
  /** True when the buyer's order was resting in the book (the seller took). */
  buyerIsMaker: boolean
  /** The buyer's fee, in the base asset (absent from events committed before fees were carried). */
  buyerCommission?: string
  buyerCommissionAsset?: string
  /** The seller's fee, in the quote asset. */
  sellerCommission?: string
  sellerCommissionAsset?: string
  time: number
}

/** An order as clients see it, Binance's field names where they have one. */
export interface OrderView {
  symbol: string
  orderId: string
  clientOrderId: string
  userId: string
  side: Side
  type: OrderType
  timeInForce: TimeInForce
  selfTradePreventionMode: StpMode
  /** '0' for market orders, as Binance sends it. */
  price: string
  /** For an order by quote amount (no quantity of its own), the quantity it came to, as Binance shows it. */
  origQty: string
  origQuoteOrderQty: string
  executedQty: string
  cummulativeQuoteQty: string
  status: OrderStatus
  time: number
  updateTime: number
}

export interface OrderEvent extends Sequenced {
  topic: 'orders'
  order: OrderView
}

export interface BalanceEvent extends Sequenced {
  topic: 'balances'
  userId: string
  asset: string
  available: string
  frozen: string
  time: number
}

export interface MarketStatusEvent extends Sequenced {
  topic: 'market'
  status: 'trading' | 'halted'
  time: number
}

export type EngineEvent = TradeEvent | OrderEvent | BalanceEvent | MarketStatusEvent
export type EngineEventTopic = EngineEvent['topic']

/**
 * What one committed batch did to the book, for the diff-depth streams (not an outbox event: the engine hands it
 * to `onDepth` after the commit). The batch's events are seqs `firstSeq`..`lastSeq`, and the REST depth's
 * `lastUpdateId` is the engine's last seq, so these are Binance's `U` and `u`: every batch that commits gives
 * one, levels or not, and `firstSeq` is always the previous one's `lastSeq` + 1. `bids`/`asks` hold the new
 * quantity of each level the batch changed ('0…' when it emptied); `top` is the best 20 levels a side after it.
 */
export interface DepthUpdate {
  market: string
  firstSeq: string
  lastSeq: string
  time: number
  bids: [string, string][]
  asks: [string, string][]
  top: { bids: [string, string][]; asks: [string, string][] }
}
