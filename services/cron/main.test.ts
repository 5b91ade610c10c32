/**
 * `bourse cron` as processes on a real Postgres and anvil: two replicas, one leads; /metrics, /healthz
 * and /readyz served; the reconciliation runs on its schedule; a bad variable exits 2 naming it; on
 * SIGTERM the leader releases the lease and the standby takes over; the ledger's event stream is relayed to
 * the real nsqd.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createBus } from '../../adapters/bus/index.ts'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { nsqdHttpUrl, nsqdTcpAddress, uniqueName } from '../../adapters/testing/servers.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { freePort } from '../../lib/net.ts'

let tdb: TestDatabase
let anvil: Anvil
const children: ChildProcess[] = []

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil(), createTestDatabase('postgres')])
  await tdb.db.execute(sql`insert into assets (symbol, scale) values ('ETH', 18)`)
  await tdb.db.execute(
    sql`insert into chain_wallets (id, chain_id, xpub, confirmations, scanned_block) values ('eth', ${BigInt(anvil.chainId)}, 'xpub', 1, 0)`,
  )
  await tdb.db.execute(
    sql`insert into chain_wallet_assets (wallet_id, asset, contract, decimals) values ('eth', 'ETH', null, 18)`,
  )
}, 60_000)

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  await Promise.all([anvil?.stop(), tdb?.close()])
})

function cron(env: Record<string, string>): ChildProcess & { output: () => string } {
  const child = spawn(
    process.execPath,
    ['--input-type=module', '-e', "import('./services/cron/main.ts').then((m) => m.main([]))"],
    { env: { ...process.env, BOURSE_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  children.push(child)
  return Object.assign(child, { output: () => out })
}

async function until(check: () => Promise<boolean>, ms = 15_000) {
  const end = Date.now() + ms
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(100)
  }
}

const exited = (c: ChildProcess) =>
  new Promise<number | null>((resolve) =>
    c.exitCode !== null ? resolve(c.exitCode) : c.once('exit', resolve),
  )

describe('bourse cron', () => {
  it('refuses a bad variable with exit code 2', async () => {
    const c = cron({ BOURSE_DATABASE_URL: 'mysql://x', BOURSE_CRON_PORT: '0' })
    expect(await exited(c)).toBe(2)
    expect(c.output()).toContain('BOURSE_DATABASE_URL')
  }, 20_000)

  it('runs two replicas with one leader, serves metrics, and hands over on SIGTERM', async () => {
    const [portA, portB] = [await freePort(), await freePort()]
    const env = {
      BOURSE_DATABASE_URL: (tdb.config as { url: string }).url,
      BOURSE_CHAIN_RPC_URL: anvil.rpcUrl,
      BOURSE_CRON_WALLET: 'eth',
      BOURSE_CRON_LEASE_TTL: '1500ms',
      BOURSE_CRON_SCHEDULE_RECONCILIATION: '* * * * * *',
      BOURSE_WALLET_COLD_ADDRESSES: '0x000000000000000000000000000000000000c01d',
    }
    const a = cron({ ...env, BOURSE_CRON_PORT: String(portA) })
    await until(async () => (await fetch(`http://127.0.0.1:${portA}/readyz`)).ok)
    const b = cron({ ...env, BOURSE_CRON_PORT: String(portB) })
    await until(async () => (await fetch(`http://127.0.0.1:${portB}/readyz`)).ok)
    expect((await fetch(`http://127.0.0.1:${portA}/healthz`)).status).toBe(200)
    await until(async () => {
      const rows = await queryRows(tdb.db, sql`select id from reconciliations`)
      return rows.length >= 2
    })
    const holders = await queryRows<{ holder: string }>(
      tdb.db,
      sql`select distinct holder from cron_runs where job = 'reconciliation'`,
    )
    expect(holders).toHaveLength(1)
    const [lease] = await queryRows<{ holder: string; token: bigint }>(
      tdb.db,
      sql`select holder, token from cron_leases where name = 'cron'`,
    )
    const metricsA = await (await fetch(`http://127.0.0.1:${portA}/metrics`)).text()
    const metricsB = await (await fetch(`http://127.0.0.1:${portB}/metrics`)).text()
    const [leader, standby, leaderPort] = metricsA.includes(
      'bourse_cron_runs_total{job="reconciliation",outcome="ok"}',
    )
      ? [a, b, portA]
      : [b, a, portB]
    const leaderMetrics = leader === a ? metricsA : metricsB
    expect(leaderMetrics).toContain('bourse_reconciliation_imbalance{asset="ETH"} 0')
    expect(leaderMetrics).toContain('bourse_cron_run_seconds_bucket')
    expect(leaderPort).toBeGreaterThan(0)
    leader.kill('SIGTERM')
    expect(await exited(leader)).toBe(0)
    await until(async () => {
      const [l] = await queryRows<{ holder: string; token: bigint }>(
        tdb.db,
        sql`select holder, token from cron_leases where name = 'cron'`,
      )
      return l!.holder !== lease!.holder && l!.token === lease!.token + 1n
    }, 5000)
    const before = (await queryRows(tdb.db, sql`select id from cron_runs`)).length
    await until(async () => (await queryRows(tdb.db, sql`select id from cron_runs`)).length > before)
    standby.kill('SIGTERM')
    expect(await exited(standby)).toBe(0)
  }, 45_000)
  it('relays the ledger stream to NSQ: a deposit becomes a balance_updates message', async () => {
    const bus = createBus({ kind: 'nsq', nsqdTcp: nsqdTcpAddress(), nsqdHttp: nsqdHttpUrl() })
    const seen: Record<string, unknown>[] = []
    await bus.subscribe(
      'balance_updates',
      `${uniqueName('cron-test-')}#ephemeral`,
      async (m) => {
        seen.push(m.json())
      },
      { maxInFlight: 10, requeueDelayMs: 100 },
    )
    const c = cron({
      BOURSE_DATABASE_URL: (tdb.config as { url: string }).url,
      BOURSE_CRON_PORT: '0',
      BOURSE_NSQ: JSON.stringify({ nsqd: nsqdTcpAddress(), nsqdHttp: nsqdHttpUrl() }),
    })
    try {
      await tdb.db.execute(sql`insert into assets (symbol, scale) values ('BTC', 8) on conflict do nothing`)
      const [user] = await queryRows<{ id: bigint }>(
        tdb.db,
        sql`insert into users (name) values (${uniqueName('relay-')}) returning id`,
      )
      await creditDeposit(tdb.db, {
        userId: user!.id,
        asset: 'BTC',
        amount: '1.5',
        depositRef: uniqueName('d-'),
      })
      await until(async () => seen.some((e) => e.userId === String(user!.id)))
      expect(seen.find((e) => e.userId === String(user!.id))).toMatchObject({
        market: 'ledger',
        topic: 'balance_updates',
        asset: 'BTC',
        delta: '1.5',
        reason: 'deposit',
      })
      await until(async () => {
        const rows = await queryRows(
          tdb.db,
          sql`select id from outbox where market = 'ledger' and sent_at is null`,
        )
        return rows.length === 0
      })
    } finally {
      c.kill('SIGTERM')
      await exited(c)
      await bus.close()
    }
  }, 30_000)
})
