/**
 * History reads over both stores: recent rows from Postgres, archived ones from ClickHouse, merged so a
 * client never sees the seam. Each store answers the same filter, order and limit; the union (Postgres'
 * row wins where both hold one: it is the fresher) is sorted and cut to the limit again, which is exactly
 * the page one store holding everything would give, since the first `limit` rows of a union are among the
 * first `limit` of each part. Without an analytics client, Postgres alone answers (as before archiving).
 *
 * Paging follows Binance: with orderId/fromId or startTime the oldest matching rows come first (ids up from
 * there), otherwise the newest `limit` rows; either way the page is returned in ascending id order.
 */
import { and, asc, desc, eq, gte, lte, or, type SQL } from 'drizzle-orm'
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import type { Executor } from '../../adapters/db/database.ts'
import { accounts, ledgerEntries, orders, trades } from '../../adapters/db/schema.ts'
import { LEDGER_HISTORY, ORDER_HISTORY, USER_TRADES } from './tables.ts'

export type OrderRow = typeof orders.$inferSelect
export type TradeRow = typeof trades.$inferSelect

export interface HistorySources {
  db: Executor
  /** The ClickHouse copy; omitted, Postgres alone is read. */
  analytics?: Analytics | undefined
}

export interface OrderQuery {
  market: string
  userId: bigint
  /** Orders with this id and above. */
  orderId?: bigint | undefined
  /** Epoch milliseconds, on the order's creation time, inclusive. */
  startTime?: number | undefined
  endTime?: number | undefined
  limit: number
}

export interface TradeQuery {
  market: string
  /** The trades this user was buyer or seller in; omitted, every trade of the market. */
  userId?: bigint | undefined
  /** Trades of this order of the user's (as taker or maker). */
  orderId?: bigint | undefined
  /** Trades with this id and above. */
  fromId?: bigint | undefined
  startTime?: number | undefined
  endTime?: number | undefined
  limit: number
}

export interface LedgerQuery {
  userId: bigint
  asset?: string | undefined
  fromId?: bigint | undefined
  startTime?: number | undefined
  endTime?: number | undefined
  limit: number
}

export interface LedgerRow {
  id: bigint
  journalId: bigint
  accountId: bigint
  asset: string
  bucket: string
  amount: string
  reason: string
  refType: string
  refId: string
  createdAt: Date
}

/** Binance's allOrders page. */
export async function orderHistory(src: HistorySources, q: OrderQuery): Promise<OrderRow[]> {
  const oldestFirst = q.orderId !== undefined || q.startTime !== undefined
  const conditions: SQL[] = [eq(orders.market, q.market), eq(orders.userId, q.userId)]
  if (q.orderId !== undefined) conditions.push(gte(orders.id, q.orderId))
  if (q.startTime !== undefined) conditions.push(gte(orders.createdAt, new Date(q.startTime)))
  if (q.endTime !== undefined) conditions.push(lte(orders.createdAt, new Date(q.endTime)))
  const recent = await src.db
    .select()
    .from(orders)
    .where(and(...conditions))
    .orderBy(oldestFirst ? asc(orders.id) : desc(orders.id))
    .limit(q.limit)
  if (src.analytics === undefined) return page(recent, [], oldestFirst, q.limit)
  const where = ['user_id = {userId:UInt64}', 'market = {market:String}']
  if (q.orderId !== undefined) where.push('id >= {orderId:UInt64}')
  where.push(...timeFilters(q))
  const archived = await chRows<ChOrder>(
    src.analytics,
    `SELECT ${ORDER_COLUMNS}
     FROM ${ORDER_HISTORY} FINAL WHERE ${where.join(' AND ')}
     ORDER BY id ${oldestFirst ? 'ASC' : 'DESC'} LIMIT {limit:UInt32}`,
    params(q),
  )
  return page(recent, archived.map(orderFromClickHouse), oldestFirst, q.limit)
}

/** An order by id, or the newest with a client order id, wherever it is. */
export async function findOrder(
  src: HistorySources,
  q: { market: string; userId: bigint; orderId?: bigint | undefined; clientOrderId?: string | undefined },
): Promise<OrderRow | undefined> {
  const conditions = [eq(orders.market, q.market), eq(orders.userId, q.userId)]
  if (q.orderId !== undefined) conditions.push(eq(orders.id, q.orderId))
  if (q.clientOrderId !== undefined) conditions.push(eq(orders.clientOrderId, q.clientOrderId))
  const [recent] = await src.db
    .select()
    .from(orders)
    .where(and(...conditions))
    .orderBy(desc(orders.id))
    .limit(1)
  // An id names one order: found in Postgres, it is not looked for in the archive.
  if (src.analytics === undefined || (recent !== undefined && q.orderId !== undefined)) return recent
  const where = ['user_id = {userId:UInt64}', 'market = {market:String}']
  if (q.orderId !== undefined) where.push('id = {orderId:UInt64}')
  if (q.clientOrderId !== undefined) where.push('client_order_id = {clientOrderId:String}')
  if (recent !== undefined) where.push('id > {recentId:UInt64}')
  const [archived] = await chRows<ChOrder>(
    src.analytics,
    `SELECT ${ORDER_COLUMNS}
     FROM ${ORDER_HISTORY} FINAL WHERE ${where.join(' AND ')} ORDER BY id DESC LIMIT 1`,
    {
      userId: String(q.userId),
      market: q.market,
      ...(q.orderId !== undefined && { orderId: String(q.orderId) }),
      ...(q.clientOrderId !== undefined && { clientOrderId: q.clientOrderId }),
      ...(recent !== undefined && { recentId: String(recent.id) }),
    },
  )
  return archived === undefined ? recent : orderFromClickHouse(archived)
}

/** Binance's myTrades page (the trades of a user), or its aggTrades page (every trade of the market). */
export async function tradeHistory(src: HistorySources, q: TradeQuery): Promise<TradeRow[]> {
  const oldestFirst = q.fromId !== undefined || q.startTime !== undefined
  const conditions: (SQL | undefined)[] = [eq(trades.market, q.market)]
  if (q.userId !== undefined)
    conditions.push(or(eq(trades.buyerUserId, q.userId), eq(trades.sellerUserId, q.userId)))
  if (q.orderId !== undefined)
    conditions.push(or(eq(trades.takerOrderId, q.orderId), eq(trades.makerOrderId, q.orderId)))
  if (q.fromId !== undefined) conditions.push(gte(trades.id, q.fromId))
  if (q.startTime !== undefined) conditions.push(gte(trades.createdAt, new Date(q.startTime)))
  if (q.endTime !== undefined) conditions.push(lte(trades.createdAt, new Date(q.endTime)))
  const recent = await src.db
    .select()
    .from(trades)
    .where(and(...conditions))
    .orderBy(oldestFirst ? asc(trades.id) : desc(trades.id))
    .limit(q.limit)
  if (src.analytics === undefined) return page(recent, [], oldestFirst, q.limit)
  const where = ['market = {market:String}']
  if (q.userId !== undefined)
    where.push('(buyer_user_id = {userId:UInt64} OR seller_user_id = {userId:UInt64})')
  if (q.orderId !== undefined)
    where.push('(taker_order_id = {orderId:UInt64} OR maker_order_id = {orderId:UInt64})')
  if (q.fromId !== undefined) where.push('id >= {fromId:UInt64}')
  where.push(...timeFilters(q))
  const archived = await chRows<ChTrade>(
    src.analytics,
    `SELECT ${TRADE_COLUMNS}
     FROM ${USER_TRADES} FINAL WHERE ${where.join(' AND ')}
     ORDER BY id ${oldestFirst ? 'ASC' : 'DESC'} LIMIT {limit:UInt32}`,
    params(q),
  )
  return page(recent, archived.map(tradeFromClickHouse), oldestFirst, q.limit)
}

/** A user's ledger entries (all assets or one), for a ledger history endpoint. */
export async function ledgerHistory(src: HistorySources, q: LedgerQuery): Promise<LedgerRow[]> {
  const oldestFirst = q.fromId !== undefined || q.startTime !== undefined
  const conditions: SQL[] = [eq(accounts.userId, q.userId)]
  if (q.asset !== undefined) conditions.push(eq(ledgerEntries.asset, q.asset))
  if (q.fromId !== undefined) conditions.push(gte(ledgerEntries.id, q.fromId))
  if (q.startTime !== undefined) conditions.push(gte(ledgerEntries.createdAt, new Date(q.startTime)))
  if (q.endTime !== undefined) conditions.push(lte(ledgerEntries.createdAt, new Date(q.endTime)))
  const recent: LedgerRow[] = await src.db
    .select({
      id: ledgerEntries.id,
      journalId: ledgerEntries.journalId,
      accountId: ledgerEntries.accountId,
      asset: ledgerEntries.asset,
      bucket: ledgerEntries.bucket,
      amount: ledgerEntries.amount,
      reason: ledgerEntries.reason,
      refType: ledgerEntries.refType,
      refId: ledgerEntries.refId,
      createdAt: ledgerEntries.createdAt,
    })
    .from(ledgerEntries)
    .innerJoin(accounts, eq(accounts.id, ledgerEntries.accountId))
    .where(and(...conditions))
    .orderBy(oldestFirst ? asc(ledgerEntries.id) : desc(ledgerEntries.id))
    .limit(q.limit)
  if (src.analytics === undefined) return page(recent, [], oldestFirst, q.limit)
  const where = ['user_id = {userId:UInt64}']
  if (q.asset !== undefined) where.push('asset = {asset:String}')
  if (q.fromId !== undefined) where.push('id >= {fromId:UInt64}')
  where.push(...timeFilters(q))
  const archived = await chRows<Record<string, string>>(
    src.analytics,
    `SELECT ${LEDGER_COLUMNS}
     FROM ${LEDGER_HISTORY} FINAL WHERE ${where.join(' AND ')}
     ORDER BY id ${oldestFirst ? 'ASC' : 'DESC'} LIMIT {limit:UInt32}`,
    params(q),
  )
  return page(
    recent,
    archived.map((r) => ({
      id: BigInt(r.id!),
      journalId: BigInt(r.journal_id!),
      accountId: BigInt(r.account_id!),
      asset: r.asset!,
      bucket: r.bucket!,
      amount: r.amount!,
      reason: r.reason!,
      refType: r.ref_type!,
      refId: r.ref_id!,
      createdAt: chTime(r.created_at!),
    })),
    oldestFirst,
    q.limit,
  )
}

// ---- merging

// Plain columns, never aliases (an alias would shadow its column in WHERE and ORDER BY); 64-bit integers and
// decimals arrive as JSON strings (the client quotes the integers, chRows the decimals), times as text.
const ORDER_COLUMNS = `market, id, user_id, client_order_id, side, type, time_in_force, self_trade_prevention, price,
  quantity, quote_quantity, executed_quantity, cumulative_quote_quantity, frozen_remaining, status, created_at, updated_at`
const TRADE_COLUMNS = `market, id, taker_order_id, maker_order_id, buyer_user_id, seller_user_id, buyer_is_maker, price,
  quantity, quote_quantity, buyer_fee, seller_fee, created_at`
const LEDGER_COLUMNS =
  'id, journal_id, account_id, asset, bucket, amount, reason, ref_type, ref_id, created_at'

function page<T extends { id: bigint }>(
  recent: T[],
  archived: T[],
  oldestFirst: boolean,
  limit: number,
): T[] {
  const byId = new Map<bigint, T>()
  for (const row of archived) byId.set(row.id, row)
  for (const row of recent) byId.set(row.id, row)
  const rows = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return oldestFirst ? rows.slice(0, limit) : rows.slice(Math.max(0, rows.length - limit))
}

function timeFilters(q: { startTime?: number | undefined; endTime?: number | undefined }): string[] {
  const out: string[] = []
  if (q.startTime !== undefined) out.push('created_at >= fromUnixTimestamp64Milli({startTime:Int64})')
  if (q.endTime !== undefined) out.push('created_at <= fromUnixTimestamp64Milli({endTime:Int64})')
  return out
}

function params(q: object): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(q)) if (v !== undefined) out[k] = typeof v === 'bigint' ? String(v) : v
  return out
}

async function chRows<T>(
  analytics: Analytics,
  query: string,
  query_params: Record<string, unknown>,
): Promise<T[]> {
  const result = await analytics.query({
    query,
    query_params,
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_decimals: 1 },
  })
  return result.json<T>()
}

/** ClickHouse's 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) as a Date (milliseconds, as Postgres' driver gives). */
function chTime(text: string): Date {
  return new Date(`${text.replace(' ', 'T').slice(0, 23)}Z`)
}

interface ChOrder {
  market: string
  id: string
  user_id: string
  client_order_id: string
  side: OrderRow['side']
  type: OrderRow['type']
  time_in_force: OrderRow['timeInForce']
  self_trade_prevention: OrderRow['selfTradePrevention']
  price: string | null
  quantity: string | null
  quote_quantity: string | null
  executed_quantity: string
  cumulative_quote_quantity: string
  frozen_remaining: string
  status: OrderRow['status']
  created_at: string
  updated_at: string
}

function orderFromClickHouse(r: ChOrder): OrderRow {
  return {
    market: r.market,
    id: BigInt(r.id),
    userId: BigInt(r.user_id),
    clientOrderId: r.client_order_id,
    side: r.side,
    type: r.type,
    timeInForce: r.time_in_force,
    selfTradePrevention: r.self_trade_prevention,
    price: r.price,
    quantity: r.quantity,
    quoteQuantity: r.quote_quantity,
    executedQuantity: r.executed_quantity,
    cumulativeQuoteQuantity: r.cumulative_quote_quantity,
    frozenRemaining: r.frozen_remaining,
    status: r.status,
    createdAt: chTime(r.created_at),
    updatedAt: chTime(r.updated_at),
  }
}

interface ChTrade {
  market: string
  id: string
  taker_order_id: string
  maker_order_id: string
  buyer_user_id: string
  seller_user_id: string
  buyer_is_maker: boolean
  price: string
  quantity: string
  quote_quantity: string
  buyer_fee: string
  seller_fee: string
  created_at: string
}

function tradeFromClickHouse(r: ChTrade): TradeRow {
  return {
    market: r.market,
    id: BigInt(r.id),
    takerOrderId: BigInt(r.taker_order_id),
    makerOrderId: BigInt(r.maker_order_id),
    buyerUserId: BigInt(r.buyer_user_id),
    sellerUserId: BigInt(r.seller_user_id),
    buyerIsMaker: r.buyer_is_maker,
    price: r.price,
    quantity: r.quantity,
    quoteQuantity: r.quote_quantity,
    buyerFee: r.buyer_fee,
    sellerFee: r.seller_fee,
    createdAt: chTime(r.created_at),
  }
}
