/**
 * The archiver: closed orders whose last change is older than the retention leave Postgres, in bounded
 * chunks, once ClickHouse is shown to hold each of them in exactly its Postgres state (same status, same
 * updated_at, same executed quantity). An order ClickHouse lacks, or holds in an older state, stays; the
 * delete itself re-checks state and time, so an order changed meanwhile is never deleted.
 *
 * Nothing references orders by foreign key (trades carry order ids only), and the engine reads open orders
 * only, so a deleted closed order is missed by nothing but the history reads, which look in ClickHouse too.
 */
import { sql } from 'drizzle-orm'
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import { type Executor, pgArray, queryRows } from '../../adapters/db/database.ts'
import { fromUtcText, utcText } from './copier.ts'
import { ORDER_HISTORY } from './tables.ts'

export const CLOSED_STATUSES = ['FILLED', 'CANCELED', 'EXPIRED', 'EXPIRED_IN_MATCH', 'REJECTED'] as const

export interface ArchiveOptions {
  db: Executor
  analytics: Analytics
  /** Closed orders whose updated_at is older than this are archived. */
  retentionMs: number
  /** Orders per verification and delete; default 1000. */
  chunkSize?: number
  /** At most this many chunks per pass (the next pass continues); default 100. */
  maxChunks?: number
}

export interface ArchiveResult {
  /** Deleted from Postgres. */
  archived: number
  /** Old closed orders left in Postgres because ClickHouse did not (yet) hold them as they are. */
  unverified: number
}

interface Candidate {
  market: string
  id: string
  user_id: string
  status: string
  updated_at: string
  executed_quantity: string
}

const closedList = sql.join(
  CLOSED_STATUSES.map((s) => sql`${s}`),
  sql`, `,
)

export async function archiveOrders(o: ArchiveOptions): Promise<ArchiveResult> {
  const chunkSize = o.chunkSize ?? 1000
  const maxChunks = o.maxChunks ?? 100
  const result: ArchiveResult = { archived: 0, unverified: 0 }
  // Keyset over (updated_at, market, id), so orders left behind unverified are not read again in this pass.
  let cursor: [string, string, string] | undefined
  for (let chunk = 0; chunk < maxChunks; chunk++) {
    const after =
      cursor === undefined
        ? sql`true`
        : sql`(updated_at, market, id) > (${fromUtcText(cursor[0])}, ${cursor[1]}, ${cursor[2]}::int8)`
    const candidates = await queryRows<Candidate>(
      o.db,
      sql`select market, id::text as id, user_id::text as user_id, status, ${utcText(sql`updated_at`)} as updated_at,
            executed_quantity::text as executed_quantity
          from orders
          where status in (${closedList})
            and updated_at < now() - ${o.retentionMs}::int8 * interval '1 millisecond'
            and ${after}
          order by updated_at, market, id
          limit ${chunkSize}`,
    )
    if (candidates.length === 0) break
    const last = candidates[candidates.length - 1]!
    cursor = [last.updated_at, last.market, last.id]
    const verified = await verifiedInClickHouse(o.analytics, candidates)
    result.unverified += candidates.length - verified.length
    if (verified.length > 0) {
      const deleted = await queryRows<{ id: string }>(
        o.db,
        sql`delete from orders
            where (market, id, updated_at, status) in (
              select m, i, (u::timestamp at time zone 'UTC'), s
              from unnest(${pgArray(verified.map((c) => c.market))}::text[],
                          ${pgArray(verified.map((c) => c.id))}::int8[],
                          ${pgArray(verified.map((c) => c.updated_at))}::text[],
                          ${pgArray(verified.map((c) => c.status))}::text[]) as v(m, i, u, s))
              and status in (${closedList})
            returning id::text as id`,
      )
      result.archived += deleted.length
    }
    if (candidates.length < chunkSize) break
  }
  return result
}

/** The candidates ClickHouse holds in exactly their Postgres state. */
async function verifiedInClickHouse(
  analytics: Analytics,
  candidates: readonly Candidate[],
): Promise<Candidate[]> {
  const result = await analytics.query({
    query: `SELECT market, id, user_id, status, updated_at, executed_quantity
            FROM ${ORDER_HISTORY} FINAL
            WHERE has({users:Array(UInt64)}, user_id) AND has({markets:Array(String)}, market)
              AND has({ids:Array(UInt64)}, id)`,
    query_params: {
      users: [...new Set(candidates.map((c) => c.user_id))].map(BigInt),
      markets: [...new Set(candidates.map((c) => c.market))],
      ids: candidates.map((c) => BigInt(c.id)),
    },
    format: 'JSONEachRow',
    clickhouse_settings: { output_format_json_quote_decimals: 1 },
  })
  const held = new Map<string, Candidate>()
  for (const row of await result.json<Candidate>()) held.set(`${row.market}:${row.id}`, row)
  return candidates.filter((c) => {
    const copy = held.get(`${c.market}:${c.id}`)
    return (
      copy !== undefined &&
      copy.status === c.status &&
      copy.updated_at === c.updated_at &&
      sameDecimal(copy.executed_quantity, c.executed_quantity)
    )
  })
}

/** Equal decimal strings, whatever trailing zeros either carries ('1.50000000' and '1.5'). */
export function sameDecimal(a: string, b: string): boolean {
  const norm = (d: string) => (d.includes('.') ? d.replace(/0+$/, '').replace(/\.$/, '') : d)
  return norm(a) === norm(b)
}
