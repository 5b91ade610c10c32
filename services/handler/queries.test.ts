/**
 * K-lines at the edge of what Redis keeps: a time zone's buckets are left out where the UTC k-lines they are
 * made of were trimmed, and with ClickHouse the history goes on past that edge without a seam.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { type Analytics, openAnalytics } from '../../adapters/analytics/analytics.ts'
import { createPubSubCache, InProcessRedis, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { parseDecimal } from '../../lib/money.ts'
import { migrateAnalytics, TradeWriter } from './clickhouse.ts'
import type { Interval } from './intervals.ts'
import { keys, klineIndexCap } from './keys.ts'
import { aggregate, klineToHash, SCALE, type Trade, toBinanceKline } from './klines.ts'
import { klines } from './queries.ts'

const MIN = 60_000
const DAY = 1440 * MIN
const S = Date.parse('2022-05-05T00:00:00Z')
const IST = 330 * MIN

/** One trade every `stepMs` from S on, at prices that move. */
function trades(symbol: string, count: number, stepMs: number): Trade[] {
  const units = (v: string) => parseDecimal(v, SCALE)
  return Array.from({ length: count }, (_, i) => ({
    symbol,
    id: BigInt(i + 1),
    price: units(String(100 + (i % 7))),
    qty: units('1'),
    quoteQty: units(String(100 + (i % 7))),
    time: S + i * stepMs,
    buyerIsMaker: i % 2 === 0,
  }))
}

/** The trades' k-lines of `interval` in Redis as the handler leaves them: the index capped, oldest trimmed. */
async function stored(interval: Interval, all: Trade[]): Promise<PubSubCache> {
  const cache = createPubSubCache({ kind: 'memory', server: new InProcessRedis() })
  for (const [openTime, k] of [...aggregate(all, interval)].sort(([a], [b]) => a - b)) {
    await cache.hashSet(keys.kline(all[0]!.symbol, interval, openTime), klineToHash(k))
    await cache.pushCapped(
      keys.klineIndex(all[0]!.symbol, interval),
      String(openTime),
      klineIndexCap(interval),
    )
  }
  return cache
}

describe('k-lines in a time zone', () => {
  it('serve the oldest bucket whole when no UTC k-line was trimmed from the index', async () => {
    const cache = await stored('30m', trades('BTCUSDT', 4, 30 * MIN))
    const hours = await klines(cache, 'BTCUSDT', '1h', { offsetMs: IST })
    expect(hours.map((k) => [k[0], k[8]])).toEqual([
      [S - 30 * MIN, 1],
      [S + 30 * MIN, 2],
      [S + 90 * MIN, 1],
    ])
  })

  it('leave out the oldest bucket when part of it was trimmed from the index', async () => {
    const cap = klineIndexCap('30m')
    const cache = await stored('30m', trades('BTCUSDT', cap + 1, 30 * MIN))
    const hours = await klines(cache, 'BTCUSDT', '1h', { offsetMs: IST, limit: 1000 })
    // The index kept half-hours 1 to cap: the hour opening at S + 30 min is whole, the one before is not.
    expect([hours[0]![0], hours[0]![8]]).toEqual([S + 30 * MIN, 2])
    expect(hours).toHaveLength(cap / 2)
  })
})

describe('k-lines past what Redis keeps', () => {
  let analytics: Analytics
  const all = trades('SEAMUSDT', klineIndexCap('1d') + 10, DAY)
  const days = [...aggregate(all, '1d').values()].map(toBinanceKline)
  let cache: PubSubCache

  beforeAll(async () => {
    analytics = openAnalytics({ kind: 'chdb' })
    await migrateAnalytics(analytics)
    const writer = new TradeWriter(analytics, { maxRows: 500 })
    await Promise.all(all.map((t) => writer.add(t)))
    await writer.close()
    cache = await stored('1d', all)
  })
  afterAll(async () => analytics?.close())

  it('reads the days Redis no longer lists from ClickHouse, and goes on in Redis', async () => {
    // Redis lists days 10 on; ClickHouse has them all.
    expect(await klines(cache, 'SEAMUSDT', '1d', { startTime: S, limit: 15 })).toEqual(days.slice(10, 25))
    expect(await klines(cache, 'SEAMUSDT', '1d', { startTime: S, limit: 15 }, analytics)).toEqual(
      days.slice(0, 15),
    )
    expect(await klines(cache, 'SEAMUSDT', '1d', { endTime: S + 12 * DAY, limit: 5 }, analytics)).toEqual(
      days.slice(8, 13),
    )
    expect(
      await klines(cache, 'SEAMUSDT', '1d', { startTime: S + DAY, endTime: S + 3 * DAY }, analytics),
    ).toEqual(days.slice(1, 4))
  })

  it('asks ClickHouse nothing when Redis holds the answer', async () => {
    const asked = vi.spyOn(analytics, 'query')
    expect(await klines(cache, 'SEAMUSDT', '1d', { limit: 1000 }, analytics)).toEqual(days.slice(10))
    const inRedis = { startTime: S + 10 * DAY, limit: 3 }
    expect(await klines(cache, 'SEAMUSDT', '1d', inRedis, analytics)).toEqual(days.slice(10, 13))
    expect(asked).not.toHaveBeenCalled()
    asked.mockRestore()
  })
})
