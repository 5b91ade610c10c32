/**
 * The ledger's invariants, checked against the database: tests assert them after every scenario, and the
 * reconciliation job reports them as the ledger-imbalance metric.
 */
import { sql } from 'drizzle-orm'
import { type Executor, queryRows } from '../adapters/db/database.ts'

export interface Imbalance {
  readonly asset: string
  readonly problem: string
}

/**
 * Per asset: every account's balance equals the sum of its entries; the sum over all accounts is zero
 * (custody is the contra account of the outside world), so the sum over the others equals confirmed
 * deposits minus completed withdrawals and the gas paid (plus admin adjustments); no balance owed to anyone
 * is negative (custody and network_fees may be).
 */
export async function findImbalances(db: Executor): Promise<Imbalance[]> {
  const drift = await queryRows<{ asset: string; account_id: bigint; bucket: string }>(
    db,
    sql`select a.asset, a.id as account_id, b.bucket from accounts a
        cross join (values ('available'), ('frozen')) as b(bucket)
        left join ledger_entries e on e.account_id = a.id and e.bucket = b.bucket
        group by a.asset, a.id, b.bucket, a.available, a.frozen
        having coalesce(sum(e.amount), 0) <> case b.bucket when 'available' then a.available else a.frozen end`,
  )
  const totals = await queryRows<{ asset: string; total: string; outside: string; external: string }>(
    db,
    sql`select t.asset, t.total::text, t.outside::text, t.external::text from (
          select a.asset,
                 sum(a.available + a.frozen) as total,
                 sum(case when a.system is distinct from 'custody' then a.available + a.frozen else 0 end) as outside,
                 coalesce((select sum(e.amount) from ledger_entries e join accounts x on x.id = e.account_id
                           where e.asset = a.asset and x.system is distinct from 'custody'
                             and e.reason in ('deposit', 'withdrawal_complete', 'adjustment', 'network_fee')), 0) as external
          from accounts a group by a.asset) t
        where t.total <> 0 or t.outside <> t.external`,
  )
  const negative = await queryRows<{ asset: string; id: bigint }>(
    db,
    sql`select asset, id from accounts
        where not coalesce(system in ('custody', 'network_fees'), false) and (available < 0 or frozen < 0)`,
  )
  return [
    ...drift.map((d) => ({
      asset: d.asset,
      problem: `account ${d.account_id} ${d.bucket} differs from its entries`,
    })),
    ...totals.map((t) => ({
      asset: t.asset,
      problem: `accounts sum to ${t.total}; held for owners ${t.outside}, deposits less withdrawals ${t.external}`,
    })),
    ...negative.map((n) => ({ asset: n.asset, problem: `account ${n.id} is negative` })),
  ]
}
