/**
 * Reconciliation (proof of reserves), per asset: what the ledger owes — every account of the asset but
 * custody: users' available + frozen, pending withdrawals, fees — against what the exchange holds on chain
 * — the balances of every deposit address, the hot, cold and gas keeper addresses — read at one block per
 * wallet.
 *
 * Order matters: the ledger is read first, in one repeatable-read snapshot, and the block afterwards, so
 * every deposit the ledger has credited is already in the block. A withdrawal the snapshot still holds as
 * pending whose transaction is mined at or below the block has left the chain balance already; it is
 * counted as `in_flight` and taken off the liabilities. What the ledger does not book shows as a surplus:
 * deposits not yet confirmed, dust below an asset's scale, and the exchange's own coin. Gas is booked once
 * its transaction is final (network_fees, a negative liability); gas burned by a transaction mined but not
 * yet final is counted in flight like the withdrawals above. A deficit — liabilities above
 * assets — is the alarm: it is logged as an error, the gauge goes negative, and withdrawals are paused until
 * an administrator resumes them.
 *
 * Amounts are compared as bigint at MAX_SCALE (36 places), stored as exact decimal strings.
 */
import { sql } from 'drizzle-orm'
import { type Address, erc20Abi, getAddress, type PublicClient } from 'viem'
import { type Database, queryRows } from '../../adapters/db/database.ts'
import { mapLimit } from '../../chain/blocks.ts'
import type { Logger } from '../../lib/log.ts'
import { Gauge, type Registry } from '../../lib/metrics.ts'
import { formatDecimal, MAX_SCALE, parseDecimal, pow10 } from '../../lib/money.ts'
import type { Lease } from './lease.ts'
import { ALL_WALLETS, pauseWithdrawals } from './pause.ts'

export type AddressKind = 'deposit' | 'hot' | 'cold' | 'gas_keeper'

export interface ReconciledWallet {
  readonly walletId: string
  readonly client: PublicClient
  readonly hot?: readonly Address[]
  readonly cold?: readonly Address[]
  readonly gasKeeper?: readonly Address[]
}

export interface ReconcileOptions {
  readonly db: Database
  readonly wallets: readonly ReconciledWallet[]
  readonly registry?: Registry
  readonly log?: Logger
  /** When given, the pause is written only while this instance still holds the lease (fencing). */
  readonly lease?: Lease
  /** Default true. */
  readonly pauseOnDeficit?: boolean
  /** Parallel balance reads per wallet (default 8). */
  readonly concurrency?: number
}

export interface AssetReconciliation {
  readonly asset: string
  readonly blocks: Record<string, string>
  readonly liabilities: string
  readonly inFlight: string
  readonly onChain: string
  readonly difference: string
  readonly status: 'ok' | 'surplus' | 'deficit'
  readonly breakdown: Record<AddressKind, string>
}

/** A transaction's hashes: the current one and those it replaced (any of them may be the one mined). */
interface Hashes {
  tx_hash: string | null
  previous_hashes: string[] | string | null
}

interface Snapshot {
  liabilities: Map<string, bigint>
  walletAssets: { wallet_id: string; asset: string; contract: string | null; decimals: number }[]
  depositAddresses: { wallet_id: string; address: string }[]
  processing: ({ wallet_id: string; asset: string; amount: string } & Hashes)[]
  /** The exchange's transactions not yet final: their gas is not booked yet. */
  unbookedGas: ({ from_address: string } & Hashes)[]
}

const gaugeByRegistry = new WeakMap<Registry, { imbalance: Gauge<'asset'>; deficit: Gauge<'asset'> }>()

function gauges(registry: Registry) {
  let g = gaugeByRegistry.get(registry)
  if (g === undefined) {
    g = {
      imbalance: new Gauge({
        name: 'bourse_reconciliation_imbalance',
        help: 'On-chain holdings less ledger liabilities per asset at the last reconciliation, in asset units (negative: a deficit; as a float, for alerts and dashboards only).',
        labelNames: ['asset'],
        registers: [registry],
      }),
      deficit: new Gauge({
        name: 'bourse_reconciliation_deficit',
        help: '1 when the last reconciliation found the ledger owing more of the asset than the chain holds.',
        labelNames: ['asset'],
        registers: [registry],
      }),
    }
    gaugeByRegistry.set(registry, g)
  }
  return g
}

async function readSnapshot(db: Database, walletIds: readonly string[]): Promise<Snapshot> {
  return db.transaction(
    async (tx) => {
      const ids = `{${walletIds.join(',')}}`
      const sums = await queryRows<{ asset: string; total: string }>(
        tx,
        sql`select asset, sum(available + frozen)::text as total from accounts
            where system is distinct from 'custody' group by asset`,
      )
      const walletAssets = await queryRows<Snapshot['walletAssets'][number]>(
        tx,
        sql`select wallet_id, asset, contract, decimals from chain_wallet_assets
            where wallet_id = any(${ids}::text[]) order by wallet_id, asset`,
      )
      const depositAddresses = await queryRows<Snapshot['depositAddresses'][number]>(
        tx,
        sql`select wallet_id, address from deposit_addresses where wallet_id = any(${ids}::text[]) order by wallet_id, address_index`,
      )
      const processing = await queryRows<Snapshot['processing'][number]>(
        tx,
        sql`select w.wallet_id, w.asset, w.amount::text, t.tx_hash, t.previous_hashes
            from withdrawals w left join chain_txs t on t.id = w.chain_tx_id
            where w.state = 'processing' and w.wallet_id = any(${ids}::text[])`,
      )
      const unbookedGas = await queryRows<Snapshot['unbookedGas'][number]>(
        tx,
        sql`select from_address, tx_hash, previous_hashes from chain_txs where state in ('signed', 'broadcast', 'mined')`,
      )
      return {
        liabilities: new Map(sums.map((s) => [s.asset, toUnits(s.total)])),
        walletAssets,
        depositAddresses,
        processing,
        unbookedGas,
      }
    },
    { isolationLevel: 'repeatable read', accessMode: 'read only' },
  )
}

const toUnits = (decimal: string) =>
  parseDecimal(decimal, MAX_SCALE, { allowNegative: true, allowZero: true })
const fromUnits = (units: bigint) => formatDecimal(units, MAX_SCALE, { trimZeros: true })

function hashesOf(p: Hashes): string[] {
  const previous =
    p.previous_hashes === null
      ? []
      : Array.isArray(p.previous_hashes)
        ? p.previous_hashes
        : p.previous_hashes
            .replace(/^\{|\}$/g, '')
            .split(',')
            .filter(Boolean)
  return [...(p.tx_hash === null ? [] : [p.tx_hash]), ...previous]
}

/** The receipt of whichever of the transaction's hashes was mined at or below `block`, if any. */
async function minedBy(client: PublicClient, t: Hashes, block: bigint) {
  for (const hash of hashesOf(t)) {
    const receipt = await client.getTransactionReceipt({ hash: hash as `0x${string}` }).catch(() => null)
    if (receipt !== null && receipt.blockNumber <= block) return receipt
  }
  return undefined
}

/** Reconciles every asset the wallets hold; records a row per asset, sets the gauges, pauses on a deficit. */
export async function reconcile(opts: ReconcileOptions): Promise<AssetReconciliation[]> {
  const snap = await readSnapshot(
    opts.db,
    opts.wallets.map((w) => w.walletId),
  )
  const onChain = new Map<string, Record<AddressKind, bigint>>()
  const inFlight = new Map<string, bigint>()
  const blocks = new Map<string, Record<string, string>>()
  for (const w of opts.wallets) {
    const block = await w.client.getBlockNumber({ cacheTime: 0 })
    const addresses: [AddressKind, Address][] = [
      ...snap.depositAddresses
        .filter((d) => d.wallet_id === w.walletId)
        .map((d) => ['deposit', getAddress(d.address)] as [AddressKind, Address]),
      ...(w.hot ?? []).map((a) => ['hot', getAddress(a)] as [AddressKind, Address]),
      ...(w.cold ?? []).map((a) => ['cold', getAddress(a)] as [AddressKind, Address]),
      ...(w.gasKeeper ?? []).map((a) => ['gas_keeper', getAddress(a)] as [AddressKind, Address]),
    ]
    // An address listed under two kinds (a hot wallet that is also the gas keeper) is counted once.
    const seen = new Set<string>()
    const unique = addresses.filter(([, a]) => !seen.has(a) && seen.add(a))
    for (const asset of snap.walletAssets.filter((a) => a.wallet_id === w.walletId)) {
      const balances = await mapLimit(unique, opts.concurrency ?? 8, ([, address]) =>
        asset.contract === null
          ? w.client.getBalance({ address, blockNumber: block })
          : w.client.readContract({
              address: getAddress(asset.contract),
              abi: erc20Abi,
              functionName: 'balanceOf',
              args: [address],
              blockNumber: block,
            }),
      )
      const scaleUp = pow10(MAX_SCALE - asset.decimals)
      const byKind = onChain.get(asset.asset) ?? { deposit: 0n, hot: 0n, cold: 0n, gas_keeper: 0n }
      unique.forEach(([kind], i) => {
        byKind[kind] += balances[i]! * scaleUp
      })
      onChain.set(asset.asset, byKind)
      blocks.set(asset.asset, { ...blocks.get(asset.asset), [w.walletId]: String(block) })
    }
    const leaving = (asset: string, units: bigint) => inFlight.set(asset, (inFlight.get(asset) ?? 0n) + units)
    for (const p of snap.processing.filter((x) => x.wallet_id === w.walletId)) {
      const receipt = await minedBy(w.client, p, block)
      if (receipt?.status === 'success') leaving(p.asset, toUnits(p.amount))
    }
    // Gas burned by a transaction mined but not yet final (booked when it is, as network_fees).
    const native = snap.walletAssets.find((a) => a.wallet_id === w.walletId && a.contract === null)
    if (native === undefined) continue
    for (const t of snap.unbookedGas.filter((x) => seen.has(getAddress(x.from_address)))) {
      const receipt = await minedBy(w.client, t, block)
      if (receipt !== undefined)
        leaving(
          native.asset,
          receipt.gasUsed * receipt.effectiveGasPrice * pow10(MAX_SCALE - native.decimals),
        )
    }
  }

  const results: AssetReconciliation[] = []
  for (const [asset, byKind] of onChain) {
    const held = byKind.deposit + byKind.hot + byKind.cold + byKind.gas_keeper
    const owed = snap.liabilities.get(asset) ?? 0n
    const leaving = inFlight.get(asset) ?? 0n
    const difference = held - (owed - leaving)
    const status = difference === 0n ? 'ok' : difference > 0n ? 'surplus' : 'deficit'
    results.push({
      asset,
      blocks: blocks.get(asset) ?? {},
      liabilities: fromUnits(owed),
      inFlight: fromUnits(leaving),
      onChain: fromUnits(held),
      difference: fromUnits(difference),
      status,
      breakdown: {
        deposit: fromUnits(byKind.deposit),
        hot: fromUnits(byKind.hot),
        cold: fromUnits(byKind.cold),
        gas_keeper: fromUnits(byKind.gas_keeper),
      },
    })
  }

  const deficits = results.filter((r) => r.status === 'deficit')
  await opts.db.transaction(async (tx) => {
    if (opts.lease !== undefined) await opts.lease.fenced(tx)
    for (const r of results) {
      await tx.execute(
        sql`insert into reconciliations (asset, blocks, liabilities, in_flight, on_chain, difference, status, breakdown)
            values (${r.asset}, ${JSON.stringify(r.blocks)}::jsonb, ${r.liabilities}, ${r.inFlight}, ${r.onChain},
              ${r.difference}, ${r.status}, ${JSON.stringify(r.breakdown)}::jsonb)`,
      )
    }
    if (deficits.length > 0 && (opts.pauseOnDeficit ?? true)) {
      await pauseWithdrawals(tx, {
        scope: ALL_WALLETS,
        by: 'reconciliation',
        reason: `liabilities exceed on-chain holdings: ${deficits.map((d) => `${d.asset} short by ${d.difference.replace(/^-/, '')}`).join('; ')}`,
      })
    }
  })

  const g = opts.registry === undefined ? undefined : gauges(opts.registry)
  for (const r of results) {
    g?.imbalance.set({ asset: r.asset }, Number(r.difference))
    g?.deficit.set({ asset: r.asset }, r.status === 'deficit' ? 1 : 0)
    if (r.status === 'deficit')
      opts.log?.error({ ...r }, 'reconciliation: liabilities exceed on-chain holdings; withdrawals paused')
    else if (r.status === 'surplus')
      opts.log?.warn({ ...r }, 'reconciliation: on-chain holdings exceed liabilities')
    else
      opts.log?.info(
        { asset: r.asset, blocks: r.blocks, liabilities: r.liabilities },
        'reconciliation: balanced',
      )
  }
  return results
}
