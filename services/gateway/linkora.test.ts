/**
 * The Linkora market-data routes end to end through app.request, every answer checked against the schema
 * /openapi.json documents: PGlite, the in-process engine behind the EngineClient's in-process transport, and
 * the in-process cache filled with the handler's own functions.
 */
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPubSubCache, InProcessRedis, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { createLogger } from '../../lib/log.ts'
import { parseDecimal } from '../../lib/money.ts'
import type { MatchingEngine } from '../engine/engine.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { bucketStart, type Interval } from '../handler/intervals.ts'
import { keys } from '../handler/keys.ts'
import { klineToHash, newKline, SCALE } from '../handler/klines.ts'
import { createGatewayApp } from './app.ts'
import { EngineClient } from './engine-client.ts'
import { LINKORA_ENDPOINTS, LINKORA_PREFIX } from './linkora.ts'

// biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field
type Answer = any

let fx: MarketFixture
let engine: MatchingEngine
let app: Hono
let cache: PubSubCache
const NOW = Date.UTC(2026, 0, 14, 10, 37, 12) // a Wednesday

beforeAll(async () => {
  fx = await marketFixture('pglite')
  engine = await fx.engine()
  cache = createPubSubCache({ kind: 'memory', server: new InProcessRedis() })
  app = createGatewayApp({
    db: fx.database.db,
    engines: new Map([['BTCUSDT', EngineClient.inProcess(engine)]]),
    cache,
    config: {
      keyEncryptionKey: Buffer.alloc(32, 3),
      weightPerMinute: 6000,
      rejectionsBeforeBan: 10,
      trustProxy: false,
    },
    log: createLogger('gateway-test', { level: 'silent' }),
    now: () => NOW,
  })
})

afterAll(async () => {
  await fx?.close()
})

const endpointOf = (path: string) =>
  Object.values(LINKORA_ENDPOINTS).find((e) => path.split('?')[0] === `${LINKORA_PREFIX}${e.path}`)!

async function get(path: string): Promise<{ status: number; body: Answer }> {
  const response = await app.request(path)
  const body = await response.json()
  // Every answer is what /openapi.json says it is: the documented schema, no field more or less.
  if (response.status === 200) expect(endpointOf(path).response.parse(body)).toEqual(body)
  return { status: response.status, body }
}

const units = (v: string) => parseDecimal(v, SCALE)

/** Writes one trade's k-line for `interval` as the handler does. */
async function trade(interval: Interval, time: number, price: string, qty: string) {
  const kline = newKline(interval, {
    symbol: 'BTCUSDT',
    id: 1n,
    price: units(price),
    qty: units(qty),
    quoteQty: (parseDecimal(price, SCALE) * parseDecimal(qty, SCALE)) / 10n ** BigInt(SCALE),
    time,
    buyerIsMaker: false,
  })
  const start = bucketStart(interval, time)
  await cache.hashSet(keys.kline('BTCUSDT', interval, start), klineToHash(kline))
  await cache.pushCapped(keys.klineIndex('BTCUSDT', interval), String(start), 1500)
}

describe('linkora market data', () => {
  it('answers /health and /symbols', async () => {
    const health = await get('/linkora/health')
    expect(health.status).toBe(200)
    expect(health.body).toEqual({ status: 'healthy', timestamp: new Date(NOW).toISOString(), symbols: 1 })
    const symbols = await get('/linkora/symbols')
    expect(symbols.body).toEqual({
      symbols: [{ symbol: 'BTCUSDT', base: 'BTC', quote: 'USDT', status: 'trading' }],
      count: 1,
    })
  })

  it('serves candles by Linkora timeframe and Binance interval, weeks from Monday, months by calendar', async () => {
    await trade('1h', NOW, '250', '0.5')
    await trade('1w', NOW, '250', '0.5')
    await trade('1M', NOW, '250', '0.5')
    await trade('45m', NOW, '250', '0.5')
    const hour = await get('/linkora/candles?symbol=BTCUSDT&timeframe=1H&limit=24')
    expect(hour.status).toBe(200)
    expect(hour.body).toEqual({
      symbol: 'BTCUSDT',
      timeframe: '1H',
      interval: '1h',
      count: 1,
      candles: [
        {
          timestamp: Date.UTC(2026, 0, 14, 10),
          closeTime: Date.UTC(2026, 0, 14, 11) - 1,
          open: '250',
          high: '250',
          low: '250',
          close: '250',
          volume: '0.5',
          quoteVolume: '125',
          trades: 1,
        },
      ],
    })
    // The same bucket under Binance's name.
    expect((await get('/linkora/candles?symbol=BTCUSDT&timeframe=1h')).body.candles).toEqual(
      hour.body.candles,
    )
    const week = await get('/linkora/candles?symbol=BTCUSDT&timeframe=1W')
    expect(week.body.candles[0].timestamp).toBe(Date.UTC(2026, 0, 12)) // Monday 00:00 UTC
    expect(week.body.candles[0].closeTime).toBe(Date.UTC(2026, 0, 19) - 1)
    const month = await get('/linkora/candles?symbol=BTCUSDT&timeframe=1M')
    expect(month.body.interval).toBe('1M')
    expect(month.body.candles[0].timestamp).toBe(Date.UTC(2026, 0, 1))
    expect(month.body.candles[0].closeTime).toBe(Date.UTC(2026, 1, 1) - 1)
    const m45 = await get('/linkora/candles?symbol=BTCUSDT&timeframe=45')
    expect(m45.body.interval).toBe('45m')
    expect(m45.body.candles[0].timestamp).toBe(Date.UTC(2026, 0, 14, 10, 30)) // 45m buckets divide the day: …, 9:45, 10:30
    // No trades in 5m buckets: empty, not an error.
    expect((await get('/linkora/candles?symbol=btcusdt&timeframe=5')).body).toMatchObject({
      symbol: 'BTCUSDT',
      interval: '5m',
      count: 0,
      candles: [],
    })
  })

  it('names the field at fault', async () => {
    const cases: Array<[string, number, string, string]> = [
      ['/linkora/candles', 400, 'invalid_input', 'symbol'],
      ['/linkora/candles?symbol=BTCUSDT&timeframe=7m', 400, 'invalid_input', 'timeframe'],
      ['/linkora/candles?symbol=BTCUSDT&limit=0', 400, 'invalid_input', 'limit'],
      ['/linkora/candles?symbol=BTCUSDT&limit=x', 400, 'invalid_input', 'limit'],
      ['/linkora/candles?symbol=DOGEUSDT', 404, 'not_found', 'symbol'],
      ['/linkora/orderbook?symbol=BTCUSDT&levels=1001', 400, 'invalid_input', 'levels'],
      ['/linkora/price?symbol=BTCUSDT&timeframe=2X', 400, 'invalid_input', 'timeframe'],
      ['/linkora/price', 400, 'invalid_input', 'symbol'],
    ]
    for (const [path, status, code, field] of cases) {
      const { status: got, body } = await get(path)
      expect([got, body.code, body.field], path).toEqual([status, code, field])
      expect(body.message, path).toEqual(expect.any(String))
    }
  })

  it('serves the order book from the engine, to the levels asked', async () => {
    const alice = await fx.trader('alice', { USDT: '10000' })
    const bob = await fx.trader('bob', { BTC: '10' })
    const place = (userId: bigint, side: 'BUY' | 'SELL', price: string, quantity: string) =>
      engine.submit({ kind: 'place', order: { userId, side, type: 'LIMIT', price, quantity } })
    await place(alice, 'BUY', '240', '1')
    await place(alice, 'BUY', '239', '2')
    await place(bob, 'SELL', '251', '0.5')
    const book = await get('/linkora/orderbook?symbol=BTCUSDT&levels=1')
    expect(book.status).toBe(200)
    expect(book.body).toMatchObject({
      symbol: 'BTCUSDT',
      timestamp: NOW,
      levels: 1,
      bids: [{ price: expect.stringMatching(/^240(\.0+)?$/), quantity: expect.stringMatching(/^1(\.0+)?$/) }],
      asks: [{ price: expect.stringMatching(/^251(\.0+)?$/), quantity: expect.stringMatching(/^0\.50*$/) }],
      spread: '11.00',
    })
    expect(book.body.lastUpdateId).toEqual(expect.any(Number))
    expect((await get('/linkora/orderbook?symbol=BTCUSDT')).body.bids).toHaveLength(2)
  })

  it('serves the current price with change, high, low, volume and trend over the timeframe', async () => {
    // A second trade in the 4h bucket, higher than the first.
    const start = Date.UTC(2026, 0, 14, 8)
    const first = newKline('4h', {
      symbol: 'BTCUSDT',
      id: 2n,
      price: units('200'),
      qty: units('1'),
      quoteQty: units('200'),
      time: start + 1000,
      buyerIsMaker: false,
    })
    const merged = { ...first, high: units('260'), close: units('255'), volume: units('1.5'), trades: 2 }
    await cache.hashSet(keys.kline('BTCUSDT', '4h', start), klineToHash(merged))
    await cache.pushCapped(keys.klineIndex('BTCUSDT', '4h'), String(start), 1500)
    const price = await get('/linkora/price?symbol=BTCUSDT&timeframe=4H')
    expect(price.status).toBe(200)
    expect(price.body).toMatchObject({
      symbol: 'BTCUSDT',
      timeframe: '4H',
      interval: '4h',
      price: '255.00',
      open: '200.00',
      change: '55.00',
      changePercent: '27.50',
      high: '260.00',
      low: '200.00',
      volume: '1.500',
      trend: 'up',
      openTime: start,
      timestamp: NOW,
    })
    // The default timeframe is 1H: the bucket written above, flat.
    expect((await get('/linkora/price?symbol=BTCUSDT')).body).toMatchObject({
      interval: '1h',
      price: '250.00',
      change: '0.00',
      changePercent: '0.00',
      trend: 'flat',
    })
  })

  it('answers 404 for a price before any trade', async () => {
    const fresh = await get('/linkora/price?symbol=BTCUSDT&timeframe=1d')
    // 1d has no k-line and there is no ticker: nothing to price.
    expect([fresh.status, fresh.body.code, fresh.body.field]).toEqual([404, 'not_found', 'symbol'])
  })
})
