/**
 * The ClickHouse side on chDB (no ClickHouse server runs on these machines): trades stored once however often
 * they are handed over, and k-lines of every interval from the 1m aggregate states equal to the pure
 * aggregation, so ClickHouse's bucket rules (weeks, months, 3d, 45m) agree with intervals.ts.
 */
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Analytics, openAnalytics } from '../../adapters/analytics/analytics.ts'
import { analyticsKlines, migrateAnalytics, TradeWriter } from './clickhouse.ts'
import { INTERVALS, type Interval } from './intervals.ts'
import { aggregate, type Trade, toBinanceKline } from './klines.ts'

let client: Analytics
beforeAll(async () => {
  client = openAnalytics({ kind: 'chdb' })
  await migrateAnalytics(client)
  await migrateAnalytics(client) // idempotent
})
afterAll(async () => client?.close())

const START = Date.parse('2024-01-25T00:00:00Z')
const SPAN = 70 * 86_400_000 // over month ends, a leap day and ten weeks

function trades(symbol: string, seed: number, count: number): Trade[] {
  const raw = fc.sample(
    fc.record({
      cents: fc.integer({ min: 1, max: 10_000_000 }),
      lots: fc.integer({ min: 1, max: 100_000_000 }),
      offset: fc.integer({ min: 0, max: SPAN }),
      buyerIsMaker: fc.boolean(),
    }),
    { numRuns: count, seed },
  )
  const times = raw.map((r) => START + r.offset).sort((a, b) => a - b)
  return raw.map((r, i) => {
    const price = BigInt(r.cents) * 10n ** 16n + 1n // an 18th decimal place, to see it kept
    const qty = BigInt(r.lots) * 10n ** 9n
    return {
      symbol,
      id: BigInt(1000 + i),
      price,
      qty,
      quoteQty: (price * qty) / 10n ** 18n,
      time: times[i]!,
      buyerIsMaker: r.buyerIsMaker,
    }
  })
}

async function count(symbol: string): Promise<string> {
  const result = await client.query({
    query: 'SELECT count() AS n FROM trades WHERE symbol = {s:String}',
    query_params: { s: symbol },
    format: 'JSONEachRow',
  })
  return ((await result.json()) as { n: string }[])[0]!.n
}

describe('TradeWriter', () => {
  it('stores each trade once when batches overlap and repeat, in any order', async () => {
    const all = trades('DEDUPA', 1, 300)
    const flushes: number[][] = []
    const writer = new TradeWriter(client, {
      maxRows: 100,
      onFlush: (inserted, skipped) => flushes.push([inserted, skipped]),
    })
    await Promise.all([...all].reverse().map((t) => writer.add(t)))
    // Again, shuffled, with a duplicate inside one batch.
    await Promise.all([...all.slice(100, 200), all[150]!, ...all.slice(0, 50)].map((t) => writer.add(t)))
    await writer.close()
    expect(await count('DEDUPA')).toBe('300')
    expect(flushes.reduce((s, [inserted]) => s + inserted!, 0)).toBe(300)
    // Every add of the second round was already stored (trade 150 twice, in two batches of 100).
    expect(flushes.reduce((s, [, skipped]) => s + skipped!, 0)).toBe(151)
  })

  it('rejects every waiting add when its batch fails, and stores it on the next try', async () => {
    const failing = new Proxy(client, {
      get(target, property, receiver) {
        if (property === 'insert') return () => Promise.reject(new Error('connection reset'))
        const value = Reflect.get(target, property, receiver)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const [t] = trades('FAILA', 2, 1)
    const broken = new TradeWriter(failing, { maxDelayMs: 5 })
    await expect(broken.add(t!)).rejects.toThrow('connection reset')
    const writer = new TradeWriter(client, { maxDelayMs: 5 })
    await writer.add(t!)
    await writer.add(t!)
    expect(await count('FAILA')).toBe('1')
  })
})

describe('analyticsKlines', () => {
  it('equals the pure aggregation for every interval from 1m up', async () => {
    const all = trades('KLINEA', 3, 2000)
    const writer = new TradeWriter(client, { maxRows: 500 })
    // Out of order, in several inserts: the aggregate states do not care.
    await Promise.all([...all.slice(1000), ...all.slice(0, 1000)].map((t) => writer.add(t)))
    await writer.close()
    const range = { startTime: START - 40 * 86_400_000, endTime: START + SPAN + 86_400_000 }
    for (const interval of INTERVALS.filter((i) => i !== '1s')) {
      const expected = [...aggregate(all, interval).values()].sort((a, b) => a.openTime - b.openTime)
      expect(await analyticsKlines(client, 'KLINEA', interval, range), interval).toEqual(
        expected.map(toBinanceKline),
      )
    }
    await expect(analyticsKlines(client, 'KLINEA', '1s', range)).rejects.toThrow(RangeError)
  })

  it("serves a time zone's buckets, and the first or the newest `limit` of them", async () => {
    const all = trades('KLINEZ', 4, 600)
    const writer = new TradeWriter(client, { maxRows: 500 })
    await Promise.all(all.map((t) => writer.add(t)))
    await writer.close()
    const range = { startTime: START - 40 * 86_400_000, endTime: START + SPAN + 86_400_000 }
    const HOUR = 3_600_000
    /** The zone's buckets by aggregating trades moved into its clock, then moved back to UTC. */
    const zoned = (interval: Interval, offsetMs: number) =>
      [
        ...aggregate(
          all.map((t) => ({ ...t, time: t.time + offsetMs })),
          interval,
        ).values(),
      ]
        .sort((a, b) => a.openTime - b.openTime)
        .map((k) =>
          toBinanceKline({ ...k, openTime: k.openTime - offsetMs, closeTime: k.closeTime - offsetMs }),
        )
    const cases: [Interval, number][] = [
      ['1h', 5.5 * HOUR],
      ['4h', 5.75 * HOUR],
      ['1d', 8 * HOUR],
      ['1d', -9.5 * HOUR],
      ['1w', 8 * HOUR],
      ['1M', -5 * HOUR],
    ]
    for (const [interval, offsetMs] of cases) {
      expect(await analyticsKlines(client, 'KLINEZ', interval, { ...range, offsetMs }), interval).toEqual(
        zoned(interval, offsetMs),
      )
    }
    const days = zoned('1d', 8 * HOUR)
    const day = (i: number) => days[i]![0]
    const firstFrom = { startTime: day(3) - 1, endTime: range.endTime, limit: 2, offsetMs: 8 * HOUR }
    expect(await analyticsKlines(client, 'KLINEZ', '1d', firstFrom)).toEqual(days.slice(3, 5))
    const newestTo = { endTime: day(10) + 1, limit: 3, offsetMs: 8 * HOUR }
    expect(await analyticsKlines(client, 'KLINEZ', '1d', newestTo)).toEqual(days.slice(8, 11))
  })
})
