/**
 * A Wallet's chain side in Postgres: its registration (chain, xpub, confirmations, assets, where the
 * scan starts) and its per-user deposit addresses, whose indices Postgres hands out so that no index is
 * ever given twice, even to concurrent callers.
 */
import { sql } from 'drizzle-orm'
import { type Address, getAddress } from 'viem'
import { type Database, type Executor, queryRows } from '../../adapters/db/database.ts'
import { watchOnlyKey } from '../../chain/hd.ts'
import { BourseError } from '../../lib/errors.ts'

export interface WalletAsset {
  /** The ledger's asset symbol (must exist in `assets`). */
  readonly asset: string
  /** The ERC-20 contract; null for the chain's native coin. */
  readonly contract: Address | null
  readonly decimals: number
}

export interface WalletConfig {
  readonly id: string
  readonly chainId: number
  /** Extended public key of the deposit account node; addresses are its children 0/i. */
  readonly xpub: string
  /** Blocks a deposit needs, its own included, before it is credited (1 = as soon as it is mined). */
  readonly confirmations: number
  /** `finalized`: credit once the chain's `finalized` block covers the deposit, instead of counting. */
  readonly finality?: 'depth' | 'finalized'
  /** The first block to scan when the wallet is new (deposit addresses never receive before it). */
  readonly startBlock: bigint
  readonly assets: readonly WalletAsset[]
}

export interface StoredWallet {
  readonly id: string
  readonly chainId: bigint
  readonly xpub: string
  readonly confirmations: number
  readonly finality: 'depth' | 'finalized'
  readonly assets: readonly WalletAsset[]
}

/**
 * Creates the wallet or updates its settings; the scan cursor of an existing wallet is kept. Refuses to
 * change the chain or the xpub of a wallet that has handed out addresses: they would no longer be ours.
 */
export async function registerWallet(db: Database, cfg: WalletConfig): Promise<void> {
  watchOnlyKey(cfg.xpub)
  if (!Number.isInteger(cfg.confirmations) || cfg.confirmations < 1) {
    throw new BourseError('invalid_input', 'must be an integer of at least 1', { field: 'confirmations' })
  }
  if (cfg.startBlock < 0n)
    throw new BourseError('invalid_input', 'must not be negative', { field: 'startBlock' })
  await db.transaction(async (tx) => {
    const [existing] = await queryRows<{ chain_id: bigint; xpub: string; addresses: bigint }>(
      tx,
      sql`select chain_id, xpub, (select count(*) from deposit_addresses a where a.wallet_id = w.id) as addresses
          from chain_wallets w where id = ${cfg.id} for update`,
    )
    if (existing === undefined) {
      await tx.execute(
        sql`insert into chain_wallets (id, chain_id, xpub, confirmations, finality, scanned_block)
            values (${cfg.id}, ${BigInt(cfg.chainId)}, ${cfg.xpub}, ${cfg.confirmations}, ${cfg.finality ?? 'depth'}, ${cfg.startBlock - 1n})`,
      )
    } else {
      const changesIdentity = existing.chain_id !== BigInt(cfg.chainId) || existing.xpub !== cfg.xpub
      if (changesIdentity && BigInt(existing.addresses) > 0n) {
        throw new BourseError(
          'conflict',
          `wallet ${cfg.id} has handed out deposit addresses; its chain id and xpub cannot change`,
          { field: existing.xpub !== cfg.xpub ? 'xpub' : 'chainId' },
        )
      }
      await tx.execute(
        sql`update chain_wallets set chain_id = ${BigInt(cfg.chainId)}, xpub = ${cfg.xpub},
              confirmations = ${cfg.confirmations}, finality = ${cfg.finality ?? 'depth'}
            where id = ${cfg.id}`,
      )
    }
    for (const a of cfg.assets) {
      const contract = a.contract === null ? null : getAddress(a.contract)
      await tx.execute(
        sql`insert into chain_wallet_assets (wallet_id, asset, contract, decimals)
            values (${cfg.id}, ${a.asset}, ${contract}, ${a.decimals})
            on conflict (wallet_id, asset) do update set contract = excluded.contract, decimals = excluded.decimals`,
      )
    }
  })
}

export async function loadWallet(db: Executor, walletId: string): Promise<StoredWallet> {
  const [w] = await queryRows<{
    id: string
    chain_id: bigint
    xpub: string
    confirmations: number
    finality: 'depth' | 'finalized'
  }>(db, sql`select id, chain_id, xpub, confirmations, finality from chain_wallets where id = ${walletId}`)
  if (w === undefined) throw new BourseError('not_found', `wallet ${walletId} is not registered`)
  const assets = await queryRows<{ asset: string; contract: string | null; decimals: number }>(
    db,
    sql`select asset, contract, decimals from chain_wallet_assets where wallet_id = ${walletId} order by asset`,
  )
  return {
    id: w.id,
    chainId: BigInt(w.chain_id),
    xpub: w.xpub,
    confirmations: w.confirmations,
    finality: w.finality,
    assets: assets.map((a) => ({
      asset: a.asset,
      contract: a.contract === null ? null : getAddress(a.contract),
      decimals: a.decimals,
    })),
  }
}

export interface DepositAddress {
  readonly walletId: string
  readonly userId: bigint
  readonly index: number
  readonly address: Address
}

/**
 * The user's deposit address on this wallet's chain, allocating the wallet's next index the first time.
 * The index comes from a row-locked counter that only grows, so it is never reused; a concurrent first
 * call for the same user may burn an index (a gap), never share one.
 */
export async function depositAddress(
  db: Executor,
  walletId: string,
  userId: bigint,
): Promise<DepositAddress> {
  const existing = await findDepositAddress(db, walletId, userId)
  if (existing !== undefined) return existing
  return db.transaction(async (tx) => {
    const [w] = await queryRows<{ index: number; xpub: string }>(
      tx,
      sql`update chain_wallets set next_address_index = next_address_index + 1 where id = ${walletId}
          returning next_address_index - 1 as index, xpub`,
    )
    if (w === undefined) throw new BourseError('not_found', `wallet ${walletId} is not registered`)
    const address = watchOnlyKey(w.xpub).address(w.index)
    const inserted = await queryRows<{ address_index: number }>(
      tx,
      sql`insert into deposit_addresses (wallet_id, address_index, user_id, address)
          values (${walletId}, ${w.index}, ${userId}, ${address})
          on conflict (wallet_id, user_id) do nothing returning address_index`,
    )
    if (inserted.length === 1) return { walletId, userId, index: w.index, address }
    const raced = await findDepositAddress(tx, walletId, userId)
    if (raced === undefined) throw new Error(`deposit address of user ${userId} vanished`)
    return raced
  })
}

async function findDepositAddress(
  db: Executor,
  walletId: string,
  userId: bigint,
): Promise<DepositAddress | undefined> {
  const [row] = await queryRows<{ address_index: number; address: string }>(
    db,
    sql`select address_index, address from deposit_addresses where wallet_id = ${walletId} and user_id = ${userId}`,
  )
  return row === undefined
    ? undefined
    : { walletId, userId, index: row.address_index, address: getAddress(row.address) }
}

/** Every deposit address of the wallet, by lower-case address. */
export async function depositAddressMap(db: Executor, walletId: string): Promise<Map<string, bigint>> {
  const rows = await queryRows<{ address: string; user_id: bigint }>(
    db,
    sql`select address, user_id from deposit_addresses where wallet_id = ${walletId}`,
  )
  return new Map(rows.map((r) => [r.address.toLowerCase(), BigInt(r.user_id)]))
}
