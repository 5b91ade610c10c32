/**
 * `bourse dev`'s live chain, as a newcomer meets it: it prints the chain's RPC URL, the demo token and the
 * demo trader's deposit address; the deposit it sends there is credited and shows in Binance's deposit
 * history; a deposit sent by hand to the printed address over the printed RPC URL is credited too; cron
 * sweeps the deposits to the printed cold address and reconciles the ledger with the chain (no deficit:
 * the demo balances are backed); an order created on the order contract shows in the DEX API; and a
 * second `bourse dev` on the same chain port refuses to start, naming BOURSE_CHAIN_PORT.
 */
import { createHmac } from 'node:crypto'
import {
  type Address,
  createPublicClient,
  createWalletClient,
  defineChain,
  http,
  parseEther,
  parseUnits,
} from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { orderBookAbi, testTokenAbi } from '../../chain/abis.ts'
import { ANVIL_MNEMONIC } from '../../chain/testing.ts'
import { type DevProcess, startDev } from './dev-process.ts'

// biome-ignore lint/suspicious/noExplicitAny: JSON answers
type Answer = any

let dev: DevProcess

async function signed(path: string, params: Record<string, string> = {}): Promise<Answer> {
  const payload = new URLSearchParams({ ...params, timestamp: String(Date.now()) }).toString()
  const signature = createHmac('sha256', dev.apiSecret).update(payload).digest('hex')
  const r = await fetch(`${dev.url}${path}?${payload}&signature=${signature}`, {
    headers: { 'X-MBX-APIKEY': dev.apiKey },
  })
  return r.json()
}

async function waitFor<T>(get: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  let last: T | undefined
  while (Date.now() < deadline) {
    last = await get()
    if (ok(last)) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting until ${what}: ${JSON.stringify(last)}\n${dev.output()}`)
}

beforeAll(async () => {
  dev = await startDev({
    env: {
      BOURSE_CRON_SCHEDULE_RECONCILIATION: '*/2 * * * * *',
      BOURSE_CRON_SCHEDULE_SWEEPS: '*/2 * * * * *',
    },
  })
}, 120_000)

/** The demo chain as a client sees it, signing as anvil account `index`. */
function demoChain(index = 0) {
  const chain = defineChain({
    id: 31337,
    name: 'bourse dev',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [dev.chainUrl] } },
  })
  const account = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index })
  return {
    account,
    wallet: createWalletClient({ chain, account, transport: http(dev.chainUrl) }),
    reader: createPublicClient({ chain, transport: http(dev.chainUrl) }),
  }
}

const printed = (pattern: RegExp) => pattern.exec(dev.output())![1] as Address

async function metric(series: string): Promise<string | undefined> {
  const text = await (await fetch(`${dev.url}/metrics`)).text()
  return text
    .split('\n')
    .find((line) => line.startsWith(`${series} `))
    ?.slice(series.length + 1)
}

afterAll(async () => {
  await dev?.stop()
})

describe('bourse dev: the demo chain', () => {
  it('prints the RPC URL, the token and the deposit address, and credits the deposit it sends', async () => {
    const out = dev.output()
    expect(out).toContain(`anvil at ${dev.chainUrl}`)
    const token = /demo token USDT \(ERC-20, 6 decimals\) (0x[0-9a-fA-F]{40})/.exec(out)?.[1]
    const address = /deposit {4}(0x[0-9a-fA-F]{40})/.exec(out)?.[1]
    expect(token).toBeDefined()
    expect(address).toBeDefined()
    expect(await signed('/sapi/v1/capital/deposit/address', { coin: 'USDT' })).toEqual({
      address,
      coin: 'USDT',
      tag: '',
      url: '',
    })
    const history = await waitFor(
      () => signed('/sapi/v1/capital/deposit/hisrec', { status: '1' }),
      (list: Answer) => Array.isArray(list) && list.length === 2,
      'the funding deposits are credited',
    )
    expect(
      history.map((d: Answer) => [d.coin, d.amount, d.network, d.address, d.confirmTimes]).sort(),
    ).toEqual([
      ['ETH', '1.00000000', 'ANVIL', address, '2/2'],
      ['USDT', '1000.00000000', 'ANVIL', address, '2/2'],
    ])
    const account = await signed('/api/v3/account')
    expect(account.balances.find((b: Answer) => b.asset === 'USDT').free).toBe('101000.00000000')
    expect(dev.output()).toMatch(/Deposit credited: 1000\.00000000 USDT to the demo trader/)
  }, 60_000)

  it('credits a deposit sent by hand to the printed address', async () => {
    const address = printed(/deposit {4}(0x[0-9a-fA-F]{40})/)
    const { wallet, reader } = demoChain(5)
    const hash = await wallet.sendTransaction({ to: address, value: parseEther('0.25') })
    await reader.waitForTransactionReceipt({ hash, pollingInterval: 100 })
    const [deposit] = await waitFor(
      () => signed('/sapi/v1/capital/deposit/hisrec', { txId: hash }),
      (list: Answer) => Array.isArray(list) && list[0]?.status === 1,
      'the hand-made deposit is credited',
    )
    expect(deposit).toMatchObject({ coin: 'ETH', amount: '0.25000000', txId: hash, status: 1 })
  }, 60_000)

  it('sweeps the deposits to the cold address and reconciles the ledger with the chain without a deficit', async () => {
    const token = printed(/demo token USDT \(ERC-20, 6 decimals\) (0x[0-9a-fA-F]{40})/)
    const deposit = printed(/deposit {4}(0x[0-9a-fA-F]{40})/)
    const { reader } = demoChain()
    const tokens = (address: Address) =>
      reader.readContract({ address: token, abi: testTokenAbi, functionName: 'balanceOf', args: [address] })
    await waitFor(
      async () => [await tokens(deposit), await reader.getBalance({ address: deposit })],
      ([usdt, eth]) => usdt === 0n && eth! < parseEther('0.01'),
      'the deposit address is swept of its USDT, then of its ETH',
      60_000,
    )
    expect(await tokens(printed(/cold {7}(0x[0-9a-fA-F]{40})/))).toBeGreaterThanOrEqual(parseUnits('1000', 6))
    await waitFor(
      () => metric('bourse_cron_runs_total{job="reconciliation",outcome="ok"}'),
      (runs) => Number(runs) >= 2,
      'reconciliation runs',
    )
    expect(await metric('bourse_reconciliation_deficit{asset="ETH"}')).toBe('0')
    expect(await metric('bourse_reconciliation_deficit{asset="USDT"}')).toBe('0')
    // What backs the ledger exactly, plus the demo hot wallet's own float of 1,000,000 USDT.
    expect(await metric('bourse_reconciliation_imbalance{asset="USDT"}')).toBe('1000000')
    expect(await metric('bourse_cron_runs_total{job="sweeps",outcome="failed"}')).toBeUndefined()
  }, 90_000)

  it('indexes an order created on the order contract and serves it from the DEX API', async () => {
    const token = printed(/demo token USDT \(ERC-20, 6 decimals\) (0x[0-9a-fA-F]{40})/)
    const orderBook = printed(/order contract (0x[0-9a-fA-F]{40})/)
    const { account, wallet, reader } = demoChain(0)
    const mined = async (hash: `0x${string}`) =>
      reader.waitForTransactionReceipt({ hash, pollingInterval: 100 })
    await mined(
      await wallet.writeContract({
        address: token,
        abi: testTokenAbi,
        functionName: 'approve',
        args: [orderBook, parseUnits('10', 6)],
      }),
    )
    const created = await mined(
      await wallet.writeContract({
        address: orderBook,
        abi: orderBookAbi,
        functionName: 'createOrder',
        args: [token, account.address, parseUnits('10', 6), 5n],
      }),
    )
    const pending = await waitFor(
      async () => (await fetch(`${dev.url}/dex/orders/pending`)).json() as Promise<Answer>,
      (page) => page.orders?.length === 1,
      'the order is indexed',
    )
    expect(pending.orders[0]).toMatchObject({
      user_address: account.address,
      token_in: token,
      amount_in: '10',
      status: 'PENDING',
      tx_hash: created.transactionHash,
    })
    const mine: Answer = await (await fetch(`${dev.url}/dex/users/${account.address}/orders`)).json()
    expect(mine.orders).toHaveLength(1)
  }, 60_000)

  it('refuses to start a second one on the same chain port, naming BOURSE_CHAIN_PORT', async () => {
    const port = new URL(dev.chainUrl).port
    await expect(startDev({ env: { BOURSE_CHAIN_PORT: port } })).rejects.toThrow(
      new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*BOURSE_CHAIN_PORT`),
    )
  }, 60_000)

  it('exits by itself on SIGTERM, the chain, syncer, DEX indexer and cron stopped', async () => {
    expect(await dev.stop()).toEqual({ killed: false })
  }, 30_000)
})
