import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseDecimal } from '../../lib/money.ts'
import type { TradeEvent } from '../engine/events.ts'
import { INTERVALS } from './intervals.ts'
import {
  aggregate,
  applyTrade,
  type Kline,
  klineFromHash,
  klineToHash,
  mergeKlines,
  SCALE,
  type Trade,
  toBinanceKline,
  tradeFromEvent,
} from './klines.ts'

const T0 = Date.parse('2024-02-29T23:58:00Z')
const d = (text: string) => parseDecimal(text, SCALE, { allowZero: true })

function trade(id: number, price: string, qty: string, time: number, buyerIsMaker = false): Trade {
  const p = d(price)
  const q = d(qty)
  return {
    symbol: 'BTCUSDT',
    id: BigInt(id),
    price: p,
    qty: q,
    quoteQty: (p * q) / 10n ** 18n,
    time,
    buyerIsMaker,
  }
}

describe('applyTrade', () => {
  it('takes open and close by trade id, not by arrival, and sums exactly', () => {
    const trades = [
      trade(3, '101.5', '0.1', T0 + 3000, true),
      trade(1, '100.1', '0.2', T0 + 1000),
      trade(4, '99.9', '0.3', T0 + 4000),
      trade(2, '102.25', '0.000000000000000001', T0 + 2000, true),
    ]
    let k: Kline | undefined
    for (const t of trades) k = applyTrade(k, '1m', t)
    expect(toBinanceKline(k!)).toEqual([
      T0,
      '100.1',
      '102.25',
      '99.9',
      '99.9',
      '0.600000000000000001',
      T0 + 59_999,
      // 10.15 + 20.02 + 29.97 + 0.000000000000000102 (exact)
      '60.140000000000000102',
      4,
      '0.5',
      '49.99',
      '0',
    ])
    expect(k!.firstId).toBe(1n)
    expect(k!.lastId).toBe(4n)
    expect(k!.closeQty).toBe(d('0.3'))
  })

  it('refuses a trade from another bucket', () => {
    const k = applyTrade(undefined, '1m', trade(1, '1', '1', T0))
    expect(() => applyTrade(k, '1m', trade(2, '1', '1', T0 + 60_000))).toThrow(RangeError)
  })

  it('round-trips through its Redis hash', () => {
    const k = applyTrade(
      applyTrade(undefined, '1h', trade(7, '3', '2', T0)),
      '1h',
      trade(5, '4', '1', T0 + 10),
    )
    expect(klineFromHash(klineToHash(k))).toEqual(k)
    expect(klineFromHash({})).toBeUndefined()
  })
})

describe('tradeFromEvent', () => {
  const event: TradeEvent = {
    topic: 'trades',
    market: 'BTCUSDT',
    seq: '9',
    tradeId: '123',
    price: '100.5',
    quantity: '0.25',
    quoteQuantity: '25.125',
    buyerOrderId: '1',
    sellerOrderId: '2',
    buyerUserId: 'u1',
    sellerUserId: 'u2',
    buyerIsMaker: true,
    time: T0,
  }

  it('parses amounts exactly at scale 18', () => {
    expect(tradeFromEvent(event)).toEqual({
      symbol: 'BTCUSDT',
      id: 123n,
      price: d('100.5'),
      qty: d('0.25'),
      quoteQty: d('25.125'),
      time: T0,
      buyerIsMaker: true,
    })
  })

  it('refuses bad ids, times and amounts', () => {
    expect(() => tradeFromEvent({ ...event, tradeId: 'x1' })).toThrow()
    expect(() => tradeFromEvent({ ...event, time: 1.5 })).toThrow()
    expect(() => tradeFromEvent({ ...event, price: '1e3' })).toThrow(/price/)
    expect(() => tradeFromEvent({ ...event, quantity: '0' })).toThrow(/quantity/)
  })
})

const tradeArb = (id: number) =>
  fc
    .record({
      cents: fc.integer({ min: 1, max: 10_000_000 }),
      lots: fc.integer({ min: 1, max: 1_000_000 }),
      offset: fc.integer({ min: 0, max: 3 * 24 * 3600 * 1000 }),
      buyerIsMaker: fc.boolean(),
    })
    .map(({ cents, lots, offset, buyerIsMaker }) => {
      const price = BigInt(cents) * 10n ** 16n
      const qty = BigInt(lots) * 10n ** 10n
      return {
        symbol: 'BTCUSDT',
        id: BigInt(id),
        price,
        qty,
        quoteQty: (price * qty) / 10n ** 18n,
        time: T0 + offset,
        buyerIsMaker,
      } satisfies Trade
    })

/** Trades with ids 1..n, their times increasing with the id as the engine assigns them. */
const tradesArb = fc.integer({ min: 1, max: 60 }).chain((n) =>
  fc.tuple(...Array.from({ length: n }, (_, i) => tradeArb(i + 1))).map((trades) => {
    const times = trades.map((t) => t.time).sort((a, b) => a - b)
    return trades.map((t, i) => ({ ...t, time: times[i]! }))
  }),
)

function naive(trades: Trade[], start: number, interval: Kline['interval']): unknown {
  const byId = [...trades].sort((a, b) => (a.id < b.id ? -1 : 1))
  const sum = (f: (t: Trade) => bigint) => byId.reduce((s, t) => s + f(t), 0n)
  const taker = byId.filter((t) => !t.buyerIsMaker)
  const prices = byId.map((t) => t.price).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return {
    openTime: start,
    open: byId[0]!.price,
    close: byId.at(-1)!.price,
    high: prices.at(-1),
    low: prices[0],
    volume: sum((t) => t.qty),
    quoteVolume: sum((t) => t.quoteQty),
    takerBuyVolume: taker.reduce((s, t) => s + t.qty, 0n),
    takerBuyQuoteVolume: taker.reduce((s, t) => s + t.quoteQty, 0n),
    count: byId.length,
    firstId: byId[0]!.id,
    lastId: byId.at(-1)!.id,
    interval,
  }
}

describe('aggregate (property)', () => {
  it('gives the same k-lines for any arrival order, with duplicates dropped by trade id', () => {
    fc.assert(
      fc.property(
        tradesArb,
        fc.constantFrom(...INTERVALS),
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.infiniteStream(fc.nat()),
        (trades, interval, duplicateAt, shuffle) => {
          const inOrder = aggregate(trades, interval)
          const delivered = [...trades, ...duplicateAt.map((i) => trades[i % trades.length]!)]
          // Fisher-Yates with the generated stream, so a failure shrinks to a reproducible order.
          const draws = shuffle[Symbol.iterator]()
          for (let i = delivered.length - 1; i > 0; i--) {
            const j = draws.next().value! % (i + 1)
            ;[delivered[i], delivered[j]] = [delivered[j]!, delivered[i]!]
          }
          const shuffled = aggregate(delivered, interval)
          expect([...shuffled.entries()].sort((a, b) => a[0] - b[0])).toEqual(
            [...inOrder.entries()].sort((a, b) => a[0] - b[0]),
          )
          for (const [start, k] of shuffled) {
            const members = trades.filter((t) => t.time >= k.openTime && t.time <= k.closeTime)
            expect(k).toMatchObject(naive(members, start, interval) as object)
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  it('merging the 1m k-lines of an hour gives the 1h k-line', () => {
    fc.assert(
      fc.property(tradesArb, (trades) => {
        const minutes = aggregate(trades, '1m')
        const hours = aggregate(trades, '1h')
        for (const [start, hour] of hours) {
          const parts = [...minutes.values()].filter(
            (k) => k.openTime >= start && k.openTime < start + 3_600_000,
          )
          const merged = parts.slice(1).reduce(mergeKlines, parts[0]!)
          expect({ ...merged, interval: '1h', openTime: start, closeTime: hour.closeTime }).toEqual(hour)
        }
      }),
      { numRuns: 200 },
    )
  })
})
