/**
 * Test helpers shared by the engine's property and crash tests: the links between the engine's orders and
 * the ledger, checked in Postgres with exact NUMERIC arithmetic, and the book as Postgres's open orders
 * say it is. Every check returns the rows that break it, so an empty list means it holds.
 */
import { sql } from 'drizzle-orm'
import { type Executor, queryRows } from '../../adapters/db/database.ts'

/** A decimal string without trailing zeros ('1.500' → '1.5', '2.000' → '2'), for comparing across scales. */
export function trimDecimal(text: string): string {
  if (!text.includes('.')) return text
  const trimmed = text.replace(/0+$/, '').replace(/\.$/, '')
  return trimmed === '-0' ? '0' : trimmed
}

export interface EngineViolations {
  /** A trade outside its taker's limit, not at its maker's price, between two orders on one side, or with the maker the younger order. */
  trades: unknown[]
  /** A user's frozen balance that is not the sum of what their open orders still hold (BUY: quote, SELL: base). */
  frozen: unknown[]
  /** An open order holding other than its rest: (quantity − executed) × price for a buy, quantity − executed for a sell. */
  openHeld: unknown[]
  /** A closed order still holding funds. */
  closedHeld: unknown[]
  /** A user's balance below zero. */
  negative: unknown[]
  /** Per asset: users' and fee accounts' balances that do not add up to the deposits, or all accounts not to zero. */
  conservation: unknown[]
  /** Outbox seqs, trade ids and order ids that are not exactly 1..the market's last_seq, last_trade_id, last_order_id. */
  sequences: unknown[]
}

/**
 * The engine's links to the ledger, for one market whose base and quote are given. `deposits`: what was
 * deposited per asset, in total; the money held for owners must add up to exactly that.
 */
export async function engineViolations(
  db: Executor,
  market: { symbol: string; base: string; quote: string },
  deposits: Record<string, string>,
): Promise<EngineViolations> {
  const { symbol, base, quote } = market
  const trades = await queryRows(
    db,
    sql`select t.id::text, t.price::text, tk.side as taker_side, tk.price::text as taker_price,
               mk.side as maker_side, mk.price::text as maker_price
        from trades t
        join orders tk on tk.market = t.market and tk.id = t.taker_order_id
        join orders mk on mk.market = t.market and mk.id = t.maker_order_id
        where t.market = ${symbol} and (
          (tk.price is not null and tk.side = 'BUY' and t.price > tk.price)
          or (tk.price is not null and tk.side = 'SELL' and t.price < tk.price)
          or t.price <> mk.price or tk.side = mk.side or t.maker_order_id >= t.taker_order_id
          or t.quantity <= 0 or t.quote_quantity <> t.price * t.quantity)`,
  )
  const frozen = await queryRows(
    db,
    sql`with held as (
          select user_id, case side when 'BUY' then ${quote} else ${base} end as asset, sum(frozen_remaining) as held
          from orders where market = ${symbol} and status in ('NEW', 'PARTIALLY_FILLED') group by 1, 2),
        users_frozen as (select user_id, asset, frozen from accounts where user_id is not null and asset in (${base}, ${quote}))
        select coalesce(a.user_id, h.user_id)::text as user_id, coalesce(a.asset, h.asset) as asset,
               a.frozen::text as frozen, h.held::text as held
        from users_frozen a full join held h on h.user_id = a.user_id and h.asset = a.asset
        where coalesce(a.frozen, 0) <> coalesce(h.held, 0)`,
  )
  const openHeld = await queryRows(
    db,
    sql`select id::text, side, type, price::text, quantity::text, executed_quantity::text, frozen_remaining::text
        from orders where market = ${symbol} and status in ('NEW', 'PARTIALLY_FILLED')
          and (price is null or quantity is null or executed_quantity >= quantity
               or frozen_remaining <> case side when 'BUY' then (quantity - executed_quantity) * price
                                                else quantity - executed_quantity end)`,
  )
  const closedHeld = await queryRows(
    db,
    sql`select id::text, status, frozen_remaining::text from orders
        where market = ${symbol} and status not in ('NEW', 'PARTIALLY_FILLED') and frozen_remaining <> 0`,
  )
  const negative = await queryRows(
    db,
    sql`select id::text, user_id::text, asset, available::text, frozen::text from accounts
        where system is distinct from 'custody' and (available < 0 or frozen < 0)`,
  )
  const totals = await queryRows<{ asset: string; all_accounts: string; owners: string }>(
    db,
    sql`select asset, sum(available + frozen)::text as all_accounts,
               sum(case when system is distinct from 'custody' then available + frozen else 0 end)::text as owners
        from accounts group by asset order by asset`,
  )
  const conservation = Object.entries(deposits).flatMap(([asset, deposited]) => {
    const row = totals.find((t) => t.asset === asset)
    const owners = trimDecimal(row?.owners ?? '0')
    const all = trimDecimal(row?.all_accounts ?? '0')
    return owners === trimDecimal(deposited) && all === '0' ? [] : [{ asset, deposited, owners, all }]
  })
  const sequences = await queryRows(
    db,
    sql`select m.last_seq::text, m.last_order_id::text, m.last_trade_id::text,
               e.count::text as events, e.max::text as max_seq, o.count::text as orders, o.max::text as max_order,
               t.count::text as trades, t.max::text as max_trade
        from markets m,
          lateral (select count(*), coalesce(max(seq), 0) as max from outbox where market = m.symbol) e,
          lateral (select count(*), coalesce(max(id), 0) as max from orders where market = m.symbol) o,
          lateral (select count(*), coalesce(max(id), 0) as max from trades where market = m.symbol) t
        where m.symbol = ${symbol}
          and not (e.count = m.last_seq and e.max = m.last_seq and o.count = m.last_order_id
                   and o.max = m.last_order_id and t.count = m.last_trade_id and t.max = m.last_trade_id)`,
  )
  return { trades, frozen, openHeld, closedHeld, negative, conservation, sequences }
}

export const noViolations: EngineViolations = {
  trades: [],
  frozen: [],
  openHeld: [],
  closedHeld: [],
  negative: [],
  conservation: [],
  sequences: [],
}

export interface DepthView {
  bids: [string, string][]
  asks: [string, string][]
}

/** The aggregated book as Postgres's open orders say it is, best price first, decimals trimmed. */
export async function postgresDepth(db: Executor, symbol: string): Promise<DepthView> {
  const rows = await queryRows<{ side: 'BUY' | 'SELL'; price: string; quantity: string }>(
    db,
    sql`select side, price::text, sum(quantity - executed_quantity)::text as quantity
        from orders where market = ${symbol} and status in ('NEW', 'PARTIALLY_FILLED')
        group by side, price
        order by side, case when side = 'BUY' then -price else price end`,
  )
  const side = (s: 'BUY' | 'SELL') =>
    rows
      .filter((r) => r.side === s)
      .map((r): [string, string] => [trimDecimal(r.price), trimDecimal(r.quantity)])
  return { bids: side('BUY'), asks: side('SELL') }
}

/** An engine's depth with its decimals trimmed, comparable with postgresDepth. */
export function trimDepth(depth: DepthView): DepthView {
  const side = (levels: [string, string][]) =>
    levels.map(([p, q]): [string, string] => [trimDecimal(p), trimDecimal(q)])
  return { bids: side(depth.bids), asks: side(depth.asks) }
}

/** Open orders in Postgres, in the shape compared with the engine's views. */
export async function postgresOpenOrders(db: Executor, symbol: string): Promise<OpenOrderShape[]> {
  const rows = await queryRows<Record<string, string>>(
    db,
    sql`select id::text, user_id::text, client_order_id, side, type, status, price::text, quantity::text,
               executed_quantity::text, cumulative_quote_quantity::text
        from orders where market = ${symbol} and status in ('NEW', 'PARTIALLY_FILLED') order by orders.id`,
  )
  return rows.map((r) => ({
    orderId: r.id!,
    userId: r.user_id!,
    clientOrderId: r.client_order_id!,
    side: r.side!,
    type: r.type!,
    status: r.status!,
    price: trimDecimal(r.price!),
    origQty: trimDecimal(r.quantity!),
    executedQty: trimDecimal(r.executed_quantity!),
    cummulativeQuoteQty: trimDecimal(r.cumulative_quote_quantity!),
  }))
}

export interface OpenOrderShape {
  orderId: string
  userId: string
  clientOrderId: string
  side: string
  type: string
  status: string
  price: string
  origQty: string
  executedQty: string
  cummulativeQuoteQty: string
}

/** An engine's order view (from the engine or its API) in the shape of postgresOpenOrders. */
export function orderShape(o: OpenOrderShape): OpenOrderShape {
  return {
    orderId: o.orderId,
    userId: o.userId,
    clientOrderId: o.clientOrderId,
    side: o.side,
    type: o.type,
    status: o.status,
    price: trimDecimal(o.price),
    origQty: trimDecimal(o.origQty),
    executedQty: trimDecimal(o.executedQty),
    cummulativeQuoteQty: trimDecimal(o.cummulativeQuoteQty),
  }
}

/** One request of a load run and what came of it. */
export interface LoadRecord {
  kind: 'place' | 'cancel'
  userId: string
  /** place: unique across the run, so that Postgres tells which of them were written. */
  clientOrderId: string
  /** cancel: the order it cancels; place: the order id answered. */
  orderId: string | null
  /** ack: answered 200; refused: answered otherwise (nothing done); lost: no answer (in flight when killed). */
  outcome: 'pending' | 'ack' | 'refused' | 'lost'
  httpStatus: number | null
  /** What a refusal said. */
  refusal: string | null
  /** The order as answered, for an ack. */
  order: { orderId: string; status: string; executedQty: string } | null
}

export interface Load {
  readonly records: LoadRecord[]
  acks(): number
  inFlight(): number
  /** Tells the clients to stop and waits for their last requests to end, answered or not. */
  stop(): Promise<void>
}

/**
 * Clients, one per user, that each send limit orders around `mid` (most of them cross) and cancels of their
 * own acknowledged open orders, one request at a time and without pause, recording every request.
 */
export function startLoad(opts: {
  baseUrl: string
  users: readonly string[]
  tag: string
  seed: number
}): Load {
  const records: LoadRecord[] = []
  let stopped = false
  let acks = 0
  let random = opts.seed >>> 0 || 1
  const next = (n: number) => {
    random ^= random << 13
    random ^= random >>> 17
    random ^= random << 5
    return (random >>> 0) % n
  }
  const client = async (userId: string, index: number) => {
    const open: string[] = []
    for (let n = 0; !stopped; n++) {
      const cancel = open.length > 0 && next(4) === 0
      const record: LoadRecord = {
        kind: cancel ? 'cancel' : 'place',
        userId,
        clientOrderId: `${opts.tag}-${index}-${n}`,
        orderId: cancel ? open.splice(next(open.length), 1)[0]! : null,
        outcome: 'pending',
        httpStatus: null,
        refusal: null,
        order: null,
      }
      records.push(record)
      const request = cancel
        ? fetch(`${opts.baseUrl}/orders?userId=${userId}&orderId=${record.orderId}`, { method: 'DELETE' })
        : fetch(`${opts.baseUrl}/orders`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              userId,
              side: next(2) === 0 ? 'BUY' : 'SELL',
              type: 'LIMIT',
              timeInForce: next(5) === 0 ? 'IOC' : 'GTC',
              price: ((9_900 + next(201)) / 100).toFixed(2),
              // At least 0.011: at the lowest price, 99.00, the notional passes the test market's minimum of 1.
              quantity: ((11 + next(289)) / 1000).toFixed(3),
              clientOrderId: record.clientOrderId,
            }),
          })
      try {
        const response = await request
        const body = (await response.json()) as { order?: LoadRecord['order']; message?: string }
        record.httpStatus = response.status
        if (response.status !== 200) {
          record.outcome = 'refused'
          record.refusal = body.message ?? JSON.stringify(body)
          continue
        }
        record.outcome = 'ack'
        record.order = body.order!
        if (record.kind === 'place') record.orderId = body.order!.orderId
        acks++
        if (!cancel && ['NEW', 'PARTIALLY_FILLED'].includes(body.order!.status))
          open.push(body.order!.orderId)
      } catch {
        record.outcome = 'lost'
        return
      }
    }
  }
  const clients = opts.users.map((userId, i) => client(userId, i))
  return {
    records,
    acks: () => acks,
    inFlight: () => records.filter((r) => r.outcome === 'pending').length,
    async stop() {
      stopped = true
      await Promise.all(clients)
    },
  }
}
