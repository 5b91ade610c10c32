/**
 * viem clients for a test chain, and anvil's reorg RPCs, which viem's test actions do not wrap.
 */
import {
  type Account,
  type Chain,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  type Hex,
  http,
  type PublicClient,
} from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import type { Anvil } from './anvil.ts'
import type { Deployer } from './deploy.ts'

/** anvil's default mnemonic: its ten funded accounts are m/44'/60'/0'/0/0..9 of it. */
export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk'

export interface ChainClients {
  readonly chain: Chain
  readonly reader: PublicClient
  readonly testClient: ReturnType<typeof createTestClient>
  /** A wallet client signing locally for anvil account `index`. */
  wallet(index: number): Deployer
  account(index: number): Account
  /** anvil_reorg: replaces the last `depth` blocks by as many new ones holding `txs` (raw signed, at block offset). */
  reorg(depth: number, txs?: readonly (readonly [Hex, number])[]): Promise<void>
  /** anvil_rollback: removes the last `depth` blocks, mining nothing. */
  rollback(depth: number): Promise<void>
  mine(blocks: number): Promise<void>
}

export function chainClients(anvil: Anvil): ChainClients {
  const chain = defineChain({
    id: anvil.chainId,
    name: 'anvil',
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [anvil.rpcUrl], webSocket: [anvil.wsUrl] } },
  })
  // cacheTime 0: viem otherwise serves a stale block number after a reorg or rollback.
  const reader = createPublicClient({
    chain,
    transport: http(anvil.rpcUrl),
    cacheTime: 0,
    pollingInterval: 20,
  })
  const testClient = createTestClient({ chain, mode: 'anvil', transport: http(anvil.rpcUrl) })
  const account = (index: number) => mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: index })
  return {
    chain,
    reader,
    testClient,
    account,
    wallet: (index) =>
      createWalletClient({ chain, account: account(index), transport: http(anvil.rpcUrl), cacheTime: 0 }),
    reorg: async (depth, txs = []) => {
      await testClient.request({ method: 'anvil_reorg' as never, params: [depth, txs] as never })
    },
    rollback: async (depth) => {
      await testClient.request({ method: 'anvil_rollback' as never, params: [depth] as never })
    },
    mine: async (blocks) => {
      await testClient.mine({ blocks })
    },
  }
}
