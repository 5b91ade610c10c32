/**
 * The cron's jobs: retention cleanup (sent outbox events, old cron runs and reconciliations), sweeps
 * (Sweeper.tick per wallet), the gas keeper check (gauge + log + alert hook), reconciliation, the ledger's
 * internal consistency (findImbalances as bourse_ledger_imbalances) and daily trade statistics.
 */
import { sql } from 'drizzle-orm'
import type { Address, PublicClient } from 'viem'
import { queryRows } from '../../adapters/db/database.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { Gauge, type Registry } from '../../lib/metrics.ts'
import { deleteSentBefore } from '../relay/relay.ts'
import type { Sweeper } from '../withdrawals/sweeps.ts'
import { type ReconcileOptions, reconcile } from './reconcile.ts'
import type { Job } from './scheduler.ts'

/** Something worth a human's attention: besides the log and the metric, e.g. a Kubernetes Event. */
export type Alert = (a: { reason: string; message: string }) => Promise<void>

function gauge(registry: Registry, name: string, help: string, labelNames: string[]): Gauge<string> {
  return (
    (registry.getSingleMetric(name) as Gauge<string> | undefined) ??
    new Gauge({ name, help, labelNames, registers: [registry] })
  )
}

/** Deletes what is past retention: sent outbox events, cron runs, reconciliation rows. */
export function retentionJob(o: {
  schedule: string
  outboxRetentionMs: number
  historyRetentionMs: number
  now?: () => number
}): Job {
  return {
    name: 'retention',
    schedule: o.schedule,
    async run({ db }) {
      const now = o.now?.() ?? Date.now()
      const outbox = await deleteSentBefore(db, new Date(now - o.outboxRetentionMs))
      const before = new Date(now - o.historyRetentionMs).toISOString()
      const runs = await queryRows(
        db,
        sql`delete from cron_runs where started_at < ${before}::timestamptz and outcome <> 'running' returning id`,
      )
      const recs = await queryRows(
        db,
        sql`delete from reconciliations where created_at < ${before}::timestamptz returning id`,
      )
      return { outbox, cronRuns: runs.length, reconciliations: recs.length }
    },
  }
}

export function sweepJob(o: { schedule: string; sweepers: readonly Sweeper[] }): Job {
  return {
    name: 'sweeps',
    schedule: o.schedule,
    async run({ lease }) {
      const errors: string[] = []
      for (const s of o.sweepers) {
        await lease.fenced()
        await s.tick().catch((err: unknown) => errors.push(String(err)))
      }
      if (errors.length > 0) throw new Error(`sweeps failed: ${errors.join('; ')}`)
      return { wallets: o.sweepers.length }
    },
  }
}

export interface GasKeeper {
  readonly walletId: string
  readonly client: PublicClient
  readonly address: Address
  /** In wei. */
  readonly minimum: bigint
}

/** The gas keepers' balances against their minimum: gauges, a warning in the log, and the alert hook. */
export function gasKeeperJob(o: {
  schedule: string
  keepers: readonly GasKeeper[]
  registry?: Registry
  alert?: Alert
}): Job {
  const balance =
    o.registry &&
    gauge(
      o.registry,
      'bourse_gas_keeper_balance_wei',
      "The gas keeper's native balance, in wei (as a float: for dashboards only).",
      ['wallet'],
    )
  const low =
    o.registry &&
    gauge(
      o.registry,
      'bourse_gas_keeper_low',
      '1 while the gas keeper holds less than its configured minimum: alert on it.',
      ['wallet'],
    )
  return {
    name: 'gas-keeper',
    schedule: o.schedule,
    async run({ log }) {
      const result: Record<string, { balance: string; low: boolean }> = {}
      for (const k of o.keepers) {
        const wei = await k.client.getBalance({ address: k.address })
        const isLow = wei < k.minimum
        balance?.set({ wallet: k.walletId }, Number(wei))
        low?.set({ wallet: k.walletId }, isLow ? 1 : 0)
        result[k.walletId] = { balance: String(wei), low: isLow }
        if (isLow) {
          const message = `gas keeper ${k.address} of wallet ${k.walletId} holds ${wei} wei, below its minimum ${k.minimum}`
          log?.warn(
            { wallet: k.walletId, balance: String(wei), minimum: String(k.minimum) },
            'gas keeper below its minimum',
          )
          await o
            .alert?.({ reason: 'GasKeeperLow', message })
            .catch((err: unknown) => log?.warn({ err: String(err) }, 'alert not delivered'))
        }
      }
      return result
    },
  }
}

export function reconciliationJob(
  o: { schedule: string; alert?: Alert } & Omit<ReconcileOptions, 'db' | 'lease' | 'log'>,
): Job {
  return {
    name: 'reconciliation',
    schedule: o.schedule,
    async run({ db, lease, log }) {
      const results = await reconcile({ ...o, db, lease, ...(log && { log }) })
      const deficits = results.filter((r) => r.status === 'deficit')
      if (deficits.length > 0) {
        await o
          .alert?.({
            reason: 'ReconciliationDeficit',
            message: `liabilities exceed on-chain holdings (${deficits.map((d) => `${d.asset} ${d.difference}`).join(', ')}); withdrawals paused`,
          })
          .catch((err: unknown) => log?.warn({ err: String(err) }, 'alert not delivered'))
      }
      return results.map((r) => ({ asset: r.asset, status: r.status, difference: r.difference }))
    },
  }
}

/** The ledger's internal consistency (findImbalances): the count as bourse_ledger_imbalances, each one logged. */
export function ledgerInvariantsJob(o: { schedule: string; registry?: Registry }): Job {
  const g =
    o.registry &&
    gauge(
      o.registry,
      'bourse_ledger_imbalances',
      'Ledger invariant violations found by the last check (0 is healthy).',
      [],
    )
  return {
    name: 'ledger-invariants',
    schedule: o.schedule,
    async run({ db, log }) {
      const found = await findImbalances(db)
      g?.set(found.length)
      for (const i of found) log?.error({ asset: i.asset, problem: i.problem }, 'ledger imbalance')
      return { imbalances: found.length }
    },
  }
}

/**
 * Trades, base volume, quote volume and fees (valued in the quote asset: the seller's quote fee plus the
 * buyer's base fee at the trade price, exact NUMERIC) per market per UTC day, for today and yesterday.
 */
export function dailyStatsJob(o: { schedule: string }): Job {
  return {
    name: 'daily-stats',
    schedule: o.schedule,
    async run({ db }) {
      const rows = await queryRows<{ day: string }>(
        db,
        sql`insert into daily_stats (day, market, trades, volume, quote_volume, fees, updated_at)
            select (created_at at time zone 'UTC')::date, market, count(*), sum(quantity), sum(quote_quantity),
                   sum(seller_fee + buyer_fee * price), now()
            from trades
            where created_at >= (date_trunc('day', now() at time zone 'UTC') - interval '1 day') at time zone 'UTC'
            group by 1, 2
            on conflict (day, market) do update set trades = excluded.trades, volume = excluded.volume,
              quote_volume = excluded.quote_volume, fees = excluded.fees, updated_at = now()
            returning day::text`,
      )
      return { rows: rows.length }
    },
  }
}
