/**
 * The history endpoints (and aggTrades, which reads the same trades) through the gateway app before and after archiving: orders and trades made by the
 * real engine, copied to chDB, the closed orders archived out of PGlite (and, to exercise the trades' merge
 * too, the older trades deleted from Postgres by hand): every answer stays the same.
 */
import { createHmac } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Analytics, openAnalytics } from '../../adapters/analytics/analytics.ts'
import { queryRows } from '../../adapters/db/database.ts'
import { createPubSubCache, InProcessRedis } from '../../adapters/pubsub/index.ts'
import { createLogger } from '../../lib/log.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { createApiKey } from '../gateway/api-keys.ts'
import { createGatewayApp } from '../gateway/app.ts'
import { EngineClient } from '../gateway/engine-client.ts'
import { archiveOrders } from './archiver.ts'
import { copyAll } from './copier.ts'
import { migrateHistory } from './tables.ts'

const encryptionKey = Buffer.alloc(32, 9)

let fx: MarketFixture
let ch: Analytics
let withArchive: Hono
let postgresOnly: Hono
let aliceKey: { apiKey: string; secretKey?: string }
let bobKey: { apiKey: string; secretKey?: string }
let ip = 0

beforeAll(async () => {
  fx = await marketFixture('pglite')
  const engine = await fx.engine()
  const alice = await fx.trader('alice', { USDT: '100000' })
  const bob = await fx.trader('bob', { BTC: '100' })
  const db = fx.database.db
  aliceKey = await createApiKey(db, encryptionKey, { userId: alice, kind: 'HMAC', canTrade: true })
  bobKey = await createApiKey(db, encryptionKey, { userId: bob, kind: 'HMAC', canTrade: true })
  ch = openAnalytics({ kind: 'chdb' })
  await migrateHistory(ch)
  const app = (analytics?: Analytics) =>
    createGatewayApp({
      db,
      analytics,
      engines: new Map([['BTCUSDT', EngineClient.inProcess(engine)]]),
      cache: createPubSubCache({ kind: 'memory', server: new InProcessRedis() }),
      config: {
        keyEncryptionKey: encryptionKey,
        weightPerMinute: 1e6,
        rejectionsBeforeBan: 1000,
        trustProxy: true,
      },
      log: createLogger('history-test', { level: 'silent' }),
    })
  withArchive = app(ch)
  postgresOnly = app()
})

afterAll(async () => {
  await ch?.close()
  await fx?.close()
})

// biome-ignore lint/suspicious/noExplicitAny: JSON answers, compared whole
type Answer = any

async function call(
  app: Hono,
  method: string,
  path: string,
  params: Record<string, string>,
  key = aliceKey,
): Promise<Answer> {
  const query = new URLSearchParams({ ...params, timestamp: String(Date.now()) }).toString()
  const signature = createHmac('sha256', key.secretKey!).update(query).digest('hex')
  const response = await app.request(`${path}?${query}&signature=${signature}`, {
    method,
    headers: { 'X-MBX-APIKEY': key.apiKey, 'X-Forwarded-For': `198.51.100.${(ip++ % 250) + 1}` },
  })
  const body = await response.json()
  expect(response.status, JSON.stringify(body)).toBe(200)
  return body
}

const order = (side: 'BUY' | 'SELL', price: string, quantity: string, key = aliceKey, extra = {}) =>
  call(
    withArchive,
    'POST',
    '/api/v3/order',
    {
      symbol: 'BTCUSDT',
      side,
      type: 'LIMIT',
      timeInForce: 'GTC',
      price,
      quantity,
      ...extra,
    },
    key,
  )

describe('history across the archive seam', () => {
  it('answers allOrders, myTrades, order and aggTrades the same before and after archiving', async () => {
    // Bob's asks, taken by Alice's bids: filled orders and trades; some orders canceled; some left open.
    const ids: number[] = []
    for (let i = 0; i < 6; i++) {
      await order('SELL', `${100 + i}`, '0.01', bobKey)
      ids.push(
        (await order('BUY', `${100 + i}`, '0.01', aliceKey, { newClientOrderId: `fill-${i}` })).orderId,
      )
    }
    for (let i = 0; i < 4; i++) {
      const placed = await order('BUY', `${50 + i}`, '0.02', aliceKey, { newClientOrderId: `cancel-${i}` })
      ids.push(placed.orderId)
      if (i % 2 === 0)
        await call(withArchive, 'DELETE', '/api/v3/order', {
          symbol: 'BTCUSDT',
          orderId: String(placed.orderId),
        })
    }
    await order('SELL', '90', '0.03', bobKey) // rests above Alice's bids; her next bid fills half of it
    const partial = await order('BUY', '90', '0.015', aliceKey, { newClientOrderId: 'partial' })
    ids.push(partial.orderId)
    const allTrades = await call(withArchive, 'GET', '/api/v3/myTrades', { symbol: 'BTCUSDT' })
    expect(allTrades.length).toBe(7)
    const now = Date.now()
    const queries: [string, Record<string, string>][] = [
      ['/api/v3/allOrders', { symbol: 'BTCUSDT' }],
      ['/api/v3/allOrders', { symbol: 'BTCUSDT', limit: '3' }],
      ['/api/v3/allOrders', { symbol: 'BTCUSDT', orderId: String(ids[2]), limit: '4' }],
      [
        '/api/v3/allOrders',
        { symbol: 'BTCUSDT', startTime: String(now - 60_000), endTime: String(now + 1000) },
      ],
      ['/api/v3/allOrders', { symbol: 'BTCUSDT', startTime: String(now - 60_000), limit: '5' }],
      ['/api/v3/myTrades', { symbol: 'BTCUSDT' }],
      ['/api/v3/myTrades', { symbol: 'BTCUSDT', limit: '2' }],
      ['/api/v3/myTrades', { symbol: 'BTCUSDT', fromId: String(allTrades[2].id), limit: '3' }],
      ['/api/v3/myTrades', { symbol: 'BTCUSDT', orderId: String(ids[1]) }],
      ['/api/v3/myTrades', { symbol: 'BTCUSDT', startTime: String(now - 60_000), limit: '4' }],
      ['/api/v3/order', { symbol: 'BTCUSDT', orderId: String(ids[0]) }],
      ['/api/v3/order', { symbol: 'BTCUSDT', origClientOrderId: 'cancel-2' }],
      ['/api/v3/order', { symbol: 'BTCUSDT', origClientOrderId: 'partial' }],
      // Public, every trade of the market (the signature is ignored).
      ['/api/v3/aggTrades', { symbol: 'BTCUSDT' }],
      ['/api/v3/aggTrades', { symbol: 'BTCUSDT', fromId: String(allTrades[1].id), limit: '4' }],
      ['/api/v3/aggTrades', { symbol: 'BTCUSDT', startTime: String(now - 60_000), limit: '3' }],
    ]
    const answers = async (app: Hono) => {
      const out: unknown[] = []
      for (const [path, params] of queries) out.push(await call(app, 'GET', path, params))
      for (const [path, params] of queries.slice(5, 8)) out.push(await call(app, 'GET', path, params, bobKey))
      return out
    }
    const before = await answers(withArchive)
    expect(await answers(postgresOnly)).toEqual(before)
    expect((before[0] as unknown[]).length).toBe(11)
    expect((before[13] as unknown[]).length).toBe(7)

    const db = fx.database.db
    const copied = await copyAll({ db, analytics: ch, lagMs: 0 })
    expect(copied.map((c) => c.table)).toEqual(['orders', 'trades', 'ledger_entries'])
    const archived = await archiveOrders({ db, analytics: ch, retentionMs: 0 })
    const countOrders = async () =>
      Number((await queryRows<{ n: string }>(db, sql`select count(*)::text as n from orders`))[0]!.n)
    // Every closed order (filled and canceled, Alice's and Bob's) is gone from Postgres; open ones stay.
    expect(archived.unverified).toBe(0)
    expect(archived.archived).toBe(6 + 2 + 1 + 6)
    expect(await countOrders()).toBe(3)
    // The trades' merge too: the oldest trades leave Postgres (as a future trade archive would do).
    await db.execute(sql`delete from trades where id <= ${allTrades[3].id}`)

    expect(await answers(withArchive)).toEqual(before)
    // Without the archive, the seam would show.
    expect((await call(postgresOnly, 'GET', '/api/v3/allOrders', { symbol: 'BTCUSDT' })).length).toBe(2)
  })
})
