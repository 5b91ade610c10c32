/**
 * The deposit syncer on a real anvil chain and a real Postgres: native and ERC-20 deposits credited once
 * (re-scans and restarts credit nothing more), reorgs of depth 1..5 before confirmation (nothing from
 * the orphaned blocks credited, a re-included transfer credited once, even at another log index), a
 * rollback, and the ledger balanced after every scenario.
 */

import { mnemonicToSeedSync } from '@scure/bip39'
import { sql } from 'drizzle-orm'
import { type Address, createPublicClient, encodeFunctionData, type Hex, http, parseEther } from 'viem'
import { HDKey } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { testTokenAbi } from '../../chain/abis.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { deployTestToken } from '../../chain/deploy.ts'
import { type ChainClients, chainClients } from '../../chain/testing.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { parseDecimal } from '../../lib/money.ts'
import { createSyncer, followHeads, type Syncer } from './syncer.ts'
import { depositAddress, registerWallet } from './wallet.ts'

/** The exchange's deposit key: a mnemonic none of anvil's funded accounts come from. */
const DEPOSIT_MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow'
const xpub = HDKey.fromMasterSeed(mnemonicToSeedSync(DEPOSIT_MNEMONIC)).derive(
  "m/44'/60'/0'",
).publicExtendedKey
const CONFIRMATIONS = 6

let anvil: Anvil
let c: ChainClients
let tdb: TestDatabase
let token: Address
const registry = createRegistry({ defaultMetrics: false })
const users: bigint[] = []
const addr: Address[] = []

async function newSyncer(walletId = 'eth'): Promise<Syncer> {
  // A new client each time, as a restarted process would have.
  const client = createPublicClient({ chain: c.chain, transport: http(anvil.rpcUrl), cacheTime: 0 })
  return createSyncer({ db: tdb.db, client, walletId, registry, maxRange: 7 })
}

/** The user's available balance in the asset's smallest units. */
async function balance(userId: bigint, asset: 'ETH' | 'USDT'): Promise<bigint> {
  const [row] = await queryRows<{ available: string }>(
    tdb.db,
    sql`select available::text as available from accounts where user_id = ${userId} and asset = ${asset}`,
  )
  return parseDecimal(row?.available ?? '0', asset === 'ETH' ? 18 : 6, { allowZero: true })
}

async function depositRows(txHash: Hex) {
  return queryRows<{ state: string; log_ordinal: number; log_index: number | null; amount: string }>(
    tdb.db,
    sql`select state, log_ordinal, log_index, amount::text as amount from deposits where tx_hash = ${txHash} order by log_ordinal`,
  )
}

/** Signs locally and returns the raw transaction too, so a reorg can re-include the very same one. */
async function signed(from: number, request: { to: Address; value?: bigint; data?: Hex }) {
  const wallet = c.wallet(from)
  const prepared = await wallet.prepareTransactionRequest({ ...request, chain: c.chain })
  const raw = await wallet.signTransaction(prepared)
  return raw
}

async function sendRaw(raw: Hex): Promise<Hex> {
  const hash = await c.reader.sendRawTransaction({ serializedTransaction: raw })
  const receipt = await c.reader.waitForTransactionReceipt({ hash, pollingInterval: 20 })
  expect(receipt.status).toBe('success')
  return hash
}

const transferData = (to: Address, value: bigint): Hex =>
  encodeFunctionData({ abi: testTokenAbi, functionName: 'transfer', args: [to, value] })

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil({ slotsInAnEpoch: 1 }), createTestDatabase('postgres')])
  c = chainClients(anvil)
  token = await deployTestToken(c.wallet(0), c.reader, { name: 'Tether', symbol: 'USDT', decimals: 6 })
  for (const i of [1, 2, 3, 4, 5, 6, 7, 8])
    await c.reader.waitForTransactionReceipt({
      hash: await c.wallet(0).writeContract({
        address: token,
        abi: testTokenAbi,
        functionName: 'mint',
        args: [c.account(i).address, 10n ** 12n],
      }),
    })
  await tdb.db.execute(sql`insert into assets (symbol, scale) values ('ETH', 18), ('USDT', 6)`)
  for (const name of ['alice', 'bob', 'carol']) {
    const [u] = await queryRows<{ id: bigint }>(
      tdb.db,
      sql`insert into users (name) values (${name}) returning id`,
    )
    users.push(u!.id)
  }
  await registerWallet(tdb.db, {
    id: 'eth',
    chainId: anvil.chainId,
    xpub,
    confirmations: CONFIRMATIONS,
    startBlock: await c.reader.getBlockNumber(),
    assets: [
      { asset: 'ETH', contract: null, decimals: 18 },
      { asset: 'USDT', contract: token, decimals: 6 },
    ],
  })
  for (const u of users) addr.push((await depositAddress(tdb.db, 'eth', u)).address)
}, 60_000)

afterAll(async () => {
  await Promise.all([anvil?.stop(), tdb?.close()])
})

describe('deposit addresses', () => {
  it('hands out indices 0, 1, 2 once each and the same address on a second ask', async () => {
    const again = await depositAddress(tdb.db, 'eth', users[1]!)
    expect(again.index).toBe(1)
    expect(again.address).toBe(addr[1])
    const rows = await queryRows<{ address_index: number }>(
      tdb.db,
      sql`select address_index from deposit_addresses where wallet_id = 'eth' order by address_index`,
    )
    expect(rows.map((r) => r.address_index)).toEqual([0, 1, 2])
  })

  it('never gives one index twice under concurrent first asks', async () => {
    await registerWallet(tdb.db, {
      id: 'race',
      chainId: anvil.chainId,
      xpub,
      confirmations: 1,
      startBlock: 0n,
      assets: [],
    })
    const many: bigint[] = []
    for (let i = 0; i < 12; i++) {
      const [u] = await queryRows<{ id: bigint }>(
        tdb.db,
        sql`insert into users (name) values (${`racer${i}`}) returning id`,
      )
      many.push(u!.id)
    }
    const got = await Promise.all([...many, ...many].map((u) => depositAddress(tdb.db, 'race', u)))
    const byUser = new Map<bigint, Set<string>>()
    for (const g of got) byUser.set(g.userId, (byUser.get(g.userId) ?? new Set()).add(g.address))
    expect([...byUser.values()].every((s) => s.size === 1)).toBe(true)
    expect(new Set(got.map((g) => g.index)).size).toBe(12)
  })
})

describe('syncer', () => {
  it('credits a native and an ERC-20 deposit once, after the confirmations, through re-scans and restarts', async () => {
    const syncer = await newSyncer()
    const ethHash = await sendRaw(await signed(1, { to: addr[0]!, value: parseEther('1.25') }))
    const usdtHash = await sendRaw(await signed(2, { to: token, data: transferData(addr[1]!, 300_000_000n) }))
    // Two transfers in one transaction: ordinals 0 and 1 in its receipt.
    const batchHash = await sendRaw(
      await signed(3, {
        to: token,
        data: encodeFunctionData({
          abi: testTokenAbi,
          functionName: 'batchTransfer',
          args: [
            [addr[1]!, addr[2]!],
            [5_000_000n, 7_000_000n],
          ],
        }),
      }),
    )
    const first = await syncer.syncOnce()
    expect(first.detected).toBe(4)
    expect(first.credited).toBe(0)
    expect((await depositRows(batchHash)).map((d) => d.log_ordinal)).toEqual([0, 1])
    expect((await depositRows(ethHash))[0]).toMatchObject({ log_ordinal: -1, amount: '1.250000000000000000' })

    // One block each: ETH has 3 confirmations, USDT 2, the batch 1.
    await c.mine(CONFIRMATIONS - 3)
    expect((await syncer.syncOnce()).credited).toBe(1)
    await c.mine(2)
    expect((await syncer.syncOnce()).credited).toBe(3)
    expect(await balance(users[0]!, 'ETH')).toBe(parseEther('1.25'))
    expect(await balance(users[1]!, 'USDT')).toBe(305_000_000n)
    expect(await balance(users[2]!, 'USDT')).toBe(7_000_000n)

    // Again, from a restarted syncer, and over the same blocks after the cursor is wound back.
    expect(await (await newSyncer()).syncOnce()).toMatchObject({ detected: 0, credited: 0 })
    await tdb.db.execute(
      sql`update chain_wallets set scanned_block = greatest(scanned_block - 20, -1), scanned_hash = null where id = 'eth'`,
    )
    await tdb.db.execute(sql`delete from chain_blocks where wallet_id = 'eth'`)
    expect(await (await newSyncer()).syncOnce()).toMatchObject({ detected: 0, credited: 0 })
    expect(await balance(users[0]!, 'ETH')).toBe(parseEther('1.25'))
    expect(await balance(users[1]!, 'USDT')).toBe(305_000_000n)
    for (const h of [ethHash, usdtHash, batchHash]) {
      expect((await depositRows(h)).every((d) => d.state === 'credited')).toBe(true)
    }
    expect(await findImbalances(tdb.db)).toEqual([])

    const status = syncer.status()
    expect(status.lag).toBe(0n)
    expect(status.head).toBe(await c.reader.getBlockNumber())
    const metrics = await registry.getMetricsAsJSON()
    const lag = metrics.find((m) => m.name === 'bourse_syncer_lag_blocks')
    expect(lag?.values.find((v) => v.labels.wallet === 'eth')?.value).toBe(0)
  })

  for (const depth of [1, 2, 3, 4, 5]) {
    it(`reorg of depth ${depth} before confirmation: the dropped transfers are never credited, the re-included ones once`, async () => {
      const syncer = await newSyncer()
      await syncer.syncOnce()
      const before = { eth: await balance(users[0]!, 'ETH'), usdt: await balance(users[1]!, 'USDT') }
      // A native deposit that the new chain drops, and an ERC-20 one that it re-includes behind another
      // Transfer (so its block-level log index changes while its ordinal in the receipt does not).
      const dropped = await signed(4, { to: addr[0]!, value: parseEther(`0.${depth}`) })
      const kept = await signed(5, { to: token, data: transferData(addr[1]!, BigInt(depth) * 1_000_000n) })
      // Both in one block, `depth` blocks from the head: the reorg replaces exactly it and those above.
      await c.testClient.setAutomine(false)
      const droppedHash = await c.reader.sendRawTransaction({ serializedTransaction: dropped })
      const keptHash = await c.reader.sendRawTransaction({ serializedTransaction: kept })
      await c.mine(1)
      await c.testClient.setAutomine(true)
      if (depth > 1) await c.mine(depth - 1)
      const seen = await syncer.syncOnce()
      expect(seen.detected).toBe(2)
      expect((await depositRows(keptHash))[0]?.log_index).toBe(0)

      const other = await signed(6, { to: token, data: transferData(c.account(7).address, 1n) })
      await c.reorg(depth, [
        [other, depth - 1],
        [kept, depth - 1],
      ])
      const after = await syncer.syncOnce()
      expect(after.reorgDepth).toBe(depth)
      expect(after.orphaned).toBe(2)
      expect(after.detected).toBe(1)
      expect((await depositRows(droppedHash))[0]?.state).toBe('orphaned')
      expect(await depositRows(keptHash)).toMatchObject([{ state: 'detected', log_ordinal: 0, log_index: 1 }])

      await c.mine(CONFIRMATIONS)
      expect((await syncer.syncOnce()).credited).toBe(1)
      expect(await (await newSyncer()).syncOnce()).toMatchObject({ credited: 0, detected: 0 })
      expect((await depositRows(droppedHash))[0]?.state).toBe('orphaned')
      expect((await depositRows(keptHash))[0]?.state).toBe('credited')
      expect(await balance(users[0]!, 'ETH')).toBe(before.eth)
      expect(await balance(users[1]!, 'USDT')).toBe(before.usdt + BigInt(depth) * 1_000_000n)
      expect(await findImbalances(tdb.db)).toEqual([])
    })
  }

  it('a rollback below the scanned block orphans what it removed, and nothing of it is credited later', async () => {
    const syncer = await newSyncer()
    await syncer.syncOnce()
    const hash = await sendRaw(await signed(8, { to: token, data: transferData(addr[2]!, 42_000_000n) }))
    await c.mine(2)
    expect((await syncer.syncOnce()).detected).toBe(1)
    await c.rollback(3)
    const r = await syncer.syncOnce()
    expect(r.reorgDepth).toBe(3)
    expect((await depositRows(hash))[0]?.state).toBe('orphaned')
    await c.mine(CONFIRMATIONS + 1)
    await syncer.syncOnce()
    expect((await depositRows(hash))[0]?.state).toBe('orphaned')
    expect(await balance(users[2]!, 'USDT')).toBe(7_000_000n)
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('follows new heads over WebSocket and credits without being asked', async () => {
    const syncer = await newSyncer()
    const stop = new AbortController()
    const unwatch = followHeads(syncer, anvil.wsUrl)
    // A long poll interval: only the subscription can make the passes happen in time.
    const running = syncer.run({ signal: stop.signal, pollIntervalMs: 60_000 })
    try {
      const hash = await sendRaw(await signed(9, { to: addr[2]!, value: parseEther('0.5') }))
      await c.mine(CONFIRMATIONS)
      await waitFor(async () => (await depositRows(hash))[0]?.state === 'credited', 'the deposit is credited')
      expect(await balance(users[2]!, 'ETH')).toBe(parseEther('0.5'))
      await waitFor(async () => syncer.status().lag === 0n, 'the syncer caught up')
    } finally {
      unwatch()
      stop.abort()
      await running
    }
    expect(await findImbalances(tdb.db)).toEqual([])
  })
})

describe('finalized-tag wallet', () => {
  it('credits once the finalized block covers the deposit, not before', async () => {
    // anvil --slots-in-an-epoch 1: finalized is head - 2.
    const key = HDKey.fromMasterSeed(mnemonicToSeedSync(DEPOSIT_MNEMONIC)).derive(
      "m/44'/60'/1'",
    ).publicExtendedKey
    await registerWallet(tdb.db, {
      id: 'eth-final',
      chainId: anvil.chainId,
      xpub: key,
      confirmations: 1,
      finality: 'finalized',
      startBlock: await c.reader.getBlockNumber(),
      assets: [{ asset: 'USDT', contract: token, decimals: 6 }],
    })
    const to = (await depositAddress(tdb.db, 'eth-final', users[0]!)).address
    const syncer = await newSyncer('eth-final')
    const hash = await sendRaw(await signed(2, { to: token, data: transferData(to, 9_000_000n) }))
    await c.mine(1)
    expect(await syncer.syncOnce()).toMatchObject({ detected: 1, credited: 0 })
    expect((await depositRows(hash))[0]?.state).toBe('confirming')
    await c.mine(1)
    expect((await syncer.syncOnce()).credited).toBe(1)
    expect(syncer.status().finalized).toBe((await c.reader.getBlockNumber()) - 2n)
    expect(await balance(users[0]!, 'USDT')).toBe(9_000_000n)
    expect(await findImbalances(tdb.db)).toEqual([])
  })
})
