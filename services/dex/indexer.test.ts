/**
 * The DEX order indexer on a real anvil and a real Postgres: created, executed and cancelled orders
 * indexed exactly; re-processing the same blocks (restart, cursor wound back to the start or to the
 * middle) changes no row; a restart after downtime catches up in parallel ranges to exactly the state the
 * chain says; a reorg that drops an OrderExecuted reopens the order, one that re-includes the same
 * transaction executes it again (one event row); a reorg that drops an OrderCreated removes the order.
 */
import { sql } from 'drizzle-orm'
import { createPublicClient, getAddress, http } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { type ChainClients, chainClients } from '../../chain/testing.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { createDexIndexer, type DexIndexerOptions, registerDexIndexer } from './indexer.ts'
import { countingClient, deployOrderContract, type OrderContract } from './testing.ts'

const ID = 'anvil-orders'
const MAKERS = [1, 2, 3]
const TAKER = 4

let anvil: Anvil
let c: ChainClients
let tdb: TestDatabase
let dex: OrderContract
const registry = createRegistry({ defaultMetrics: false })

function newIndexer(extra: Partial<DexIndexerOptions> = {}) {
  // A new client each time, as a restarted process would have.
  const client = createPublicClient({ chain: c.chain, transport: http(anvil.rpcUrl), cacheTime: 0 })
  return createDexIndexer({ db: tdb.db, client, indexerId: ID, registry, maxRange: 50, ...extra })
}

/** Every indexed row, all columns: what "changes nothing" is checked against. */
async function snapshot() {
  const orders = await queryRows(tdb.db, sql`select * from dex_orders order by order_id`)
  const events = await queryRows(tdb.db, sql`select * from dex_order_events order by id`)
  return JSON.stringify({ orders, events }, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))
}

async function order(id: bigint) {
  const [row] = await queryRows<{
    status: string
    maker: string
    taker: string | null
    sell_amount: string
    buy_amount: string
    sell_decimals: number | null
    buy_decimals: number | null
    executed_at: string | null
    cancelled_at: string | null
  }>(tdb.db, sql`select * from dex_orders where indexer_id = ${ID} and order_id = ${id.toString()}::numeric`)
  return row
}

async function events(id: bigint) {
  return queryRows<{
    event_type: string
    tx_hash: string
    log_ordinal: number
    old_status: string | null
    new_status: string
  }>(
    tdb.db,
    sql`select event_type, tx_hash, log_ordinal, old_status, new_status from dex_order_events
        where indexer_id = ${ID} and order_id = ${id.toString()}::numeric order by block_number, log_index`,
  )
}

async function statusCounts() {
  const rows = await queryRows<{ status: string; n: bigint }>(
    tdb.db,
    sql`select status, count(*) as n from dex_orders where indexer_id = ${ID} group by status`,
  )
  return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]))
}

/** What the test did to each order, to compare the index with. */
const expected = new Map<bigint, 'pending' | 'executed' | 'cancelled'>()

function expectedCounts() {
  const counts: Record<string, number> = {}
  for (const s of expected.values()) counts[s] = (counts[s] ?? 0) + 1
  return counts
}

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil(), createTestDatabase('postgres')])
  c = chainClients(anvil)
  dex = await deployOrderContract(c, [...MAKERS, TAKER])
  await registerDexIndexer(tdb.db, {
    id: ID,
    chainId: anvil.chainId,
    contract: dex.orderBook,
    startBlock: dex.deployBlock,
  })
}, 60_000)

afterAll(async () => {
  await Promise.all([anvil?.stop(), tdb?.close()])
})

describe('dex order indexer', () => {
  it('indexes created, executed and cancelled orders exactly', async () => {
    const indexer = await newIndexer()
    const a = await dex.create(1, 5n * 10n ** 16n, 89_442_990n) // 0.05 WETH for 89.44299 USDT
    const b = await dex.create(2, 10n ** 18n, 2_000_000_000n)
    const d = await dex.create(3, 3n * 10n ** 18n, 6_000_000_000n)
    const executed = await dex.execute(TAKER, a.id)
    await dex.cancel(2, b.id)
    expected.set(a.id, 'executed').set(b.id, 'cancelled').set(d.id, 'pending')

    const pass = await indexer.syncOnce()
    expect(pass).toMatchObject({ events: 5, reorgDepth: 0, recovery: false })
    expect(pass.scanned).toBe(pass.head)
    expect(await order(a.id)).toMatchObject({
      status: 'executed',
      maker: c.account(1).address,
      taker: c.account(TAKER).address,
      sell_amount: '50000000000000000',
      buy_amount: '89442990',
      sell_decimals: 18,
      buy_decimals: 6,
      cancelled_at: null,
    })
    expect((await order(a.id))!.executed_at).not.toBeNull()
    expect(await order(b.id)).toMatchObject({ status: 'cancelled', taker: null, executed_at: null })
    expect(await order(d.id)).toMatchObject({ status: 'pending', executed_at: null, cancelled_at: null })
    expect((await events(a.id)).map((e) => [e.event_type, e.old_status, e.new_status])).toEqual([
      ['OrderCreated', null, 'pending'],
      ['OrderExecuted', 'pending', 'executed'],
    ])
    // The key is the log's ordinal in its receipt: the token Transfers come first in these transactions.
    const receipt = await c.reader.getTransactionReceipt({ hash: executed })
    const ordinal = receipt.logs.findIndex((l) => getAddress(l.address) === dex.orderBook)
    expect(ordinal).toBeGreaterThan(0)
    expect((await events(a.id))[1]).toMatchObject({ tx_hash: executed, log_ordinal: ordinal })
    expect(await statusCounts()).toEqual(expectedCounts())
  })

  it('changes nothing when any range is processed again (restart, cursor back to the start or the middle)', async () => {
    const before = await snapshot()
    expect(await (await newIndexer()).syncOnce()).toMatchObject({ events: 0, removed: 0 })
    const [mid] = await queryRows<{ number: bigint; hash: string }>(
      tdb.db,
      sql`select number, hash from dex_blocks where indexer_id = ${ID} order by number limit 1 offset 3`,
    )
    for (const cursor of [
      { block: dex.deployBlock - 1n, hash: null },
      { block: BigInt(mid!.number), hash: mid!.hash },
    ]) {
      await tdb.db.execute(
        sql`update dex_indexers set scanned_block = ${cursor.block}, scanned_hash = ${cursor.hash} where id = ${ID}`,
      )
      // Small ranges: the same blocks cut differently, read in parallel.
      const again = await (await newIndexer({ maxRange: 3 })).syncOnce()
      expect(again).toMatchObject({ events: 0, removed: 0, reorgDepth: 0 })
      expect(await snapshot()).toBe(before)
    }
  })

  it('catches up after downtime in parallel ranges applied in order, exactly', async () => {
    // Downtime: many orders over many blocks, with no indexer running.
    for (let i = 0; i < 24; i++) {
      const maker = MAKERS[i % MAKERS.length]!
      const o = await dex.create(maker, BigInt(i + 1) * 10n ** 15n, BigInt(i + 1) * 1_000_000n)
      expected.set(o.id, 'pending')
      if (i % 3 === 1) {
        await dex.execute(TAKER, o.id)
        expected.set(o.id, 'executed')
      } else if (i % 3 === 2) {
        await dex.cancel(maker, o.id)
        expected.set(o.id, 'cancelled')
      }
      await c.mine(9)
    }
    const { client, stats } = countingClient(c, anvil)
    const indexer = await createDexIndexer({
      db: tdb.db,
      client,
      indexerId: ID,
      registry,
      maxRange: 25,
      recoveryConcurrency: 4,
    })
    const pass = await indexer.syncOnce()
    expect(pass.recovery).toBe(true)
    expect(pass.ranges).toBeGreaterThan(8)
    expect(pass.scanned).toBe(pass.head)
    expect(pass.events).toBe(24 + 16)
    expect(stats.most).toBeGreaterThan(1)
    expect(stats.most).toBeLessThanOrEqual(4)
    expect(indexer.status()).toMatchObject({ recovering: false, lag: 0n })
    expect(await statusCounts()).toEqual(expectedCounts())
    for (const [id, status] of expected) expect((await order(id))?.status).toBe(status)
    // And once more over all of it: nothing changes.
    const before = await snapshot()
    await tdb.db.execute(
      sql`update dex_indexers set scanned_block = ${dex.deployBlock - 1n}, scanned_hash = null where id = ${ID}`,
    )
    expect(await (await newIndexer({ maxRange: 40, recoveryConcurrency: 3 })).syncOnce()).toMatchObject({
      events: 0,
      recovery: true,
    })
    expect(await snapshot()).toBe(before)
  })

  it('reopens an order whose OrderExecuted a reorg drops, and executes it again when the reorg re-includes it', async () => {
    const indexer = await newIndexer()
    const o = await dex.create(1, 7n * 10n ** 17n, 1_400_000_000n)
    await c.mine(2)
    await indexer.syncOnce()
    const raw = await dex.sign(TAKER, dex.executeData(o.id))
    const hash = await dex.send(raw)
    expect(await indexer.syncOnce()).toMatchObject({ events: 1 })
    expect(await order(o.id)).toMatchObject({ status: 'executed' })

    // The execution's block is replaced by an empty one: the transaction is gone.
    await c.reorg(1)
    const dropped = await indexer.syncOnce()
    expect(dropped).toMatchObject({ reorgDepth: 1, removed: 1 })
    expect(await order(o.id)).toMatchObject({ status: 'pending', taker: null, executed_at: null })
    expect((await events(o.id)).map((e) => e.event_type)).toEqual(['OrderCreated'])

    // Two blocks replaced; the same signed execution lands in the second new one.
    await c.reorg(2, [[raw, 1]])
    const back = await indexer.syncOnce()
    expect(back.reorgDepth).toBeGreaterThanOrEqual(1)
    expect(back.events).toBe(1)
    expect(await order(o.id)).toMatchObject({ status: 'executed', taker: c.account(TAKER).address })
    expect((await events(o.id)).filter((e) => e.tx_hash === hash)).toHaveLength(1)
    expect(await (await newIndexer()).syncOnce()).toMatchObject({ events: 0, removed: 0 })
    expected.set(o.id, 'executed')
    expect(await statusCounts()).toEqual(expectedCounts())
  })

  it('removes an order whose OrderCreated a reorg drops, and follows a rollback', async () => {
    const indexer = await newIndexer()
    const o = await dex.create(2, 10n ** 17n, 200_000_000n)
    await indexer.syncOnce()
    expect(await order(o.id)).toMatchObject({ status: 'pending' })
    await c.reorg(1)
    expect(await indexer.syncOnce()).toMatchObject({ reorgDepth: 1, removed: 1 })
    expect(await order(o.id)).toBeUndefined()
    expect(await events(o.id)).toEqual([])

    // A rollback lowers the head below the cursor; new blocks come after it.
    const again = await dex.create(3, 10n ** 17n, 200_000_000n)
    await c.mine(1)
    await indexer.syncOnce()
    await c.rollback(2)
    await c.mine(3)
    expect(await indexer.syncOnce()).toMatchObject({ reorgDepth: 2, removed: 1 })
    expect(await order(again.id)).toBeUndefined()
    expect(await statusCounts()).toEqual(expectedCounts())
  })
})
