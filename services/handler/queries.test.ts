/** K-lines in a time zone at the edge of what the UTC k-lines they are made of still reach. */
import { describe, expect, it } from 'vitest'
import { createPubSubCache, InProcessRedis } from '../../adapters/pubsub/index.ts'
import { parseDecimal } from '../../lib/money.ts'
import type { Interval } from './intervals.ts'
import { keys, klineIndexCap } from './keys.ts'
import { klineToHash, newKline, SCALE } from './klines.ts'
import { klines } from './queries.ts'

const MIN = 60_000
const S = Date.parse('2024-05-05T00:00:00Z')
const IST = 330 * MIN

/** `count` 30m k-lines of one trade each, from S on, written as the handler writes them. */
async function halfHours(count: number) {
  const cache = createPubSubCache({ kind: 'memory', server: new InProcessRedis() })
  const interval: Interval = '30m'
  for (let i = 0; i < count; i++) {
    const openTime = S + i * 30 * MIN
    const units = (v: string) => parseDecimal(v, SCALE)
    const trade = {
      symbol: 'BTCUSDT',
      id: BigInt(i + 1),
      price: units('100'),
      qty: units('1'),
      quoteQty: units('100'),
      time: openTime,
      buyerIsMaker: false,
    }
    await cache.hashSet(keys.kline('BTCUSDT', interval, openTime), klineToHash(newKline(interval, trade)))
    await cache.pushCapped(keys.klineIndex('BTCUSDT', interval), String(openTime), klineIndexCap(interval))
  }
  return cache
}

describe('k-lines in a time zone', () => {
  it('serve the oldest bucket whole when no UTC k-line was trimmed from the index', async () => {
    const hours = await klines(await halfHours(4), 'BTCUSDT', '1h', { offsetMs: IST })
    expect(hours.map((k) => [k[0], k[8]])).toEqual([
      [S - 30 * MIN, 1],
      [S + 30 * MIN, 2],
      [S + 90 * MIN, 1],
    ])
  })

  it('leave out the oldest bucket when part of it was trimmed from the index', async () => {
    const cap = klineIndexCap('30m')
    const hours = await klines(await halfHours(cap), 'BTCUSDT', '1h', { offsetMs: IST, limit: 1000 })
    expect([hours[0]![0], hours[0]![8]]).toEqual([S + 30 * MIN, 2])
    expect(hours).toHaveLength(cap / 2)
    expect(hours.reduce((sum, k) => sum + k[8], 0)).toBe(cap - 1)
  })
})
