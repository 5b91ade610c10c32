/**
 * `bourse dev`'s live chain, as a newcomer meets it: it prints the chain's RPC URL, the demo token and the
 * demo trader's deposit address; the deposit it sends there is credited and shows in Binance's deposit
 * history; a deposit sent by hand to the printed address over the printed RPC URL is credited too; and a
 * second `bourse dev` on the same chain port refuses to start, naming BOURSE_CHAIN_PORT.
 */
import { createHmac } from 'node:crypto'
import { createPublicClient, createWalletClient, defineChain, http, parseEther } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
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
  dev = await startDev()
}, 120_000)

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
    const address = /deposit {4}(0x[0-9a-fA-F]{40})/.exec(dev.output())![1] as `0x${string}`
    const chain = defineChain({
      id: 31337,
      name: 'bourse dev',
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [dev.chainUrl] } },
    })
    const wallet = createWalletClient({
      chain,
      account: mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: 5 }),
      transport: http(dev.chainUrl),
    })
    const reader = createPublicClient({ chain, transport: http(dev.chainUrl) })
    const hash = await wallet.sendTransaction({ to: address, value: parseEther('0.25') })
    await reader.waitForTransactionReceipt({ hash, pollingInterval: 100 })
    const [deposit] = await waitFor(
      () => signed('/sapi/v1/capital/deposit/hisrec', { txId: hash }),
      (list: Answer) => Array.isArray(list) && list[0]?.status === 1,
      'the hand-made deposit is credited',
    )
    expect(deposit).toMatchObject({ coin: 'ETH', amount: '0.25000000', txId: hash, status: 1 })
  }, 60_000)

  it('refuses to start a second one on the same chain port, naming BOURSE_CHAIN_PORT', async () => {
    const port = new URL(dev.chainUrl).port
    await expect(startDev({ env: { BOURSE_CHAIN_PORT: port } })).rejects.toThrow(
      new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use.*BOURSE_CHAIN_PORT`),
    )
  }, 60_000)
})
