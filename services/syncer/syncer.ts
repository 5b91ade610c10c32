/**
 * The deposit syncer of one Wallet. Each pass:
 *
 * 1. checks that the last scanned block is still on the chain (its hash); if not — a reorg or a
 *    rollback — walks back through the stored blocks to the fork point, orphans the deposits detected
 *    above it and not yet credited, and moves the cursor back so the new chain is scanned again;
 * 2. scans forward from the cursor in bounded ranges: ERC-20 `Transfer` logs to our addresses through
 *    `eth_getLogs` (the range halves when the RPC refuses it), native transfers from the blocks'
 *    transactions; every block's parent hash must be the previous block's hash; the range's blocks,
 *    deposits and the new cursor are committed in one transaction, guarded by the old cursor (so two
 *    syncers of one wallet cannot both advance it);
 * 3. credits the deposits that have reached the wallet's confirmations (or the `finalized` block)
 *    through the ledger's creditDeposit, keyed `${chainId}:${txHash}:${ordinal}` — the log's position
 *    in its receipt, -1 for the native value — so a re-scan, a restart or a re-included transaction
 *    never credits twice.
 *
 * Deposits go detected → confirming → credited, or orphaned (and back to detected when the new chain
 * holds the same transaction). Everything lives in Postgres: a restart resumes at the cursor.
 */

import { sql } from 'drizzle-orm'
import type { Address, Block, Chain, Hash, PublicClient, Transport } from 'viem'
import { createPublicClient, getAddress, parseAbiItem, webSocket } from 'viem'
import { type Database, type Executor, queryRows } from '../../adapters/db/database.ts'
import { ChainMoved, fetchBlockRange, findForkPoint, getBlockOrNull } from '../../chain/blocks.ts'
import { passLoop } from '../../chain/pass-loop.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, metricsRegistry, type Registry } from '../../lib/metrics.ts'
import { formatDecimal, parseDecimal, rescale } from '../../lib/money.ts'
import { depositAddressMap, loadWallet, type StoredWallet, type WalletAsset } from './wallet.ts'

export const transferEvent = parseAbiItem(
  'event Transfer(address indexed from, address indexed to, uint256 value)',
)

/** The log ordinal of a native (top-level value) transfer: no log carries it. */
export const NATIVE_ORDINAL = -1

export interface SyncerOptions {
  readonly db: Database
  /** Reads the chain. Give it `cacheTime: 0`: a cached block number is stale after a reorg. */
  readonly client: PublicClient<Transport, Chain>
  readonly walletId: string
  readonly log?: Logger
  readonly registry?: Registry
  /** Largest block range per `eth_getLogs` and per commit (default 500). */
  readonly maxRange?: number
  /** Blocks kept below the cursor for reorg detection; a deeper reorg stops the syncer (default 256). */
  readonly keepBlocks?: number
  /** Blocks fetched in parallel while scanning (default 8). */
  readonly concurrency?: number
  /** Beyond this many addresses, Transfer logs are fetched per token and matched in memory (default 200). */
  readonly maxTopicAddresses?: number
}

export interface SyncerStatus {
  readonly walletId: string
  readonly chainId: bigint
  /** The chain's latest block as last seen; -1 before the first pass. */
  readonly head: bigint
  /** The last block whose deposits are recorded. */
  readonly scanned: bigint
  readonly lag: bigint
  readonly finalized: bigint | null
  readonly lastError: string | null
}

export interface PassResult {
  readonly head: bigint
  readonly scanned: bigint
  /** Depth of the reorg handled in this pass (0: none). */
  readonly reorgDepth: number
  readonly detected: number
  readonly credited: number
  readonly orphaned: number
}

/** A reorg below the blocks the syncer keeps: it cannot know what to roll back. */
export class DeepReorgError extends Error {
  override name = 'DeepReorgError'
}

interface Detected {
  readonly txHash: Hash
  readonly ordinal: number
  readonly asset: WalletAsset
  readonly userId: bigint
  readonly address: Address
  readonly from: Address
  readonly units: bigint
  readonly blockNumber: bigint
  readonly blockHash: Hash
  readonly logIndex: number | null
}

interface Cursor {
  readonly block: bigint
  readonly hash: string | null
}

interface Metrics {
  head: Gauge
  scanned: Gauge
  lag: Gauge
  deposits: Counter
  reorgs: Counter
  reorgDepth: Gauge
  errors: Counter
}

function syncerMetrics(registry: Registry): Metrics {
  const gauge = (name: string, help: string) =>
    (registry.getSingleMetric(name) as Gauge | undefined) ??
    new Gauge({ name, help, labelNames: ['wallet'], registers: [registry] })
  const counter = (name: string, help: string, labelNames: string[]) =>
    (registry.getSingleMetric(name) as Counter | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] })
  return {
    head: gauge('bourse_syncer_head_block', "The chain's latest block number"),
    scanned: gauge('bourse_syncer_scanned_block', 'The last block whose deposits are recorded'),
    lag: gauge('bourse_syncer_lag_blocks', 'Head minus scanned block'),
    deposits: counter(
      'bourse_syncer_deposits_total',
      'Deposits by transition (detected, credited, orphaned)',
      ['wallet', 'state'],
    ),
    reorgs: counter('bourse_syncer_reorgs_total', 'Reorgs handled', ['wallet']),
    reorgDepth: gauge('bourse_syncer_last_reorg_depth', 'Depth of the last reorg handled'),
    errors: counter('bourse_syncer_errors_total', 'Passes that failed', ['wallet']),
  }
}

export interface Syncer {
  /** One pass: reorg check, scan to the head, credits. */
  syncOnce(): Promise<PassResult>
  status(): SyncerStatus
  /** Passes until the signal aborts: after each new head (`wake`) or every `pollIntervalMs`. */
  run(opts: { signal: AbortSignal; pollIntervalMs?: number }): Promise<void>
  /** Starts the next pass now (a new-heads subscription calls this). */
  wake(): void
}

export async function createSyncer(opts: SyncerOptions): Promise<Syncer> {
  const { db, client, walletId } = opts
  const wallet = await loadWallet(db, walletId)
  const chainId = BigInt(await client.getChainId())
  if (chainId !== wallet.chainId) {
    throw new Error(`wallet ${walletId} is on chain ${wallet.chainId} but the RPC serves chain ${chainId}`)
  }
  const maxRange = BigInt(opts.maxRange ?? 500)
  const keepBlocks = BigInt(opts.keepBlocks ?? 256)
  const concurrency = opts.concurrency ?? 8
  const maxTopicAddresses = opts.maxTopicAddresses ?? 200
  const metrics = syncerMetrics(opts.registry ?? metricsRegistry())
  const labels = { wallet: walletId }
  const tokens = wallet.assets.filter((a) => a.contract !== null)
  const native = wallet.assets.find((a) => a.contract === null)
  const scales = await assetScales(db, wallet.assets)
  let logRange = maxRange
  let head = -1n
  let scanned = (await loadCursor(db, walletId)).block
  let finalized: bigint | null = null
  let lastError: string | null = null

  const getBlock = (n: bigint, full: boolean): Promise<Block | null> => getBlockOrNull(client, n, full)

  const fetchBlocks = (from: bigint, to: bigint): Promise<Block[]> =>
    fetchBlockRange(client, from, to, { concurrency, includeTransactions: native !== undefined })

  /**
   * Transfer logs of our tokens to our addresses in [from, to]. When the RPC refuses the range (too many
   * blocks or results), throws RangeShrunk with a halved end; the range grows back after successes.
   */
  async function transferLogs(from: bigint, to: bigint, addresses: Map<string, bigint>) {
    const recipients =
      addresses.size <= maxTopicAddresses ? [...addresses.keys()].map((a) => getAddress(a)) : undefined
    try {
      const logs = await client.getLogs({
        address: tokens.map((t) => t.contract!),
        event: transferEvent,
        args: recipients === undefined ? {} : { to: recipients },
        fromBlock: from,
        toBlock: to,
        strict: true,
      })
      logRange = logRange * 2n > maxRange ? maxRange : logRange * 2n
      return logs
    } catch (err) {
      if (to === from) throw err
      logRange = (to - from + 1n) / 2n
      opts.log?.warn({ err, from, to, logRange }, 'eth_getLogs refused the range; halving it')
      throw new RangeShrunk(from + logRange - 1n)
    }
  }

  /** Reads [from, to] and returns its blocks and deposits; throws ChainMoved when the chain changed meanwhile. */
  async function readRange(
    from: bigint,
    to: bigint,
    parentHash: string | null,
    addresses: Map<string, bigint>,
  ): Promise<{ blocks: Block[]; found: Detected[]; to: bigint }> {
    let logs: Awaited<ReturnType<typeof transferLogs>> = []
    if (tokens.length > 0 && addresses.size > 0) {
      try {
        logs = await transferLogs(from, to, addresses)
      } catch (err) {
        if (!(err instanceof RangeShrunk)) throw err
        return readRange(from, err.to, parentHash, addresses)
      }
    }
    const blocks = await fetchBlocks(from, to)
    if (parentHash !== null && blocks[0]!.parentHash !== parentHash) throw new ReorgBelow()
    const hashAt = (n: bigint) => blocks[Number(n - from)]!.hash
    const candidates: { txHash: Hash; blockHash: Hash; log?: (typeof logs)[number]; tx?: NativeTx }[] = []
    for (const log of logs) {
      if (log.removed || log.blockHash !== hashAt(log.blockNumber))
        throw new ChainMoved('a log left its block')
      if (log.args.value === 0n || !addresses.has(log.args.to.toLowerCase())) continue
      candidates.push({ txHash: log.transactionHash, blockHash: log.blockHash, log })
    }
    if (native !== undefined && addresses.size > 0) {
      for (const block of blocks) {
        for (const tx of block.transactions) {
          if (typeof tx === 'string' || tx.to == null || tx.value === 0n) continue
          if (!addresses.has(tx.to.toLowerCase())) continue
          candidates.push({
            txHash: tx.hash,
            blockHash: block.hash!,
            tx: { to: tx.to, from: tx.from, value: tx.value },
          })
        }
      }
    }
    const receipts = new Map<Hash, Awaited<ReturnType<PublicClient['getTransactionReceipt']>>>()
    for (const c of candidates) {
      if (receipts.has(c.txHash)) continue
      const receipt = await client.getTransactionReceipt({ hash: c.txHash }).catch((err: Error) => {
        if (err.name === 'TransactionReceiptNotFoundError') throw new ChainMoved('a receipt is gone')
        throw err
      })
      if (receipt.blockHash !== c.blockHash) throw new ChainMoved('a transaction moved block')
      receipts.set(c.txHash, receipt)
    }
    const found: Detected[] = []
    for (const c of candidates) {
      const receipt = receipts.get(c.txHash)!
      if (c.log !== undefined) {
        const log = c.log
        const ordinal = receipt.logs.findIndex((l) => l.logIndex === log.logIndex)
        if (ordinal < 0) throw new ChainMoved('a log is not in its receipt')
        const asset = tokens.find((t) => t.contract!.toLowerCase() === log.address.toLowerCase())!
        const address = getAddress(log.args.to)
        found.push({
          txHash: c.txHash,
          ordinal,
          asset,
          userId: addresses.get(address.toLowerCase())!,
          address,
          from: getAddress(log.args.from),
          units: log.args.value,
          blockNumber: log.blockNumber,
          blockHash: log.blockHash,
          logIndex: log.logIndex,
        })
      } else if (c.tx !== undefined && receipt.status === 'success') {
        // A reverted transaction moved no value.
        const address = getAddress(c.tx.to)
        found.push({
          txHash: c.txHash,
          ordinal: NATIVE_ORDINAL,
          asset: native!,
          userId: addresses.get(address.toLowerCase())!,
          address,
          from: getAddress(c.tx.from),
          units: c.tx.value,
          blockNumber: receipt.blockNumber,
          blockHash: c.blockHash,
          logIndex: null,
        })
      }
    }
    return { blocks, found, to }
  }

  /** Records a scanned range: blocks, deposits, cursor — all or nothing, and only if the cursor is still `cursor`. */
  async function commitRange(cursor: Cursor, blocks: Block[], found: Detected[]): Promise<number> {
    const last = blocks[blocks.length - 1]!
    return db.transaction(async (tx) => {
      const moved = await queryRows<{ id: string }>(
        tx,
        sql`update chain_wallets set scanned_block = ${last.number}, scanned_hash = ${last.hash}
            where id = ${walletId} and scanned_block = ${cursor.block}
              and scanned_hash is not distinct from ${cursor.hash}
            returning id`,
      )
      if (moved.length === 0) throw new ChainMoved('another syncer moved the cursor')
      for (const b of blocks) {
        await tx.execute(
          sql`insert into chain_blocks (wallet_id, number, hash, parent_hash)
              values (${walletId}, ${b.number}, ${b.hash}, ${b.parentHash})
              on conflict (wallet_id, number) do update set hash = excluded.hash, parent_hash = excluded.parent_hash`,
        )
      }
      let detected = 0
      for (const d of found) {
        const rows = await queryRows<{ id: bigint }>(
          tx,
          sql`insert into deposits (wallet_id, chain_id, tx_hash, log_ordinal, asset, user_id, address, from_address,
                                    amount, block_number, block_hash, log_index)
              values (${walletId}, ${chainId}, ${d.txHash}, ${d.ordinal}, ${d.asset.asset}, ${d.userId}, ${d.address},
                      ${d.from}, ${formatDecimal(d.units, d.asset.decimals)}, ${d.blockNumber}, ${d.blockHash}, ${d.logIndex})
              on conflict (chain_id, tx_hash, log_ordinal) do update set
                state = 'detected', amount = excluded.amount, block_number = excluded.block_number,
                block_hash = excluded.block_hash, log_index = excluded.log_index, updated_at = now()
              where deposits.state = 'orphaned'
              returning id`,
        )
        detected += rows.length
      }
      return detected
    })
  }

  /** The chain no longer holds the cursor's block: find the fork point and roll back above it. */
  async function rollBack(cursor: Cursor): Promise<{ depth: number; orphaned: number }> {
    let fork: { number: bigint; hash: string } | undefined = await findForkPoint(
      cursor.block < head ? cursor.block : head,
      cursor.block - keepBlocks,
      async (n) =>
        (
          await queryRows<{ hash: string }>(
            db,
            sql`select hash from chain_blocks where wallet_id = ${walletId} and number = ${n}`,
          )
        )[0]?.hash,
      async (n) => (await getBlock(n, false))?.hash ?? undefined,
    )
    if (fork === undefined) {
      const [lowest] = await queryRows<{ number: bigint | null }>(
        db,
        sql`select min(number) as number from chain_blocks where wallet_id = ${walletId}`,
      )
      // The scan has not passed its first block yet: nothing is stored, so nothing to roll back.
      if (lowest?.number == null) fork = { number: cursor.block, hash: '' }
      else {
        throw new DeepReorgError(
          `wallet ${walletId}: the chain diverges below block ${lowest.number}, the lowest block kept; stop and reconcile by hand`,
        )
      }
    }
    const forkPoint = fork
    const depth = Number(cursor.block - forkPoint.number)
    const result = await db.transaction(async (tx) => {
      const moved = await queryRows<{ id: string }>(
        tx,
        sql`update chain_wallets set scanned_block = ${forkPoint.number}, scanned_hash = ${forkPoint.hash || null}
            where id = ${walletId} and scanned_block = ${cursor.block} and scanned_hash is not distinct from ${cursor.hash}
            returning id`,
      )
      if (moved.length === 0) throw new ChainMoved('another syncer moved the cursor')
      const orphaned = await queryRows<{ id: bigint }>(
        tx,
        sql`update deposits set state = 'orphaned', updated_at = now()
            where wallet_id = ${walletId} and block_number > ${forkPoint.number} and state in ('detected', 'confirming')
            returning id`,
      )
      const credited = await queryRows<{ id: bigint; tx_hash: string }>(
        tx,
        sql`select id, tx_hash from deposits
            where wallet_id = ${walletId} and block_number > ${forkPoint.number} and state = 'credited'`,
      )
      await tx.execute(
        sql`delete from chain_blocks where wallet_id = ${walletId} and number > ${forkPoint.number}`,
      )
      return { orphaned: orphaned.length, credited }
    })
    if (result.credited.length > 0) {
      // Only a reorg deeper than the confirmations gets here. The credit stands (the transaction may come
      // back); a human must look: the scan below reports it again if the new chain holds it.
      opts.log?.error(
        { wallet: walletId, depth, deposits: result.credited.map((d) => d.tx_hash) },
        'reorg removed the blocks of deposits already credited',
      )
    }
    metrics.reorgs.inc(labels)
    metrics.reorgDepth.set(labels, depth)
    metrics.deposits.inc({ ...labels, state: 'orphaned' }, result.orphaned)
    opts.log?.warn(
      { wallet: walletId, from: cursor.block, fork: forkPoint.number, depth, orphaned: result.orphaned },
      'reorg',
    )
    return { depth, orphaned: result.orphaned }
  }

  /** Credits what has enough confirmations on the scanned (verified) chain; marks the rest confirming. */
  async function creditConfirmed(): Promise<number> {
    const pending = await queryRows<{
      id: bigint
      tx_hash: string
      log_ordinal: number
      asset: string
      user_id: bigint
      amount: string
      block_number: bigint
      state: string
    }>(
      db,
      sql`select id, tx_hash, log_ordinal, asset, user_id, amount::text as amount, block_number, state from deposits
          where wallet_id = ${walletId} and state in ('detected', 'confirming') and block_number <= ${scanned}
          order by block_number, id`,
    )
    let credited = 0
    const finalizedScanned = finalized === null ? null : finalized < scanned ? finalized : scanned
    for (const d of pending) {
      const confirmations = scanned - BigInt(d.block_number) + 1n
      const ready =
        wallet.finality === 'finalized'
          ? finalizedScanned !== null && BigInt(d.block_number) <= finalizedScanned
          : confirmations >= BigInt(wallet.confirmations)
      if (!ready) {
        if (d.state === 'detected' && confirmations >= 2n) {
          await db.execute(
            sql`update deposits set state = 'confirming', updated_at = now() where id = ${d.id} and state = 'detected'`,
          )
        }
        continue
      }
      const decimals = wallet.assets.find((a) => a.asset === d.asset)!.decimals
      const scale = scales.get(d.asset)!
      // The ledger keeps `scale` places; digits beyond them stay on chain (found by reconciliation).
      const units = rescale(parseDecimal(d.amount, decimals, { allowZero: true }), decimals, scale, 'down')
      const amount = formatDecimal(units, scale)
      const done = await db.transaction(async (tx) => {
        if (units > 0n) {
          await creditDeposit(tx, {
            userId: BigInt(d.user_id),
            asset: d.asset,
            amount,
            depositRef: `${chainId}:${d.tx_hash}:${d.log_ordinal}`,
          })
        }
        const rows = await queryRows<{ id: bigint }>(
          tx,
          sql`update deposits set state = 'credited', credited_amount = ${amount}, credited_at = now(), updated_at = now()
              where id = ${d.id} and state in ('detected', 'confirming') returning id`,
        )
        return rows.length
      })
      credited += done
    }
    if (credited > 0) metrics.deposits.inc({ ...labels, state: 'credited' }, credited)
    return credited
  }

  async function syncOnce(): Promise<PassResult> {
    let reorgDepth = 0
    let orphaned = 0
    let detected = 0
    try {
      head = await client.getBlockNumber({ cacheTime: 0 })
      if (wallet.finality === 'finalized') {
        finalized = (await client.getBlock({ blockTag: 'finalized' })).number
      }
      // Addresses after the head: a deposit in a block up to `head` was sent to an address handed out before it.
      const addresses = await depositAddressMap(db, walletId)
      let cursor = await loadCursor(db, walletId)
      if (cursor.hash !== null) {
        const tip = cursor.block <= head ? await getBlock(cursor.block, false) : null
        if (tip === null || tip.hash !== cursor.hash) {
          const r = await rollBack(cursor)
          reorgDepth = r.depth
          orphaned = r.orphaned
          cursor = await loadCursor(db, walletId)
        }
      }
      scanned = cursor.block
      while (cursor.block < head) {
        const from = cursor.block + 1n
        const to = from + logRange - 1n < head ? from + logRange - 1n : head
        let range: Awaited<ReturnType<typeof readRange>>
        try {
          range = await readRange(from, to, cursor.hash, addresses)
        } catch (err) {
          if (!(err instanceof ReorgBelow)) throw err
          const r = await rollBack(cursor)
          // The cursor's block still stands: the RPC answered from two different chains (a node behind a
          // load balancer); retry in the next pass rather than loop.
          if (r.depth === 0) throw new ChainMoved('the next block does not sit on the scanned one')
          reorgDepth = Math.max(reorgDepth, r.depth)
          orphaned += r.orphaned
          cursor = await loadCursor(db, walletId)
          scanned = cursor.block
          continue
        }
        const newly = await commitRange(cursor, range.blocks, range.found)
        detected += newly
        if (newly > 0) metrics.deposits.inc({ ...labels, state: 'detected' }, newly)
        const last = range.blocks[range.blocks.length - 1]!
        cursor = { block: last.number!, hash: last.hash }
        scanned = cursor.block
        metrics.scanned.set(labels, Number(scanned))
      }
      const credited = await creditConfirmed()
      await db.execute(
        sql`delete from chain_blocks where wallet_id = ${walletId} and number < ${scanned - keepBlocks}`,
      )
      lastError = null
      return { head, scanned, reorgDepth, detected, credited, orphaned }
    } catch (err) {
      lastError = (err as Error).message
      if (err instanceof ChainMoved) {
        // Not a failure: the chain changed under the read; the next pass re-reads it.
        opts.log?.info(
          { wallet: walletId, reason: (err as Error).message },
          'chain moved during the pass; retrying',
        )
        return { head, scanned, reorgDepth, detected, credited: 0, orphaned }
      }
      metrics.errors.inc(labels)
      throw err
    } finally {
      metrics.head.set(labels, Number(head))
      metrics.scanned.set(labels, Number(scanned))
      metrics.lag.set(labels, Number(head > scanned ? head - scanned : 0n))
    }
  }

  const loop = passLoop(syncOnce, {
    fatal: (err) => err instanceof DeepReorgError,
    failed: (err, failures) => opts.log?.error({ err, wallet: walletId, failures }, 'syncer pass failed'),
  })

  return {
    syncOnce,
    status: () => ({
      walletId,
      chainId,
      head,
      scanned,
      lag: head > scanned ? head - scanned : 0n,
      finalized,
      lastError,
    }),
    ...loop,
  }
}

class RangeShrunk extends Error {
  readonly to: bigint
  constructor(to: bigint) {
    super('range shrunk')
    this.to = to
  }
}

/** The first block of a range does not sit on the stored cursor: a reorg at or below the cursor. */
class ReorgBelow extends Error {}

interface NativeTx {
  readonly to: Address
  readonly from: Address
  readonly value: bigint
}

async function loadCursor(db: Executor, walletId: string): Promise<Cursor> {
  const [row] = await queryRows<{ scanned_block: bigint; scanned_hash: string | null }>(
    db,
    sql`select scanned_block, scanned_hash from chain_wallets where id = ${walletId}`,
  )
  if (row === undefined) throw new Error(`wallet ${walletId} is not registered`)
  return { block: BigInt(row.scanned_block), hash: row.scanned_hash }
}

async function assetScales(db: Executor, walletAssets: readonly WalletAsset[]): Promise<Map<string, number>> {
  const rows = await queryRows<{ symbol: string; scale: number }>(db, sql`select symbol, scale from assets`)
  const scales = new Map(rows.map((r) => [r.symbol, r.scale]))
  for (const a of walletAssets) {
    if (!scales.has(a.asset)) throw new Error(`asset ${a.asset} is not in the ledger's assets`)
  }
  return scales
}

export type { StoredWallet }

/**
 * Wakes the syncer on every new head from a WebSocket `newHeads` subscription. Heads are only a
 * trigger — the pass re-reads blocks by number and checks hashes — and the syncer's own polling
 * covers a dropped subscription. Returns the function that unsubscribes and closes the socket.
 */
export function followHeads(syncer: Pick<Syncer, 'wake'>, wsUrl: string, log?: Logger): () => void {
  // On a WebSocket transport viem subscribes to newHeads rather than polling.
  const client = createPublicClient({ transport: webSocket(wsUrl, { reconnect: true }) })
  const unwatch = client.watchBlockNumber({
    onBlockNumber: () => syncer.wake(),
    onError: (err) => log?.warn({ err }, 'newHeads subscription failed; polling meanwhile'),
  })
  return () => {
    unwatch()
    // The socket would otherwise keep the process alive (and reconnecting) after the syncer stops.
    client.transport
      .getRpcClient()
      .then((socket) => socket.close())
      .catch(() => {})
  }
}
