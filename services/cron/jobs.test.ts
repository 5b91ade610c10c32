/**
 * The housekeeping jobs through the scheduler on a real Postgres (and anvil for the gas keeper): retention
 * cleanup, the ledger-invariant metric, daily statistics, the gas keeper alert.
 */
import { sql } from 'drizzle-orm'
import { type PublicClient, parseEther } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { chainClients } from '../../chain/testing.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { dailyStatsJob, gasKeeperJob, ledgerInvariantsJob, retentionJob } from './jobs.ts'
import { Lease } from './lease.ts'
import { Scheduler } from './scheduler.ts'

let tdb: TestDatabase
let anvil: Anvil
let s: Scheduler
const registry = createRegistry({ defaultMetrics: false })
const alerts: string[] = []
const KEEPER = privateKeyToAccount(`0x${'b2'.repeat(32)}`).address

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil(), createTestDatabase('postgres')])
  const c = chainClients(anvil)
  await c.reader.waitForTransactionReceipt({
    hash: await c.wallet(0).sendTransaction({ to: KEEPER, value: parseEther('0.5') }),
  })
  const lease = new Lease({ db: tdb.db, name: 'cron', ttlMs: 5000 })
  s = new Scheduler({
    db: tdb.db,
    lease,
    registry,
    jobs: [
      retentionJob({ schedule: '@manual', outboxRetentionMs: 3_600_000, historyRetentionMs: 86_400_000 }),
      ledgerInvariantsJob({ schedule: '@manual', registry }),
      dailyStatsJob({ schedule: '@manual' }),
      gasKeeperJob({
        schedule: '@manual',
        registry,
        keepers: [
          { walletId: 'eth', client: c.reader as PublicClient, address: KEEPER, minimum: parseEther('1') },
        ],
        alert: async (a) => {
          alerts.push(`${a.reason}: ${a.message}`)
        },
      }),
    ],
  })
  expect(await lease.tryAcquire()).toBe(true)
}, 60_000)

afterAll(async () => {
  await s?.stop()
  await Promise.all([anvil?.stop(), tdb?.close()])
})

describe('cron jobs', () => {
  it('deletes sent outbox events and history past retention', async () => {
    await tdb.db.execute(
      sql`insert into outbox (market, seq, topic, payload, sent_at) values
          ('BTCUSDT', 1, 'trades', '{}', now() - interval '2 hours'),
          ('BTCUSDT', 2, 'trades', '{}', now() - interval '2 hours'),
          ('BTCUSDT', 3, 'trades', '{}', now() - interval '1 minute'),
          ('BTCUSDT', 4, 'trades', '{}', null)`,
    )
    await tdb.db.execute(
      sql`insert into cron_runs (job, holder, token, started_at, outcome) values ('old', 'x', 1, now() - interval '2 days', 'ok')`,
    )
    const r = await s.trigger('retention')
    expect(r.outcome).toBe('ok')
    expect(r.result).toEqual({ outbox: 2, cronRuns: 1, reconciliations: 0 })
    const left = await queryRows<{ seq: bigint }>(tdb.db, sql`select seq from outbox order by seq`)
    expect(left.map((x) => x.seq)).toEqual([3n, 4n])
  })

  it('exports the ledger invariants as bourse_ledger_imbalances', async () => {
    await tdb.db.execute(sql`insert into assets (symbol, scale) values ('ETH', 18), ('USDT', 6)`)
    await tdb.db.execute(sql`insert into users (name) values ('alice')`)
    await creditDeposit(tdb.db, { userId: 1n, asset: 'USDT', amount: '10', depositRef: 'd1' })
    expect((await s.trigger('ledger-invariants')).result).toEqual({ imbalances: 0 })
    expect(await registry.metrics()).toContain('bourse_ledger_imbalances 0')
    // A balance changed behind the ledger's back (no entry) is found.
    await tdb.db.execute(sql`update accounts set available = available + 1 where user_id = 1`)
    expect((await s.trigger('ledger-invariants')).result).toEqual({ imbalances: 2 })
    expect(await registry.metrics()).toContain('bourse_ledger_imbalances 2')
  })

  it('counts trades and volume per market per day', async () => {
    await tdb.db.execute(
      sql`insert into markets (symbol, base, quote, tick_size, lot_size, min_notional, maker_fee, taker_fee)
          values ('ETHUSDT', 'ETH', 'USDT', '0.01', '0.0001', '1', '0.001', '0.002')`,
    )
    await tdb.db.execute(
      sql`insert into trades (market, id, taker_order_id, maker_order_id, buyer_user_id, seller_user_id, buyer_is_maker,
            price, quantity, quote_quantity, buyer_fee, seller_fee) values
          ('ETHUSDT', 1, 2, 1, 1, 1, false, '2000', '0.5', '1000', '0.001', '1'),
          ('ETHUSDT', 2, 3, 1, 1, 1, false, '2000.5', '0.25', '500.125', '0', '0.5')`,
    )
    expect((await s.trigger('daily-stats')).outcome).toBe('ok')
    const rows = await queryRows<{
      market: string
      trades: bigint
      volume: string
      quote_volume: string
      fees: string
    }>(tdb.db, sql`select market, trades, volume::text, quote_volume::text, fees::text from daily_stats`)
    expect(rows).toHaveLength(1)
    expect(rows[0]).toMatchObject({ market: 'ETHUSDT', trades: 2n })
    expect(Number(rows[0]!.volume)).toBe(0.75)
    expect(Number(rows[0]!.quote_volume)).toBe(1500.125)
    expect(Number(rows[0]!.fees)).toBe(3.5)
  })

  it('alerts when the gas keeper is below its minimum', async () => {
    const r = await s.trigger('gas-keeper')
    expect(r.result).toEqual({ eth: { balance: String(parseEther('0.5')), low: true } })
    expect(await registry.metrics()).toContain('bourse_gas_keeper_low{wallet="eth"} 1')
    expect(alerts).toHaveLength(1)
    expect(alerts[0]).toContain('GasKeeperLow')
  })
})
