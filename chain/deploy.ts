/** Deploys the test contracts compiled from chain/contracts and waits for their receipts. */
import {
  type Account,
  type Address,
  type Chain,
  getAddress,
  type PublicClient,
  type Transport,
  type WalletClient,
} from 'viem'
import { orderBookAbi, testTokenAbi } from './abis.ts'
import { compiledContract } from './solc.ts'

export type Deployer = WalletClient<Transport, Chain, Account>

async function deploy(
  wallet: Deployer,
  reader: PublicClient,
  abi: typeof testTokenAbi | typeof orderBookAbi,
  bytecode: `0x${string}`,
  args: readonly unknown[],
): Promise<Address> {
  const hash = await wallet.deployContract({ abi, bytecode, args } as Parameters<
    Deployer['deployContract']
  >[0])
  const receipt = await reader.waitForTransactionReceipt({ hash, pollingInterval: 20 })
  if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error(`deployment ${hash} failed`)
  return getAddress(receipt.contractAddress)
}

export function deployTestToken(
  wallet: Deployer,
  reader: PublicClient,
  token: { name: string; symbol: string; decimals: number },
): Promise<Address> {
  const { bytecode } = compiledContract('TestToken')
  return deploy(wallet, reader, testTokenAbi, bytecode, [token.name, token.symbol, token.decimals])
}

export function deployOrderBook(wallet: Deployer, reader: PublicClient): Promise<Address> {
  const { bytecode } = compiledContract('OrderBook')
  return deploy(wallet, reader, orderBookAbi, bytecode, [])
}
