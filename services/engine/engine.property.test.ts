/**
 * Random sequences of batches of commands from a handful of funded traders, each batch submitted at once so
 * that its commands share one engine batch. After every batch the engine and the ledger must agree to the
 * last unit; after every sequence a restarted engine must rebuild the same book from Postgres.
 */
import { sql } from 'drizzle-orm'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { testMarket } from '../../adapters/db/testing.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { BourseError } from '../../lib/errors.ts'
import type { StpMode, TimeInForce } from './book/types.ts'
import type { EngineRequest, MatchingEngine } from './engine.ts'
import {
  engineViolations,
  noViolations,
  orderShape,
  postgresDepth,
  postgresOpenOrders,
  trimDepth,
} from './load.ts'
import { type MarketFixture, marketFixture } from './testing.ts'

const TRADERS = 4
const FUNDS = { BTC: '3', USDT: '300' }
const side = fc.constantFrom('BUY' as const, 'SELL' as const)
const trader = fc.integer({ min: 0, max: TRADERS - 1 })
const stp = fc.constantFrom<StpMode>('NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH')
/** Prices 99.00..101.00 in steps of 0.05 around a mid of 100, so orders cross often. */
const price = fc.integer({ min: -20, max: 20 }).map((k) => ((10_000 + 5 * k) / 100).toFixed(2))
/** 0.001..3 BTC, mostly above the 1 USDT minimum notional. */
const quantity = fc.oneof(
  { weight: 9, arbitrary: fc.integer({ min: 10, max: 3000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 9 }) },
)
const lots = (n: number) => (n / 1000).toFixed(3)
const clientId = fc.option(fc.constantFrom('c0', 'c1', 'c2'), { nil: undefined })

type Command =
  | {
      t: 'limit'
      u: number
      side: 'BUY' | 'SELL'
      price: string
      quantity: string
      tif: TimeInForce
      maker: boolean
      cid: string | undefined
      stp: StpMode
    }
  | { t: 'market'; u: number; side: 'BUY' | 'SELL'; quantity: string; stp: StpMode }
  | { t: 'marketQuote'; u: number; side: 'BUY' | 'SELL'; quote: string; stp: StpMode }
  | { t: 'cancel'; u: number; owner: number | null; pick: number }
  | { t: 'cancelClient'; u: number; cid: string }
  | { t: 'cancelAll'; u: number }
  | { t: 'halt' }
  | { t: 'resume' }

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 30,
    arbitrary: fc.record({
      t: fc.constant('limit' as const),
      u: trader,
      side,
      price,
      quantity: quantity.map(lots),
      tif: fc.constantFrom<TimeInForce>('GTC', 'GTC', 'IOC', 'FOK'),
      maker: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
      cid: clientId,
      stp,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('market' as const),
      u: trader,
      side,
      quantity: quantity.map(lots),
      stp,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('marketQuote' as const),
      u: trader,
      side,
      quote: fc.integer({ min: 1, max: 30_000 }).map((c) => (c / 100).toFixed(2)),
      stp,
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      t: fc.constant('cancel' as const),
      u: trader,
      owner: fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: trader }),
      pick: fc.nat(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      t: fc.constant('cancelClient' as const),
      u: trader,
      cid: fc.constantFrom('c0', 'c1', 'c2'),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('cancelAll' as const), u: trader }) },
  { weight: 1, arbitrary: fc.constant({ t: 'halt' as const }) },
  { weight: 4, arbitrary: fc.constant({ t: 'resume' as const }) },
)

const batches = fc.array(fc.array(command, { minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 10 })

/** Codes a command may fail with; anything else ('unavailable', 'internal') is a failed commit or a bug. */
const expectedRejections = new Set([
  'invalid_input',
  'insufficient_funds',
  'not_found',
  'conflict',
  'rejected',
])

describe('matching engine properties on PGlite', () => {
  let market: MarketFixture
  let engine: MatchingEngine
  const users: bigint[] = []
  const deposits = { BTC: 0n, USDT: 0n }
  let run = 0

  beforeAll(async () => {
    market = await marketFixture('pglite')
    engine = await market.engine()
  })
  afterAll(async () => market?.close())

  const request = (c: Command, traders: bigint[], known: bigint[][]): EngineRequest => {
    switch (c.t) {
      case 'limit':
        return {
          kind: 'place',
          order: {
            userId: traders[c.u]!,
            side: c.side,
            type: c.maker ? 'LIMIT_MAKER' : 'LIMIT',
            ...(c.maker ? {} : { timeInForce: c.tif }),
            price: c.price,
            quantity: c.quantity,
            selfTradePreventionMode: c.stp,
            ...(c.cid === undefined ? {} : { clientOrderId: c.cid }),
          },
        }
      case 'market':
        return {
          kind: 'place',
          order: {
            userId: traders[c.u]!,
            side: c.side,
            type: 'MARKET',
            quantity: c.quantity,
            selfTradePreventionMode: c.stp,
          },
        }
      case 'marketQuote':
        return {
          kind: 'place',
          order: {
            userId: traders[c.u]!,
            side: c.side,
            type: 'MARKET',
            quoteOrderQty: c.quote,
            selfTradePreventionMode: c.stp,
          },
        }
      case 'cancel': {
        // One of the trader's orders that rested when placed (it may have closed since), or another's.
        const ids = known[c.owner ?? c.u]!
        return {
          kind: 'cancel',
          userId: traders[c.u]!,
          orderId: ids.length === 0 ? 1n : ids[c.pick % ids.length]!,
        }
      }
      case 'cancelClient':
        return { kind: 'cancel', userId: traders[c.u]!, clientOrderId: c.cid }
      case 'cancelAll':
        return { kind: 'cancelAll', userId: traders[c.u]! }
      case 'halt':
        return { kind: 'halt' }
      case 'resume':
        return { kind: 'resume' }
    }
  }

  async function checkAgreement(traders: bigint[], placed: number): Promise<void> {
    const db = market.database.db
    const depth = await engine.depth(5000)
    const bestBid = depth.bids[0]?.[0]
    const bestAsk = depth.asks[0]?.[0]
    if (bestBid !== undefined && bestAsk !== undefined) expect(Number(bestBid)).toBeLessThan(Number(bestAsk))
    expect(await findImbalances(db)).toEqual([])
    expect(
      await engineViolations(db, testMarket, { BTC: String(deposits.BTC), USDT: String(deposits.USDT) }),
    ).toEqual(noViolations)
    // The book is Postgres's open orders, level by level and order by order.
    expect(trimDepth(depth)).toEqual(await postgresDepth(db, testMarket.symbol))
    const engineOpen = users
      .flatMap((u) => engine.openOrders(u))
      .map(orderShape)
      .sort((a, b) => Number(BigInt(a.orderId) - BigInt(b.orderId)))
    expect(engineOpen).toEqual(await postgresOpenOrders(db, testMarket.symbol))
    // Only accepted orders were written: a rejected one left no row.
    const [{ count }] = (await queryRows<{ count: bigint }>(
      db,
      sql`select count(*)::int8 as count from orders where user_id in (${sql.join(traders, sql`, `)})`,
    )) as [{ count: bigint }]
    expect(Number(count)).toBe(placed)
  }

  it('keeps book, orders and ledger in agreement over random batches, and rebuilds the same book', async () => {
    await fc.assert(
      // Engine batches of one command, of a few, or of a whole submitted batch.
      fc.asyncProperty(batches, fc.constantFrom(1, 3, 200), async (sequence, batchMaxCommands) => {
        run++
        const carried = engine.snapshot()
        await engine.stop()
        engine = await market.engine({ batchMaxCommands })
        expect(engine.snapshot()).toEqual(carried)
        const traders: bigint[] = []
        for (let i = 0; i < TRADERS; i++) {
          traders.push(await market.trader(`prop-${run}-${i}`, FUNDS))
          deposits.BTC += BigInt(FUNDS.BTC)
          deposits.USDT += BigInt(FUNDS.USDT)
        }
        users.push(...traders)
        if (engine.status().status === 'halted') await engine.submit({ kind: 'resume' })
        const known: bigint[][] = traders.map(() => [])
        let placed = 0
        for (const batch of sequence) {
          const requests = batch.map((c) => request(c, traders, known))
          const results = await Promise.allSettled(requests.map((r) => engine.submit(r)))
          results.forEach((result, i) => {
            if (result.status === 'rejected') {
              expect(result.reason).toBeInstanceOf(BourseError)
              expect(expectedRejections).toContain((result.reason as BourseError).code)
              return
            }
            const value = result.value
            const c = batch[i]!
            if (value.kind === 'order' && c.t !== 'cancel' && c.t !== 'cancelClient') {
              placed++
              if (c.t === 'limit' && ['NEW', 'PARTIALLY_FILLED'].includes(value.order.status))
                known[c.u]!.push(BigInt(value.order.orderId))
            }
          })
          await checkAgreement(traders, placed)
        }
        const before = engine.snapshot()
        const status = engine.status().status
        await engine.stop()
        engine = await market.engine({ batchMaxCommands })
        expect(engine.snapshot()).toEqual(before)
        expect(engine.status().status).toBe(status)
        await checkAgreement(traders, placed)
      }),
      { numRuns: 30, endOnFailure: true },
    )
  }, 120_000)
})
