/**
 * What the gateway tells a user about deposits: the networks (Wallets) that take an asset, the user's
 * deposit address on one (allocated from the Wallet's xpub on first ask, then always the same), and the
 * deposits the syncer recorded, with their confirmations as of its last scanned block.
 */
import { sql } from 'drizzle-orm'
import { type Executor, queryRows } from '../../adapters/db/database.ts'
import { formatDecimal, parseDecimal, rescale } from '../../lib/money.ts'
import { type DepositAddress, depositAddress } from '../syncer/wallet.ts'

export interface DepositNetwork {
  /** The Wallet's id, which is also the network's name (shown upper-case in Binance's API). */
  readonly walletId: string
  readonly chainId: bigint
  readonly confirmations: number
  readonly contract: string | null
  readonly decimals: number
}

/** The Wallets that take deposits of `asset`, by id. */
export async function depositNetworks(db: Executor, asset: string): Promise<DepositNetwork[]> {
  const rows = await queryRows<{
    id: string
    chain_id: bigint
    confirmations: number
    contract: string | null
    decimals: number
  }>(
    db,
    sql`select w.id, w.chain_id, w.confirmations, a.contract, a.decimals
        from chain_wallets w join chain_wallet_assets a on a.wallet_id = w.id
        where a.asset = ${asset} order by w.id`,
  )
  return rows.map((r) => ({
    walletId: r.id,
    chainId: BigInt(r.chain_id),
    confirmations: r.confirmations,
    contract: r.contract,
    decimals: r.decimals,
  }))
}

/**
 * The network a request means: the one named (case-insensitive), or the first when none is named.
 * Undefined when the asset has no such network.
 */
export async function depositNetwork(
  db: Executor,
  asset: string,
  network: string | undefined,
): Promise<DepositNetwork | undefined> {
  const networks = await depositNetworks(db, asset)
  if (network === undefined) return networks[0]
  return networks.find((n) => n.walletId.toLowerCase() === network.toLowerCase())
}

export function userDepositAddress(
  db: Executor,
  network: DepositNetwork,
  userId: bigint,
): Promise<DepositAddress> {
  return depositAddress(db, network.walletId, userId)
}

export type DepositState = 'detected' | 'confirming' | 'credited' | 'orphaned'

export interface DepositRecord {
  readonly id: bigint
  readonly walletId: string
  readonly asset: string
  /** At the ledger's scale: what was (or will be) credited. */
  readonly amount: string
  readonly state: DepositState
  readonly address: string
  readonly fromAddress: string
  readonly txHash: string
  readonly logOrdinal: number
  readonly blockNumber: bigint
  /** Blocks on top of the deposit's, its own included, as far as the syncer has scanned (capped at `required`). */
  readonly confirmations: number
  readonly required: number
  readonly detectedAt: Date
  readonly creditedAt: Date | null
}

export interface DepositQuery {
  readonly asset?: string
  readonly states?: readonly DepositState[]
  readonly txHash?: string
  readonly from?: Date
  readonly to?: Date
  readonly offset?: number
  readonly limit?: number
}

/** A user's deposits, newest first. */
export async function depositHistory(
  db: Executor,
  userId: bigint,
  q: DepositQuery = {},
): Promise<DepositRecord[]> {
  const where = [sql`d.user_id = ${userId}`]
  if (q.asset !== undefined) where.push(sql`d.asset = ${q.asset}`)
  if (q.states !== undefined)
    where.push(sql`d.state in ${sql.raw(`(${q.states.map((s) => `'${s}'`).join(', ')})`)}`)
  if (q.txHash !== undefined) where.push(sql`lower(d.tx_hash) = ${q.txHash.toLowerCase()}`)
  if (q.from !== undefined) where.push(sql`d.created_at >= ${q.from.toISOString()}`)
  if (q.to !== undefined) where.push(sql`d.created_at <= ${q.to.toISOString()}`)
  const rows = await queryRows<{
    id: bigint
    wallet_id: string
    asset: string
    amount: string
    credited_amount: string | null
    state: DepositState
    address: string
    from_address: string
    tx_hash: string
    log_ordinal: number
    block_number: bigint
    scanned_block: bigint
    required: number
    decimals: number
    scale: number
    detected_at: Date | string
    credited_at: Date | string | null
  }>(
    db,
    sql`select d.id, d.wallet_id, d.asset, d.amount::text as amount, d.credited_amount::text as credited_amount,
               d.state, d.address, d.from_address, d.tx_hash, d.log_ordinal, d.block_number,
               w.scanned_block, w.confirmations as required, a.decimals, s.scale, d.created_at as detected_at, d.credited_at
        from deposits d
        join chain_wallets w on w.id = d.wallet_id
        join chain_wallet_assets a on a.wallet_id = d.wallet_id and a.asset = d.asset
        join assets s on s.symbol = d.asset
        where ${sql.join(where, sql` and `)}
        order by d.id desc
        offset ${q.offset ?? 0} limit ${q.limit ?? 1000}`,
  )
  return rows.map((r) => {
    const onChain = parseDecimal(r.amount, r.decimals, { allowZero: true })
    const amount = r.credited_amount ?? formatDecimal(rescale(onChain, r.decimals, r.scale, 'down'), r.scale)
    const depth = BigInt(r.scanned_block) - BigInt(r.block_number) + 1n
    const confirmations =
      r.state === 'credited'
        ? r.required
        : r.state === 'orphaned' || depth < 0n
          ? 0
          : Math.min(Number(depth), r.required)
    return {
      id: BigInt(r.id),
      walletId: r.wallet_id,
      asset: r.asset,
      amount,
      state: r.state,
      address: r.address,
      fromAddress: r.from_address,
      txHash: r.tx_hash,
      logOrdinal: r.log_ordinal,
      blockNumber: BigInt(r.block_number),
      confirmations,
      required: r.required,
      detectedAt: new Date(r.detected_at),
      creditedAt: r.credited_at === null ? null : new Date(r.credited_at),
    }
  })
}
