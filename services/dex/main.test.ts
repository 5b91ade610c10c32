/**
 * `bourse dex` as a child process against anvil and Postgres: it registers the order contract, indexes
 * what happened before it started and what happens while it runs (woken by new heads over WebSocket),
 * serves the order API, /status and /readyz, and stops cleanly on SIGTERM; a restart resumes at its cursor.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { type ChainClients, chainClients } from '../../chain/testing.ts'
import { freePort } from '../../lib/net.ts'
import { deployOrderContract, type OrderContract } from './testing.ts'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
let anvil: Anvil
let c: ChainClients
let tdb: TestDatabase
let dex: OrderContract

function run(env: Record<string, string>) {
  const chunks: string[] = []
  const child: ChildProcess = spawn(
    process.execPath,
    ['--input-type=module', '-e', "import('./services/dex/main.ts').then((m) => m.main([]))"],
    { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  child.stdout?.on('data', (d: Buffer) => chunks.push(d.toString()))
  child.stderr?.on('data', (d: Buffer) => chunks.push(d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, output: () => chunks.join(''), exited }
}

async function waitFor(check: () => Promise<boolean>, what: string, out: () => string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}:\n${out()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil(), createTestDatabase('postgres')])
  c = chainClients(anvil)
  dex = await deployOrderContract(c, [1, 2])
}, 60_000)

afterAll(async () => {
  await Promise.all([anvil?.stop(), tdb?.close()])
})

describe('bourse dex', () => {
  it('indexes and serves the orders, follows new heads, stops on SIGTERM and resumes after a restart', async () => {
    const first = await dex.create(1, 10n ** 18n, 2_000_000_000n)
    await dex.execute(2, first.id)
    const port = await freePort()
    const env = {
      BOURSE_DATABASE_URL: (tdb.config as { url: string }).url,
      BOURSE_CHAIN_RPC_URL: anvil.rpcUrl,
      BOURSE_CHAIN_WS_URL: anvil.wsUrl,
      BOURSE_DEX_CONTRACT: dex.orderBook,
      BOURSE_DEX_START_BLOCK: String(dex.deployBlock),
      BOURSE_DEX_PORT: String(port),
      BOURSE_DEX_POLL_INTERVAL: '30s',
    }
    const base = `http://127.0.0.1:${port}`
    const stats = async () => (await (await fetch(`${base}/statistics`)).json()) as Record<string, number>
    const p = run(env)
    await waitFor(async () => (await stats()).executed_orders === 1, 'the executed order is served', p.output)
    expect((await fetch(`${base}/readyz`)).status).toBe(200)
    // Only new heads wake it (the poll interval is 30 s).
    const second = await dex.create(2, 10n ** 17n, 300_000_000n)
    await waitFor(async () => (await stats()).pending_orders === 1, 'the new order is indexed', p.output)
    const order = (await (await fetch(`${base}/orders/${second.id}`)).json()) as Record<string, unknown>
    expect(order).toMatchObject({
      status: 'PENDING',
      amount_in: '0.1',
      amount_out: '300',
      user_address: c.account(2).address,
    })
    const status = (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>
    expect(status).toMatchObject({ contract: dex.orderBook, lag: 0, lastError: null })
    p.child.kill('SIGTERM')
    expect(await p.exited).toBe(0)

    // Down: an order is cancelled; the restarted process resumes at its cursor.
    await dex.cancel(2, second.id)
    const again = run(env)
    await waitFor(
      async () => (await stats()).cancelled_orders === 1,
      'the cancellation is indexed',
      again.output,
    )
    expect(await stats()).toMatchObject({ total_orders: 2, total_events: 4, pending_orders: 0 })
    again.child.kill('SIGTERM')
    expect(await again.exited).toBe(0)
  }, 60_000)
})
