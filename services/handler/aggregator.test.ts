import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { SymbolAggregator } from './aggregator.ts'
import { INTERVALS } from './intervals.ts'
import { aggregate, type Kline, type Trade } from './klines.ts'
import { tickerFromKlines } from './ticker.ts'

const T0 = Date.parse('2024-02-29T22:00:00Z')
const DAY = 86_400_000

const tradesArb = fc
  .array(
    fc.record({
      cents: fc.integer({ min: 1, max: 10_000_000 }),
      lots: fc.integer({ min: 1, max: 1_000_000 }),
      offset: fc.integer({ min: 0, max: 2 * DAY }),
      buyerIsMaker: fc.boolean(),
    }),
    { minLength: 1, maxLength: 80 },
  )
  .map((raw) => {
    const times = raw.map((r) => T0 + r.offset).sort((a, b) => a - b)
    return raw.map((r, i): Trade => {
      const price = BigInt(r.cents) * 10n ** 16n
      const qty = BigInt(r.lots) * 10n ** 10n
      return {
        symbol: 'BTCUSDT',
        id: BigInt(i + 1),
        price,
        qty,
        quoteQty: (price * qty) / 10n ** 18n,
        time: times[i]!,
        buyerIsMaker: r.buyerIsMaker,
      }
    })
  })

const byOpenTime = (klines: Iterable<Kline>) => [...klines].sort((a, b) => a.openTime - b.openTime)

describe('SymbolAggregator (property)', () => {
  it('gives every interval the k-lines of applying each trade, for any order and batching', () => {
    fc.assert(
      fc.property(
        tradesArb,
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1 }),
        fc.infiniteStream(fc.nat()),
        (trades, batchSizes, draws) => {
          const delivered = [...trades]
          const stream = draws[Symbol.iterator]()
          for (let i = delivered.length - 1; i > 0; i--) {
            const j = stream.next().value! % (i + 1)
            ;[delivered[i], delivered[j]] = [delivered[j]!, delivered[i]!]
          }
          const aggregator = new SymbolAggregator('BTCUSDT')
          const latest = new Map<string, Kline>()
          for (let at = 0, b = 0; at < delivered.length; b++) {
            const size = batchSizes[b % batchSizes.length]!
            const batch = delivered.slice(at, at + size)
            at += size
            // Buckets not held are empty here (nothing in Redis): the aggregator creates them.
            const { touched, created } = aggregator.apply(batch)
            for (const k of created) expect(touched).toContain(k)
            for (const k of touched) latest.set(`${k.interval}:${k.openTime}`, { ...k })
          }
          for (const interval of INTERVALS) {
            const expected = byOpenTime(aggregate(trades, interval).values())
            const got = byOpenTime([...latest.values()].filter((k) => k.interval === interval))
            expect(got).toEqual(expected)
          }
          const minutes = aggregate(trades, '1m')
          const end = Math.max(...minutes.keys())
          expect(aggregator.ticker.snapshot()).toEqual(tickerFromKlines('BTCUSDT', minutes.values(), end))
        },
      ),
      { numRuns: 200 },
    )
  })

  it('lists the buckets it does not hold, and holds what it is given', () => {
    const aggregator = new SymbolAggregator('BTCUSDT')
    const trade: Trade = {
      symbol: 'BTCUSDT',
      id: 1n,
      price: 10n ** 18n,
      qty: 10n ** 18n,
      quoteQty: 10n ** 18n,
      time: T0 + 1,
      buyerIsMaker: false,
    }
    expect(aggregator.missing([trade])).toHaveLength(INTERVALS.length)
    const { created } = aggregator.apply([trade])
    expect(created).toHaveLength(INTERVALS.length)
    expect(aggregator.missing([{ ...trade, id: 2n }])).toEqual([])
    expect(aggregator.missing([{ ...trade, time: T0 + 1000 }])).toEqual([
      { interval: '1s', openTime: T0 + 1000 },
    ])
    const loaded = { ...created[0]!, openTime: T0 + 1000, closeTime: T0 + 1999 }
    aggregator.put(loaded)
    expect(aggregator.get('1s', T0 + 1000)).toBe(loaded)
  })
})
