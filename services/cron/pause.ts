/**
 * The withdrawals pause (withdrawal_pauses): reconciliation sets it when the ledger owes more than the
 * chain holds; the withdrawal processor signs nothing new while a pause covering its wallet is in force
 * (scope `*` or the wallet id); an administrator resumes.
 */
import { sql } from 'drizzle-orm'
import { type Executor, queryRows } from '../../adapters/db/database.ts'

export const ALL_WALLETS = '*'

export interface Pause {
  readonly scope: string
  readonly reason: string
  readonly pausedBy: string
  readonly pausedAt: Date
}

/** Pauses withdrawals in `scope`; an existing pause in force is kept as it is (its first reason stands). */
export async function pauseWithdrawals(
  db: Executor,
  p: { scope?: string; reason: string; by: string },
): Promise<void> {
  await db.execute(
    sql`insert into withdrawal_pauses (scope, reason, paused_by) values (${p.scope ?? ALL_WALLETS}, ${p.reason}, ${p.by})
        on conflict (scope) do update set reason = excluded.reason, paused_by = excluded.paused_by, paused_at = now(),
          resumed_by = null, resumed_at = null
        where withdrawal_pauses.resumed_at is not null`,
  )
}

/** An administrator's resume; returns false when nothing was paused in that scope. */
export async function resumeWithdrawals(db: Executor, r: { scope?: string; by: string }): Promise<boolean> {
  const rows = await queryRows<{ scope: string }>(
    db,
    sql`update withdrawal_pauses set resumed_by = ${r.by}, resumed_at = now()
        where scope = ${r.scope ?? ALL_WALLETS} and resumed_at is null returning scope`,
  )
  return rows.length > 0
}

/** The pauses in force for a wallet (its own and the global one); none when withdrawals may go. */
export async function pausesInForce(db: Executor, walletId?: string): Promise<Pause[]> {
  const rows = await queryRows<{
    scope: string
    reason: string
    paused_by: string
    paused_at: Date | string
  }>(
    db,
    sql`select scope, reason, paused_by, paused_at from withdrawal_pauses
        where resumed_at is null and (scope = ${ALL_WALLETS} or scope = ${walletId ?? ALL_WALLETS}) order by scope`,
  )
  return rows.map((r) => ({
    scope: r.scope,
    reason: r.reason,
    pausedBy: r.paused_by,
    pausedAt: new Date(r.paused_at),
  }))
}
