/**
 * `bourse syncer --wallet eth` as a child process, as the operator runs it, against a real anvil and the
 * test Postgres: it registers the wallet from a mounted JSON file plus variables, follows heads over
 * WebSocket (polling is set to 30 s, so only the subscription can make the credit this quick), credits a
 * native and an ERC-20 deposit, serves /status (with the gas keeper's balance), /metrics and /readyz, never shows the RPC URL's
 * credentials, runs deposits only without a hot wallet key (and says so), and stops cleanly on SIGTERM. A bad definition exits 2 naming what is wrong.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { mnemonicToSeedSync } from '@scure/bip39'
import { sql } from 'drizzle-orm'
import { type Address, parseEther } from 'viem'
import { HDKey } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { runNode, waitFor } from '../../adapters/testing/child.ts'
import { testTokenAbi } from '../../chain/abis.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { deployTestToken } from '../../chain/deploy.ts'
import { type ChainClients, chainClients } from '../../chain/testing.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { freePort } from '../../lib/net.ts'
import { depositAddress } from './wallet.ts'

const DEPOSIT_MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow'
const xpub = HDKey.fromMasterSeed(mnemonicToSeedSync(DEPOSIT_MNEMONIC)).derive(
  "m/44'/60'/0'",
).publicExtendedKey

let anvil: Anvil
let c: ChainClients
let tdb: TestDatabase
let token: Address
let dir: string
let userId: bigint

async function available(asset: string): Promise<string> {
  const [row] = await queryRows<{ available: string }>(
    tdb.db,
    sql`select available::text as available from accounts where user_id = ${userId} and asset = ${asset}`,
  )
  return row?.available ?? '0'
}

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil(), createTestDatabase('postgres')])
  c = chainClients(anvil)
  token = await deployTestToken(c.wallet(0), c.reader, { name: 'Tether', symbol: 'USDT', decimals: 6 })
  await c.reader.waitForTransactionReceipt({
    hash: await c.wallet(0).writeContract({
      address: token,
      abi: testTokenAbi,
      functionName: 'mint',
      args: [c.account(1).address, 10n ** 12n],
    }),
  })
  await tdb.db.execute(sql`insert into assets (symbol, scale) values ('ETH', 8), ('USDT', 6)`)
  const [u] = await queryRows<{ id: bigint }>(
    tdb.db,
    sql`insert into users (name) values ('alice') returning id`,
  )
  userId = u!.id
  dir = await mkdtemp(join(tmpdir(), 'bourse-syncer-'))
})

afterAll(async () => {
  await anvil?.stop()
  await tdb?.close()
  if (dir) await rm(dir, { recursive: true, force: true })
})

describe('bourse syncer', () => {
  it('registers the wallet, follows heads over WebSocket, credits deposits and reports its status', async () => {
    // The Wallet resource's spec as the operator mounts it; confirmations overridden by a variable.
    const walletFile = join(dir, 'wallet.json')
    await writeFile(
      walletFile,
      JSON.stringify({
        apiVersion: 'bourse.dev/v1alpha1',
        kind: 'Wallet',
        metadata: { name: 'eth' },
        spec: {
          exchangeRef: { name: 'bourse' },
          chain: { id: anvil.chainId, name: 'anvil' },
          rpc: { secretRef: { name: 'rpc' } },
          confirmations: 12,
          assets: [
            { symbol: 'ETH', native: true, decimals: 18 },
            { symbol: 'USDT', contract: token.toLowerCase(), decimals: 6 },
          ],
          depositKey: { xpub },
          gasKeeper: { address: c.account(2).address.toLowerCase(), minBalance: '0.5' },
        },
      }),
    )
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const p = run({
      BOURSE_DATABASE_URL: tdb.config.kind === 'postgres' ? tdb.config.url : '',
      // Credentials in the user-info and the query string: neither may ever be printed.
      BOURSE_CHAIN_RPC_URL: `http://alice:hunter2@127.0.0.1:${anvil.port}/?apikey=sekrit42`,
      BOURSE_CHAIN_WS_URL: anvil.wsUrl,
      BOURSE_WALLET_FILE: walletFile,
      BOURSE_WALLET_CONFIRMATIONS: '3',
      BOURSE_SYNCER_PORT: String(port),
      BOURSE_SYNCER_POLL_INTERVAL: '30s',
    })
    try {
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, 'ready', p.output)
      const [wallet] = await queryRows<{ confirmations: number; chain_id: bigint }>(
        tdb.db,
        sql`select confirmations, chain_id from chain_wallets where id = 'eth'`,
      )
      expect(wallet).toEqual({ confirmations: 3, chain_id: BigInt(anvil.chainId) })

      const { address } = await depositAddress(tdb.db, 'eth', userId)
      const sender = c.wallet(1)
      await c.reader.waitForTransactionReceipt({
        hash: await sender.sendTransaction({ to: address, value: parseEther('1.5') }),
      })
      await c.reader.waitForTransactionReceipt({
        hash: await sender.writeContract({
          address: token,
          abi: testTokenAbi,
          functionName: 'transfer',
          args: [address, 250_000_000n],
        }),
      })
      // Not yet: the token transfer has 1 confirmation of 3.
      await new Promise((r) => setTimeout(r, 300))
      expect(await available('USDT')).toBe('0')
      await c.mine(2)
      let lastStatus: unknown
      await waitFor(
        async () => {
          lastStatus = await (await fetch(`${base}/status`)).json()
          return (await available('ETH')) === '1.5' && (await available('USDT')) === '250'
        },
        'both deposits are credited',
        () => `${p.output()}\n${JSON.stringify(lastStatus)}`,
      )
      expect(await findImbalances(tdb.db)).toEqual([])

      const head = Number(await c.reader.getBlockNumber())
      await waitFor(
        async () => ((await (await fetch(`${base}/status`)).json()) as { scanned: number }).scanned === head,
        'status shows the head scanned',
        p.output,
      )
      expect(await (await fetch(`${base}/status`)).json()).toEqual({
        wallet: 'eth',
        chainId: anvil.chainId,
        head,
        scanned: head,
        lag: 0,
        finalized: null,
        lastError: null,
        withdrawals: null,
        // anvil's third account holds 10,000 ETH; the balance is read from the chain, in ETH.
        gasKeeper: { address: c.account(2).address, balance: '10000' },
      })
      const metrics = await (await fetch(`${base}/metrics`)).text()
      expect(metrics).toContain(`bourse_syncer_scanned_block{wallet="eth"} ${head}`)
      expect(metrics).toMatch(/bourse_syncer_deposits_total\{wallet="eth",state="credited"\} 2/)
      expect((await fetch(`${base}/healthz`)).status).toBe(200)

      p.child.kill('SIGTERM')
      expect(await p.exited).toBe(0)
      expect(p.output()).toContain('syncer running')
      expect(p.output()).toContain('running deposits only')
      expect(p.output()).toContain('127.0.0.1')
      expect(p.output()).not.toContain('hunter2')
      expect(p.output()).not.toContain('sekrit42')
    } finally {
      p.child.kill('SIGKILL')
    }
  })

  it('exits 2 naming what is wrong with the wallet definition', async () => {
    const p = run({
      BOURSE_DATABASE_URL: 'postgres://127.0.0.1:1/none',
      BOURSE_CHAIN_RPC_URL: `http://127.0.0.1:${anvil.port}`,
      BOURSE_WALLET_CHAIN_ID: String(anvil.chainId),
      BOURSE_WALLET_ASSETS:
        '[{"symbol":"ETH","native":true,"contract":"0x0000000000000000000000000000000000000001","decimals":18}]',
    })
    expect(await p.exited).toBe(2)
    expect(p.output()).toContain('wallet depositKey')
    expect(p.output()).toContain('either native: true or has a contract')
  })
})

/** `bourse syncer --wallet eth`, with debug logs. */
function run(env: Record<string, string>) {
  return runNode(['cli/bourse.ts', 'syncer', '--wallet', 'eth'], { BOURSE_LOG_LEVEL: 'debug', ...env })
}
