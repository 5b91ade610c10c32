/**
 * Withdrawals on a real anvil chain and a real Postgres: native and ERC-20 through every state with the
 * balances checked on chain and in the ledger; crashes after signing and after broadcasting (a new
 * processor finishes: one transfer, settled once); an RPC failure; a revert (failed, funds back);
 * approval and rejection; limits and validation; a stuck transaction replaced with bumped fees.
 */
import { mnemonicToSeedSync } from '@scure/bip39'
import { sql } from 'drizzle-orm'
import { type Address, bytesToHex, type Hex, parseEther, parseTransaction, parseUnits } from 'viem'
import { HDKey, privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { testTokenAbi } from '../../chain/abis.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { deployTestToken } from '../../chain/deploy.ts'
import { ANVIL_MNEMONIC, type ChainClients, chainClients } from '../../chain/testing.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { balancesOf } from '../../ledger/ledger.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { freePort } from '../../lib/net.ts'
import { type ProcessorOptions, WithdrawalProcessor } from './processor.ts'
import {
  approveWithdrawal,
  getWithdrawal,
  rejectWithdrawal,
  requestWithdrawal,
  type WithdrawalPolicy,
} from './withdrawals.ts'

const XPUB = HDKey.fromMasterSeed(mnemonicToSeedSync(ANVIL_MNEMONIC)).derive("m/44'/60'/1'").publicExtendedKey
const HOT_KEY = bytesToHex(
  HDKey.fromMasterSeed(mnemonicToSeedSync(ANVIL_MNEMONIC)).derive("m/44'/60'/0'/0/9").privateKey!,
) as Hex
const HOT = privateKeyToAccount(HOT_KEY).address
const CONFIRMATIONS = 2
const policy: WithdrawalPolicy = {
  assets: {
    ETH: { dailyLimit: '50', approvalAbove: '5', minAmount: '0.001' },
    USDT: { dailyLimit: '100000', approvalAbove: '10000' },
  },
}

let anvil: Anvil
let c: ChainClients
let tdb: TestDatabase
let token: Address
let user: bigint
let clock = Date.now()
let recipientSeq = 0

function processor(over: Partial<ProcessorOptions> = {}): WithdrawalProcessor {
  return new WithdrawalProcessor({
    db: tdb.db,
    walletId: 'eth',
    chainId: anvil.chainId,
    rpcUrl: anvil.rpcUrl,
    hotKey: HOT_KEY,
    confirmations: CONFIRMATIONS,
    stuckAfterMs: 60_000,
    now: () => clock,
    ...over,
  })
}

/** A fresh, empty recipient address each time, so its balance is exactly what arrived. */
function recipient(): Address {
  recipientSeq++
  return privateKeyToAccount(`0x${(0xabc000 + recipientSeq).toString(16).padStart(64, '0')}`).address
}

const tokenBalance = (a: Address) =>
  c.reader.readContract({ address: token, abi: testTokenAbi, functionName: 'balanceOf', args: [a] })

async function available(asset: string): Promise<string> {
  return (await balancesOf(tdb.db, user)).find((b) => b.asset === asset)?.available ?? '0'
}

/** Ticks and mines until the withdrawal is final (or `max` passes). */
async function drive(p: WithdrawalProcessor, id: bigint, max = 6) {
  for (let i = 0; i < max; i++) {
    await p.tick()
    const w = await getWithdrawal(tdb.db, id)
    if (w.state === 'completed' || w.state === 'failed') return w
    await c.mine(1)
  }
  return getWithdrawal(tdb.db, id)
}

async function chainTxsOf(id: bigint) {
  return queryRows<{
    nonce: bigint
    tx_hash: string
    raw_tx: string
    previous_hashes: string[]
    state: string
  }>(
    tdb.db,
    sql`select nonce, tx_hash, raw_tx, previous_hashes, state from chain_txs where purpose = 'withdrawal' and ref_id = ${String(id)}`,
  )
}

/** The gas the withdrawal's mined transaction burned, and what the ledger booked for it (wei). */
async function gasOf(id: bigint): Promise<{ paid: bigint; booked: bigint }> {
  const [t] = await queryRows<{ id: bigint; mined_hash: Hex }>(
    tdb.db,
    sql`select id, mined_hash from chain_txs where purpose = 'withdrawal' and ref_id = ${String(id)}`,
  )
  const receipt = await c.reader.getTransactionReceipt({ hash: t!.mined_hash })
  const [entry] = await queryRows<{ amount: string }>(
    tdb.db,
    sql`select coalesce(sum(e.amount), 0)::text as amount from ledger_entries e join accounts a on a.id = e.account_id
        where a.system = 'network_fees' and a.asset = 'ETH' and e.ref_type = 'chain_tx' and e.ref_id = ${String(t!.id)}`,
  )
  return { paid: receipt.gasUsed * receipt.effectiveGasPrice, booked: -parseEther(entry!.amount) }
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
      args: [HOT, parseUnits('50000', 6)],
    }),
  })
  await tdb.db.execute(sql`insert into assets (symbol, scale) values ('ETH', 18), ('USDT', 6)`)
  const [u] = await queryRows<{ id: bigint }>(
    tdb.db,
    sql`insert into users (name) values ('alice') returning id`,
  )
  user = u!.id
  await tdb.db.execute(
    sql`insert into chain_wallets (id, chain_id, xpub, confirmations, scanned_block) values ('eth', ${BigInt(anvil.chainId)}, ${XPUB}, ${CONFIRMATIONS}, 0)`,
  )
  await tdb.db.execute(
    sql`insert into chain_wallet_assets (wallet_id, asset, contract, decimals) values ('eth', 'ETH', null, 18), ('eth', 'USDT', ${token}, 6)`,
  )
  await creditDeposit(tdb.db, { userId: user, asset: 'ETH', amount: '40', depositRef: 'seed-eth' })
  await creditDeposit(tdb.db, { userId: user, asset: 'USDT', amount: '200000', depositRef: 'seed-usdt' })
}, 60_000)

afterAll(async () => {
  await Promise.all([anvil?.stop(), tdb?.close()])
})

describe('withdrawals', () => {
  it('takes a native withdrawal through every state, on chain and in the ledger', async () => {
    const to = recipient()
    const before = await available('ETH')
    const w = await requestWithdrawal(tdb.db, policy, {
      userId: user,
      walletId: 'eth',
      asset: 'ETH',
      address: to.toLowerCase(),
      amount: '1.5',
    })
    expect(w.state).toBe('approved')
    expect(w.toAddress).toBe(to)
    expect(await available('ETH')).toBe(String(Number(before) - 1.5))
    const p = processor()
    await p.signApproved()
    expect((await getWithdrawal(tdb.db, w.id)).state).toBe('processing')
    expect((await chainTxsOf(w.id))[0]!.state).toBe('signed')
    await p.tick() // broadcast (automine: mined at depth 1 < 2)
    expect(['broadcast', 'mined']).toContain((await chainTxsOf(w.id))[0]!.state)
    const done = await drive(p, w.id)
    expect(done.state).toBe('completed')
    expect(await c.reader.getBalance({ address: to })).toBe(parseEther('1.5'))
    expect(await available('ETH')).toBe(String(Number(before) - 1.5))
    const gas = await gasOf(w.id)
    expect(gas.paid).toBeGreaterThan(0n)
    expect(gas.booked).toBe(gas.paid)
    await p.tick()
    expect((await gasOf(w.id)).booked).toBe(gas.paid)
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('takes an ERC-20 withdrawal through every state', async () => {
    const to = recipient()
    const hotBefore = await tokenBalance(HOT)
    const w = await requestWithdrawal(tdb.db, policy, {
      userId: user,
      walletId: 'eth',
      asset: 'USDT',
      address: to,
      amount: '1234.56',
    })
    expect(await available('USDT')).toBe('198765.44')
    const done = await drive(processor(), w.id)
    expect(done.state).toBe('completed')
    expect(done.txHash).toMatch(/^0x[0-9a-f]{64}$/)
    expect(await tokenBalance(to)).toBe(1_234_560_000n)
    expect(await tokenBalance(HOT)).toBe(hotBefore - 1_234_560_000n)
    expect(await available('USDT')).toBe('198765.44')
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('finishes after a crash between signing and broadcasting: one transfer, settled once', async () => {
    const to = recipient()
    const w = await requestWithdrawal(tdb.db, policy, {
      userId: user,
      walletId: 'eth',
      asset: 'ETH',
      address: to,
      amount: '0.25',
    })
    const nonceBefore = await c.reader.getTransactionCount({ address: HOT })
    await processor().signApproved() // … and the process dies here
    const [stored] = await chainTxsOf(w.id)
    expect(stored!.state).toBe('signed')
    expect(await c.reader.getBalance({ address: to })).toBe(0n)
    const restarted = processor()
    await restarted.signApproved() // must not sign a second transaction
    expect(await chainTxsOf(w.id)).toHaveLength(1)
    const done = await drive(restarted, w.id)
    expect(done.state).toBe('completed')
    expect(done.txHash).toBe(stored!.tx_hash)
    expect(await c.reader.getBalance({ address: to })).toBe(parseEther('0.25'))
    expect(await c.reader.getTransactionCount({ address: HOT })).toBe(nonceBefore + 1)
    await restarted.tick()
    const journals = await queryRows<{ n: bigint }>(
      tdb.db,
      sql`select count(*) as n from journals where idempotency_key = ${`withdrawal:${w.id}:end`}`,
    )
    expect(Number(journals[0]!.n)).toBe(1)
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('finishes after a crash between broadcasting and confirmation', async () => {
    const to = recipient()
    const w = await requestWithdrawal(tdb.db, policy, {
      userId: user,
      walletId: 'eth',
      asset: 'USDT',
      address: to,
      amount: '10',
    })
    const first = processor()
    await first.signApproved()
    await first.broadcastSigned() // … dies before it sees a receipt
    const done = await drive(processor(), w.id)
    expect(done.state).toBe('completed')
    expect(await tokenBalance(to)).toBe(10_000_000n)
    expect(await chainTxsOf(w.id)).toHaveLength(1)
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('resumes after RPC failures, before and after signing', async () => {
    const to = recipient()
    const w = await requestWithdrawal(tdb.db, policy, {
      userId: user,
      walletId: 'eth',
      asset: 'ETH',
      address: to,
      amount: '0.5',
    })
    const down = processor({ rpcUrl: `http://127.0.0.1:${await freePort()}` })
    await expect(down.tick()).rejects.toThrow()
    expect(await chainTxsOf(w.id)).toHaveLength(0)
    expect((await getWithdrawal(tdb.db, w.id)).state).toBe('approved')
    await processor().signApproved()
    await expect(down.tick()).rejects.toThrow() // cannot broadcast: nothing changes
    expect((await chainTxsOf(w.id))[0]!.state).toBe('signed')
    const done = await drive(processor(), w.id)
    expect(done.state).toBe('completed')
    expect(await c.reader.getBalance({ address: to })).toBe(parseEther('0.5'))
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('fails a reverted transfer and gives the funds back', async () => {
    const to = recipient()
    const before = await available('USDT')
    // More than the hot wallet holds: the token's transfer reverts on chain.
    await creditDeposit(tdb.db, { userId: user, asset: 'USDT', amount: '60000', depositRef: 'more-usdt' })
    const policyNoApproval: WithdrawalPolicy = {
      assets: { USDT: { dailyLimit: '1000000', approvalAbove: '1000000' } },
    }
    const w = await requestWithdrawal(tdb.db, policyNoApproval, {
      userId: user,
      walletId: 'eth',
      asset: 'USDT',
      address: to,
      amount: '60000',
    })
    const done = await drive(processor(), w.id)
    expect(done.state).toBe('failed')
    expect(done.failReason).toContain('reverted')
    expect(await tokenBalance(to)).toBe(0n)
    expect(Number(await available('USDT'))).toBe(Number(before) + 60000)
    // The revert burned gas all the same, and the exchange paid it.
    const gas = await gasOf(w.id)
    expect(gas.paid).toBeGreaterThan(0n)
    expect(gas.booked).toBe(gas.paid)
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('holds large withdrawals for approval; a rejection returns the funds', async () => {
    const before = await available('ETH')
    const big = await requestWithdrawal(tdb.db, policy, {
      userId: user,
      walletId: 'eth',
      asset: 'ETH',
      address: recipient(),
      amount: '6',
    })
    const other = await requestWithdrawal(tdb.db, policy, {
      userId: user,
      walletId: 'eth',
      asset: 'ETH',
      address: recipient(),
      amount: '7',
    })
    expect(big.state).toBe('pending_approval')
    const p = processor()
    await p.tick()
    expect(await chainTxsOf(big.id)).toHaveLength(0)
    await rejectWithdrawal(tdb.db, other.id, 'admin@bourse', 'unknown destination')
    expect((await getWithdrawal(tdb.db, other.id)).state).toBe('rejected')
    await approveWithdrawal(tdb.db, big.id, 'admin@bourse')
    const done = await drive(p, big.id)
    expect(done.state).toBe('completed')
    expect(await c.reader.getBalance({ address: big.toAddress as Address })).toBe(parseEther('6'))
    expect(await available('ETH')).toBe(String(Number(before) - 6))
    await expect(rejectWithdrawal(tdb.db, big.id, 'admin', 'late')).rejects.toThrow(/completed/)
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('refuses bad addresses, amounts, the daily limit and insufficient funds, changing nothing', async () => {
    const base = { userId: user, walletId: 'eth', asset: 'ETH', amount: '1' }
    const good = recipient()
    const badChecksum = good.slice(0, 2) + good.slice(2).replace(/[a-f]/, (ch) => ch.toUpperCase())
    const before = await available('ETH')
    for (const address of ['0x1234', 'hello', badChecksum, '0x0000000000000000000000000000000000000000']) {
      await expect(requestWithdrawal(tdb.db, policy, { ...base, address })).rejects.toThrow(/address/)
    }
    await expect(
      requestWithdrawal(tdb.db, policy, { ...base, address: good, amount: '0.0001' }),
    ).rejects.toThrow(/minimum/)
    await expect(
      requestWithdrawal(tdb.db, policy, { ...base, address: good, amount: '-1' }),
    ).rejects.toThrow()
    await expect(
      requestWithdrawal(tdb.db, policy, { ...base, address: good, amount: '1e3' }),
    ).rejects.toThrow()
    await expect(requestWithdrawal(tdb.db, policy, { ...base, address: good, asset: 'BTC' })).rejects.toThrow(
      /asset: BTC cannot be withdrawn/,
    )
    // 1.5 + 0.25 + 0.5 + 6 used today (the rejected 7 does not count): 41.75 left of 50 but only ~32 held.
    await expect(requestWithdrawal(tdb.db, policy, { ...base, address: good, amount: '42' })).rejects.toThrow(
      /daily/,
    )
    await expect(
      requestWithdrawal(
        tdb.db,
        { assets: { ETH: { dailyLimit: '1000', approvalAbove: '1000' } } },
        { ...base, address: good, amount: '100' },
      ),
    ).rejects.toThrow(/insufficient/)
    expect(await available('ETH')).toBe(before)
    const once = await requestWithdrawal(tdb.db, policy, {
      ...base,
      address: good,
      amount: '0.01',
      clientId: 'abc-1',
    })
    const again = await requestWithdrawal(tdb.db, policy, {
      ...base,
      address: good,
      amount: '0.01',
      clientId: 'abc-1',
    })
    expect(again.id).toBe(once.id)
    expect(await drive(processor(), once.id)).toMatchObject({ state: 'completed' })
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('replaces a stuck transaction with bumped fees and settles it once', async () => {
    const to = recipient()
    const w = await requestWithdrawal(tdb.db, policy, {
      userId: user,
      walletId: 'eth',
      asset: 'ETH',
      address: to,
      amount: '0.3',
    })
    await c.testClient.setAutomine(false)
    try {
      const p = processor()
      await p.tick() // signed and broadcast; nothing mines
      const [sent] = await chainTxsOf(w.id)
      expect(sent!.state).toBe('broadcast')
      await p.tick() // not stuck yet: the same bytes again
      expect((await chainTxsOf(w.id))[0]!.tx_hash).toBe(sent!.tx_hash)
      clock += 61_000
      await p.tick()
      const [replaced] = await chainTxsOf(w.id)
      expect(replaced!.tx_hash).not.toBe(sent!.tx_hash)
      expect(replaced!.previous_hashes).toEqual([sent!.tx_hash])
      expect(replaced!.nonce).toBe(sent!.nonce)
      // The pool holds only the replacement now, and it pays ≥ 10 % more on both fields.
      await expect(c.reader.getTransaction({ hash: sent!.tx_hash as Hex })).rejects.toThrow(
        /could not be found/,
      )
      const old = parseTransaction(sent!.raw_tx as Hex)
      const next = await c.reader.getTransaction({ hash: replaced!.tx_hash as Hex })
      expect(next.nonce).toBe(old.nonce)
      expect(next.maxFeePerGas! * 100n).toBeGreaterThanOrEqual(old.maxFeePerGas! * 110n)
      expect(next.maxPriorityFeePerGas! * 100n).toBeGreaterThanOrEqual(old.maxPriorityFeePerGas! * 110n)
    } finally {
      await c.testClient.setAutomine(true)
    }
    await c.mine(1)
    const done = await drive(processor(), w.id)
    expect(done.state).toBe('completed')
    const [final] = await chainTxsOf(w.id)
    expect(done.txHash).toBe(final!.tx_hash)
    expect(await c.reader.getBalance({ address: to })).toBe(parseEther('0.3'))
    expect(await findImbalances(tdb.db)).toEqual([])
  })
})
