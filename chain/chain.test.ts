/**
 * The chain toolkit against a real anvil: the launcher, the contracts compiled from source by solc-js
 * (their ABIs equal the typed constants; events decode), and watch-only addresses derived from an xpub
 * equal to those the mnemonic's private keys derive.
 */

import { mnemonicToSeedSync } from '@scure/bip39'
import { type AbiEvent, type AbiFunction, parseEventLogs } from 'viem'
import { HDKey, mnemonicToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { orderBookAbi, testTokenAbi } from './abis.ts'
import { type Anvil, startAnvil } from './anvil.ts'
import { deployOrderBook, deployTestToken } from './deploy.ts'
import { watchOnlyKey } from './hd.ts'
import { compiledContract, solcVersion } from './solc.ts'
import { ANVIL_MNEMONIC, type ChainClients, chainClients } from './testing.ts'

let anvil: Anvil
let c: ChainClients

beforeAll(async () => {
  anvil = await startAnvil()
  c = chainClients(anvil)
})
afterAll(async () => {
  await anvil?.stop()
})

const signature = (item: AbiEvent | AbiFunction) =>
  `${item.type} ${item.name}(${item.inputs.map((i) => `${i.type}${'indexed' in i && i.indexed ? ' indexed' : ''}`).join(',')})`
const signatures = (abi: readonly unknown[]) =>
  (abi as (AbiEvent | AbiFunction | { type: string })[])
    .filter((i): i is AbiEvent | AbiFunction => i.type === 'event' || i.type === 'function')
    .map(signature)
    .sort()

describe('contracts', () => {
  it('compiles from source with solc-js 0.8.37, and the typed ABIs match', () => {
    expect(solcVersion()).toMatch(/^0\.8\.37\+/)
    for (const [name, abi] of [
      ['TestToken', testTokenAbi],
      ['OrderBook', orderBookAbi],
    ] as const) {
      const compiled = compiledContract(name)
      expect(compiled.bytecode).toMatch(/^0x[0-9a-f]{100,}$/)
      expect(signatures(compiled.abi)).toEqual(signatures(abi))
    }
  })

  it('deploys the token and the order contract; orders emit OrderCreated, OrderExecuted, OrderCancelled', async () => {
    const maker = c.wallet(0)
    const taker = c.wallet(1)
    const base = await deployTestToken(maker, c.reader, { name: 'Base', symbol: 'BASE', decimals: 18 })
    const quote = await deployTestToken(maker, c.reader, { name: 'Quote', symbol: 'QUOTE', decimals: 6 })
    const book = await deployOrderBook(maker, c.reader)
    expect(await c.reader.readContract({ address: quote, abi: testTokenAbi, functionName: 'decimals' })).toBe(
      6,
    )

    const send = async (hash: `0x${string}`) => {
      const r = await c.reader.waitForTransactionReceipt({ hash, pollingInterval: 20 })
      expect(r.status).toBe('success')
      return r
    }
    const makerAddr = maker.account.address
    const takerAddr = taker.account.address
    await send(
      await maker.writeContract({
        address: base,
        abi: testTokenAbi,
        functionName: 'mint',
        args: [makerAddr, 10n ** 21n],
      }),
    )
    await send(
      await maker.writeContract({
        address: quote,
        abi: testTokenAbi,
        functionName: 'mint',
        args: [takerAddr, 10n ** 12n],
      }),
    )
    await send(
      await maker.writeContract({
        address: base,
        abi: testTokenAbi,
        functionName: 'approve',
        args: [book, 2n ** 256n - 1n],
      }),
    )
    await send(
      await taker.writeContract({
        address: quote,
        abi: testTokenAbi,
        functionName: 'approve',
        args: [book, 2n ** 256n - 1n],
      }),
    )

    const created = await send(
      await maker.writeContract({
        address: book,
        abi: orderBookAbi,
        functionName: 'createOrder',
        args: [base, quote, 5n * 10n ** 18n, 100n * 10n ** 6n],
      }),
    )
    await send(
      await maker.writeContract({
        address: book,
        abi: orderBookAbi,
        functionName: 'createOrder',
        args: [base, quote, 10n ** 18n, 10n ** 6n],
      }),
    )
    const executed = await send(
      await taker.writeContract({
        address: book,
        abi: orderBookAbi,
        functionName: 'executeOrder',
        args: [1n],
      }),
    )
    const cancelled = await send(
      await maker.writeContract({
        address: book,
        abi: orderBookAbi,
        functionName: 'cancelOrder',
        args: [2n],
      }),
    )

    const [c1] = parseEventLogs({ abi: orderBookAbi, logs: created.logs, eventName: 'OrderCreated' })
    expect(c1?.args).toMatchObject({
      id: 1n,
      maker: makerAddr,
      sellToken: base,
      buyToken: quote,
      sellAmount: 5n * 10n ** 18n,
    })
    const [e1] = parseEventLogs({ abi: orderBookAbi, logs: executed.logs, eventName: 'OrderExecuted' })
    expect(e1?.args).toMatchObject({ id: 1n, taker: takerAddr, maker: makerAddr })
    const [x2] = parseEventLogs({ abi: orderBookAbi, logs: cancelled.logs, eventName: 'OrderCancelled' })
    expect(x2?.args).toMatchObject({ id: 2n, maker: makerAddr })
    expect(
      await c.reader.readContract({
        address: base,
        abi: testTokenAbi,
        functionName: 'balanceOf',
        args: [takerAddr],
      }),
    ).toBe(5n * 10n ** 18n)
    expect(
      await c.reader.readContract({
        address: quote,
        abi: testTokenAbi,
        functionName: 'balanceOf',
        args: [makerAddr],
      }),
    ).toBe(100n * 10n ** 6n)
  })
})

describe('anvil', () => {
  it('stops, and starts again on another free port', async () => {
    const other = await startAnvil()
    expect(other.port).not.toBe(anvil.port)
    const r = chainClients(other)
    expect(await r.reader.getChainId()).toBe(31337)
    await other.stop()
    await other.stop()
    await expect(r.reader.getBlockNumber()).rejects.toThrow()
  })
})

describe('watch-only addresses', () => {
  const accountXpub = HDKey.fromMasterSeed(mnemonicToSeedSync(ANVIL_MNEMONIC)).derive(
    "m/44'/60'/0'",
  ).publicExtendedKey

  it('derives from the xpub the addresses the mnemonic derives, holding no private key', () => {
    const key = watchOnlyKey(accountXpub)
    for (const i of [0, 1, 2, 5, 19, 1000, 2 ** 31 - 1]) {
      expect(key.address(i)).toBe(mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: i }).address)
    }
    expect(key.address(0)).toBe('0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266')
    expect(() => key.address(2 ** 31)).toThrow(RangeError)
    expect(() => key.address(-1)).toThrow(RangeError)
  })

  it('refuses an extended private key and garbage', () => {
    const xprv = HDKey.fromMasterSeed(mnemonicToSeedSync(ANVIL_MNEMONIC)).derive(
      "m/44'/60'/0'",
    ).privateExtendedKey
    expect(() => watchOnlyKey(xprv)).toThrow(/private key/)
    expect(() => watchOnlyKey('xpub-not-a-key')).toThrow(/extended public key/)
  })
})
