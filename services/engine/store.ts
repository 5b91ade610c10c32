/**
 * The engine's Postgres side: claiming the market's fencing epoch, loading open orders to rebuild the
 * book, reading balances, and writing one batch — fence check, ledger booking, orders, trades and outbox
 * events — in one call.
 */
import { type SQL, sql } from 'drizzle-orm'
import {
  databaseError,
  type Executor,
  pgArray,
  queryRows,
  statementFailed,
} from '../../adapters/db/database.ts'
import {
  type BalanceJson,
  bookingColumns,
  type Movement,
  rethrowLedgerError,
  type UserBalance,
  userBalance,
} from '../../ledger/ledger.ts'
import { BourseError } from '../../lib/errors.ts'
import type { OrderStatus, Side, StpMode, TimeInForce } from './book/types.ts'
import type { EngineEventTopic, OrderType } from './events.ts'
import type { MarketRow } from './market.ts'

export interface Claim {
  epoch: bigint
  lastSeq: bigint
  lastOrderId: bigint
  lastTradeId: bigint
  market: MarketRow
}

/** Takes the market over: a newer epoch, so that an older engine still running can commit nothing more. */
export async function claimMarket(db: Executor, symbol: string): Promise<Claim> {
  const [row] = await queryRows<{
    epoch: bigint
    last_seq: bigint
    last_order_id: bigint
    last_trade_id: bigint
    symbol: string
    base: string
    quote: string
    tick_size: string
    lot_size: string
    min_notional: string
    maker_fee: string
    taker_fee: string
    status: 'trading' | 'halted'
  }>(
    db,
    sql`update markets set epoch = epoch + 1 where symbol = ${symbol}
        returning epoch, last_seq, last_order_id, last_trade_id, symbol, base, quote, tick_size::text,
                  lot_size::text, min_notional::text, maker_fee::text, taker_fee::text, status`,
  )
  if (row === undefined)
    throw new BourseError('not_found', `market ${symbol} does not exist`, { field: 'market' })
  return {
    epoch: row.epoch,
    lastSeq: row.last_seq,
    lastOrderId: row.last_order_id,
    lastTradeId: row.last_trade_id,
    market: {
      symbol: row.symbol,
      base: row.base,
      quote: row.quote,
      tickSize: row.tick_size,
      lotSize: row.lot_size,
      minNotional: row.min_notional,
      makerFee: row.maker_fee,
      takerFee: row.taker_fee,
      status: row.status,
    },
  }
}

/** An order as the engine keeps it and writes it; decimals as strings. */
export interface OrderRow {
  id: bigint
  userId: bigint
  clientOrderId: string
  side: Side
  type: OrderType
  timeInForce: TimeInForce
  selfTradePrevention: StpMode
  price: string | null
  quantity: string | null
  quoteQuantity: string | null
  executedQuantity: string
  cumulativeQuoteQuantity: string
  frozenRemaining: string
  status: OrderStatus
  createdAt: Date
  updatedAt: Date
}

export async function loadOpenOrders(db: Executor, symbol: string): Promise<OrderRow[]> {
  const rows = await queryRows<Record<string, unknown>>(
    db,
    sql`select id, user_id, client_order_id, side, type, time_in_force, self_trade_prevention, price::text,
               quantity::text, quote_quantity::text, executed_quantity::text, cumulative_quote_quantity::text,
               frozen_remaining::text, status, created_at, updated_at
        from orders where market = ${symbol} and status in ('NEW', 'PARTIALLY_FILLED') order by id`,
  )
  return rows.map((r) => ({
    id: r.id as bigint,
    userId: r.user_id as bigint,
    clientOrderId: r.client_order_id as string,
    side: r.side as Side,
    type: r.type as OrderType,
    timeInForce: r.time_in_force as TimeInForce,
    selfTradePrevention: r.self_trade_prevention as StpMode,
    price: r.price as string | null,
    quantity: r.quantity as string | null,
    quoteQuantity: r.quote_quantity as string | null,
    executedQuantity: r.executed_quantity as string,
    cumulativeQuoteQuantity: r.cumulative_quote_quantity as string,
    frozenRemaining: r.frozen_remaining as string,
    status: r.status as OrderStatus,
    // drizzle has postgres.js hand timestamps over as text, PGlite as Date: both parse.
    createdAt: new Date(r.created_at as string | Date),
    updatedAt: new Date(r.updated_at as string | Date),
  }))
}

/** Available balances of (user, asset) pairs, read without locks: the booking checks again under its locks. */
export async function readAvailable(
  db: Executor,
  pairs: readonly { userId: bigint; asset: string }[],
): Promise<Map<string, string>> {
  const rows = await queryRows<{ user_id: bigint; asset: string; available: string }>(
    db,
    sql`select a.user_id, a.asset, a.available::text from accounts a
        join unnest(${pgArray(pairs.map((p) => String(p.userId)))}::int8[], ${pgArray(pairs.map((p) => p.asset))}::text[])
          as w(user_id, asset) on a.user_id = w.user_id and a.asset = w.asset`,
  )
  return new Map(rows.map((r) => [availableKey(r.user_id, r.asset), r.available]))
}

export const availableKey = (userId: bigint, asset: string) => `${userId}:${asset}`

export interface TradeRow {
  id: bigint
  takerOrderId: bigint
  makerOrderId: bigint
  buyerUserId: bigint
  sellerUserId: bigint
  buyerIsMaker: boolean
  price: string
  quantity: string
  quoteQuantity: string
  buyerFee: string
  sellerFee: string
  createdAt: Date
}

export interface BatchWrite {
  symbol: string
  epoch: bigint
  /** The seq of the batch's first outbox event. */
  firstSeq: bigint
  lastOrderId: bigint
  lastTradeId: bigint
  status: 'trading' | 'halted'
  /** When the batch ran, in ms: its balance events carry it. */
  time: number
  movements: Movement[]
  orders: OrderRow[]
  trades: TradeRow[]
  /** The batch's outbox events, in order; the users' balances after its booking follow them. */
  events: { topic: EngineEventTopic; payload: unknown }[]
}

export class FencedError extends BourseError {
  constructor(symbol: string, epoch: bigint) {
    super('conflict', `market ${symbol}: epoch ${epoch} was superseded by a newer engine`)
  }
}

/** writeBatch lost its answer (a connection lost, a FATAL): Postgres may or may not hold the batch. */
export class CommitOutcomeUnknown extends BourseError {
  constructor(symbol: string, cause: unknown) {
    super('outcome_unknown', `market ${symbol}: the batch's commit went unanswered`, { cause })
  }
}

/** A committed batch: the seq of its last outbox event, and the users' balances its booking left. */
export interface CommittedBatch {
  lastSeq: bigint
  balances: UserBalance[]
}

/**
 * Writes one batch in one call of the database's `engine_commit` (migrations/0012_one_call_bookings.sql), its
 * own transaction. A FencedError means a newer engine has claimed the market, and nothing is written; after
 * a CommitOutcomeUnknown only `committedSeq` can tell whether the batch was.
 */
export async function writeBatch(db: Executor, batch: BatchWrite): Promise<CommittedBatch> {
  const [row] = await queryRows<{ committed: { lastSeq: string; balances: BalanceJson[] } }>(
    db,
    sql`select engine_commit(${batch.symbol}, ${batch.epoch}::int8, ${batch.firstSeq}::int8,
          ${batch.lastOrderId}::int8, ${batch.lastTradeId}::int8, ${batch.status}, ${batch.time}::int8,
          ${JSON.stringify(batch.events)}::jsonb, ${bookingColumns(batch.movements)}, ${orderColumns(batch.orders)},
          ${tradeColumns(batch.trades)}) as committed`,
  ).catch((err: unknown) => {
    if (!statementFailed(err)) throw new CommitOutcomeUnknown(batch.symbol, err)
    if (databaseError(err, 'BRFEN') !== undefined) throw new FencedError(batch.symbol, batch.epoch)
    return rethrowLedgerError(err)
  })
  const { lastSeq, balances } = row!.committed
  return { lastSeq: BigInt(lastSeq), balances: balances.map(userBalance) }
}

/**
 * The seq of the market's last committed event, as Postgres holds it now: a batch whose answer was lost
 * committed if this reached its first seq. A FencedError if another engine has claimed the market since.
 */
export async function committedSeq(db: Executor, symbol: string, epoch: bigint): Promise<bigint> {
  const [row] = await queryRows<{ epoch: bigint; last_seq: bigint }>(
    db,
    sql`select epoch, last_seq from markets where symbol = ${symbol}`,
  )
  if (row!.epoch !== epoch) throw new FencedError(symbol, epoch)
  return row!.last_seq
}

const iso = (d: Date) => d.toISOString()

function orderColumns(orders: readonly OrderRow[]): SQL {
  const c = (pick: (o: OrderRow) => string | null) => pgArray(orders.map(pick))
  const text = <K extends keyof OrderRow>(key: K) => c((o) => (o[key] === null ? null : String(o[key])))
  return sql`${text('id')}::int8[], ${text('userId')}::int8[], ${text('clientOrderId')}::text[],
    ${text('side')}::text[], ${text('type')}::text[], ${text('timeInForce')}::text[],
    ${text('selfTradePrevention')}::text[], ${text('price')}::numeric[], ${text('quantity')}::numeric[],
    ${text('quoteQuantity')}::numeric[], ${text('executedQuantity')}::numeric[],
    ${text('cumulativeQuoteQuantity')}::numeric[], ${text('frozenRemaining')}::numeric[], ${text('status')}::text[],
    ${c((o) => iso(o.createdAt))}::timestamptz[], ${c((o) => iso(o.updatedAt))}::timestamptz[]`
}

function tradeColumns(trades: readonly TradeRow[]): SQL {
  const c = (pick: (t: TradeRow) => string) => pgArray(trades.map(pick))
  const text = <K extends keyof TradeRow>(key: K) => c((t) => String(t[key]))
  return sql`${text('id')}::int8[], ${text('takerOrderId')}::int8[], ${text('makerOrderId')}::int8[],
    ${text('buyerUserId')}::int8[], ${text('sellerUserId')}::int8[], ${text('buyerIsMaker')}::bool[],
    ${text('price')}::numeric[], ${text('quantity')}::numeric[], ${text('quoteQuantity')}::numeric[],
    ${text('buyerFee')}::numeric[], ${text('sellerFee')}::numeric[], ${c((t) => iso(t.createdAt))}::timestamptz[]`
}
