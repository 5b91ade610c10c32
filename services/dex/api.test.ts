/**
 * The DEX order API over a real indexer run (anvil + PGlite, the embedded mode's store): the seed's
 * shapes for the lists, a user's orders, one order, its events and the statistics; bad parameters
 * answered 400 naming the field; unknown orders 404.
 */
import { createPublicClient, http } from 'viem'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { type Anvil, startAnvil } from '../../chain/anvil.ts'
import { type ChainClients, chainClients } from '../../chain/testing.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { createDexApp } from './api.ts'
import { createDexIndexer, registerDexIndexer } from './indexer.ts'
import { deployOrderContract, type OrderContract } from './testing.ts'

let anvil: Anvil
let c: ChainClients
let tdb: TestDatabase
let dex: OrderContract
let app: ReturnType<typeof createDexApp>
const ids: bigint[] = []

async function get(path: string) {
  const res = await app.request(path)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

beforeAll(async () => {
  ;[anvil, tdb] = await Promise.all([startAnvil(), createTestDatabase('pglite')])
  c = chainClients(anvil)
  dex = await deployOrderContract(c, [1, 2, 3])
  await registerDexIndexer(tdb.db, {
    id: 'd',
    chainId: anvil.chainId,
    contract: dex.orderBook,
    startBlock: dex.deployBlock,
  })
  ids.push((await dex.create(1, 5n * 10n ** 16n, 44_721_495n)).id) // 0.05 WETH → 44.721495 USDT
  ids.push((await dex.create(1, 10n ** 18n, 2_000_000_000n)).id)
  ids.push((await dex.create(2, 2n * 10n ** 18n, 3_000_500_000n)).id)
  await dex.execute(3, ids[0]!)
  await dex.cancel(1, ids[1]!)
  const indexer = await createDexIndexer({
    db: tdb.db,
    client: createPublicClient({ chain: c.chain, transport: http(anvil.rpcUrl), cacheTime: 0 }),
    indexerId: 'd',
    registry: createRegistry({ defaultMetrics: false }),
  })
  await indexer.syncOnce()
  app = createDexApp({ db: tdb.db, indexerId: 'd' })
}, 60_000)

afterAll(async () => {
  await Promise.all([anvil?.stop(), tdb?.close()])
})

describe('dex order API', () => {
  it('lists orders by status with the seed shape, limit and offset', async () => {
    const executed = await get('/orders/executed?limit=10&offset=0')
    expect(executed.status).toBe(200)
    expect(executed.body).toMatchObject({ total: 1, limit: 10, offset: 0 })
    const [o] = executed.body.orders as Record<string, unknown>[]
    expect(o).toEqual({
      id: Number(ids[0]),
      user_address: c.account(1).address,
      token_in: dex.weth,
      token_out: dex.usdt,
      amount_in: '0.05',
      amount_out: '44.721495',
      target_price: '894.4299',
      order_type: 'LIMIT',
      status: 'EXECUTED',
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/),
      executed_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/),
      cancelled_at: null,
      taker: c.account(3).address,
      tx_hash: expect.stringMatching(/^0x[0-9a-f]{64}$/),
      block_number: expect.any(Number),
    })
    expect((await get('/orders/cancelled')).body).toMatchObject({ total: 1, limit: 100, offset: 0 })
    const pending = await get('/orders/pending?limit=1&offset=0')
    expect(pending.body).toMatchObject({ total: 1, orders: [{ id: Number(ids[2]), status: 'PENDING' }] })
    expect((await get('/orders/pending?limit=1&offset=1')).body).toMatchObject({ total: 1, orders: [] })
  })

  it("lists a user's orders, by status or all, whatever the address's case", async () => {
    const all = await get(`/users/${c.account(1).address.toLowerCase()}/orders`)
    expect(all.status).toBe(200)
    expect((all.body.orders as { id: number }[]).map((o) => o.id)).toEqual([Number(ids[1]), Number(ids[0])])
    const executed = await get(`/users/${c.account(1).address}/orders?status=executed`)
    expect((executed.body.orders as { id: number }[]).map((o) => o.id)).toEqual([Number(ids[0])])
    expect((await get(`/users/${c.account(2).address}/orders?status=EXECUTED`)).body).toMatchObject({
      total: 0,
    })
  })

  it('answers one order and its events', async () => {
    const one = await get(`/orders/${ids[1]}`)
    expect(one.body).toMatchObject({
      id: Number(ids[1]),
      status: 'CANCELLED',
      amount_in: '1',
      amount_out: '2000',
    })
    expect(one.body.cancelled_at).not.toBeNull()
    const events = await get(`/orders/${ids[0]}/events`)
    expect(events.body.order_id).toBe(Number(ids[0]))
    expect(events.body.events).toEqual([
      expect.objectContaining({ event_type: 'OrderCreated', old_status: null, new_status: 'PENDING' }),
      expect.objectContaining({
        event_type: 'OrderExecuted',
        old_status: 'PENDING',
        new_status: 'EXECUTED',
        taker: c.account(3).address,
        log_ordinal: expect.any(Number),
        timestamp: expect.stringMatching(/\+00:00$/),
      }),
    ])
  })

  it('answers the statistics', async () => {
    const stats = await get('/statistics')
    expect(stats.body).toMatchObject({
      total_orders: 3,
      pending_orders: 1,
      executed_orders: 1,
      cancelled_orders: 1,
      unique_users: 2,
      total_events: 5,
      chain_id: anvil.chainId,
      contract: dex.orderBook,
    })
    expect(stats.body.last_processed_block).toBe(Number(await c.reader.getBlockNumber({ cacheTime: 0 })))
  })

  it('refuses bad parameters naming the field, and answers 404 for unknown orders', async () => {
    for (const [path, field] of [
      ['/orders/pending?limit=0', 'limit'],
      ['/orders/pending?limit=abc', 'limit'],
      ['/orders/executed?limit=1001', 'limit'],
      ['/orders/cancelled?offset=-1', 'offset'],
      ['/users/0x1234/orders', 'address'],
      [`/users/${c.account(1).address}/orders?status=open`, 'status'],
      ['/orders/abc', 'id'],
      ['/orders/-1/events', 'id'],
    ] as const) {
      const res = await get(path)
      expect(res.status, path).toBe(400)
      expect(res.body, path).toMatchObject({ code: 'invalid_input', field })
      expect(res.body.message, path).toMatch(new RegExp(`^${field}: `))
    }
    expect(await get('/orders/999')).toMatchObject({ status: 404, body: { code: 'not_found' } })
    expect(await get('/orders/999/events')).toMatchObject({ status: 404, body: { code: 'not_found' } })
  })
})
