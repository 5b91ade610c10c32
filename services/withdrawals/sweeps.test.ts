/**
 * Sweeps on anvil: native (balance less gas to cold) and ERC-20 (gas keeper top-up, confirmed, then the
 * tokens to cold), each recorded with its states and transactions; the gas keeper's low-balance alert.
 */
import { mnemonicToSeedSync } from '@scure/bip39'
import { sql } from 'drizzle-orm'
import { type Address, bytesToHex, type Hex, parseEther, parseUnits } from 'viem'
import { HDKey, mnemonicToAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { testTokenAbi } from '../../chain/abis.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { deployTestToken } from '../../chain/deploy.ts'
import { ANVIL_MNEMONIC, type ChainClients, chainClients } from '../../chain/testing.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { Sweeper } from './sweeps.ts'

const DEPOSIT_MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow'
const XPUB = HDKey.fromMasterSeed(mnemonicToSeedSync(DEPOSIT_MNEMONIC)).derive(
  "m/44'/60'/0'",
).publicExtendedKey
const depositAccount = (i: number) => mnemonicToAccount(DEPOSIT_MNEMONIC, { addressIndex: i })
const KEEPER_KEY = bytesToHex(
  HDKey.fromMasterSeed(mnemonicToSeedSync(ANVIL_MNEMONIC)).derive("m/44'/60'/0'/0/8").privateKey!,
) as Hex
const COLD = privateKeyToAccount(`0x${'c0'.repeat(32)}`).address

let anvil: Anvil
let c: ChainClients
let tdb: TestDatabase
let token: Address
const registry = createRegistry({ defaultMetrics: false })

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil(), createTestDatabase('postgres')])
  c = chainClients(anvil)
  token = await deployTestToken(c.wallet(0), c.reader, { name: 'Tether', symbol: 'USDT', decimals: 6 })
  await tdb.db.execute(sql`insert into assets (symbol, scale) values ('ETH', 18), ('USDT', 6)`)
  await queryRows(tdb.db, sql`insert into users (name) values ('alice'), ('bob') returning id`)
  await tdb.db.execute(
    sql`insert into chain_wallets (id, chain_id, xpub, confirmations, scanned_block) values ('eth', ${BigInt(anvil.chainId)}, ${XPUB}, 2, 0)`,
  )
  await tdb.db.execute(
    sql`insert into chain_wallet_assets (wallet_id, asset, contract, decimals) values ('eth', 'ETH', null, 18), ('eth', 'USDT', ${token}, 6)`,
  )
  for (const [i, user] of [
    [0, 1n],
    [1, 2n],
  ] as const) {
    await tdb.db.execute(
      sql`insert into deposit_addresses (wallet_id, address_index, user_id, address) values ('eth', ${i}, ${user}, ${depositAccount(i).address})`,
    )
  }
  // Address 0 received 2 ETH; address 1 received 500 USDT and no ETH.
  await sendEth(depositAccount(0).address, '2')
  await mintUsdt(depositAccount(1).address, '500')
}, 60_000)

afterAll(async () => {
  await Promise.all([anvil?.stop(), tdb?.close()])
})

function sweeper(minimum = parseEther('1')) {
  return new Sweeper({
    db: tdb.db,
    walletId: 'eth',
    chainId: anvil.chainId,
    rpcUrl: anvil.rpcUrl,
    confirmations: 2,
    coldAddress: COLD,
    gasKeeperKey: KEEPER_KEY,
    gasKeeperMinimum: minimum,
    depositAccount,
    thresholds: { ETH: parseEther('0.1'), USDT: parseUnits('100', 6) },
    registry: minimum === parseEther('1') ? registry : undefined,
  })
}

/** Sends `eth` from anvil's first account, mined. */
async function sendEth(to: Address, eth: string): Promise<void> {
  await c.reader.waitForTransactionReceipt({
    hash: await c.wallet(0).sendTransaction({ to, value: parseEther(eth) }),
  })
}

/** Mints `usdt` of the test token to `to`, mined. */
async function mintUsdt(to: Address, usdt: string): Promise<void> {
  await c.reader.waitForTransactionReceipt({
    hash: await c.wallet(0).writeContract({
      address: token,
      abi: testTokenAbi,
      functionName: 'mint',
      args: [to, parseUnits(usdt, 6)],
    }),
  })
}

const tokenBalance = (a: Address) =>
  c.reader.readContract({ address: token, abi: testTokenAbi, functionName: 'balanceOf', args: [a] })

describe('sweeps', () => {
  it('sweeps native coin and, after a confirmed gas top-up, tokens to the cold address', async () => {
    const s = sweeper()
    const seen: string[] = []
    for (let i = 0; i < 12; i++) {
      await s.tick()
      const rows = await queryRows<{ asset: string; state: string }>(
        tdb.db,
        sql`select asset, state from sweeps order by id`,
      )
      seen.push(rows.map((r) => `${r.asset}:${r.state}`).join(','))
      if (rows.length === 2 && rows.every((r) => r.state === 'swept')) break
      await c.mine(1)
    }
    const rows = await queryRows<{
      asset: string
      state: string
      gas_tx_id: bigint | null
      chain_tx_id: bigint | null
    }>(tdb.db, sql`select asset, state, gas_tx_id, chain_tx_id from sweeps order by id`)
    expect(rows.map((r) => [r.asset, r.state])).toEqual([
      ['ETH', 'swept'],
      ['USDT', 'swept'],
    ])
    expect(rows[0]!.gas_tx_id).toBeNull()
    expect(rows[1]!.gas_tx_id).not.toBeNull()
    // The token sweep waited for its gas: gas_required → waiting_for_gas → ready/sweeping → swept.
    expect(seen.some((x) => x.includes('USDT:waiting_for_gas'))).toBe(true)
    expect(await tokenBalance(COLD)).toBe(parseUnits('500', 6))
    expect(await tokenBalance(depositAccount(1).address)).toBe(0n)
    const cold = await c.reader.getBalance({ address: COLD })
    expect(cold).toBeGreaterThan(parseEther('1.99'))
    expect(cold).toBeLessThan(parseEther('2'))
    const txs = await queryRows<{ purpose: string; state: string }>(
      tdb.db,
      sql`select purpose, state from chain_txs order by id`,
    )
    expect(txs.map((t) => t.state)).toEqual(['confirmed', 'confirmed', 'confirmed'])
    // Nothing more to sweep: another pass opens nothing.
    await s.tick()
    expect(await queryRows(tdb.db, sql`select id from sweeps`)).toHaveLength(2)
  })

  it('sweeps an address holding tokens and coin one asset at a time: tokens first, on the coin as gas', async () => {
    const both = depositAccount(2)
    const [carol] = await queryRows<{ id: bigint }>(
      tdb.db,
      sql`insert into users (name) values ('carol') returning id`,
    )
    await tdb.db.execute(
      sql`insert into deposit_addresses (wallet_id, address_index, user_id, address) values ('eth', 2, ${carol!.id}, ${both.address})`,
    )
    await sendEth(both.address, '1')
    await mintUsdt(both.address, '300')
    const coldTokens = await tokenBalance(COLD)
    const s = sweeper()
    const open: string[][] = []
    const ofAddress = () =>
      queryRows<{ asset: string; state: string; gas_tx_id: bigint | null }>(
        tdb.db,
        sql`select asset, state, gas_tx_id from sweeps where address_index = 2 order by id`,
      )
    for (let i = 0; i < 12; i++) {
      await s.tick()
      const rows = await ofAddress()
      open.push(rows.filter((r) => r.state !== 'swept').map((r) => r.asset))
      if (rows.length === 2 && rows.every((r) => r.state === 'swept')) break
      await c.mine(1)
    }
    const rows = await ofAddress()
    expect(rows.map((r) => [r.asset, r.state])).toEqual([
      ['USDT', 'swept'],
      ['ETH', 'swept'],
    ])
    expect(rows[0]!.gas_tx_id).toBeNull()
    expect(open.every((assets) => assets.length <= 1)).toBe(true)
    expect(await tokenBalance(COLD)).toBe(coldTokens + parseUnits('300', 6))
    expect(await tokenBalance(both.address)).toBe(0n)
    expect(await c.reader.getBalance({ address: both.address })).toBeLessThan(parseEther('0.01'))
    // Every transaction's gas is booked against network_fees; the books still balance.
    const [unbooked] = await queryRows<{ n: number }>(
      tdb.db,
      sql`select count(*)::int as n from chain_txs t where t.state = 'confirmed' and not exists (
            select 1 from ledger_entries e where e.ref_type = 'chain_tx' and e.ref_id = t.id::text)`,
    )
    expect(unbooked!.n).toBe(0)
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it("sweeps the other addresses while one address's transaction is refused by the node", async () => {
    const [dave, erin] = await queryRows<{ id: bigint }>(
      tdb.db,
      sql`insert into users (name) values ('dave'), ('erin') returning id`,
    )
    const stuck = depositAccount(3)
    const healthy = depositAccount(4)
    await tdb.db.execute(
      sql`insert into deposit_addresses (wallet_id, address_index, user_id, address)
          values ('eth', 3, ${dave!.id}, ${stuck.address}), ('eth', 4, ${erin!.id}, ${healthy.address})`,
    )
    await sendEth(healthy.address, '1')
    await mintUsdt(healthy.address, '200')
    const s = sweeper()
    // A transaction the node will never take: address 3 holds nothing to pay for it.
    s.sender.addSigner(stuck)
    await s.sender.submit(stuck.address, {
      purpose: 'gas_topup',
      refId: 'never',
      to: COLD,
      value: parseEther('5'),
      gas: 21_000n,
    })
    const coldTokens = await tokenBalance(COLD)
    const errors: string[] = []
    for (let i = 0; i < 10 && (await tokenBalance(healthy.address)) > 0n; i++) {
      await s.tick().catch((err: Error) => errors.push(err.message))
      await c.mine(1)
    }
    expect(await tokenBalance(healthy.address)).toBe(0n)
    expect(await tokenBalance(COLD)).toBe(coldTokens + parseUnits('200', 6))
    // Each pass still says what is stuck, and where.
    expect(errors.length).toBeGreaterThan(0)
    expect(errors.every((e) => e.includes(stuck.address))).toBe(true)
  })

  it('raises the gas keeper alert below its minimum', async () => {
    expect(await sweeper().checkKeeper()).toBe(false)
    expect(await registry.getSingleMetricAsString('bourse_gas_keeper_low')).toContain(
      'bourse_gas_keeper_low{wallet="eth"} 0',
    )
    expect(await sweeper(parseEther('1000000')).checkKeeper()).toBe(true)
  })
})
