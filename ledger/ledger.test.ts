import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../adapters/db/database.ts'
import { assets, users } from '../adapters/db/schema.ts'
import { createTestDatabase, type TestDatabase } from '../adapters/db/testing.ts'
import { findImbalances } from './invariants.ts'
import { balancesOf, book } from './ledger.ts'
import {
  adjustBalance,
  completeWithdrawal,
  creditDeposit,
  failWithdrawal,
  freeze,
  startWithdrawal,
  tradeMovements,
} from './operations.ts'

for (const kind of ['postgres', 'pglite'] as const) {
  describe(`ledger on ${kind}`, () => {
    let handle: TestDatabase
    let nextUser = 0
    beforeAll(async () => {
      handle = await createTestDatabase(kind)
      await handle.db.insert(assets).values([
        { symbol: 'BTC', scale: 8 },
        { symbol: 'USDT', scale: 6 },
      ])
    })
    afterAll(async () => handle?.close())

    const newUser = async () => {
      const [user] = await handle.db
        .insert(users)
        .values({ name: `user${nextUser++}` })
        .returning()
      return user!.id
    }
    const balances = async (userId: bigint) =>
      Object.fromEntries((await balancesOf(handle.db, userId)).map((b) => [b.asset, [b.available, b.frozen]]))
    const entryCount = async () =>
      (await queryRows<{ n: bigint }>(handle.db, sql`select count(*)::int8 as n from ledger_entries`))[0]!.n

    it('credits a deposit once, however often it is reported', async () => {
      const alice = await newUser()
      const first = await creditDeposit(handle.db, {
        userId: alice,
        asset: 'BTC',
        amount: '1.5',
        depositRef: `0xabc:${alice}`,
      })
      const again = await creditDeposit(handle.db, {
        userId: alice,
        asset: 'BTC',
        amount: '1.5',
        depositRef: `0xabc:${alice}`,
      })
      expect(first.duplicate).toBe(false)
      expect(again).toEqual({ journalId: first.journalId, duplicate: true, userBalances: [] })
      expect(first.userBalances).toEqual([{ userId: alice, asset: 'BTC', available: '1.5', frozen: '0' }])
      expect(await balances(alice)).toEqual({ BTC: ['1.5', '0'] })
      expect(await findImbalances(handle.db)).toEqual([])
    })

    it('refuses to freeze more than is available and changes nothing', async () => {
      const bob = await newUser()
      await creditDeposit(handle.db, { userId: bob, asset: 'USDT', amount: '100', depositRef: `d:${bob}` })
      const before = await entryCount()
      await expect(
        freeze(handle.db, {
          userId: bob,
          asset: 'USDT',
          amount: '100.000001',
          key: `f:${bob}`,
          refType: 'order',
          refId: 'X:1',
        }),
      ).rejects.toMatchObject({ code: 'insufficient_funds', status: 422 })
      expect(await entryCount()).toBe(before)
      expect(await balances(bob)).toEqual({ USDT: ['100', '0'] })
    })

    it('settles a trade from both frozen sides, fees to the market in the asset received', async () => {
      const buyer = await newUser()
      const seller = await newUser()
      await creditDeposit(handle.db, {
        userId: buyer,
        asset: 'USDT',
        amount: '1000',
        depositRef: `d:${buyer}`,
      })
      await creditDeposit(handle.db, { userId: seller, asset: 'BTC', amount: '2', depositRef: `d:${seller}` })
      await freeze(handle.db, {
        userId: buyer,
        asset: 'USDT',
        amount: '600',
        key: `f:${buyer}`,
        refType: 'order',
        refId: 'BTCUSDT:1',
      })
      await freeze(handle.db, {
        userId: seller,
        asset: 'BTC',
        amount: '1',
        key: `f:${seller}`,
        refType: 'order',
        refId: 'BTCUSDT:2',
      })
      await handle.db.transaction((tx) =>
        book(tx, {
          key: `trade:${buyer}`,
          kind: 'engine_batch',
          movements: tradeMovements({
            tradeRef: 'BTCUSDT:1',
            market: 'BTCUSDT',
            base: 'BTC',
            quote: 'USDT',
            buyerUserId: buyer,
            sellerUserId: seller,
            quantity: '1',
            quoteQuantity: '500',
            buyerFee: '0.001',
            sellerFee: '0.5',
          }),
        }),
      )
      expect(await balances(buyer)).toEqual({ BTC: ['0.999', '0'], USDT: ['400', '100'] })
      expect(await balances(seller)).toEqual({ BTC: ['1', '0'], USDT: ['499.5', '0'] })
      const fees = await queryRows<{ asset: string; available: string }>(
        handle.db,
        sql`select asset, available::text from accounts where system = 'fees:BTCUSDT' order by asset`,
      )
      expect(fees).toEqual([
        { asset: 'BTC', available: '0.001' },
        { asset: 'USDT', available: '0.5' },
      ])
      expect(await findImbalances(handle.db)).toEqual([])
    })

    it('takes a withdrawal to pending, then completes or fails it — never both', async () => {
      const carol = await newUser()
      await creditDeposit(handle.db, { userId: carol, asset: 'USDT', amount: '50', depositRef: `d:${carol}` })
      await startWithdrawal(handle.db, {
        userId: carol,
        asset: 'USDT',
        amount: '20',
        withdrawalId: `w1:${carol}`,
      })
      expect(await balances(carol)).toEqual({ USDT: ['30', '0'] })
      await completeWithdrawal(handle.db, {
        userId: carol,
        asset: 'USDT',
        amount: '20',
        withdrawalId: `w1:${carol}`,
      })
      const late = await failWithdrawal(handle.db, {
        userId: carol,
        asset: 'USDT',
        amount: '20',
        withdrawalId: `w1:${carol}`,
      })
      expect(late.duplicate).toBe(true)
      expect(await balances(carol)).toEqual({ USDT: ['30', '0'] })

      await startWithdrawal(handle.db, {
        userId: carol,
        asset: 'USDT',
        amount: '10',
        withdrawalId: `w2:${carol}`,
      })
      await failWithdrawal(handle.db, {
        userId: carol,
        asset: 'USDT',
        amount: '10',
        withdrawalId: `w2:${carol}`,
      })
      expect(await balances(carol)).toEqual({ USDT: ['30', '0'] })
      expect(await findImbalances(handle.db)).toEqual([])
    })

    it('records an admin adjustment with who and why, and refuses one that overdraws', async () => {
      const dave = await newUser()
      await adjustBalance(handle.db, {
        userId: dave,
        asset: 'BTC',
        amount: '0.25',
        key: `a1:${dave}`,
        reason: 'goodwill',
        admin: 'ops',
      })
      await adjustBalance(handle.db, {
        userId: dave,
        asset: 'BTC',
        amount: '-0.05',
        key: `a2:${dave}`,
        reason: 'fix',
        admin: 'ops',
      })
      await expect(
        adjustBalance(handle.db, {
          userId: dave,
          asset: 'BTC',
          amount: '-1',
          key: `a3:${dave}`,
          reason: 'x',
          admin: 'ops',
        }),
      ).rejects.toMatchObject({ code: 'insufficient_funds' })
      expect(await balances(dave)).toEqual({ BTC: ['0.2', '0'] })
      const memos = await queryRows<{ memo: string }>(
        handle.db,
        sql`select memo from journals where idempotency_key like ${`adjustment:a%:${dave}`} order by id`,
      )
      expect(memos.map((m) => m.memo)).toEqual(['ops: goodwill', 'ops: fix'])
      expect(await findImbalances(handle.db)).toEqual([])
    })

    it('refuses a booking that does not balance, in code and in the database', async () => {
      const erin = await newUser()
      await expect(
        handle.db.transaction((tx) =>
          book(tx, {
            key: `bad:${erin}`,
            kind: 'adjustment',
            movements: [
              {
                owner: { userId: erin },
                asset: 'BTC',
                bucket: 'available',
                amount: '1',
                reason: 'adjustment',
                refType: 'admin',
                refId: 'x',
              },
            ],
          }),
        ),
      ).rejects.toThrow(/does not balance in BTC/)
      await expect(
        handle.db.transaction(async (tx) => {
          const [j] = await queryRows<{ id: bigint }>(
            tx,
            sql`insert into journals (idempotency_key, kind) values (${`raw:${erin}`}, 'adjustment') returning id`,
          )
          await tx.execute(sql`insert into ledger_entries (journal_id, account_id, asset, bucket, amount, reason, ref_type, ref_id)
                               select ${j!.id}, id, 'BTC', 'available', 5, 'adjustment', 'admin', 'raw' from accounts limit 1`)
        }),
      ).rejects.toThrow()
      expect(await findImbalances(handle.db)).toEqual([])
    })
  })
}
