/**
 * Plain data shapes of the in-memory order book: the market config, the commands the book executes
 * and the events it emits. Every price is an integer count of ticks and every quantity an integer
 * count of lots (safe integers); converting decimal strings to and from these units happens outside
 * the book.
 */
import type { ErrorCode } from '../../../lib/errors.ts'

export type Side = 'BUY' | 'SELL'
export type TimeInForce = 'GTC' | 'IOC' | 'FOK'
/** Binance's self-trade prevention modes; the taker's mode decides, as on Binance. */
export type StpMode = 'NONE' | 'EXPIRE_TAKER' | 'EXPIRE_MAKER' | 'EXPIRE_BOTH'
export type OrderStatus = 'NEW' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELED' | 'EXPIRED' | 'EXPIRED_IN_MATCH'

/**
 * One market's trading rules.
 *
 * Units: the book never sees decimals. A price of `p` means `p × tickSize` quote per base unit and a
 * quantity of `q` means `q × lotSize` base units, so the quote value of `q` lots at `p` ticks is
 * `p × q × tickSize × lotSize`. The book calls `p × q` the notional in "tick×lot units", one unit
 * being `tickSize × lotSize` quote. `minNotional` and quote amounts of market orders are in these
 * units: with tickSize 0.01 and lotSize 0.0001 one unit is 0.000001 quote, so a minimum notional of
 * 10 USDT is `10 / 0.000001 = 10_000_000` (round a non-integer result up, so the minimum still holds).
 */
export interface MarketConfig {
  symbol: string
  /** Decimal string, quote per tick (e.g. '0.01'); the book's price unit. */
  tickSize: string
  /** Decimal string, base per lot (e.g. '0.0001'); the book's quantity unit. */
  lotSize: string
  /** Smallest accepted order value, in tick×lot units (see above). */
  minNotional: number
  /** Price band in ticks (PRICE_FILTER); defaults 1 and Number.MAX_SAFE_INTEGER. */
  minPrice?: number
  maxPrice?: number
  /** Order size bounds in lots (LOT_SIZE); defaults 1 and Number.MAX_SAFE_INTEGER. */
  minQuantity?: number
  maxQuantity?: number
  /** Fee rates as decimal strings (e.g. '0.001'). Carried for the ledger; the book computes no fees. */
  makerFeeRate: string
  takerFeeRate: string
  /** STP mode of orders that do not name one. */
  defaultStpMode: StpMode
}

export interface LimitOrderCommand {
  type: 'limit'
  orderId: string
  userId: string
  side: Side
  /** Ticks. */
  price: number
  /** Lots. */
  quantity: number
  /** Default GTC. */
  timeInForce?: TimeInForce
  /** Rejected instead of taking liquidity (Binance LIMIT_MAKER); GTC only. */
  postOnly?: boolean
  stpMode?: StpMode
}

/**
 * Exactly one of `quantity` (lots of base) and `quoteAmount` (tick×lot units of quote). Always IOC.
 * By quote amount, matching stops at the first maker price where the quote left cannot buy one lot.
 */
export interface MarketOrderCommand {
  type: 'market'
  orderId: string
  userId: string
  side: Side
  quantity?: number
  quoteAmount?: number
  stpMode?: StpMode
}

export interface CancelCommand {
  type: 'cancel'
  orderId: string
  /** Only the owner may cancel; another user's order is reported as unknown. */
  userId: string
}

export interface CancelAllCommand {
  type: 'cancelAll'
  userId: string
}

export interface HaltCommand {
  type: 'halt'
}

export interface ResumeCommand {
  type: 'resume'
}

export type BookCommand =
  | LimitOrderCommand
  | MarketOrderCommand
  | CancelCommand
  | CancelAllCommand
  | HaltCommand
  | ResumeCommand

/** The order entered the book's matching: status NEW. Carries everything needed to store the order. */
export interface OrderAccepted {
  type: 'accepted'
  orderId: string
  userId: string
  side: Side
  orderType: 'LIMIT' | 'MARKET'
  /** Null for market orders. */
  price: number | null
  /** Null for market orders by quote amount. */
  quantity: number | null
  /** Set for market orders by quote amount only. */
  quoteAmount: number | null
  timeInForce: TimeInForce
  postOnly: boolean
  stpMode: StpMode
}

/** The command had no effect. `code` maps onto BourseError (see rejectionError). */
export interface CommandRejected {
  type: 'rejected'
  command: BookCommand['type']
  orderId: string | null
  userId: string | null
  code: ErrorCode
  /** Text a client can show, in Binance's wording where Binance has one. */
  reason: string
  field: string | null
}

/** Why an order left the book other than by filling. */
export type OrderEndReason =
  | 'CANCELED_BY_USER'
  | 'UNFILLED_IOC_QUANTITY_EXPIRED'
  | 'UNFILLED_FOK_ORDER_EXPIRED'
  | 'INSUFFICIENT_LIQUIDITY'
  | 'QUOTE_AMOUNT_BELOW_ONE_LOT'
  | 'SELF_TRADE_PREVENTION'

/** An order changed state. Quantities are cumulative: executed + remaining + ended = original. */
export interface OrderUpdated {
  type: 'order'
  orderId: string
  userId: string
  side: Side
  status: OrderStatus
  /** Lots executed so far. */
  executedQuantity: number
  /** Quote executed so far, tick×lot units. */
  executedQuote: number
  /** Lots still resting in the book (0 once the order is done). */
  remainingQuantity: number
  reason: OrderEndReason | null
}

/** A fill, always at the maker's price. */
export interface Trade {
  type: 'trade'
  price: number
  quantity: number
  /** price × quantity, tick×lot units. */
  quoteAmount: number
  takerSide: Side
  makerOrderId: string
  makerUserId: string
  takerOrderId: string
  takerUserId: string
}

/** A match that self-trade prevention stopped (Binance's "prevented match"). */
export interface PreventedMatch {
  type: 'preventedMatch'
  takerOrderId: string
  makerOrderId: string
  userId: string
  stpMode: StpMode
  price: number
  /** Lots of the maker that did not trade. */
  makerPreventedQuantity: number
}

export interface MarketStatusChanged {
  type: 'marketStatus'
  status: 'TRADING' | 'HALTED'
}

export type BookEvent =
  | OrderAccepted
  | CommandRejected
  | OrderUpdated
  | Trade
  | PreventedMatch
  | MarketStatusChanged

/** A resting order as it is loaded from storage, restored, and snapshotted. */
export interface OpenOrder {
  orderId: string
  userId: string
  side: Side
  price: number
  /** Original lots. */
  quantity: number
  /** Lots still open. */
  remainingQuantity: number
  /** Quote executed so far, tick×lot units. */
  executedQuote: number
}

/** The whole book, canonical: two equal books have deeply equal snapshots. */
export interface BookSnapshot {
  halted: boolean
  /** Best price first, time priority within a price. */
  bids: OpenOrder[]
  asks: OpenOrder[]
}

export interface DepthLevel {
  price: number
  quantity: number
  orderCount: number
}

export interface Depth {
  bids: DepthLevel[]
  asks: DepthLevel[]
}
