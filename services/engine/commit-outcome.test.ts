/**
 * A batch's commit whose connection fails at the worst moment, on the real Postgres behind a proxy that breaks
 * one exchange: the query never arrives, or it commits and its answer never comes back. Either way the
 * engine ends up holding what Postgres holds, and tells callers the truth: done, not done, or unknown.
 */
import { sql } from 'drizzle-orm'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { type DatabaseHandle, openDatabase, queryRows } from '../../adapters/db/database.ts'
import { type PostgresProxy, startPostgresProxy } from '../../adapters/testing/postgres-proxy.ts'
import { sleep, waitUntil } from '../../adapters/testing/wait.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import type { MatchingEngine } from './engine.ts'
import { type MarketFixture, marketFixture } from './testing.ts'

describe('an engine batch whose commit loses its connection', () => {
  let market: MarketFixture
  let proxy: PostgresProxy
  let viaProxy: DatabaseHandle
  let engine: MatchingEngine
  let trader: bigint

  const bid = (price: string) =>
    engine.submit({
      kind: 'place',
      order: { userId: trader, side: 'BUY', type: 'LIMIT', price, quantity: '1' },
    })

  const storedOrder = async (orderId: string) =>
    (
      await queryRows<{ status: string }>(
        market.database.db,
        sql`select status from orders where market = 'BTCUSDT' and id = ${orderId}::int8`,
      )
    )[0]

  /** Postgres and the engine agree: the same last seq, the same book as an engine rebuilt from Postgres. */
  const expectEngineMatchesPostgres = async () => {
    const [row] = await queryRows<{ last_seq: string }>(
      market.database.db,
      sql`select last_seq::text from markets where symbol = 'BTCUSDT'`,
    )
    expect(engine.status().lastSeq).toBe(row!.last_seq)
    expect(await findImbalances(market.database.db)).toEqual([])
  }

  beforeAll(async () => {
    market = await marketFixture('postgres')
    const { config } = market.database
    if (config.kind !== 'postgres') throw new Error('the proxy stands in front of a Postgres server')
    proxy = await startPostgresProxy(config.url)
    viaProxy = await openDatabase({ kind: 'postgres', url: proxy.url, maxConnections: 1 })
    engine = await market.engine({ database: viaProxy })
    trader = await market.trader('unlucky', { USDT: '1000' })
    // Funds read and statements prepared: from here on an order costs the engine one query, its commit.
    await bid('1.00')
  })
  afterEach(() => proxy.refuseConnections(false))
  afterAll(async () => {
    await market?.close()
    await viaProxy?.close()
    await proxy?.close()
  })

  it('acknowledges an order whose commit reached Postgres although the answer was lost', async () => {
    proxy.loseNextAnswer()
    const placed = await bid('2.00')
    expect(placed).toMatchObject({ kind: 'order', order: { status: 'NEW', price: '2.00' } })
    const orderId = placed.kind === 'order' ? placed.order.orderId : ''
    expect(await storedOrder(orderId)).toEqual({ status: 'NEW' })
    await expectEngineMatchesPostgres()

    // The next batch follows on from the committed one: no seq or id is used twice.
    const next = await bid('3.00')
    expect(next).toMatchObject({ kind: 'order', order: { status: 'NEW' } })
    await expectEngineMatchesPostgres()
    expect(engine.order(trader, { orderId: BigInt(orderId) })?.status).toBe('NEW')
    // 1 + 2 + 3 USDT frozen for the three bids, as the engine's book says.
    expect(await market.balances(trader)).toEqual({ USDT: ['994', '6'] })
  })

  it('fails an order whose commit never reached Postgres, and nothing of it remains', async () => {
    const before = await market.balances(trader)
    proxy.cutBeforeNextQuery()
    await expect(bid('4.00')).rejects.toMatchObject({
      code: 'unavailable',
      message: 'The order could not be committed; nothing was done. Try again.',
    })
    expect(await market.balances(trader)).toEqual(before)
    expect(engine.openOrders(trader).map((o) => o.price)).not.toContain('4.00')
    await expectEngineMatchesPostgres()
    await expect(bid('5.00')).resolves.toMatchObject({ order: { status: 'NEW' } })
  })

  it('says the outcome is unknown while Postgres cannot tell, refuses what waits, and settles once it can', async () => {
    proxy.loseNextAnswer()
    proxy.refuseConnections(true)
    const waited = Date.now()
    const lost = bid('6.00').catch((e: unknown) => e)
    await sleep(50)
    const queued = bid('6.50').catch((e: unknown) => e)
    expect(await lost).toMatchObject({ code: 'outcome_unknown' })
    expect(Date.now() - waited).toBeGreaterThanOrEqual(4_900)
    // Nothing of the commands behind it was done, and new ones are refused until Postgres can tell.
    const unreachable = {
      code: 'unavailable',
      message: 'The engine cannot reach its database; nothing was done. Try again.',
    }
    expect(await queued).toMatchObject(unreachable)
    await expect(bid('7.00')).rejects.toMatchObject(unreachable)

    proxy.refuseConnections(false)
    await waitUntil(
      () => engine.openOrders(trader).some((o) => o.price === '6.00'),
      'the engine settles the lost batch as committed',
    )
    await expect(bid('8.00')).resolves.toMatchObject({ order: { status: 'NEW', price: '8.00' } })
    expect(engine.openOrders(trader).map((o) => o.price)).not.toContain('6.50')
    await expectEngineMatchesPostgres()
  }, 20_000)

  // Last: it stops the engine.
  it('stops at once while a lost answer is unsettled, and its successor holds what Postgres holds', async () => {
    proxy.loseNextAnswer()
    proxy.refuseConnections(true)
    const lost = bid('9.00').catch((e: unknown) => e)
    await sleep(50)
    const queued = bid('9.50').catch((e: unknown) => e)
    const stopping = Date.now()
    await engine.stop()
    expect(Date.now() - stopping).toBeLessThan(1_000)
    expect(await lost).toMatchObject({ code: 'outcome_unknown' })
    expect(await queued).toMatchObject({ code: 'unavailable' })

    const successor = await market.engine()
    const prices = successor.openOrders(trader).map((o) => o.price)
    expect(prices).toContain('9.00')
    expect(prices).not.toContain('9.50')
    expect(await findImbalances(market.database.db)).toEqual([])
  })
})
