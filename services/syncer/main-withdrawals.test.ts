/**
 * `bourse syncer --wallet eth` with a hot wallet key, as a child process against a real anvil and the test
 * Postgres: the key comes from a mounted file (BOURSE_WALLET_HOT_KEY_FILE, as the operator mounts the
 * Wallet's hotWallet Secret); withdrawals requested in the database (ETH and USDT) are signed, broadcast,
 * confirmed and completed by the running process; /status and /metrics show them; the key and the RPC
 * credentials are never printed. A malformed key exits 2 without quoting it.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mnemonicToSeedSync } from '@scure/bip39'
import { sql } from 'drizzle-orm'
import { type Address, bytesToHex, type Hex, parseEther, parseUnits } from 'viem'
import { HDKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { runNode, waitFor } from '../../adapters/testing/child.ts'
import { testTokenAbi } from '../../chain/abis.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { deployTestToken } from '../../chain/deploy.ts'
import { ANVIL_MNEMONIC, type ChainClients, chainClients } from '../../chain/testing.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { balancesOf } from '../../ledger/ledger.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { freePort } from '../../lib/net.ts'
import { getWithdrawal, requestWithdrawal } from '../withdrawals/withdrawals.ts'

const seed = mnemonicToSeedSync(ANVIL_MNEMONIC)
const XPUB = HDKey.fromMasterSeed(seed).derive("m/44'/60'/1'").publicExtendedKey
// anvil's account 8: funded with ETH by anvil, USDT minted to it below.
const HOT_KEY = bytesToHex(HDKey.fromMasterSeed(seed).derive("m/44'/60'/0'/0/8").privateKey!) as Hex
const HOT = privateKeyToAccount(HOT_KEY).address
const RECIPIENT = privateKeyToAccount(`0x${'5e'.repeat(32)}`).address

let anvil: Anvil
let c: ChainClients
let tdb: TestDatabase
let token: Address
let dir: string
let userId: bigint

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil(), createTestDatabase('postgres')])
  c = chainClients(anvil)
  token = await deployTestToken(c.wallet(0), c.reader, { name: 'Tether', symbol: 'USDT', decimals: 6 })
  await c.reader.waitForTransactionReceipt({
    hash: await c.wallet(0).writeContract({
      address: token,
      abi: testTokenAbi,
      functionName: 'mint',
      args: [HOT, parseUnits('10000', 6)],
    }),
  })
  await tdb.db.execute(sql`insert into assets (symbol, scale) values ('ETH', 8), ('USDT', 6)`)
  const [u] = await queryRows<{ id: bigint }>(
    tdb.db,
    sql`insert into users (name) values ('bob') returning id`,
  )
  userId = u!.id
  await creditDeposit(tdb.db, { userId, asset: 'ETH', amount: '3', depositRef: 'seed-eth' })
  await creditDeposit(tdb.db, { userId, asset: 'USDT', amount: '1000', depositRef: 'seed-usdt' })
  dir = await mkdtemp(join(tmpdir(), 'bourse-syncer-withdrawals-'))
}, 60_000)

afterAll(async () => {
  await anvil?.stop()
  await tdb?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('bourse syncer with a hot wallet key', () => {
  it('signs, broadcasts, confirms and completes the withdrawals requested in the database', async () => {
    const keyFile = join(dir, 'privateKey')
    // As a Secret mounts it: the key and a trailing newline.
    await writeFile(keyFile, `${HOT_KEY}\n`, { mode: 0o600 })
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const p = run({
      BOURSE_DATABASE_URL: tdb.config.kind === 'postgres' ? tdb.config.url : '',
      BOURSE_CHAIN_RPC_URL: `http://alice:hunter2@127.0.0.1:${anvil.port}/?apikey=sekrit42`,
      BOURSE_WALLET_CHAIN_ID: String(anvil.chainId),
      BOURSE_WALLET_XPUB: XPUB,
      BOURSE_WALLET_CONFIRMATIONS: '2',
      BOURSE_WALLET_ASSETS: JSON.stringify([
        { symbol: 'ETH', native: true, decimals: 18 },
        { symbol: 'USDT', contract: token, decimals: 6 },
      ]),
      BOURSE_WALLET_HOT_KEY_FILE: keyFile,
      BOURSE_SYNCER_PORT: String(port),
      BOURSE_SYNCER_POLL_INTERVAL: '200ms',
      BOURSE_WITHDRAWAL_INTERVAL: '200ms',
    })
    // anvil mines only on transactions: mine a block every 300 ms so confirmations come.
    const miner = setInterval(() => void c.mine(1).catch(() => undefined), 300)
    try {
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, 'ready', p.output)
      expect(p.output()).toContain('withdrawals running from the hot wallet')
      expect(p.output()).toContain(HOT)

      const policy = {
        assets: {
          ETH: { dailyLimit: '10', approvalAbove: '5' },
          USDT: { dailyLimit: '5000', approvalAbove: '2000' },
        },
      }
      const usdt = await requestWithdrawal(tdb.db, policy, {
        userId,
        walletId: 'eth',
        asset: 'USDT',
        address: RECIPIENT,
        amount: '250.5',
      })
      const eth = await requestWithdrawal(tdb.db, policy, {
        userId,
        walletId: 'eth',
        asset: 'ETH',
        address: RECIPIENT,
        amount: '0.75',
      })
      expect([usdt.state, eth.state]).toEqual(['approved', 'approved'])

      await waitFor(
        async () =>
          (await getWithdrawal(tdb.db, usdt.id)).state === 'completed' &&
          (await getWithdrawal(tdb.db, eth.id)).state === 'completed',
        'both withdrawals are completed',
        p.output,
      )
      // On chain: exactly what was asked arrived at the recipient, sent by the hot wallet.
      expect(
        await c.reader.readContract({
          address: token,
          abi: testTokenAbi,
          functionName: 'balanceOf',
          args: [RECIPIENT],
        }),
      ).toBe(250_500_000n)
      expect(await c.reader.getBalance({ address: RECIPIENT })).toBe(parseEther('0.75'))
      const done = await getWithdrawal(tdb.db, usdt.id)
      const tx = await c.reader.getTransaction({ hash: done.txHash as Hex })
      expect(tx.from.toLowerCase()).toBe(HOT.toLowerCase())
      // In the ledger: the funds left the user and the books balance.
      const balances = await balancesOf(tdb.db, userId)
      expect(balances.find((b) => b.asset === 'USDT')).toMatchObject({ available: '749.5', frozen: '0' })
      expect(balances.find((b) => b.asset === 'ETH')).toMatchObject({ available: '2.25', frozen: '0' })
      expect(await findImbalances(tdb.db)).toEqual([])

      await waitFor(
        async () => {
          const s = (await (await fetch(`${base}/status`)).json()) as { withdrawals: { processing: number } }
          return s.withdrawals.processing === 0
        },
        'status shows nothing processing',
        p.output,
      )
      const status = (await (await fetch(`${base}/status`)).json()) as Record<string, unknown>
      expect(status.withdrawals).toEqual({
        hotAddress: HOT,
        pendingApproval: 0,
        pending: 0,
        processing: 0,
        paused: false,
        lastError: null,
      })
      const metrics = await (await fetch(`${base}/metrics`)).text()
      expect(metrics).toContain('bourse_withdrawals_settled_total{wallet="eth",outcome="completed"} 2')
      expect(metrics).toContain('bourse_withdrawals_open{wallet="eth",state="processing"} 0')

      p.child.kill('SIGTERM')
      expect(await p.exited).toBe(0)
      const out = p.output()
      expect(out).toContain('withdrawal settled')
      expect(out.toLowerCase()).not.toContain(HOT_KEY.slice(2).toLowerCase())
      expect(out).not.toContain('hunter2')
      expect(out).not.toContain('sekrit42')
    } finally {
      clearInterval(miner)
      p.child.kill('SIGKILL')
    }
  }, 60_000)

  it('exits 2 on a malformed key without quoting it', async () => {
    const p = run({
      BOURSE_DATABASE_URL: 'postgres://127.0.0.1:1/none',
      BOURSE_CHAIN_RPC_URL: `http://127.0.0.1:${anvil.port}`,
      BOURSE_WALLET_CHAIN_ID: String(anvil.chainId),
      BOURSE_WALLET_XPUB: XPUB,
      BOURSE_WALLET_ASSETS: '[{"symbol":"ETH","native":true,"decimals":18}]',
      BOURSE_WALLET_HOT_KEY: '0xfeedfacefeedface',
    })
    expect(await p.exited).toBe(2)
    expect(p.output()).toContain('BOURSE_WALLET_HOT_KEY: expected a private key of 64 hex digits')
    expect(p.output()).not.toContain('feedface')
  })
})

/** `bourse syncer --wallet eth`, with debug logs. */
function run(env: Record<string, string>) {
  return runNode(['cli/bourse.ts', 'syncer', '--wallet', 'eth'], { BOURSE_LOG_LEVEL: 'debug', ...env })
}
