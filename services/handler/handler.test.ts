/**
 * The handler end to end on the real Redis Cluster, the in-process bus and chDB: trades published with a
 * duplicate and out of order give exactly the right k-lines, ticker and ClickHouse rows, also across a
 * handler restart; and the embedded mode (in-process store) gives the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Analytics, openAnalytics } from '../../adapters/analytics/analytics.ts'
import { type Bus, createBus } from '../../adapters/bus/index.ts'
import { createPubSubCache, InProcessRedis, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { redisClusterNodes, uniqueName } from '../../adapters/testing/servers.ts'
import { createLogger } from '../../lib/log.ts'
import { Registry } from '../../lib/metrics.ts'
import { formatDecimal, parseDecimal } from '../../lib/money.ts'
import type { TradeEvent } from '../engine/events.ts'
import { analyticsKlines, migrateAnalytics } from './clickhouse.ts'
import { createMarketDataHandler, type MarketDataHandler } from './handler.ts'
import { channels } from './keys.ts'
import { aggregate, toBinanceKline, tradeFromEvent } from './klines.ts'
import { klines, recentTrades, ticker24h } from './queries.ts'
import { type MarketStore, redisMarketStore } from './store.ts'
import { tickerFromKlines } from './ticker.ts'

const MIN = 60_000
const HOUR = 60 * MIN
const T0 = Date.parse('2024-05-05T10:00:00Z')
const log = createLogger('handler-test', { level: 'silent' })

function event(
  symbol: string,
  id: number,
  price: string,
  quantity: string,
  quote: string,
  time: number,
  buyerIsMaker: boolean,
): TradeEvent {
  return {
    topic: 'trades',
    market: symbol,
    seq: String(id),
    tradeId: String(id),
    price,
    quantity,
    quoteQuantity: quote,
    buyerOrderId: `b${id}`,
    sellerOrderId: `s${id}`,
    buyerUserId: 'u1',
    sellerUserId: 'u2',
    buyerIsMaker,
    time,
  }
}

async function counted(registry: Registry): Promise<Record<string, number>> {
  const metric = await registry.getSingleMetric('md_trades_total')!.get()
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.result), v.value]))
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// One chDB per process: both scenarios share it (their symbols differ).
let analytics: Analytics
beforeAll(async () => {
  analytics = openAnalytics({ kind: 'chdb' })
  await migrateAnalytics(analytics)
})
afterAll(async () => analytics?.close())

function scenario(
  name: string,
  setup: () => { cache: PubSubCache; store?: () => MarketStore; teardown: () => Promise<void> },
) {
  describe(name, () => {
    const symbol = uniqueName('HT').toUpperCase()
    let bus: Bus
    let env: ReturnType<typeof setup>
    let handler: MarketDataHandler
    let store: MarketStore | undefined
    const topicPrefix = `${uniqueName('t')}-`
    const published: { channel: string; message: string }[] = []

    beforeAll(async () => {
      env = setup()
      bus = createBus({ kind: 'memory' })
    })
    afterAll(async () => {
      await handler?.stop()
      await store?.close()
      await bus?.close()
      await env?.teardown()
    })

    const start = async (registry: Registry) => {
      store = env.store?.()
      handler = createMarketDataHandler({
        bus,
        cache: env.cache,
        analytics,
        log,
        topicPrefix,
        registry,
        clickhouse: { maxDelayMs: 20 },
        // Trades of 2024 under today's clock: only trades move the ticker here.
        tickerRollMs: 0,
        ...(store ? { store } : {}),
      })
      await handler.start()
    }
    const stop = async () => {
      await handler.stop()
      await store?.close()
      store = undefined
    }

    it('counts each trade once, picks open and close by trade id, publishes the updates', async () => {
      for (const ch of [channels.trade(symbol), channels.kline(symbol, '1m'), channels.ticker(symbol)]) {
        await env.cache.subscribe(ch, (message, channel) => published.push({ channel, message }))
      }
      const registry = new Registry()
      await start(registry)
      const t1 = event(symbol, 1, '100', '1', '100', T0 + 10_000, false)
      const t2 = event(symbol, 2, '105', '0.5', '52.5', T0 + 20_000, true)
      const t3 = event(symbol, 3, '95', '2', '190', T0 + 70_000, false)
      const t4 = event(symbol, 4, '110', '0.1', '11', T0 + HOUR + 5_000, false)
      // Trade 2 arrives after 3 and 4; 3 and 1 are delivered twice.
      for (const e of [t1, t3, t4, t2, t3, t1]) await bus.publish(`${topicPrefix}trades`, e)
      await until(async () => {
        const c = await counted(registry)
        return c.counted === 4 && c.duplicate === 2
      }, 'the six deliveries')
      await stop()

      expect(await klines(env.cache, symbol, '1m')).toEqual([
        [T0, '100', '105', '100', '105', '1.5', T0 + MIN - 1, '152.5', 2, '1', '100', '0'],
        [T0 + MIN, '95', '95', '95', '95', '2', T0 + 2 * MIN - 1, '190', 1, '2', '190', '0'],
        [T0 + HOUR, '110', '110', '110', '110', '0.1', T0 + HOUR + MIN - 1, '11', 1, '0.1', '11', '0'],
      ])
      expect(await klines(env.cache, symbol, '1h')).toEqual([
        [T0, '100', '105', '95', '95', '3.5', T0 + HOUR - 1, '342.5', 3, '3', '290', '0'],
        [T0 + HOUR, '110', '110', '110', '110', '0.1', T0 + 2 * HOUR - 1, '11', 1, '0.1', '11', '0'],
      ])
      // Linkora's 45-minute and 3H timeframes; the day; a start time and a limit.
      expect((await klines(env.cache, symbol, '45m')).map((k) => [k[0], k[5], k[8]])).toEqual([
        [T0 - 15 * MIN, '3.5', 3],
        [T0 + 30 * MIN, '0.1', 1],
      ])
      expect((await klines(env.cache, symbol, '3h')).map((k) => [k[0], k[1], k[4], k[8]])).toEqual([
        [T0 - HOUR, '100', '110', 4],
      ])
      expect(await klines(env.cache, symbol, '1m', { startTime: T0 + 1, limit: 1 })).toEqual([
        [T0 + MIN, '95', '95', '95', '95', '2', T0 + 2 * MIN - 1, '190', 1, '2', '190', '0'],
      ])
      expect(await klines(env.cache, symbol, '1m', { endTime: T0 + MIN, limit: 1 })).toHaveLength(1)

      // Binance's timeZone: buckets of the zone, made of UTC k-lines; start and end times stay UTC.
      const ist = 5.5 * HOUR
      const istHours = [
        [T0 - 30 * MIN, '100', '105', '95', '95', '3.5', T0 + 30 * MIN - 1, '342.5', 3, '3', '290', '0'],
        [T0 + 30 * MIN, '110', '110', '110', '110', '0.1', T0 + 90 * MIN - 1, '11', 1, '0.1', '11', '0'],
      ]
      expect(await klines(env.cache, symbol, '1h', { offsetMs: ist })).toEqual(istHours)
      expect(await klines(env.cache, symbol, '1h', { offsetMs: ist, startTime: T0 - 29 * MIN })).toEqual([
        istHours[1],
      ])
      expect(await klines(env.cache, symbol, '1h', { offsetMs: ist, endTime: T0 })).toEqual([istHours[0]])
      expect(await klines(env.cache, symbol, '1h', { offsetMs: ist, limit: 1 })).toEqual([istHours[1]])
      // 2024-05-05 10:00 UTC is midnight at +14:00; the week at +8 began Monday 00:00 there, Sunday 16:00 UTC.
      const DAY = 24 * HOUR
      const zoned = async (interval: '1d' | '1w' | '1M', offsetMs: number) =>
        (await klines(env.cache, symbol, interval, { offsetMs })).map((k) => [k[0], k[6], k[8]])
      expect(await zoned('1d', 14 * HOUR)).toEqual([[T0, T0 + DAY - 1, 4]])
      expect(await zoned('1d', -12 * HOUR)).toEqual([[T0 - 22 * HOUR, T0 + 2 * HOUR - 1, 4]])
      const monday = Date.parse('2024-04-28T16:00:00Z')
      expect(await zoned('1w', 8 * HOUR)).toEqual([[monday, monday + 7 * DAY - 1, 4]])
      expect(await zoned('1M', -5 * HOUR)).toEqual([
        [Date.parse('2024-05-01T05:00:00Z'), Date.parse('2024-06-01T05:00:00Z') - 1, 4],
      ])

      const ticker = {
        symbol,
        priceChange: '10',
        priceChangePercent: '10.000',
        // 353.5 / 3.6
        weightedAvgPrice: '98.194444444444444444',
        lastPrice: '110',
        lastQty: '0.1',
        openPrice: '100',
        highPrice: '110',
        lowPrice: '95',
        volume: '3.6',
        quoteVolume: '353.5',
        openTime: T0 + HOUR + MIN - 1440 * MIN,
        closeTime: T0 + HOUR + MIN - 1,
        firstId: 1,
        lastId: 4,
        count: 4,
      }
      expect(await ticker24h(env.cache, symbol)).toEqual(ticker)
      expect((await recentTrades(env.cache, symbol, 10)).map((t) => t.id).sort()).toEqual([1, 2, 3, 4])

      // ClickHouse: each trade once, and its k-lines match Redis.
      const rows = await analytics.query({
        query: 'SELECT toString(id) AS id FROM trades WHERE symbol = {s:String} ORDER BY id',
        query_params: { s: symbol },
        format: 'JSONEachRow',
      })
      expect(await rows.json()).toEqual([{ id: '1' }, { id: '2' }, { id: '3' }, { id: '4' }])
      const range = { startTime: T0 - HOUR, endTime: T0 + 2 * HOUR }
      expect(await analyticsKlines(analytics, symbol, '1m', range)).toEqual(
        await klines(env.cache, symbol, '1m'),
      )
      expect(await analyticsKlines(analytics, symbol, '1h', range)).toEqual(
        await klines(env.cache, symbol, '1h'),
      )

      // What ws gets: every trade once, and a last ticker and k-line equal to the stored ones.
      await until(
        async () => published.filter((p) => p.channel === channels.trade(symbol)).length >= 4,
        'trades',
      )
      const trades = published
        .filter((p) => p.channel === channels.trade(symbol))
        .map((p) => JSON.parse(p.message).t)
      expect(trades.sort()).toEqual([1, 2, 3, 4])
      const lastTicker = JSON.parse(
        published.filter((p) => p.channel === channels.ticker(symbol)).at(-1)!.message,
      )
      expect(lastTicker).toMatchObject({ e: '24hrTicker', s: symbol, c: '110', o: '100', n: 4, v: '3.6' })
      const minuteOfT2 = published
        .filter((p) => p.channel === channels.kline(symbol, '1m'))
        .map((p) => JSON.parse(p.message).k)
        .filter((k) => k.t === T0)
        .at(-1)
      expect(minuteOfT2).toMatchObject({ o: '100', c: '105', n: 2, f: 1, L: 2, x: true, i: '1m' })
    })

    it('still drops redeliveries after a restart, and keeps counting new trades', async () => {
      const registry = new Registry()
      await start(registry)
      const t2 = event(symbol, 2, '105', '0.5', '52.5', T0 + 20_000, true)
      const t5 = event(symbol, 5, '90', '1', '90', T0 + HOUR + 30_000, true)
      for (const e of [t2, t5, t5]) await bus.publish(`${topicPrefix}trades`, e)
      await until(async () => {
        const c = await counted(registry)
        return c.counted === 1 && c.duplicate === 2
      }, 'the three deliveries')
      await stop()
      expect((await klines(env.cache, symbol, '1m')).slice(1)).toEqual([
        [T0 + MIN, '95', '95', '95', '95', '2', T0 + 2 * MIN - 1, '190', 1, '2', '190', '0'],
        [T0 + HOUR, '110', '110', '90', '90', '1.1', T0 + HOUR + MIN - 1, '101', 2, '0.1', '11', '0'],
      ])
      expect(await ticker24h(env.cache, symbol)).toMatchObject({
        lastPrice: '90',
        lastQty: '1',
        lowPrice: '90',
        volume: '4.6',
        count: 5,
        lastId: 5,
      })
      const result = await analytics.query({
        query: 'SELECT count() AS n, toString(sum(qty)) AS qty FROM trades WHERE symbol = {s:String}',
        query_params: { s: symbol },
        format: 'JSONEachRow',
      })
      expect(await result.json()).toEqual([{ n: '5', qty: '4.6' }])
      const range = { startTime: T0, endTime: T0 + 2 * HOUR }
      expect(await analyticsKlines(analytics, symbol, '1m', range)).toEqual(
        await klines(env.cache, symbol, '1m'),
      )
    })
  })
}

scenario('market-data handler on the Redis Cluster', () => {
  const nodes = redisClusterNodes()
  const cache = createPubSubCache({ kind: 'redis', nodes })
  return { cache, store: () => redisMarketStore({ nodes }), teardown: () => cache.close() }
})

scenario('market-data handler in the embedded mode (in-process store)', () => {
  const cache = createPubSubCache({ kind: 'memory', server: new InProcessRedis() })
  return { cache, teardown: () => cache.close() }
})

describe('market-data handler replicas on one channel (Redis Cluster)', () => {
  const nodes = () => redisClusterNodes()
  const symbol = uniqueName('HR').toUpperCase()
  const topicPrefix = `${uniqueName('r')}-`
  const closers: (() => Promise<void>)[] = []
  afterAll(async () => {
    for (const close of closers.reverse()) await close()
  })

  it('interleaved trades of one symbol on three replicas still add up exactly', async () => {
    const bus = createBus({ kind: 'memory' })
    closers.push(() => bus.close())
    const registries = [new Registry(), new Registry(), new Registry()]
    const handlers = registries.map((registry) => {
      const cache = createPubSubCache({ kind: 'redis', nodes: nodes() })
      const store = redisMarketStore({ nodes: nodes() })
      closers.push(
        () => cache.close(),
        () => store.close(),
      )
      return createMarketDataHandler({
        bus,
        cache,
        analytics,
        log,
        topicPrefix,
        store,
        registry,
        maxInFlight: 8,
        clickhouse: { maxDelayMs: 20 },
        // Trades of 2024 under today's clock: only trades move the ticker here.
        tickerRollMs: 0,
      })
    })
    for (const h of handlers) await h.start()
    const reader = createPubSubCache({ kind: 'redis', nodes: nodes() })
    closers.push(() => reader.close())

    const events: TradeEvent[] = []
    for (let id = 1; id <= 240; id++) {
      const price = `${100 + (id % 17)}.${id % 10}`
      const qty = `0.${String(id).padStart(3, '0')}`
      const quote = formatDecimal(parseDecimal(price, 1) * parseDecimal(qty, 3), 4, { trimZeros: true })
      events.push(event(symbol, id, price, qty, quote, T0 + id * 700, id % 3 === 0))
    }
    // Shuffled deterministically, with every fifth trade delivered twice.
    const deliveries = [...events, ...events.filter((_, i) => i % 5 === 0)]
    for (let i = deliveries.length - 1; i > 0; i--) {
      const j = (i * 7919) % (i + 1)
      ;[deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!]
    }
    await bus.publishMany(`${topicPrefix}trades`, deliveries)
    const total = async (result: string) => {
      let sum = 0
      for (const r of registries) sum += (await counted(r))[result] ?? 0
      return sum
    }
    await until(
      async () => (await total('counted')) === 240 && (await total('duplicate')) === 48,
      'all deliveries',
    )
    for (const h of handlers) await h.stop()
    let conflicts = 0
    for (const r of registries)
      conflicts += (await r.getSingleMetric('md_commit_conflicts_total')!.get()).values[0]!.value
    // The replicas did race on the symbol (tens of refused commits per run), and lost nothing.
    expect(conflicts).toBeGreaterThan(0)

    const trades = events.map((e) => tradeFromEvent(e))
    for (const interval of ['1m', '5m', '1h', '1s'] as const) {
      const expected = [...aggregate(trades, interval).values()].sort((a, b) => a.openTime - b.openTime)
      expect(await klines(reader, symbol, interval, { limit: 1000 })).toEqual(expected.map(toBinanceKline))
    }
    const minutes = aggregate(trades, '1m')
    expect(await ticker24h(reader, symbol)).toEqual(
      tickerFromKlines(symbol, minutes.values(), Math.max(...minutes.keys())),
    )
    const result = await analytics.query({
      query: 'SELECT count() AS n FROM trades WHERE symbol = {s:String}',
      query_params: { s: symbol },
      format: 'JSONEachRow',
    })
    expect(await result.json()).toEqual([{ n: '240' }])
    const range = { startTime: T0, endTime: T0 + 2 * HOUR }
    expect(await analyticsKlines(analytics, symbol, '1m', range)).toEqual(await klines(reader, symbol, '1m'))
  })
})

describe('market-data handler when ClickHouse fails after the Redis commit', () => {
  it('stores the trade on redelivery, once, without counting it twice', async () => {
    const symbol = uniqueName('HF').toUpperCase()
    const topicPrefix = `${uniqueName('f')}-`
    const bus = createBus({ kind: 'memory' })
    const cache = createPubSubCache({ kind: 'redis', nodes: redisClusterNodes() })
    const store = redisMarketStore({ nodes: redisClusterNodes() })
    let failures = 1
    // The real chDB client whose first insert fails, as a dropped connection would.
    const flaky = new Proxy(analytics, {
      get(target, property, receiver) {
        if (property === 'insert') {
          return (...args: Parameters<Analytics['insert']>) => {
            if (failures-- > 0) return Promise.reject(new Error('connection reset'))
            return target.insert(...args)
          }
        }
        const value = Reflect.get(target, property, receiver)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const registry = new Registry()
    const handler = createMarketDataHandler({
      bus,
      cache,
      analytics: flaky,
      log,
      topicPrefix,
      store,
      registry,
      requeueDelayMs: 50,
      tickerRollMs: 0,
      clickhouse: { maxDelayMs: 10 },
    })
    await handler.start()
    try {
      await bus.publish(`${topicPrefix}trades`, event(symbol, 7, '20', '3', '60', T0, false))
      await until(async () => {
        const rows = await analytics.query({
          query: 'SELECT count() AS n FROM trades WHERE symbol = {s:String}',
          query_params: { s: symbol },
          format: 'JSONEachRow',
        })
        return JSON.stringify(await rows.json()) === '[{"n":"1"}]'
      }, 'the trade in ClickHouse')
      expect(await counted(registry)).toMatchObject({ counted: 1, duplicate: 1 })
      expect(await klines(cache, symbol, '1m')).toEqual([
        [T0, '20', '20', '20', '20', '3', T0 + MIN - 1, '60', 1, '3', '60', '0'],
      ])
    } finally {
      await handler.stop()
      await store.close()
      await cache.close()
      await bus.close()
    }
  })
})

describe('market-data handler on a quiet market', () => {
  it('rolls the ticker on without trades, down to an idle one', async () => {
    const symbol = uniqueName('HQ').toUpperCase()
    const topicPrefix = `${uniqueName('q')}-`
    const bus = createBus({ kind: 'memory' })
    const cache = createPubSubCache({ kind: 'redis', nodes: redisClusterNodes() })
    const store = redisMarketStore({ nodes: redisClusterNodes() })
    let clock = T0 + 30_000
    const registry = new Registry()
    const handler = createMarketDataHandler({
      bus,
      cache,
      analytics,
      log,
      topicPrefix,
      store,
      registry,
      now: () => clock,
      tickerRollMs: 10,
      clickhouse: { maxDelayMs: 10 },
    })
    await handler.start()
    try {
      await bus.publish(`${topicPrefix}trades`, event(symbol, 1, '20', '3', '60', T0, false))
      await bus.publish(`${topicPrefix}trades`, event(symbol, 2, '21', '1', '21', T0 + 5 * MIN, false))
      await until(async () => (await counted(registry)).counted === 2, 'two trades')
      expect(await ticker24h(cache, symbol)).toMatchObject({
        count: 2,
        lastPrice: '21',
        closeTime: T0 + 6 * MIN - 1,
      })
      // A day after the first trade's minute, only the second is in the window.
      clock = T0 + 1440 * MIN
      await until(async () => (await ticker24h(cache, symbol))?.count === 1, 'the first minute to leave')
      expect(await ticker24h(cache, symbol)).toMatchObject({ openPrice: '21', volume: '1', firstId: 2 })
      clock = T0 + 1450 * MIN
      await until(async () => (await ticker24h(cache, symbol))?.count === 0, 'an idle ticker')
      expect(await ticker24h(cache, symbol)).toMatchObject({
        lastPrice: '21',
        volume: '0',
        firstId: -1,
        lastId: -1,
        closeTime: T0 + 1451 * MIN - 1,
      })
      // The k-lines stay.
      expect(await klines(cache, symbol, '1m')).toHaveLength(2)
    } finally {
      await handler.stop()
      await store.close()
      await cache.close()
      await bus.close()
    }
  })
})
