/**
 * The DEX order indexer (the seeds' Linkora order system's event processor): follows one order contract
 * (chain/contracts/OrderBook.sol) and turns its OrderCreated / OrderExecuted / OrderCancelled events into
 * `dex_order_events` rows and `dex_orders` rows. Each pass:
 *
 * 1. checks that the cursor's block is still on the chain (its hash); if not — a reorg or a rollback —
 *    walks back through the stored block hashes to the fork point, deletes the events of the removed
 *    blocks, rebuilds the orders they touched (an order whose OrderExecuted went away is pending again;
 *    one whose OrderCreated went away is gone) and moves the cursor back, so the new chain is scanned again;
 * 2. scans from the cursor to the head in ranges of at most `maxRange` blocks: the contract's logs
 *    (`eth_getLogs`, a refused range is split in halves), every block of the range (linked by parent
 *    hashes, the first one sitting on the cursor), and the receipts of the transactions with events, for
 *    each log's ordinal in its receipt. When more than one range is behind (a restart after downtime) the
 *    indexer is in RECOVERY MODE: up to `recoveryConcurrency` ranges are read in parallel, and applied
 *    strictly in order, each in one transaction guarded by the cursor it started from;
 * 3. an event is keyed by (chainId, txHash, log ordinal in its receipt), which a reorg does not change:
 *    inserting it again changes nothing (only a re-included transaction's new block is written over the
 *    old one), and the orders are rebuilt from their events, so re-processing any block range changes
 *    nothing at all.
 *
 * Everything lives in Postgres: a restart resumes at the cursor.
 */

import { sql } from 'drizzle-orm'
import type { Address, Block, Chain, Hash, PublicClient, Transport } from 'viem'
import { getAddress, parseAbi } from 'viem'
import { type Database, type Executor, queryRows } from '../../adapters/db/database.ts'
import type { dexEventTypes, dexOrderStatuses } from '../../adapters/db/schema.ts'
import { orderBookAbi } from '../../chain/abis.ts'
import { ChainMoved, fetchBlockRange, findForkPoint, getBlockOrNull, mapLimit } from '../../chain/blocks.ts'
import { passLoop } from '../../chain/pass-loop.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, metricsRegistry, type Registry } from '../../lib/metrics.ts'

const orderEvents = orderBookAbi.filter((item) => item.type === 'event')
const decimalsAbi = parseAbi(['function decimals() view returns (uint8)'])

export type DexEventType = (typeof dexEventTypes)[number]
export type DexOrderStatus = (typeof dexOrderStatuses)[number]

export interface DexIndexerConfig {
  readonly id: string
  readonly chainId: number | bigint
  readonly contract: Address
  /** The first block to scan: the contract's deployment block (orders created before it stay unknown). */
  readonly startBlock: bigint
}

/**
 * Registers the order contract to follow. A known indexer keeps its cursor; one registered under the
 * same id for another chain or contract is refused.
 */
export async function registerDexIndexer(db: Executor, config: DexIndexerConfig): Promise<void> {
  const contract = getAddress(config.contract)
  const chainId = BigInt(config.chainId)
  await db.execute(
    sql`insert into dex_indexers (id, chain_id, contract, start_block, scanned_block)
        values (${config.id}, ${chainId}, ${contract}, ${config.startBlock}, ${config.startBlock - 1n})
        on conflict (id) do nothing`,
  )
  const [row] = await queryRows<{ chain_id: bigint; contract: string }>(
    db,
    sql`select chain_id, contract from dex_indexers where id = ${config.id}`,
  )
  if (row === undefined || BigInt(row.chain_id) !== chainId || row.contract !== contract) {
    throw new Error(
      `dex indexer ${config.id} is registered for ${row?.contract} on chain ${row?.chain_id}, not ${contract} on chain ${chainId}`,
    )
  }
}

export interface DexIndexerOptions {
  readonly db: Database
  /** Reads the chain. Give it `cacheTime: 0`: a cached block number is stale after a reorg. */
  readonly client: PublicClient<Transport, Chain>
  readonly indexerId: string
  readonly log?: Logger
  readonly registry?: Registry
  /** Largest block range per `eth_getLogs` and per commit (default 500). */
  readonly maxRange?: number
  /** Blocks kept below the cursor for reorg detection; a deeper reorg stops the indexer (default 256). */
  readonly keepBlocks?: number
  /** Blocks and receipts fetched in parallel within one range (default 8). */
  readonly concurrency?: number
  /** Ranges read in parallel in recovery mode (default 4). */
  readonly recoveryConcurrency?: number
}

export interface DexPassResult {
  readonly head: bigint
  readonly scanned: bigint
  /** Depth of the reorg handled in this pass (0: none). */
  readonly reorgDepth: number
  /** Event rows inserted (or moved to the block that re-included them). */
  readonly events: number
  /** Event rows deleted by a reorg. */
  readonly removed: number
  /** Ranges applied. */
  readonly ranges: number
  /** More than one range was behind: they were read in parallel. */
  readonly recovery: boolean
}

export interface DexIndexerStatus {
  readonly indexerId: string
  readonly chainId: bigint
  readonly contract: Address
  readonly head: bigint
  readonly scanned: bigint
  readonly lag: bigint
  readonly recovering: boolean
  readonly lastError: string | null
}

export interface DexIndexer {
  syncOnce(): Promise<DexPassResult>
  status(): DexIndexerStatus
  /** Passes until the signal aborts: after each `wake` (new head) or every `pollIntervalMs`. */
  run(opts: { signal: AbortSignal; pollIntervalMs?: number }): Promise<void>
  wake(): void
}

/** A reorg below the blocks the indexer keeps: it cannot know what to roll back. */
export class DeepReorgError extends Error {
  override name = 'DeepReorgError'
}

interface Cursor {
  readonly block: bigint
  readonly hash: string | null
}

interface OrderEvent {
  readonly txHash: Hash
  readonly ordinal: number
  readonly logIndex: number
  readonly blockNumber: bigint
  readonly blockHash: Hash
  readonly blockTime: string
  readonly orderId: string
  readonly type: DexEventType
  readonly maker: Address
  readonly taker: Address | null
  readonly sellToken: Address | null
  readonly buyToken: Address | null
  readonly sellDecimals: number | null
  readonly buyDecimals: number | null
  readonly sellAmount: string | null
  readonly buyAmount: string | null
}

interface Chunk {
  readonly from: bigint
  readonly to: bigint
  readonly blocks: Block[]
  readonly events: OrderEvent[]
}

const statusAfter: Record<DexEventType, { old: DexOrderStatus | null; new: DexOrderStatus }> = {
  OrderCreated: { old: null, new: 'pending' },
  OrderExecuted: { old: 'pending', new: 'executed' },
  OrderCancelled: { old: 'pending', new: 'cancelled' },
}

function indexerMetrics(registry: Registry) {
  const gauge = (name: string, help: string) =>
    (registry.getSingleMetric(name) as Gauge | undefined) ??
    new Gauge({ name, help, labelNames: ['indexer'], registers: [registry] })
  const counter = (name: string, help: string) =>
    (registry.getSingleMetric(name) as Counter | undefined) ??
    new Counter({ name, help, labelNames: ['indexer'], registers: [registry] })
  return {
    head: gauge('bourse_dex_indexer_head_block', "The chain's latest block number"),
    scanned: gauge('bourse_dex_indexer_scanned_block', 'The last block whose order events are recorded'),
    lag: gauge('bourse_dex_indexer_lag_blocks', 'Head minus scanned block'),
    events: counter('bourse_dex_indexer_events_total', 'Order events recorded'),
    removed: counter('bourse_dex_indexer_events_removed_total', 'Order events removed by reorgs'),
    reorgs: counter('bourse_dex_indexer_reorgs_total', 'Reorgs handled'),
    recoveryRanges: counter('bourse_dex_indexer_recovery_ranges_total', 'Ranges read in recovery mode'),
    errors: counter('bourse_dex_indexer_errors_total', 'Passes that failed'),
  }
}

export async function createDexIndexer(opts: DexIndexerOptions): Promise<DexIndexer> {
  const { db, client, indexerId } = opts
  const [row] = await queryRows<{ chain_id: bigint; contract: string }>(
    db,
    sql`select chain_id, contract from dex_indexers where id = ${indexerId}`,
  )
  if (row === undefined) throw new Error(`dex indexer ${indexerId} is not registered`)
  const chainId = BigInt(row.chain_id)
  const contract = getAddress(row.contract)
  const rpcChainId = BigInt(await client.getChainId())
  if (rpcChainId !== chainId) {
    throw new Error(`dex indexer ${indexerId} is on chain ${chainId} but the RPC serves chain ${rpcChainId}`)
  }
  const maxRange = BigInt(opts.maxRange ?? 500)
  const keepBlocks = BigInt(opts.keepBlocks ?? 256)
  const concurrency = opts.concurrency ?? 8
  const recoveryConcurrency = opts.recoveryConcurrency ?? 4
  const metrics = indexerMetrics(opts.registry ?? metricsRegistry())
  const labels = { indexer: indexerId }
  const decimals = new Map<string, Promise<number | null>>()
  let head = -1n
  let scanned = (await loadCursor(db, indexerId)).block
  let recovering = false
  let lastError: string | null = null

  function tokenDecimals(token: Address): Promise<number | null> {
    let known = decimals.get(token)
    if (known === undefined) {
      // A token that does not answer decimals() is shown in its smallest units.
      known = client
        .readContract({ address: token, abi: decimalsAbi, functionName: 'decimals' })
        .then((d) => Number(d))
        .catch(() => null)
      decimals.set(token, known)
    }
    return known
  }

  const getContractLogs = (from: bigint, to: bigint) =>
    client.getLogs({ address: contract, events: orderEvents, fromBlock: from, toBlock: to, strict: true })
  type ContractLogs = Awaited<ReturnType<typeof getContractLogs>>

  /** The contract's logs in [from, to]; a range the RPC refuses is split in halves. */
  async function contractLogs(from: bigint, to: bigint): Promise<ContractLogs> {
    try {
      return await getContractLogs(from, to)
    } catch (err) {
      if (from === to) throw err
      const mid = from + (to - from) / 2n
      opts.log?.warn({ err, from, to }, 'eth_getLogs refused the range; splitting it')
      return [...(await contractLogs(from, mid)), ...(await contractLogs(mid + 1n, to))]
    }
  }

  /** Reads one range: its logs, its blocks (linked), the receipts giving each log's ordinal. */
  async function readChunk(from: bigint, to: bigint): Promise<Chunk> {
    const logs = await contractLogs(from, to)
    const blocks = await fetchBlockRange(client, from, to, { concurrency })
    const blockAt = (n: bigint) => blocks[Number(n - from)]!
    for (const log of logs) {
      if (log.removed || log.blockHash !== blockAt(log.blockNumber).hash)
        throw new ChainMoved('a log left its block')
    }
    const txs = [...new Set(logs.map((l) => l.transactionHash))]
    const receipts = new Map(
      await mapLimit(txs, concurrency, async (hash) => {
        const receipt = await client.getTransactionReceipt({ hash }).catch((err: Error) => {
          if (err.name === 'TransactionReceiptNotFoundError') throw new ChainMoved('a receipt is gone')
          throw err
        })
        return [hash, receipt] as const
      }),
    )
    const events: OrderEvent[] = []
    for (const log of logs) {
      const receipt = receipts.get(log.transactionHash)!
      if (receipt.blockHash !== log.blockHash) throw new ChainMoved('a transaction moved block')
      const ordinal = receipt.logs.findIndex((l) => l.logIndex === log.logIndex)
      if (ordinal < 0) throw new ChainMoved('a log is not in its receipt')
      const block = blockAt(log.blockNumber)
      const base = {
        txHash: log.transactionHash,
        ordinal,
        logIndex: log.logIndex,
        blockNumber: log.blockNumber,
        blockHash: log.blockHash,
        blockTime: new Date(Number(block.timestamp) * 1000).toISOString(),
        orderId: log.args.id.toString(),
        type: log.eventName,
        maker: getAddress(log.args.maker),
        taker: null,
        sellToken: null,
        buyToken: null,
        sellDecimals: null,
        buyDecimals: null,
        sellAmount: null,
        buyAmount: null,
      } satisfies OrderEvent
      if (log.eventName === 'OrderCreated') {
        const sellToken = getAddress(log.args.sellToken)
        const buyToken = getAddress(log.args.buyToken)
        events.push({
          ...base,
          sellToken,
          buyToken,
          sellDecimals: await tokenDecimals(sellToken),
          buyDecimals: await tokenDecimals(buyToken),
          sellAmount: log.args.sellAmount.toString(),
          buyAmount: log.args.buyAmount.toString(),
        })
      } else if (log.eventName === 'OrderExecuted') {
        events.push({
          ...base,
          taker: getAddress(log.args.taker),
          sellAmount: log.args.sellAmount.toString(),
          buyAmount: log.args.buyAmount.toString(),
        })
      } else {
        events.push(base)
      }
    }
    return { from, to, blocks, events }
  }

  /** Records a range: blocks, events, the orders they touch, the cursor — all or nothing, only from `cursor`. */
  async function commitChunk(cursor: Cursor, chunk: Chunk): Promise<number> {
    const last = chunk.blocks[chunk.blocks.length - 1]!
    return db.transaction(async (tx) => {
      const moved = await queryRows<{ id: string }>(
        tx,
        sql`update dex_indexers set scanned_block = ${last.number}, scanned_hash = ${last.hash}, updated_at = now()
            where id = ${indexerId} and scanned_block = ${cursor.block}
              and scanned_hash is not distinct from ${cursor.hash}
            returning id`,
      )
      if (moved.length === 0) throw new ChainMoved('another indexer moved the cursor')
      const blockRows = chunk.blocks.map((b) => sql`(${indexerId}, ${b.number}, ${b.hash}, ${b.parentHash})`)
      for (let i = 0; i < blockRows.length; i += 500) {
        await tx.execute(
          sql`insert into dex_blocks (indexer_id, number, hash, parent_hash)
              values ${sql.join(blockRows.slice(i, i + 500), sql`, `)}
              on conflict (indexer_id, number) do update set hash = excluded.hash, parent_hash = excluded.parent_hash`,
        )
      }
      let written = 0
      for (const e of chunk.events) {
        const status = statusAfter[e.type]
        const rows = await queryRows<{ id: bigint }>(
          tx,
          sql`insert into dex_order_events (indexer_id, chain_id, tx_hash, log_ordinal, log_index, block_number,
                block_hash, block_time, order_id, event_type, old_status, new_status, maker, taker, sell_token,
                buy_token, sell_decimals, buy_decimals, sell_amount, buy_amount)
              values (${indexerId}, ${chainId}, ${e.txHash}, ${e.ordinal}, ${e.logIndex}, ${e.blockNumber},
                ${e.blockHash}, ${e.blockTime}::timestamptz, ${e.orderId}::numeric, ${e.type}, ${status.old},
                ${status.new}, ${e.maker}, ${e.taker}, ${e.sellToken}, ${e.buyToken}, ${e.sellDecimals},
                ${e.buyDecimals}, ${e.sellAmount}::numeric, ${e.buyAmount}::numeric)
              on conflict (chain_id, tx_hash, log_ordinal) do update set
                log_index = excluded.log_index, block_number = excluded.block_number,
                block_hash = excluded.block_hash, block_time = excluded.block_time
              where dex_order_events.block_hash is distinct from excluded.block_hash
              returning id`,
        )
        written += rows.length
      }
      await rebuildOrders(tx, indexerId, [...new Set(chunk.events.map((e) => e.orderId))])
      return written
    })
  }

  /** The chain no longer holds the cursor's block: find the fork point, remove what lies above it. */
  async function rollBack(cursor: Cursor): Promise<{ depth: number; removed: number }> {
    let fork: { number: bigint; hash: string | null } | undefined = await findForkPoint(
      cursor.block < head ? cursor.block : head,
      cursor.block - keepBlocks,
      async (n) =>
        (
          await queryRows<{ hash: string }>(
            db,
            sql`select hash from dex_blocks where indexer_id = ${indexerId} and number = ${n}`,
          )
        )[0]?.hash,
      async (n) => (await getBlockOrNull(client, n))?.hash ?? undefined,
    )
    if (fork === undefined) {
      const [lowest] = await queryRows<{ number: bigint | null }>(
        db,
        sql`select min(number) as number from dex_blocks where indexer_id = ${indexerId}`,
      )
      const [start] = await queryRows<{ start_block: bigint }>(
        db,
        sql`select start_block from dex_indexers where id = ${indexerId}`,
      )
      // Every stored block is gone and the lowest was the first one scanned: start over from the start block.
      if (lowest?.number == null || BigInt(lowest.number) === BigInt(start!.start_block)) {
        fork = { number: BigInt(start!.start_block) - 1n, hash: null }
      } else {
        throw new DeepReorgError(
          `dex indexer ${indexerId}: the chain diverges below block ${lowest.number}, the lowest block kept; stop and re-index by hand`,
        )
      }
    }
    const forkPoint = fork
    const depth = Number(cursor.block - forkPoint.number)
    const removed = await db.transaction(async (tx) => {
      const moved = await queryRows<{ id: string }>(
        tx,
        sql`update dex_indexers set scanned_block = ${forkPoint.number}, scanned_hash = ${forkPoint.hash}, updated_at = now()
            where id = ${indexerId} and scanned_block = ${cursor.block} and scanned_hash is not distinct from ${cursor.hash}
            returning id`,
      )
      if (moved.length === 0) throw new ChainMoved('another indexer moved the cursor')
      const gone = await queryRows<{ order_id: string }>(
        tx,
        sql`delete from dex_order_events where indexer_id = ${indexerId} and block_number > ${forkPoint.number}
            returning order_id::text as order_id`,
      )
      await tx.execute(
        sql`delete from dex_blocks where indexer_id = ${indexerId} and number > ${forkPoint.number}`,
      )
      await rebuildOrders(tx, indexerId, [...new Set(gone.map((g) => g.order_id))])
      return gone.length
    })
    metrics.reorgs.inc(labels)
    metrics.removed.inc(labels, removed)
    opts.log?.warn(
      { indexer: indexerId, from: cursor.block, fork: forkPoint.number, depth, removed },
      'reorg: order events of removed blocks deleted',
    )
    return { depth, removed }
  }

  async function syncOnce(): Promise<DexPassResult> {
    let reorgDepth = 0
    let events = 0
    let removed = 0
    let ranges = 0
    let recovery = false
    try {
      head = await client.getBlockNumber({ cacheTime: 0 })
      let cursor = await loadCursor(db, indexerId)
      if (cursor.hash !== null) {
        const tip = cursor.block <= head ? await getBlockOrNull(client, cursor.block) : null
        if (tip === null || tip.hash !== cursor.hash) {
          const r = await rollBack(cursor)
          reorgDepth = r.depth
          removed += r.removed
          cursor = await loadCursor(db, indexerId)
        }
      }
      scanned = cursor.block
      outer: while (cursor.block < head) {
        const spans: [bigint, bigint][] = []
        for (let from = cursor.block + 1n; from <= head; from += maxRange) {
          spans.push([from, from + maxRange - 1n < head ? from + maxRange - 1n : head])
        }
        // Recovery mode: many ranges behind; read several at once, apply them in order.
        const window = spans.length > 1 ? Math.max(1, recoveryConcurrency) : 1
        if (spans.length > 1) {
          recovery = recovering = true
          opts.log?.info(
            { indexer: indexerId, from: spans[0]![0], to: head, ranges: spans.length, parallel: window },
            'recovery: scanning the missed blocks in parallel ranges',
          )
        }
        const reads: Promise<Chunk>[] = []
        const start = (i: number) => {
          const read = readChunk(spans[i]![0], spans[i]![1])
          // A read abandoned after a reorg must not surface as an unhandled rejection.
          read.catch(() => {})
          reads[i] = read
          if (window > 1) metrics.recoveryRanges.inc(labels)
        }
        for (let i = 0; i < Math.min(window, spans.length); i++) start(i)
        for (let i = 0; i < spans.length; i++) {
          const chunk = await reads[i]!
          if (i + window < spans.length) start(i + window)
          if (cursor.hash !== null && chunk.blocks[0]!.parentHash !== cursor.hash) {
            const r = await rollBack(cursor)
            // The cursor's block still stands: the RPC answered from two chains; retry in the next pass.
            if (r.depth === 0) throw new ChainMoved('the next block does not sit on the scanned one')
            reorgDepth = Math.max(reorgDepth, r.depth)
            removed += r.removed
            cursor = await loadCursor(db, indexerId)
            scanned = cursor.block
            continue outer
          }
          const written = await commitChunk(cursor, chunk)
          events += written
          ranges++
          metrics.events.inc(labels, written)
          const last = chunk.blocks[chunk.blocks.length - 1]!
          cursor = { block: last.number!, hash: last.hash }
          scanned = cursor.block
          metrics.scanned.set(labels, Number(scanned))
        }
      }
      recovering = false
      await db.execute(
        sql`delete from dex_blocks where indexer_id = ${indexerId} and number < ${scanned - keepBlocks}`,
      )
      lastError = null
      return { head, scanned, reorgDepth, events, removed, ranges, recovery }
    } catch (err) {
      lastError = (err as Error).message
      if (err instanceof ChainMoved) {
        opts.log?.info({ indexer: indexerId, reason: lastError }, 'chain moved during the pass; retrying')
        return { head, scanned, reorgDepth, events, removed, ranges, recovery }
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
    failed: (err, failures) =>
      opts.log?.error({ err, indexer: indexerId, failures }, 'dex indexer pass failed'),
  })

  return {
    syncOnce,
    status: () => ({
      indexerId,
      chainId,
      contract,
      head,
      scanned,
      lag: head > scanned ? head - scanned : 0n,
      recovering,
      lastError,
    }),
    ...loop,
  }
}

async function loadCursor(db: Executor, indexerId: string): Promise<Cursor> {
  const [row] = await queryRows<{ scanned_block: bigint; scanned_hash: string | null }>(
    db,
    sql`select scanned_block, scanned_hash from dex_indexers where id = ${indexerId}`,
  )
  if (row === undefined) throw new Error(`dex indexer ${indexerId} is not registered`)
  return { block: BigInt(row.scanned_block), hash: row.scanned_hash }
}

/**
 * Rebuilds the given orders from their events: the OrderCreated gives the order, the first closing event
 * (executed or cancelled) its status. An order without an OrderCreated any more (a reorg removed it) is
 * deleted. Rows that already say the same are not touched.
 */
export async function rebuildOrders(
  tx: Executor,
  indexerId: string,
  orderIds: readonly string[],
): Promise<void> {
  for (let i = 0; i < orderIds.length; i += 500) {
    const ids = sql.join(
      orderIds.slice(i, i + 500).map((id) => sql`${id}::numeric`),
      sql`, `,
    )
    await tx.execute(
      sql`with ev as (
            select * from dex_order_events where indexer_id = ${indexerId} and order_id in (${ids})
          ), created as (
            select distinct on (order_id) * from ev where event_type = 'OrderCreated'
            order by order_id, block_number, log_index
          ), closed as (
            select distinct on (order_id) * from ev where event_type <> 'OrderCreated'
            order by order_id, block_number, log_index
          )
          insert into dex_orders (indexer_id, order_id, chain_id, maker, sell_token, buy_token, sell_decimals,
            buy_decimals, sell_amount, buy_amount, status, taker, created_tx, created_block, created_at, closed_tx,
            closed_block, executed_at, cancelled_at)
          select c.indexer_id, c.order_id, c.chain_id, c.maker, c.sell_token, c.buy_token, c.sell_decimals,
            c.buy_decimals, c.sell_amount, c.buy_amount, coalesce(x.new_status, 'pending'), x.taker, c.tx_hash,
            c.block_number, c.block_time, x.tx_hash, x.block_number,
            case when x.event_type = 'OrderExecuted' then x.block_time end,
            case when x.event_type = 'OrderCancelled' then x.block_time end
          from created c left join closed x on x.order_id = c.order_id
          on conflict (indexer_id, order_id) do update set
            maker = excluded.maker, sell_token = excluded.sell_token, buy_token = excluded.buy_token,
            sell_decimals = excluded.sell_decimals, buy_decimals = excluded.buy_decimals,
            sell_amount = excluded.sell_amount, buy_amount = excluded.buy_amount, status = excluded.status,
            taker = excluded.taker, created_tx = excluded.created_tx, created_block = excluded.created_block,
            created_at = excluded.created_at, closed_tx = excluded.closed_tx, closed_block = excluded.closed_block,
            executed_at = excluded.executed_at, cancelled_at = excluded.cancelled_at, updated_at = now()
          where (dex_orders.maker, dex_orders.sell_token, dex_orders.buy_token, dex_orders.sell_decimals,
                 dex_orders.buy_decimals, dex_orders.sell_amount, dex_orders.buy_amount, dex_orders.status,
                 dex_orders.taker, dex_orders.created_tx, dex_orders.created_block, dex_orders.created_at,
                 dex_orders.closed_tx, dex_orders.closed_block, dex_orders.executed_at, dex_orders.cancelled_at)
            is distinct from
                (excluded.maker, excluded.sell_token, excluded.buy_token, excluded.sell_decimals,
                 excluded.buy_decimals, excluded.sell_amount, excluded.buy_amount, excluded.status,
                 excluded.taker, excluded.created_tx, excluded.created_block, excluded.created_at,
                 excluded.closed_tx, excluded.closed_block, excluded.executed_at, excluded.cancelled_at)`,
    )
    await tx.execute(
      sql`delete from dex_orders o where o.indexer_id = ${indexerId} and o.order_id in (${ids})
          and not exists (select 1 from dex_order_events e where e.indexer_id = o.indexer_id
                          and e.order_id = o.order_id and e.event_type = 'OrderCreated')`,
    )
  }
}
