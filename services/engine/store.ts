/**
 * The engine's Postgres side: claiming the market's fencing epoch, loading open orders to rebuild the
 * book, reading balances, and writing one batch — fence check, ledger booking, orders, trades and outbox
 * events — in the caller's transaction.
 */
import { sql } from 'drizzle-orm'
import { type Executor, queryRows } from '../../adapters/db/database.ts'
import { insertOutbox } from '../../adapters/db/outbox.ts'
import { type Movement, pgArray, startBooking, type UserBalance } from '../../ledger/ledger.ts'
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
  movements: Movement[]
  orders: OrderRow[]
  trades: TradeRow[]
  /** Called with the users' balances after the booking; returns the batch's outbox events, in order. */
  events(balances: readonly UserBalance[]): { topic: EngineEventTopic; payload: unknown }[]
}

export class FencedError extends BourseError {
  constructor(symbol: string, epoch: bigint) {
    super('conflict', `market ${symbol}: epoch ${epoch} was superseded by a newer engine`)
  }
}

/**
 * Writes one batch and returns the seq of its last outbox event. The market row is locked first and its
 * epoch checked: a FencedError means a newer engine has claimed the market, and nothing is written.
 */
export async function writeBatch(tx: Executor, batch: BatchWrite): Promise<bigint> {
  // The fence goes out first, with the booking's reads; the booking writes only once the fence has passed.
  const fence = queryRows<{ symbol: string }>(
    tx,
    sql`select symbol from markets where symbol = ${batch.symbol} and epoch = ${batch.epoch} for update`,
  ).then((rows) => {
    if (rows.length === 0) throw new FencedError(batch.symbol, batch.epoch)
  })
  const booking =
    batch.movements.length === 0
      ? undefined
      : startBooking(
          tx,
          {
            key: `engine:${batch.symbol}:${batch.firstSeq}`,
            kind: 'engine_batch',
            movements: batch.movements,
          },
          fence,
        )
  booking?.catch(() => {}) // awaited below, after the fence, whose error is the one to report
  await fence
  const booked = await booking
  const events = batch.events(booked?.userBalances ?? [])
  const lastSeq = batch.firstSeq + BigInt(events.length) - 1n
  // The writes go out together with the booking's: postgres.js pipelines them on the transaction's connection.
  await Promise.all([
    booked?.journalId,
    upsertOrders(tx, batch.symbol, batch.orders),
    insertTrades(tx, batch.symbol, batch.trades),
    insertOutbox(tx, batch.symbol, batch.firstSeq, events),
    tx.execute(
      sql`update markets set last_seq = ${lastSeq}, last_order_id = ${batch.lastOrderId},
                 last_trade_id = ${batch.lastTradeId}, status = ${batch.status}
          where symbol = ${batch.symbol}`,
    ),
  ])
  return lastSeq
}

const column = <T>(rows: readonly T[], pick: (row: T) => string | null) => pgArray(rows.map(pick))
const iso = (d: Date) => d.toISOString()

async function upsertOrders(tx: Executor, symbol: string, orders: readonly OrderRow[]): Promise<void> {
  if (orders.length === 0) return
  const c = <K extends keyof OrderRow>(key: K) =>
    column(orders, (o) => (o[key] === null ? null : String(o[key])))
  await tx.execute(
    sql`insert into orders (market, id, user_id, client_order_id, side, type, time_in_force, self_trade_prevention,
                            price, quantity, quote_quantity, executed_quantity, cumulative_quote_quantity,
                            frozen_remaining, status, created_at, updated_at)
        select ${symbol}, * from unnest(${c('id')}::int8[], ${c('userId')}::int8[], ${c('clientOrderId')}::text[],
          ${c('side')}::text[], ${c('type')}::text[], ${c('timeInForce')}::text[], ${c('selfTradePrevention')}::text[],
          ${c('price')}::numeric[], ${c('quantity')}::numeric[], ${c('quoteQuantity')}::numeric[],
          ${c('executedQuantity')}::numeric[], ${c('cumulativeQuoteQuantity')}::numeric[], ${c('frozenRemaining')}::numeric[],
          ${c('status')}::text[], ${column(orders, (o) => iso(o.createdAt))}::timestamptz[],
          ${column(orders, (o) => iso(o.updatedAt))}::timestamptz[])
        on conflict (market, id) do update set executed_quantity = excluded.executed_quantity,
          cumulative_quote_quantity = excluded.cumulative_quote_quantity, frozen_remaining = excluded.frozen_remaining,
          status = excluded.status, updated_at = excluded.updated_at`,
  )
}

async function insertTrades(tx: Executor, symbol: string, trades: readonly TradeRow[]): Promise<void> {
  if (trades.length === 0) return
  const c = <K extends keyof TradeRow>(key: K) => column(trades, (t) => String(t[key]))
  await tx.execute(
    sql`insert into trades (market, id, taker_order_id, maker_order_id, buyer_user_id, seller_user_id, buyer_is_maker,
                            price, quantity, quote_quantity, buyer_fee, seller_fee, created_at)
        select ${symbol}, * from unnest(${c('id')}::int8[], ${c('takerOrderId')}::int8[], ${c('makerOrderId')}::int8[],
          ${c('buyerUserId')}::int8[], ${c('sellerUserId')}::int8[], ${c('buyerIsMaker')}::bool[], ${c('price')}::numeric[],
          ${c('quantity')}::numeric[], ${c('quoteQuantity')}::numeric[], ${c('buyerFee')}::numeric[],
          ${c('sellerFee')}::numeric[], ${column(trades, (t) => iso(t.createdAt))}::timestamptz[])`,
  )
}
