/**
 * `bourse dev`'s chain: anvil from npm on 127.0.0.1:BOURSE_CHAIN_PORT (8545), a block a second, its state
 * kept in the data folder between runs; the demo token (USDT, an ERC-20 of 6 decimals) and the order
 * contract deployed once; the demo Wallet (ETH native and that USDT, 2 confirmations) registered from a
 * DEMO mnemonic's xpub; the syncer following the chain; and, on a chain where the demo trader's deposit
 * address holds no USDT yet, a deposit of 1000 USDT and 1 ETH sent to it, so a newcomer sees a deposit
 * arrive and be credited. Withdrawals go out from a DEMO hot wallet (anvil's account 9, its key public to the
 * world, funded with anvil's ETH and demo USDT topped up from the deployer) through the withdrawal processor.
 * The demo balances credited without a chain deposit (demo.ts) are backed by a DEMO cold address (anvil's
 * account 8) the chain funds with exactly those amounts, so cron's reconciliation balances and its sweeps move
 * deposits to cold, paid by a DEMO gas keeper (account 7). The DEX indexer follows the order contract.
 */
import { readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { mnemonicToSeedSync } from '@scure/bip39'
import { eq, sql } from 'drizzle-orm'
import { type Address, bytesToHex, type Hash, type Hex, parseEther, parseUnits } from 'viem'
import { HDKey, privateKeyToAccount } from 'viem/accounts'
import { type Database, queryRows } from '../../adapters/db/database.ts'
import { users } from '../../adapters/db/schema.ts'
import { testTokenAbi } from '../../chain/abis.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { deployOrderBook, deployTestToken } from '../../chain/deploy.ts'
import { ANVIL_MNEMONIC, chainClients } from '../../chain/testing.ts'
import type { Logger } from '../../lib/log.ts'
import { createDexIndexer, registerDexIndexer } from '../dex/indexer.ts'
import { createSyncer, followHeads } from '../syncer/syncer.ts'
import { depositAddress, registerWallet } from '../syncer/wallet.ts'
import { WithdrawalProcessor } from '../withdrawals/processor.ts'
import type { WithdrawalPolicy } from '../withdrawals/withdrawals.ts'

/**
 * The DEMO deposit key: BIP-39's best-known test mnemonic, public to the world. The embedded mode only
 * ever uses its xpub (watch-only), and nothing but `bourse dev` may use it at all.
 */
export const DEMO_DEPOSIT_MNEMONIC =
  'abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about'
export const DEMO_WALLET_ID = 'anvil'
const CONFIRMATIONS = 2
const DEMO_DEPOSIT = { USDT: 1000_000000n, ETH: parseEther('1') }

export const DEMO_DEX_ID = 'demo'

const anvilKey = (index: number) =>
  bytesToHex(
    HDKey.fromMasterSeed(mnemonicToSeedSync(ANVIL_MNEMONIC)).derive(`m/44'/60'/0'/0/${index}`).privateKey!,
  ) as Hex

/**
 * The DEMO hot wallet's key: anvil's account 9 of its public test mnemonic (anvil funds it with ETH). Only
 * `bourse dev` may use it; a real hot wallet key comes from a Secret.
 */
export const DEMO_HOT_KEY = anvilKey(9)
/** The DEMO gas keeper's key (anvil's account 7): it pays the gas of ERC-20 sweeps. */
export const DEMO_GAS_KEEPER_KEY = anvilKey(7)
/** The DEMO cold storage: anvil's account 8, watched only (no key of it is used). */
export const DEMO_COLD_ADDRESS = privateKeyToAccount(anvilKey(8)).address
/** The hot wallet holds at least this much demo USDT at start (topped up from the deployer). */
const HOT_USDT = 1_000_000_000000n
/** The demo's withdrawal limits: larger requests wait for an administrator's approval. */
export const DEMO_WITHDRAWAL_POLICY: WithdrawalPolicy = {
  assets: {
    ETH: { dailyLimit: '100', approvalAbove: '10', minAmount: '0.001' },
    USDT: { dailyLimit: '100000', approvalAbove: '10000', minAmount: '1' },
  },
}

const demoDepositAccount = () =>
  HDKey.fromMasterSeed(mnemonicToSeedSync(DEMO_DEPOSIT_MNEMONIC)).derive("m/44'/60'/0'")

export function demoXpub(): string {
  return demoDepositAccount().publicExtendedKey
}

/** Fails with a message naming BOURSE_CHAIN_PORT when the port is taken (another anvil, another bourse dev). */
export async function checkChainPort(port: number): Promise<void> {
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
  if (!free) throw chainPortTaken(port)
}

function chainPortTaken(port: number): Error {
  return new Error(
    `port ${port} on 127.0.0.1 is already in use (another anvil, or another bourse dev?): stop it, or set BOURSE_CHAIN_PORT to a free port`,
  )
}

export interface DemoChain {
  readonly rpcUrl: string
  readonly chainId: number
  readonly token: Address
  readonly orderBook: Address
  readonly walletId: string
  /** The demo trader's deposit address on the demo chain. */
  readonly depositAddress: Address
  /** The deposit transactions sent at this start (none when the address was funded before). */
  readonly funding: readonly Hash[]
  /** The DEMO hot wallet withdrawals are paid from. */
  readonly hotAddress: Address
  /** cron's chain settings (CronSettingsEnv): reconciliation, the gas keeper check and sweeps on this chain. */
  readonly cronEnv: Readonly<Record<string, string>>
  stop(): Promise<void>
}

interface Deployed {
  token: Address
  orderBook: Address
}

export async function startDemoChain(opts: {
  db: Database
  dataDir: string
  port: number
  /** The user whose address is funded. */
  userName: string
  log: Logger
}): Promise<DemoChain> {
  const { db, dataDir, log } = opts
  let anvil: Anvil
  try {
    anvil = await startAnvil({
      port: opts.port,
      blockTime: 1,
      args: ['--state', join(dataDir, 'anvil-state.json'), '--state-interval', '10'],
    })
  } catch (err) {
    if ((err as Error).name === 'PortInUseError') throw chainPortTaken(opts.port)
    throw err
  }
  try {
    const c = chainClients(anvil)
    const deployer = c.wallet(0)
    const contractsFile = join(dataDir, 'demo-contracts.json')
    let deployed = await readFile(contractsFile, 'utf8')
      .then((text) => JSON.parse(text) as Deployed)
      .catch(() => undefined)
    if (deployed === undefined || (await c.reader.getCode({ address: deployed.token })) === undefined) {
      const token = await deployTestToken(deployer, c.reader, {
        name: 'Tether USD (demo)',
        symbol: 'USDT',
        decimals: 6,
      })
      const orderBook = await deployOrderBook(deployer, c.reader)
      await c.reader.waitForTransactionReceipt({
        hash: await deployer.writeContract({
          address: token,
          abi: testTokenAbi,
          functionName: 'mint',
          args: [deployer.account.address, 1_000_000_000_000000n],
        }),
        pollingInterval: 50,
      })
      deployed = { token, orderBook }
      await writeFile(contractsFile, JSON.stringify(deployed))
    }
    const head = await c.reader.getBlockNumber({ cacheTime: 0 })
    await registerWallet(db, {
      id: DEMO_WALLET_ID,
      chainId: anvil.chainId,
      xpub: demoXpub(),
      confirmations: CONFIRMATIONS,
      startBlock: head,
      assets: [
        { asset: 'ETH', contract: null, decimals: 18 },
        { asset: 'USDT', contract: deployed.token, decimals: 6 },
      ],
    })
    if (await resetIfChainLost(db, c.reader, head, log)) await forgetDexIndexer(db)
    await backDemoCredits(db, c, deployed.token)

    const [user] = await db.select({ id: users.id }).from(users).where(eq(users.name, opts.userName))
    if (user === undefined) throw new Error(`demo user ${opts.userName} missing`)
    const { address } = await depositAddress(db, DEMO_WALLET_ID, user.id)

    const syncer = await createSyncer({ db, client: c.reader as never, walletId: DEMO_WALLET_ID, log })
    const stopping = new AbortController()
    const running = syncer.run({ signal: stopping.signal, pollIntervalMs: 1000 }).catch((err: unknown) => {
      log.error({ err }, 'the demo chain syncer stopped')
    })
    await registerDexIndexer(db, {
      id: DEMO_DEX_ID,
      chainId: anvil.chainId,
      contract: deployed.orderBook,
      startBlock: head,
    })
    const dex = await createDexIndexer({
      db,
      client: c.reader as never,
      indexerId: DEMO_DEX_ID,
      log: log.child({ part: 'dex' }),
    })
    const dexRunning = dex.run({ signal: stopping.signal, pollIntervalMs: 1000 }).catch((err: unknown) => {
      log.error({ err }, 'the demo DEX indexer stopped')
    })
    // One newHeads subscription wakes both: viem shares a socket per URL, so a second one would outlive stop().
    const unwatch = followHeads(
      {
        wake: () => {
          syncer.wake()
          dex.wake()
        },
      },
      anvil.wsUrl,
      log,
    )

    const hotAddress = privateKeyToAccount(DEMO_HOT_KEY).address
    const hotUsdt = await c.reader.readContract({
      address: deployed.token,
      abi: testTokenAbi,
      functionName: 'balanceOf',
      args: [hotAddress],
    })
    if (hotUsdt < HOT_USDT) {
      await c.reader.waitForTransactionReceipt({
        hash: await deployer.writeContract({
          address: deployed.token,
          abi: testTokenAbi,
          functionName: 'transfer',
          args: [hotAddress, HOT_USDT - hotUsdt],
        }),
        pollingInterval: 50,
      })
    }
    const processor = new WithdrawalProcessor({
      db,
      walletId: DEMO_WALLET_ID,
      chainId: anvil.chainId,
      rpcUrl: anvil.rpcUrl,
      hotKey: DEMO_HOT_KEY,
      confirmations: CONFIRMATIONS,
      log: log.child({ part: 'withdrawals' }),
    })
    processor.start(1000)

    const funding: Hash[] = []
    const held = await c.reader.readContract({
      address: deployed.token,
      abi: testTokenAbi,
      functionName: 'balanceOf',
      args: [address],
    })
    if (held === 0n) {
      // From anvil's account 1, not the deployer: a deposit is someone sending to the address.
      const sender = c.wallet(1)
      await c.reader.waitForTransactionReceipt({
        hash: await deployer.writeContract({
          address: deployed.token,
          abi: testTokenAbi,
          functionName: 'transfer',
          args: [sender.account.address, DEMO_DEPOSIT.USDT],
        }),
        pollingInterval: 50,
      })
      funding.push(
        await sender.writeContract({
          address: deployed.token,
          abi: testTokenAbi,
          functionName: 'transfer',
          args: [address, DEMO_DEPOSIT.USDT],
        }),
      )
      funding.push(await sender.sendTransaction({ to: address, value: DEMO_DEPOSIT.ETH }))
      void announceCredits(db, funding, log, stopping.signal)
    }
    return {
      rpcUrl: anvil.rpcUrl,
      chainId: anvil.chainId,
      token: deployed.token,
      orderBook: deployed.orderBook,
      walletId: DEMO_WALLET_ID,
      depositAddress: address,
      funding,
      hotAddress,
      cronEnv: {
        BOURSE_CHAIN_RPC_URL: anvil.rpcUrl,
        BOURSE_CRON_WALLET: DEMO_WALLET_ID,
        BOURSE_WALLET_HOT_ADDRESSES: hotAddress,
        BOURSE_WALLET_COLD_ADDRESSES: DEMO_COLD_ADDRESS,
        BOURSE_WALLET_GAS_KEEPER_KEY: DEMO_GAS_KEEPER_KEY,
        BOURSE_WALLET_GAS_KEEPER_MINIMUM: String(parseEther('1')),
        BOURSE_WALLET_DEPOSIT_XPRV: demoDepositAccount().privateExtendedKey,
        BOURSE_WALLET_SWEEP_THRESHOLDS: JSON.stringify({
          USDT: String(parseUnits('100', 6)),
          ETH: String(parseEther('0.5')),
        }),
      },
      async stop() {
        stopping.abort()
        unwatch()
        await processor.stop()
        await Promise.all([running, dexRunning])
        await anvil.stop()
      },
    }
  } catch (err) {
    await anvil.stop()
    throw err
  }
}

/**
 * The chain's state file was deleted or is older than the database (a kill between dumps): the blocks
 * the syncer recorded are gone. In dev only, forget them and scan on from the current head; deposits
 * still waiting are orphaned, and credited ones stand.
 */
async function resetIfChainLost(
  db: Database,
  reader: ReturnType<typeof chainClients>['reader'],
  head: bigint,
  log: Logger,
): Promise<boolean> {
  const [cursor] = await queryRows<{ scanned_block: bigint; scanned_hash: string | null }>(
    db,
    sql`select scanned_block, scanned_hash from chain_wallets where id = ${DEMO_WALLET_ID}`,
  )
  if (cursor?.scanned_hash == null) return false
  const block = BigInt(cursor.scanned_block)
  const onChain = block <= head ? await reader.getBlock({ blockNumber: block }).catch(() => null) : null
  if (onChain?.hash === cursor.scanned_hash) return false
  await db.transaction(async (tx) => {
    await tx.execute(sql`delete from chain_blocks where wallet_id = ${DEMO_WALLET_ID}`)
    await tx.execute(
      sql`update deposits set state = 'orphaned', updated_at = now()
          where wallet_id = ${DEMO_WALLET_ID} and state in ('detected', 'confirming')`,
    )
    await tx.execute(
      sql`update chain_wallets set scanned_block = ${head}, scanned_hash = null where id = ${DEMO_WALLET_ID}`,
    )
  })
  log.warn(
    { was: Number(block), now: Number(head) },
    'the demo chain is not the one recorded; scanning on from its head',
  )
  return true
}

/** A lost demo chain took the order contract's history with it: the DEX indexer starts over. */
async function forgetDexIndexer(db: Database): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.execute(sql`delete from dex_orders where indexer_id = ${DEMO_DEX_ID}`)
    await tx.execute(sql`delete from dex_order_events where indexer_id = ${DEMO_DEX_ID}`)
    await tx.execute(sql`delete from dex_blocks where indexer_id = ${DEMO_DEX_ID}`)
    await tx.execute(sql`delete from dex_indexers where id = ${DEMO_DEX_ID}`)
  })
}

/**
 * The demo balances credited at seeding without a chain deposit (`demo:` references) are held by the demo
 * cold address: ETH set with anvil_setBalance, USDT minted. Only what is missing is added, so a restart on a
 * kept chain adds nothing.
 */
async function backDemoCredits(db: Database, c: ReturnType<typeof chainClients>, token: Address) {
  const credited = await queryRows<{ asset: string; amount: string }>(
    db,
    sql`select a.asset, sum(e.amount)::text as amount from ledger_entries e join accounts a on a.id = e.account_id
        where e.reason = 'deposit' and e.ref_id like 'demo:%' and a.user_id is not null group by a.asset`,
  )
  const amount = (asset: string) => credited.find((r) => r.asset === asset)?.amount ?? '0'
  const eth = parseEther(amount('ETH'))
  if ((await c.reader.getBalance({ address: DEMO_COLD_ADDRESS })) < eth)
    await c.testClient.setBalance({ address: DEMO_COLD_ADDRESS, value: eth })
  const usdt = parseUnits(amount('USDT'), 6)
  const held = await c.reader.readContract({
    address: token,
    abi: testTokenAbi,
    functionName: 'balanceOf',
    args: [DEMO_COLD_ADDRESS],
  })
  if (held < usdt) {
    await c.reader.waitForTransactionReceipt({
      hash: await c.wallet(0).writeContract({
        address: token,
        abi: testTokenAbi,
        functionName: 'mint',
        args: [DEMO_COLD_ADDRESS, usdt - held],
      }),
      pollingInterval: 50,
    })
  }
}

/** Prints each funding deposit once the syncer has credited it. */
async function announceCredits(db: Database, txs: readonly Hash[], log: Logger, signal: AbortSignal) {
  const pending = new Set(txs.map((t) => t.toLowerCase()))
  while (pending.size > 0 && !signal.aborted) {
    await new Promise((r) => setTimeout(r, 250))
    try {
      const rows = await queryRows<{ tx_hash: string; asset: string; credited_amount: string }>(
        db,
        sql`select tx_hash, asset, credited_amount::text as credited_amount from deposits
            where wallet_id = ${DEMO_WALLET_ID} and state = 'credited'`,
      )
      for (const r of rows) {
        if (!pending.delete(r.tx_hash.toLowerCase())) continue
        console.log(`Deposit credited: ${r.credited_amount} ${r.asset} to the demo trader (tx ${r.tx_hash})`)
      }
    } catch (err) {
      if (!signal.aborted) log.warn({ err }, 'could not read the demo deposits')
    }
  }
}
