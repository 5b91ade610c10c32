/**
 * The DEX order API in the shapes of the seeds' Linkora order system, over what the order indexer wrote:
 *
 *   GET /orders/pending|executed|cancelled?limit=100&offset=0   → { orders, total, limit, offset }
 *   GET /users/{address}/orders?status=executed&limit&offset     → { orders, total, limit, offset }
 *   GET /orders/{id}                                             → an order
 *   GET /orders/{id}/events                                      → { order_id, events }
 *   GET /statistics                                              → counts and the indexer's progress
 *
 * An order: { id, user_address, token_in, token_out, amount_in, amount_out, target_price, order_type,
 * status, created_at, executed_at, cancelled_at, taker, tx_hash, block_number }. Amounts are decimal
 * strings in the tokens' decimals (smallest units when a token does not say); target_price is amount_out
 * per amount_in, to 18 places, trailing zeros trimmed. Ids are JSON numbers (strings past 2^53).
 * Bad input answers 400 { code: 'invalid_input', message, field } naming the parameter.
 */
import { sql } from 'drizzle-orm'
import { type Context, Hono } from 'hono'
import { getAddress, isAddress } from 'viem'
import { z } from 'zod'
import { type Executor, queryRows } from '../../adapters/db/database.ts'
import { dexOrderStatuses } from '../../adapters/db/schema.ts'
import { BourseError, invalidInput } from '../../lib/errors.ts'
import { div, formatDecimal } from '../../lib/money.ts'

export interface DexApiDeps {
  readonly db: Executor
  /** The indexer (order contract) whose orders are served. */
  readonly indexerId: string
}

const PRICE_SCALE = 18

const page = {
  limit: z.coerce
    .number({ error: 'expected an integer from 1 to 1000' })
    .int('expected an integer from 1 to 1000')
    .min(1, 'expected an integer from 1 to 1000')
    .max(1000, 'expected an integer from 1 to 1000')
    .default(100),
  offset: z.coerce
    .number({ error: 'expected an integer of 0 or more' })
    .int('expected an integer of 0 or more')
    .min(0, 'expected an integer of 0 or more')
    .max(1_000_000_000, 'expected at most 1000000000')
    .default(0),
}
const pageQuery = z.object(page)
const status = z.preprocess(
  (v) => (typeof v === 'string' ? v.toLowerCase() : v),
  z.enum(dexOrderStatuses, { error: `expected one of ${dexOrderStatuses.join(', ')}` }),
)
const userQuery = z.object({ ...page, status: status.optional() })
const orderId = z.string().regex(/^\d{1,78}$/, 'expected an order id (a non-negative integer)')
const address = z
  .string()
  .refine((a) => isAddress(a, { strict: false }), 'expected a 0x address of 40 hex digits')
  .transform((a) => getAddress(a))

function parse<T>(schema: z.ZodType<T>, input: unknown, fallbackField: string): T {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issue = result.error.issues[0]!
  const field = issue.path.length > 0 ? issue.path.join('.') : fallbackField
  throw invalidInput(field, issue.message)
}

interface OrderRow {
  order_id: string
  maker: string
  sell_token: string
  buy_token: string
  sell_decimals: number | null
  buy_decimals: number | null
  sell_amount: string
  buy_amount: string
  status: string
  taker: string | null
  created_tx: string
  created_block: bigint
  created_at: string
  executed_at: string | null
  cancelled_at: string | null
}

const iso = (column: string) =>
  sql.raw(`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')`)

const orderColumns = sql`order_id::text as order_id, maker, sell_token, buy_token, sell_decimals, buy_decimals,
  sell_amount::text as sell_amount, buy_amount::text as buy_amount, status, taker, created_tx, created_block,
  ${iso('created_at')} as created_at, ${iso('executed_at')} as executed_at, ${iso('cancelled_at')} as cancelled_at`

function jsonId(id: string): number | string {
  const n = Number(id)
  return Number.isSafeInteger(n) ? n : id
}

export function orderJson(row: OrderRow) {
  const sellScale = row.sell_decimals ?? 0
  const buyScale = row.buy_decimals ?? 0
  const sell = BigInt(row.sell_amount)
  const buy = BigInt(row.buy_amount)
  return {
    id: jsonId(row.order_id),
    user_address: row.maker,
    token_in: row.sell_token,
    token_out: row.buy_token,
    amount_in: formatDecimal(sell, sellScale, { trimZeros: true }),
    amount_out: formatDecimal(buy, buyScale, { trimZeros: true }),
    target_price: formatDecimal(div(buy, buyScale, sell, sellScale, PRICE_SCALE, 'half-even'), PRICE_SCALE, {
      trimZeros: true,
    }),
    order_type: 'LIMIT',
    status: row.status.toUpperCase(),
    created_at: row.created_at,
    executed_at: row.executed_at,
    cancelled_at: row.cancelled_at,
    taker: row.taker,
    tx_hash: row.created_tx,
    block_number: Number(row.created_block),
  }
}

export function dexOrderRoutes(app: Hono, deps: DexApiDeps): void {
  const { db, indexerId } = deps

  async function listOrders(c: Context, where: ReturnType<typeof sql>, limit: number, offset: number) {
    const [count] = await queryRows<{ n: bigint }>(
      db,
      sql`select count(*) as n from dex_orders where indexer_id = ${indexerId} and ${where}`,
    )
    const rows = await queryRows<OrderRow>(
      db,
      sql`select ${orderColumns} from dex_orders where indexer_id = ${indexerId} and ${where}
          order by order_id desc limit ${limit} offset ${offset}`,
    )
    return c.json({ orders: rows.map(orderJson), total: Number(count!.n), limit, offset })
  }

  for (const s of dexOrderStatuses) {
    app.get(`/orders/${s}`, async (c) => {
      const q = parse(pageQuery, c.req.query(), 'query')
      return listOrders(c, sql`status = ${s}`, q.limit, q.offset)
    })
  }

  app.get('/users/:address/orders', async (c) => {
    const maker = parse(address, c.req.param('address'), 'address')
    const q = parse(userQuery, c.req.query(), 'query')
    const where =
      q.status === undefined ? sql`maker = ${maker}` : sql`maker = ${maker} and status = ${q.status}`
    return listOrders(c, where, q.limit, q.offset)
  })

  async function findOrder(id: string): Promise<OrderRow> {
    const [row] = await queryRows<OrderRow>(
      db,
      sql`select ${orderColumns} from dex_orders where indexer_id = ${indexerId} and order_id = ${id}::numeric`,
    )
    if (row === undefined) throw new BourseError('not_found', `order ${id} not found`, { field: 'id' })
    return row
  }

  app.get('/orders/:id', async (c) => {
    const id = parse(orderId, c.req.param('id'), 'id')
    return c.json(orderJson(await findOrder(id)))
  })

  app.get('/orders/:id/events', async (c) => {
    const id = parse(orderId, c.req.param('id'), 'id')
    await findOrder(id)
    const rows = await queryRows<{
      id: bigint
      event_type: string
      old_status: string | null
      new_status: string
      timestamp: string
      tx_hash: string
      log_ordinal: number
      log_index: number
      block_number: bigint
      block_hash: string
      maker: string
      taker: string | null
    }>(
      db,
      sql`select id, event_type, old_status, new_status, ${iso('block_time')} as timestamp, tx_hash, log_ordinal,
                 log_index, block_number, block_hash, maker, taker
          from dex_order_events where indexer_id = ${indexerId} and order_id = ${id}::numeric
          order by block_number, log_index`,
    )
    return c.json({
      order_id: jsonId(id),
      events: rows.map((e) => ({
        id: Number(e.id),
        order_id: jsonId(id),
        event_type: e.event_type,
        old_status: e.old_status?.toUpperCase() ?? null,
        new_status: e.new_status.toUpperCase(),
        timestamp: e.timestamp,
        tx_hash: e.tx_hash,
        log_ordinal: e.log_ordinal,
        log_index: e.log_index,
        block_number: Number(e.block_number),
        block_hash: e.block_hash,
        maker: e.maker,
        taker: e.taker,
      })),
    })
  })

  app.get('/statistics', async (c) => {
    const [orders] = await queryRows<{
      total: bigint
      pending: bigint
      executed: bigint
      cancelled: bigint
      users: bigint
    }>(
      db,
      sql`select count(*) as total,
                 count(*) filter (where status = 'pending') as pending,
                 count(*) filter (where status = 'executed') as executed,
                 count(*) filter (where status = 'cancelled') as cancelled,
                 count(distinct maker) as users
          from dex_orders where indexer_id = ${indexerId}`,
    )
    const [events] = await queryRows<{ n: bigint }>(
      db,
      sql`select count(*) as n from dex_order_events where indexer_id = ${indexerId}`,
    )
    const [indexer] = await queryRows<{
      chain_id: bigint
      contract: string
      scanned_block: bigint
      updated_at: string
    }>(
      db,
      sql`select chain_id, contract, scanned_block, ${iso('updated_at')} as updated_at from dex_indexers where id = ${indexerId}`,
    )
    if (indexer === undefined)
      throw new BourseError('not_found', `dex indexer ${indexerId} is not registered`)
    return c.json({
      total_orders: Number(orders!.total),
      pending_orders: Number(orders!.pending),
      executed_orders: Number(orders!.executed),
      cancelled_orders: Number(orders!.cancelled),
      unique_users: Number(orders!.users),
      total_events: Number(events!.n),
      chain_id: Number(indexer.chain_id),
      contract: indexer.contract,
      last_processed_block: Number(indexer.scanned_block),
      updated_at: indexer.updated_at,
    })
  })
}

/** The DEX order API as an app of its own: `bourse dex` serves it, `bourse dev` mounts it under /dex. */
export function createDexApp(deps: DexApiDeps): Hono {
  const app = new Hono()
  app.onError((err, c) => {
    if (err instanceof BourseError) return c.json(err.toJSON(), err.status as 400)
    return c.json({ code: 'internal', message: 'internal error' }, 500)
  })
  dexOrderRoutes(app, deps)
  app.notFound((c) => c.json({ code: 'not_found', message: `no route ${c.req.method} ${c.req.path}` }, 404))
  return app
}
