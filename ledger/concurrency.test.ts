/**
 * Many clients booking at once on the real Postgres: trades in two markets that share the quote asset,
 * deposits and withdrawals, all interleaved. Nothing may be lost, nothing may deadlock, and the books
 * must balance at the end.
 */
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../adapters/db/database.ts'
import { assets, users } from '../adapters/db/schema.ts'
import { createTestDatabase, type TestDatabase } from '../adapters/db/testing.ts'
import { BourseError } from '../lib/errors.ts'
import { findImbalances } from './invariants.ts'
import { book } from './ledger.ts'
import { creditDeposit, freezeMovements, startWithdrawal, tradeMovements } from './operations.ts'

const CLIENTS = 24
const OPERATIONS_PER_CLIENT = 25
const markets = [
  { market: 'BTCUSDT', base: 'BTC', quote: 'USDT' },
  { market: 'ETHUSDT', base: 'ETH', quote: 'USDT' },
]

describe('ledger under concurrent clients on postgres', () => {
  let handle: TestDatabase
  let userIds: bigint[] = []
  beforeAll(async () => {
    handle = await createTestDatabase('postgres', CLIENTS)
    await handle.db.insert(assets).values(['BTC', 'ETH', 'USDT'].map((symbol) => ({ symbol, scale: 8 })))
    const rows = await handle.db
      .insert(users)
      .values(Array.from({ length: 6 }, (_, i) => ({ name: `trader${i}` })))
      .returning()
    userIds = rows.map((r) => r.id)
    for (const userId of userIds) {
      for (const [asset, amount] of [
        ['BTC', '5'],
        ['ETH', '50'],
        ['USDT', '20000'],
      ] as const) {
        await creditDeposit(handle.db, { userId, asset, amount, depositRef: `seed:${userId}:${asset}` })
      }
    }
  })
  afterAll(async () => handle?.close())

  it('loses no update, never deadlocks, and balances the books', async () => {
    let seed = 42
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    const outcomes = { booked: 0, refused: 0 }
    const trade = (client: number, op: number) => {
      const m = markets[random(markets.length)]!
      const buyer = userIds[random(userIds.length)]!
      let seller = userIds[random(userIds.length)]!
      if (seller === buyer) seller = userIds[(userIds.indexOf(buyer) + 1) % userIds.length]!
      const quantity = `0.${1 + random(9)}`
      const quoteQuantity = String(300 + random(900))
      const ref = `${m.market}:${client}:${op}`
      return handle.db.transaction((tx) =>
        book(tx, {
          key: `batch:${ref}`,
          kind: 'engine_batch',
          movements: [
            ...freezeMovements({ userId: buyer, asset: m.quote, amount: quoteQuantity }, 'order', `${ref}:b`),
            ...freezeMovements({ userId: seller, asset: m.base, amount: quantity }, 'order', `${ref}:s`),
            ...tradeMovements({
              ...m,
              tradeRef: ref,
              buyerUserId: buyer,
              sellerUserId: seller,
              quantity,
              quoteQuantity,
              buyerFee: '0.0001',
              sellerFee: '0.3',
            }),
          ],
        }),
      )
    }
    const operation = (client: number, op: number) => {
      const userId = userIds[random(userIds.length)]!
      switch (random(4)) {
        case 0:
          return creditDeposit(handle.db, {
            userId,
            asset: 'USDT',
            amount: '150.5',
            depositRef: `dep:${client}:${op}`,
          })
        case 1:
          return startWithdrawal(handle.db, {
            userId,
            asset: 'BTC',
            amount: '0.7',
            withdrawalId: `w:${client}:${op}`,
          })
        default:
          return trade(client, op)
      }
    }
    await Promise.all(
      Array.from({ length: CLIENTS }, async (_, client) => {
        for (let op = 0; op < OPERATIONS_PER_CLIENT; op++) {
          try {
            await operation(client, op)
            outcomes.booked++
          } catch (err) {
            if (!(err instanceof BourseError && err.code === 'insufficient_funds')) throw err
            outcomes.refused++
          }
        }
      }),
    )
    expect(outcomes.booked + outcomes.refused).toBe(CLIENTS * OPERATIONS_PER_CLIENT)
    expect(outcomes.booked).toBeGreaterThan(CLIENTS * OPERATIONS_PER_CLIENT * 0.8)
    expect(await findImbalances(handle.db)).toEqual([])
    const journals = await queryRows<{ n: bigint }>(handle.db, sql`select count(*)::int8 as n from journals`)
    expect(journals[0]!.n).toBe(BigInt(outcomes.booked + userIds.length * 3))
  })
})
