/**
 * Reconciliation on anvil and a real Postgres: balanced after deposits; a ledger credit without a chain
 * deposit (adjustBalance) and tokens sent out of a deposit address behind the exchange's back are deficits
 * — recorded, gauged, withdrawals paused (the processor signs nothing) until an admin resumes; a withdrawal
 * mined but not yet settled is counted in flight with its gas, not as a deficit, and once final its gas is
 * booked, so the native coin balances without a float.
 */
import { mnemonicToSeedSync } from '@scure/bip39'
import { sql } from 'drizzle-orm'
import { type Address, type Hex, type PublicClient, parseEther, parseUnits } from 'viem'
import { HDKey, mnemonicToAccount, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { testTokenAbi } from '../../chain/abis.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { deployTestToken } from '../../chain/deploy.ts'
import { type ChainClients, chainClients } from '../../chain/testing.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { adjustBalance, creditDeposit } from '../../ledger/operations.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { WithdrawalProcessor } from '../withdrawals/processor.ts'
import { getWithdrawal, requestWithdrawal } from '../withdrawals/withdrawals.ts'
import { pausesInForce, resumeWithdrawals } from './pause.ts'
import { reconcile } from './reconcile.ts'

const DEPOSIT_MNEMONIC = 'legal winner thank year wave sausage worth useful legal winner thank yellow'
const XPUB = HDKey.fromMasterSeed(mnemonicToSeedSync(DEPOSIT_MNEMONIC)).derive(
  "m/44'/60'/0'",
).publicExtendedKey
const depositAccount = (i: number) => mnemonicToAccount(DEPOSIT_MNEMONIC, { addressIndex: i })
const HOT_KEY = `0x${'a1'.repeat(32)}` as Hex
const HOT = privateKeyToAccount(HOT_KEY).address
const COLD = privateKeyToAccount(`0x${'c0'.repeat(32)}`).address
const KEEPER = privateKeyToAccount(`0x${'b2'.repeat(32)}`).address
const OUTSIDER = privateKeyToAccount(`0x${'d3'.repeat(32)}`).address

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
  await tdb.db.execute(sql`insert into users (name) values ('alice'), ('bob')`)
  await tdb.db.execute(
    sql`insert into chain_wallets (id, chain_id, xpub, confirmations, scanned_block) values ('eth', ${BigInt(anvil.chainId)}, ${XPUB}, 1, 0)`,
  )
  await tdb.db.execute(
    sql`insert into chain_wallet_assets (wallet_id, asset, contract, decimals) values ('eth', 'ETH', null, 18), ('eth', 'USDT', ${token}, 6)`,
  )
  for (const i of [0, 1]) {
    await tdb.db.execute(
      sql`insert into deposit_addresses (wallet_id, address_index, user_id, address) values ('eth', ${i}, ${BigInt(i + 1)}, ${depositAccount(i).address})`,
    )
  }
}, 60_000)

afterAll(async () => {
  await Promise.all([anvil?.stop(), tdb?.close()])
})

const wallets = () => [
  { walletId: 'eth', client: c.reader as PublicClient, hot: [HOT], cold: [COLD], gasKeeper: [KEEPER] },
]
const run = () => reconcile({ db: tdb.db, wallets: wallets(), registry })
const byAsset = async () => Object.fromEntries((await run()).map((r) => [r.asset, r]))

async function send(to: Address, value: bigint) {
  await c.reader.waitForTransactionReceipt({ hash: await c.wallet(0).sendTransaction({ to, value }) })
}
async function mint(to: Address, units: bigint) {
  await c.reader.waitForTransactionReceipt({
    hash: await c
      .wallet(0)
      .writeContract({ address: token, abi: testTokenAbi, functionName: 'mint', args: [to, units] }),
  })
}

describe('reconciliation', () => {
  it('is balanced after deposits, cold storage and the float of the hot wallet', async () => {
    await send(depositAccount(0).address, parseEther('2'))
    await creditDeposit(tdb.db, { userId: 1n, asset: 'ETH', amount: '2', depositRef: 'eth-1' })
    await mint(depositAccount(1).address, parseUnits('500', 6))
    await creditDeposit(tdb.db, { userId: 2n, asset: 'USDT', amount: '500', depositRef: 'usdt-1' })
    // Swept earlier to cold, and the hot wallet's share: on chain in the exchange's addresses, owed in the ledger.
    await mint(COLD, parseUnits('1000', 6))
    await creditDeposit(tdb.db, { userId: 1n, asset: 'USDT', amount: '1000', depositRef: 'usdt-2' })
    await send(HOT, parseEther('3'))
    await creditDeposit(tdb.db, { userId: 2n, asset: 'ETH', amount: '3', depositRef: 'eth-2' })

    const r = await byAsset()
    expect(r.ETH).toMatchObject({ status: 'ok', liabilities: '5', onChain: '5', difference: '0' })
    expect(r.ETH!.breakdown).toEqual({ deposit: '2', hot: '3', cold: '0', gas_keeper: '0' })
    expect(r.USDT).toMatchObject({ status: 'ok', liabilities: '1500', onChain: '1500', difference: '0' })
    expect(r.USDT!.breakdown).toEqual({ deposit: '500', hot: '0', cold: '1000', gas_keeper: '0' })
    const block = await c.reader.getBlockNumber()
    expect(r.USDT!.blocks).toEqual({ eth: String(block) })
    expect(await pausesInForce(tdb.db, 'eth')).toEqual([])
    const text = await registry.metrics()
    expect(text).toContain('bourse_reconciliation_imbalance{asset="USDT"} 0')
    expect(text).toContain('bourse_reconciliation_deficit{asset="ETH"} 0')
    const rows = await queryRows<{ asset: string; status: string; liabilities: string; on_chain: string }>(
      tdb.db,
      sql`select asset, status, liabilities::text, on_chain::text from reconciliations order by id`,
    )
    expect(rows.map((x) => [x.asset, x.status, x.liabilities, x.on_chain])).toEqual([
      ['ETH', 'ok', '5', '5'],
      ['USDT', 'ok', '1500', '1500'],
    ])
  })

  it('a ledger credit without a chain deposit is a deficit: alert and withdrawals paused until resumed', async () => {
    await adjustBalance(tdb.db, {
      userId: 1n,
      asset: 'USDT',
      amount: '5.5',
      key: 'oops',
      reason: 'typo',
      admin: 'eve',
    })
    const r = await byAsset()
    expect(r.USDT).toMatchObject({
      status: 'deficit',
      liabilities: '1505.5',
      onChain: '1500',
      difference: '-5.5',
    })
    expect(r.ETH!.status).toBe('ok')
    expect(await registry.metrics()).toContain('bourse_reconciliation_imbalance{asset="USDT"} -5.5')
    expect(await registry.metrics()).toContain('bourse_reconciliation_deficit{asset="USDT"} 1')
    const [pause] = await pausesInForce(tdb.db, 'eth')
    expect(pause).toMatchObject({ scope: '*', pausedBy: 'reconciliation' })
    expect(pause!.reason).toContain('USDT short by 5.5')

    // The processor signs nothing while paused.
    const w = await requestWithdrawal(
      tdb.db,
      { assets: { ETH: { dailyLimit: '100', approvalAbove: '100' } } },
      { userId: 2n, walletId: 'eth', asset: 'ETH', address: OUTSIDER, amount: '0.5' },
    )
    expect(w.state).toBe('approved')
    const p = new WithdrawalProcessor({
      db: tdb.db,
      walletId: 'eth',
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      hotKey: HOT_KEY,
      confirmations: 1,
    })
    await p.tick()
    expect((await getWithdrawal(tdb.db, w.id)).state).toBe('approved')

    // The admin fixes the ledger and resumes; the withdrawal goes.
    await adjustBalance(tdb.db, {
      userId: 1n,
      asset: 'USDT',
      amount: '-5.5',
      key: 'oops-undo',
      reason: 'undo',
      admin: 'eve',
    })
    expect(await resumeWithdrawals(tdb.db, { by: 'admin' })).toBe(true)
    expect(await resumeWithdrawals(tdb.db, { by: 'admin' })).toBe(false)
    await p.signApproved()
    await p.broadcastSigned()
    await c.mine(1)
    expect((await getWithdrawal(tdb.db, w.id)).state).toBe('processing')
    // Mined, not yet settled in the ledger: the amount and the gas its transaction burned are in flight.
    let eth = (await byAsset()).ETH!
    expect(eth).toMatchObject({ status: 'ok', liabilities: '5', difference: '0' })
    const gas = parseEther(eth.inFlight) - parseEther('0.5')
    expect(gas).toBeGreaterThan(0n)
    expect(gas).toBeLessThan(parseEther('0.001'))
    for (let i = 0; i < 5 && (await getWithdrawal(tdb.db, w.id)).state !== 'completed'; i++) {
      await p.tick()
      await c.mine(1)
    }
    expect((await getWithdrawal(tdb.db, w.id)).state).toBe('completed')
    // Once final, the transaction's gas is booked (network_fees): the ledger owes what the chain holds.
    eth = (await byAsset()).ETH!
    expect(eth).toMatchObject({ status: 'ok', inFlight: '0', difference: '0' })
    expect(parseEther(eth.liabilities)).toBe(parseEther('4.5') - gas)
    expect(await findImbalances(tdb.db)).toEqual([])
    await resumeWithdrawals(tdb.db, { by: 'admin' })
  })

  it('tokens moved out of a deposit address behind the exchange’s back are a deficit', async () => {
    const thief = depositAccount(1)
    await send(thief.address, parseEther('0.01'))
    await creditDeposit(tdb.db, { userId: 2n, asset: 'ETH', amount: '0.01', depositRef: 'eth-gas' })
    const hash = await c.wallet(0).writeContract({
      account: thief,
      address: token,
      abi: testTokenAbi,
      functionName: 'transfer',
      args: [OUTSIDER, parseUnits('120', 6)],
    })
    await c.reader.waitForTransactionReceipt({ hash })
    const r = await byAsset()
    expect(r.USDT).toMatchObject({ status: 'deficit', difference: '-120' })
    expect(r.USDT!.breakdown.deposit).toBe('380')
    expect((await pausesInForce(tdb.db, 'eth'))[0]!.reason).toContain('USDT short by 120')
  })
})
