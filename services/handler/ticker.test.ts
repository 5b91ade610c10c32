import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { formatDecimal, parseDecimal } from '../../lib/money.ts'
import { bucketStart } from './intervals.ts'
import { aggregate, applyTrade, type Kline, newKline, SCALE, type Trade } from './klines.ts'
import { RollingTicker, tickerFromKlines } from './ticker.ts'

const MIN = 60_000
const DAY = 1440 * MIN
const T0 = Date.parse('2024-03-10T12:00:00Z')
const d = (text: string) => parseDecimal(text, SCALE)

function trade(id: number, price: string, qty: string, time: number): Trade {
  const p = d(price)
  const q = d(qty)
  return {
    symbol: 'ETHUSDT',
    id: BigInt(id),
    price: p,
    qty: q,
    quoteQty: (p * q) / 10n ** 18n,
    time,
    buyerIsMaker: false,
  }
}

/** Feeds trades (deduplicated) through 1m k-lines into a rolling ticker, as the handler does. */
function feed(ticker: RollingTicker, trades: Trade[], minutes = new Map<number, Kline>()): void {
  const seen = new Set<bigint>()
  for (const t of trades) {
    if (seen.has(t.id) || ticker.tooOld(t.time)) continue
    seen.add(t.id)
    const start = bucketStart('1m', t.time)
    const k = applyTrade(minutes.get(start), '1m', t)
    minutes.set(start, k)
    ticker.add(newKline('1m', t), k)
  }
}

describe('RollingTicker', () => {
  it("computes Binance's fields exactly, percent to 3 places", () => {
    const ticker = new RollingTicker('ETHUSDT')
    feed(ticker, [
      trade(11, '3000', '1', T0),
      trade(13, '2900.5', '0.5', T0 + 5 * MIN),
      trade(12, '3100', '2', T0 + 2 * MIN),
      trade(14, '2950.25', '0.25', T0 + 5 * MIN + 1),
    ])
    expect(ticker.snapshot()).toEqual({
      symbol: 'ETHUSDT',
      priceChange: '-49.75',
      // -49.75 / 3000 = -1.658333…%
      priceChangePercent: '-1.658',
      // (3000 + 6200 + 1450.25 + 737.5625) / 3.75 = 11387.8125 / 3.75
      weightedAvgPrice: '3036.75',
      lastPrice: '2950.25',
      lastQty: '0.25',
      openPrice: '3000',
      highPrice: '3100',
      lowPrice: '2900.5',
      volume: '3.75',
      quoteVolume: '11387.8125',
      openTime: T0 + 6 * MIN - DAY,
      closeTime: T0 + 6 * MIN - 1,
      firstId: 11,
      lastId: 14,
      count: 4,
    })
  })

  it('rolls minutes out of the window and ignores trades older than it', () => {
    const ticker = new RollingTicker('ETHUSDT')
    feed(ticker, [trade(1, '10', '1', T0), trade(2, '20', '1', T0 + MIN)])
    expect(ticker.snapshot()?.count).toBe(2)
    // The minute of trade 1 leaves the window when a trade lands 1440 minutes later.
    feed(ticker, [trade(3, '15', '1', T0 + DAY)])
    const snapshot = ticker.snapshot()!
    expect(snapshot).toMatchObject({
      openPrice: '20',
      lastPrice: '15',
      highPrice: '20',
      lowPrice: '15',
      count: 2,
    })
    expect(snapshot.firstId).toBe(2)
    expect(ticker.tooOld(T0 + 59_999)).toBe(true)
    expect(ticker.tooOld(T0 + MIN)).toBe(false)
    feed(ticker, [trade(0, '1', '1', T0)])
    expect(ticker.snapshot()?.count).toBe(2)
  })

  it('rolls on without trades, down to an idle ticker that keeps the last price', () => {
    const ticker = new RollingTicker('ETHUSDT')
    expect(ticker.advanceTo(T0)).toBe(true)
    expect(ticker.snapshot()).toBeUndefined()
    feed(ticker, [trade(1, '10', '1', T0 + MIN), trade(2, '12', '2', T0 + 2 * MIN)])
    expect(ticker.advanceTo(T0 + MIN)).toBe(false)
    expect(ticker.advanceTo(T0 + DAY + MIN)).toBe(true)
    expect(ticker.snapshot()).toMatchObject({
      openPrice: '12',
      lastPrice: '12',
      volume: '2',
      count: 1,
      firstId: 2,
    })
    ticker.advanceTo(T0 + DAY + 2 * MIN)
    expect(ticker.snapshot()).toEqual({
      symbol: 'ETHUSDT',
      priceChange: '0',
      priceChangePercent: '0.000',
      weightedAvgPrice: '0',
      lastPrice: '12',
      lastQty: '0',
      openPrice: '0',
      highPrice: '0',
      lowPrice: '0',
      volume: '0',
      quoteVolume: '0',
      openTime: T0 + 3 * MIN,
      closeTime: T0 + DAY + 3 * MIN - 1,
      firstId: -1,
      lastId: -1,
      count: 0,
    })
    // Trading again starts a fresh window.
    feed(ticker, [trade(3, '11', '1', T0 + DAY + 5 * MIN)])
    expect(ticker.snapshot()).toMatchObject({ openPrice: '11', lastPrice: '11', count: 1, firstId: 3 })
  })

  it('percent rounds half away from zero at the third place', () => {
    const ticker = new RollingTicker('ETHUSDT')
    feed(ticker, [trade(1, '8', '1', T0), trade(2, '8.0001', '1', T0 + 1)])
    // 0.0001 / 8 = 0.00125% → 0.001
    expect(ticker.snapshot()?.priceChangePercent).toBe('0.001')
  })

  it('equals the ticker recomputed from the window, for any trades in any order (property)', () => {
    const tradeArb = fc.record({
      id: fc.integer({ min: 1, max: 400 }),
      cents: fc.integer({ min: 1, max: 1_000_000 }),
      lots: fc.integer({ min: 1, max: 10_000 }),
      offset: fc.integer({ min: 0, max: 3 * DAY }),
    })
    fc.assert(
      fc.property(fc.array(tradeArb, { minLength: 1, maxLength: 80 }), (raw) => {
        // One trade per id (a duplicate delivery carries the same trade), time increasing with the id.
        const byId = new Map(raw.map((r) => [r.id, r]))
        const ids = [...byId.keys()].sort((a, b) => a - b)
        const times = [...byId.values()].map((r) => r.offset).sort((a, b) => a - b)
        const canonical = new Map(
          ids.map((id, i) => {
            const r = byId.get(id)!
            return [id, trade(id, formatDecimal(BigInt(r.cents), 2), `${r.lots}`, T0 + times[i]!)]
          }),
        )
        const delivered = raw.map((r) => canonical.get(r.id)!)
        const ticker = new RollingTicker('ETHUSDT')
        feed(ticker, delivered)
        // The window ends at the newest trade's minute; the expected ticker is every trade in that window.
        const end = bucketStart('1m', Math.max(...delivered.map((t) => t.time)))
        const inWindow = [...canonical.values()].filter((t) => t.time >= end - DAY + MIN)
        const expected = tickerFromKlines('ETHUSDT', aggregate(inWindow, '1m').values(), end)
        expect(ticker.snapshot()).toEqual(expected)
        // A ticker rebuilt from the window's k-lines (the handler after a restart) says the same.
        expect(new RollingTicker('ETHUSDT', ticker.minutes()).snapshot()).toEqual(expected)
      }),
      { numRuns: 300 },
    )
  })
})
