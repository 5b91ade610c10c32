import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MatchingEngine } from './engine.ts'
import type { DepthUpdate } from './events.ts'
import { type MarketFixture, marketFixture } from './testing.ts'

type Levels = Map<string, string>

function apply(levels: Levels, changes: [string, string][]): void {
  for (const [price, qty] of changes) {
    if (Number(qty) === 0) levels.delete(price)
    else levels.set(price, qty)
  }
}

const sorted = (levels: Levels, descending: boolean) =>
  [...levels].sort((a, b) => (descending ? Number(b[0]) - Number(a[0]) : Number(a[0]) - Number(b[0])))

describe('engine depth updates (onDepth)', () => {
  let market: MarketFixture
  let engine: MatchingEngine
  const updates: DepthUpdate[] = []
  beforeAll(async () => {
    market = await marketFixture('pglite')
    engine = await market.engine({ onDepth: (u) => updates.push(u), batchWindowMs: 1 })
  })
  afterAll(async () => market?.close())

  it('gives every committed batch a seq range that follows the last, and levels that rebuild the book', async () => {
    const snapshot = await engine.depth(5000)
    const a = await market.trader('a', { BTC: '100', USDT: '100000' })
    const b = await market.trader('b', { BTC: '100', USDT: '100000' })
    const users = [a, b]
    let seed = 7
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    const work: Promise<unknown>[] = []
    for (let i = 0; i < 300; i++) {
      const user = users[i % 2]!
      const side = random() < 0.5 ? 'BUY' : 'SELL'
      const r = random()
      if (r < 0.1) {
        work.push(engine.submit({ kind: 'cancelAll', userId: user }).catch(() => undefined))
      } else if (r < 0.2) {
        work.push(
          engine
            .submit({ kind: 'place', order: { userId: user, side, type: 'MARKET', quantity: '0.05' } })
            .catch(() => undefined),
        )
      } else {
        const price = (100 + Math.floor(random() * 20) - 10).toFixed(2)
        work.push(
          engine
            .submit({
              kind: 'place',
              order: { userId: user, side, type: 'LIMIT', price, quantity: (0.01 + random()).toFixed(3) },
            })
            .catch(() => undefined),
        )
      }
      if (i % 25 === 0) await Promise.all(work.splice(0))
    }
    await Promise.all(work)
    const final = await engine.depth(5000)

    expect(updates.length).toBeGreaterThan(5)
    expect(updates[0]!.firstSeq).toBe(String(BigInt(snapshot.lastUpdateId) + 1n))
    for (let i = 1; i < updates.length; i++)
      expect(BigInt(updates[i]!.firstSeq)).toBe(BigInt(updates[i - 1]!.lastSeq) + 1n)
    expect(updates.at(-1)!.lastSeq).toBe(final.lastUpdateId)

    const bids: Levels = new Map(snapshot.bids)
    const asks: Levels = new Map(snapshot.asks)
    for (const u of updates) {
      apply(bids, u.bids)
      apply(asks, u.asks)
    }
    expect(sorted(bids, true)).toEqual(final.bids)
    expect(sorted(asks, false)).toEqual(final.asks)
    const last = updates.at(-1)!
    expect(last.top.bids).toEqual(final.bids.slice(0, 20))
    expect(last.top.asks).toEqual(final.asks.slice(0, 20))
  })
})
