/**
 * A test order contract on a fresh anvil: two tokens (WETH of 18 decimals sold, USDT of 6 bought), the
 * OrderBook, makers and takers funded and approved, and helpers that create, execute and cancel orders —
 * or only sign them, so a reorg can re-include the very same transaction.
 */
import {
  type Address,
  createPublicClient,
  custom,
  encodeFunctionData,
  type Hash,
  type Hex,
  http,
  parseEventLogs,
} from 'viem'
import { orderBookAbi, testTokenAbi } from '../../chain/abis.ts'
import type { Anvil } from '../../chain/anvil.ts'
import { deployOrderBook, deployTestToken } from '../../chain/deploy.ts'
import type { ChainClients } from '../../chain/testing.ts'

export interface OrderContract {
  readonly orderBook: Address
  readonly weth: Address
  readonly usdt: Address
  /** The block the OrderBook was deployed in. */
  readonly deployBlock: bigint
  /** Signs a call of the order contract from anvil account `from` (not sent). */
  sign(from: number, data: Hex): Promise<Hex>
  /** Sends a signed transaction and waits for its successful receipt. */
  send(raw: Hex): Promise<Hash>
  create(from: number, sellAmount: bigint, buyAmount: bigint): Promise<{ id: bigint; hash: Hash }>
  execute(from: number, id: bigint): Promise<Hash>
  cancel(from: number, id: bigint): Promise<Hash>
  createData(sellAmount: bigint, buyAmount: bigint): Hex
  executeData(id: bigint): Hex
}

export async function deployOrderContract(
  c: ChainClients,
  accounts: readonly number[],
): Promise<OrderContract> {
  const deployer = c.wallet(0)
  const weth = await deployTestToken(deployer, c.reader, {
    name: 'Wrapped Ether',
    symbol: 'WETH',
    decimals: 18,
  })
  const usdt = await deployTestToken(deployer, c.reader, { name: 'Tether', symbol: 'USDT', decimals: 6 })
  const orderBook = await deployOrderBook(deployer, c.reader)
  const deployBlock = await c.reader.getBlockNumber({ cacheTime: 0 })
  const wait = (hash: Hash) => c.reader.waitForTransactionReceipt({ hash, pollingInterval: 20 })
  for (const i of accounts) {
    for (const token of [weth, usdt]) {
      await wait(
        await deployer.writeContract({
          address: token,
          abi: testTokenAbi,
          functionName: 'mint',
          args: [c.account(i).address, 10n ** 30n],
        }),
      )
      await wait(
        await c.wallet(i).writeContract({
          address: token,
          abi: testTokenAbi,
          functionName: 'approve',
          args: [orderBook, 2n ** 255n],
        }),
      )
    }
  }
  const sign = async (from: number, data: Hex) => {
    const wallet = c.wallet(from)
    const prepared = await wallet.prepareTransactionRequest({ to: orderBook, data, chain: c.chain })
    return wallet.signTransaction(prepared)
  }
  const send = async (raw: Hex) => {
    const hash = await c.reader.sendRawTransaction({ serializedTransaction: raw })
    const receipt = await wait(hash)
    if (receipt.status !== 'success') throw new Error(`transaction ${hash} reverted`)
    return hash
  }
  const createData = (sellAmount: bigint, buyAmount: bigint) =>
    encodeFunctionData({
      abi: orderBookAbi,
      functionName: 'createOrder',
      args: [weth, usdt, sellAmount, buyAmount],
    })
  const executeData = (id: bigint) =>
    encodeFunctionData({ abi: orderBookAbi, functionName: 'executeOrder', args: [id] })
  return {
    orderBook,
    weth,
    usdt,
    deployBlock,
    sign,
    send,
    createData,
    executeData,
    async create(from, sellAmount, buyAmount) {
      const hash = await send(await sign(from, createData(sellAmount, buyAmount)))
      const receipt = await c.reader.getTransactionReceipt({ hash })
      const [created] = parseEventLogs({ abi: orderBookAbi, eventName: 'OrderCreated', logs: receipt.logs })
      return { id: created!.args.id, hash }
    },
    execute: async (from, id) => send(await sign(from, executeData(id))),
    cancel: async (from, id) =>
      send(
        await sign(from, encodeFunctionData({ abi: orderBookAbi, functionName: 'cancelOrder', args: [id] })),
      ),
  }
}

/**
 * A public client that counts the `eth_getLogs` requests in flight at once (the most seen), to show that
 * recovery reads ranges in parallel.
 */
export function countingClient(c: ChainClients, anvil: Anvil) {
  const base = createPublicClient({ chain: c.chain, transport: http(anvil.rpcUrl), cacheTime: 0 })
  const stats = { inFlight: 0, most: 0, getLogs: 0 }
  const client = createPublicClient({
    chain: c.chain,
    cacheTime: 0,
    transport: custom({
      async request({ method, params }) {
        if (method !== 'eth_getLogs') return base.request({ method, params } as never)
        stats.getLogs++
        stats.inFlight++
        stats.most = Math.max(stats.most, stats.inFlight)
        try {
          // Long enough for the ranges' reads to overlap.
          await new Promise((r) => setTimeout(r, 15))
          return await base.request({ method, params } as never)
        } finally {
          stats.inFlight--
        }
      },
    }),
  })
  return { client, stats }
}
