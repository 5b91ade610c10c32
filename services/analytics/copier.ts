/**
 * The copier: orders, trades and ledger entries from Postgres to ClickHouse, by watermark, idempotently.
 *
 * Ids cannot be the watermark: they come from bigserial or an engine's counter, and a transaction can commit a
 * lower id after a higher one. The watermark is a time instead (orders: updated_at, which every change of an
 * order moves; trades and ledger entries: created_at), and two margins make a late commit harmless:
 *  - lag: a pass copies only rows at or below `now() - lag` (database clock), so a transaction still open
 *    with a timestamp in that window is not yet needed;
 *  - overlap: a pass starts at `watermark - overlap`, not at the watermark, so a row that committed after the
 *    pass that covered its timestamp (a transaction slower than the lag) is copied by the next one.
 * Re-copying the overlap is harmless: the ClickHouse tables are ReplacingMergeTrees keyed by the Postgres
 * primary key (orders versioned by updated_at) and every read uses FINAL.
 *
 * A pass reads in keyset order (time, key) in batches and saves the watermark after each batch (the last
 * row's time: rows at that very time are re-read next pass), so a crash loses at most one batch's progress.
 * Times travel as text with microseconds ('YYYY-MM-DD HH:MM:SS.ffffff', UTC), never through a JS Date.
 */
import { type SQL, sql } from 'drizzle-orm'
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import { type Executor, queryRows } from '../../adapters/db/database.ts'
import { LEDGER_HISTORY, ORDER_HISTORY, USER_TRADES } from './tables.ts'

export type CopiedTable = 'orders' | 'trades' | 'ledger_entries'
export const COPIED_TABLES: readonly CopiedTable[] = ['orders', 'trades', 'ledger_entries']

/** A timestamptz column as UTC text with microseconds, as ClickHouse's DateTime64(6) reads and prints it. */
export const utcText = (column: SQL) =>
  sql`to_char((${column}) at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`
/** The inverse of utcText. */
export const fromUtcText = (text: string) => sql`(${text}::timestamp at time zone 'UTC')`

interface Spec {
  target: string
  /** The time column the watermark follows, qualified. */
  time: string
  /** The rest of the keyset order (the primary key), qualified. */
  keys: readonly string[]
  from: string
  columns: string
}

const SPECS: Record<CopiedTable, Spec> = {
  orders: {
    target: ORDER_HISTORY,
    time: 'o.updated_at',
    keys: ['o.market', 'o.id'],
    from: 'orders o',
    columns: `o.market, o.id::text as id, o.user_id::text as user_id, o.client_order_id, o.side, o.type,
      o.time_in_force, o.self_trade_prevention, o.price::text as price, o.quantity::text as quantity,
      o.quote_quantity::text as quote_quantity, o.executed_quantity::text as executed_quantity,
      o.cumulative_quote_quantity::text as cumulative_quote_quantity, o.frozen_remaining::text as frozen_remaining,
      o.status, to_char(o.created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as created_at,
      to_char(o.updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as updated_at`,
  },
  trades: {
    target: USER_TRADES,
    time: 't.created_at',
    keys: ['t.market', 't.id'],
    from: 'trades t',
    columns: `t.market, t.id::text as id, t.taker_order_id::text as taker_order_id,
      t.maker_order_id::text as maker_order_id, t.buyer_user_id::text as buyer_user_id,
      t.seller_user_id::text as seller_user_id, t.buyer_is_maker, t.price::text as price,
      t.quantity::text as quantity, t.quote_quantity::text as quote_quantity, t.buyer_fee::text as buyer_fee,
      t.seller_fee::text as seller_fee, to_char(t.created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as created_at`,
  },
  ledger_entries: {
    target: LEDGER_HISTORY,
    time: 'e.created_at',
    keys: ['e.id'],
    from: 'ledger_entries e join accounts a on a.id = e.account_id',
    columns: `e.id::text as id, e.journal_id::text as journal_id, e.account_id::text as account_id,
      coalesce(a.user_id, 0)::text as user_id, coalesce(a.system, '') as system, e.asset, e.bucket,
      e.amount::text as amount, e.reason, e.ref_type, e.ref_id,
      to_char(e.created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as created_at`,
  },
}

export interface CopyOptions {
  db: Executor
  analytics: Analytics
  /** Rows per Postgres read and ClickHouse insert. */
  batchSize?: number
  /** Only rows at least this old (database clock) are copied; default 5 s. */
  lagMs?: number
  /** Each pass re-reads this much before the watermark; default 60 s. */
  overlapMs?: number
  /** Called after each inserted batch (metrics). */
  onBatch?: (table: CopiedTable, rows: number) => void
}

export interface CopyResult {
  table: CopiedTable
  /** Rows inserted into ClickHouse (re-copies of the overlap included). */
  rows: number
  /** The watermark after the pass, UTC text. */
  watermark: string
}

/** One pass over one table: everything from the watermark (less the overlap) to now − lag. */
export async function copyTable(o: CopyOptions, table: CopiedTable): Promise<CopyResult> {
  const spec = SPECS[table]
  const batchSize = o.batchSize ?? 5000
  const lagMs = o.lagMs ?? 5000
  const overlapMs = o.overlapMs ?? 60_000
  const [bounds] = await queryRows<{ hi: string; lo: string | null }>(
    o.db,
    sql`select ${utcText(sql`now() - ${lagMs}::int8 * interval '1 millisecond'`)} as hi,
          (select ${utcText(sql`watermark - ${overlapMs}::int8 * interval '1 millisecond'`)}
             from analytics_watermarks where name = ${table}) as lo`,
  )
  const hi = bounds!.hi
  const lo = bounds!.lo
  const keyset = sql.raw(`(${[spec.time, ...spec.keys].join(', ')})`)
  let cursor: string[] | undefined
  let rows = 0
  for (;;) {
    const conditions: SQL[] = [sql`${sql.raw(spec.time)} <= ${fromUtcText(hi)}`]
    if (lo !== null) conditions.push(sql`${sql.raw(spec.time)} > ${fromUtcText(lo)}`)
    if (cursor !== undefined) {
      const [time, ...keys] = cursor
      conditions.push(
        sql`${keyset} > (${fromUtcText(time!)}, ${sql.join(
          keys.map((k) => sql`${k}`),
          sql`, `,
        )})`,
      )
    }
    const batch = await queryRows<Record<string, unknown> & { _t: string; _k: string[] }>(
      o.db,
      sql`select ${sql.raw(spec.columns)}, ${utcText(sql.raw(spec.time))} as _t,
            array[${sql.raw(spec.keys.map((k) => `${k}::text`).join(', '))}] as _k
          from ${sql.raw(spec.from)}
          where ${sql.join(conditions, sql` and `)}
          order by ${sql.raw([spec.time, ...spec.keys].join(', '))}
          limit ${batchSize}`,
    )
    if (batch.length === 0) break
    const values = batch.map(({ _t, _k, ...row }) => row)
    await o.analytics.insert({ table: spec.target, values, format: 'JSONEachRow' })
    rows += batch.length
    o.onBatch?.(table, batch.length)
    const last = batch[batch.length - 1]!
    cursor = [last._t, ...last._k]
    await saveWatermark(o.db, table, last._t, batch.length)
    if (batch.length < batchSize) break
  }
  await saveWatermark(o.db, table, hi, 0)
  const [saved] = await queryRows<{ watermark: string }>(
    o.db,
    sql`select ${utcText(sql`watermark`)} as watermark from analytics_watermarks where name = ${table}`,
  )
  return { table, rows, watermark: saved!.watermark }
}

/** Moves the watermark forward only (a pass that started before another's end never moves it back). */
async function saveWatermark(db: Executor, table: CopiedTable, time: string, rows: number): Promise<void> {
  await db.execute(
    sql`insert into analytics_watermarks (name, watermark, rows_copied, updated_at)
        values (${table}, ${fromUtcText(time)}, ${rows}, now())
        on conflict (name) do update set watermark = greatest(analytics_watermarks.watermark, excluded.watermark),
          rows_copied = analytics_watermarks.rows_copied + excluded.rows_copied, updated_at = now()`,
  )
}

/** One pass over every table, orders first (the archiver trusts the orders watermark). */
export async function copyAll(o: CopyOptions): Promise<CopyResult[]> {
  const results: CopyResult[] = []
  for (const table of COPIED_TABLES) results.push(await copyTable(o, table))
  return results
}

/** The watermarks as UTC text (absent: never copied). */
export async function watermarks(db: Executor): Promise<Partial<Record<CopiedTable, string>>> {
  const rows = await queryRows<{ name: CopiedTable; watermark: string }>(
    db,
    sql`select name, ${utcText(sql`watermark`)} as watermark from analytics_watermarks`,
  )
  return Object.fromEntries(rows.map((r) => [r.name, r.watermark]))
}
