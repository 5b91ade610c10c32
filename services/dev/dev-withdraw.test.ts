/**
 * `bourse dev`'s withdrawals, as a newcomer meets them: the banner names the DEMO hot wallet and how to
 * withdraw; the demo trader's key withdraws USDT through Binance's `POST /sapi/v1/capital/withdraw/apply` to a
 * fresh anvil address; the processor signs and broadcasts it from the hot wallet, the token arrives on chain,
 * the withdrawal completes (history status 6 with its txId) and the balance stays settled; a request above the
 * approval threshold waits (status 2).
 */
import { createHmac } from 'node:crypto'
import { type Address, createPublicClient, defineChain, erc20Abi, http } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DevProcess, startDev } from './dev-process.ts'

// biome-ignore lint/suspicious/noExplicitAny: JSON answers
type Answer = any

let dev: DevProcess

async function signed(
  method: 'GET' | 'POST',
  path: string,
  params: Record<string, string> = {},
): Promise<Answer> {
  const payload = new URLSearchParams({ ...params, timestamp: String(Date.now()) }).toString()
  const signature = createHmac('sha256', dev.apiSecret).update(payload).digest('hex')
  const r =
    method === 'POST'
      ? await fetch(`${dev.url}${path}`, {
          method,
          headers: { 'X-MBX-APIKEY': dev.apiKey, 'content-type': 'application/x-www-form-urlencoded' },
          body: `${payload}&signature=${signature}`,
        })
      : await fetch(`${dev.url}${path}?${payload}&signature=${signature}`, {
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
    await new Promise((r) => setTimeout(r, 250))
  }
  throw new Error(`timed out waiting until ${what}: ${JSON.stringify(last)}\n${dev.output()}`)
}

beforeAll(async () => {
  dev = await startDev()
}, 120_000)

afterAll(async () => {
  await dev?.stop()
})

describe('bourse dev: withdrawals', () => {
  it('withdraws USDT to an anvil address: it arrives on chain and the ledger settles', async () => {
    const out = dev.output()
    const hot = /hot wallet (0x[0-9a-fA-F]{40})/.exec(out)?.[1]
    expect(hot).toBeDefined()
    expect(out).toContain('DEMO hot wallet key')
    expect(out).toContain(`POST ${dev.url}/sapi/v1/capital/withdraw/apply`)
    const token = /demo token USDT \(ERC-20, 6 decimals\) (0x[0-9a-fA-F]{40})/.exec(out)![1] as Address
    const reader = createPublicClient({
      chain: defineChain({
        id: 31337,
        name: 'bourse dev',
        nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
        rpcUrls: { default: { http: [dev.chainUrl] } },
      }),
      transport: http(dev.chainUrl),
    })
    const to = privateKeyToAccount(`0x${'7d'.repeat(32)}`).address
    const before = await signed('GET', '/api/v3/account')
    const usdtBefore = before.balances.find((b: Answer) => b.asset === 'USDT')

    const applied = await signed('POST', '/sapi/v1/capital/withdraw/apply', {
      coin: 'USDT',
      network: 'ANVIL',
      address: to,
      amount: '25.5',
      withdrawOrderId: 'dev-test-1',
    })
    expect(applied).toEqual({ id: expect.stringMatching(/^\d+$/) })
    const [done] = await waitFor(
      () => signed('GET', '/sapi/v1/capital/withdraw/history', { withdrawOrderId: 'dev-test-1' }),
      (list: Answer) => Array.isArray(list) && list[0]?.status === 6,
      'the withdrawal is completed',
    )
    expect(done).toMatchObject({
      id: applied.id,
      coin: 'USDT',
      amount: '25.5',
      address: to,
      network: 'ANVIL',
      status: 6,
      txId: expect.stringMatching(/^0x[0-9a-f]{64}$/),
    })
    // On chain: the tokens arrived, sent by the hot wallet.
    expect(
      await reader.readContract({ address: token, abi: erc20Abi, functionName: 'balanceOf', args: [to] }),
    ).toBe(25_500_000n)
    const tx = await reader.getTransaction({ hash: done.txId })
    expect(tx.from.toLowerCase()).toBe(hot!.toLowerCase())
    // In the ledger: the amount left the trader, nothing stays locked.
    const after = await signed('GET', '/api/v3/account')
    const usdtAfter = after.balances.find((b: Answer) => b.asset === 'USDT')
    expect(Number(usdtBefore.free) - Number(usdtAfter.free)).toBeCloseTo(25.5, 8)
    expect(usdtAfter.locked).toBe(usdtBefore.locked)
  }, 60_000)

  it('keeps a withdrawal above the approval threshold waiting', async () => {
    const applied = await signed('POST', '/sapi/v1/capital/withdraw/apply', {
      coin: 'USDT',
      address: privateKeyToAccount(`0x${'7e'.repeat(32)}`).address,
      amount: '20000',
    })
    const [w] = await signed('GET', '/sapi/v1/capital/withdraw/history', { idList: applied.id })
    expect(w).toMatchObject({ id: applied.id, status: 2, network: 'ANVIL' })
  }, 30_000)
})
