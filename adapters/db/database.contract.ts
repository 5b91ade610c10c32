/**
 * The contract both database implementations keep: one schema and migrations, exact NUMERIC and int8,
 * atomic transactions, row locks that lose no update, and the ledger's, orders' and trades' constraints
 * enforced by the database.
 */
import { eq, sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pgArray, queryRows } from './database.ts'
import { accounts, assets, journals, ledgerEntries, markets, orders, trades, users } from './schema.ts'
import { createTestDatabase, type TestDatabase, testMarket } from './testing.ts'

export function databaseContract(kind: 'postgres' | 'pglite'): void {
  describe(`database contract: ${kind}`, () => {
    let handle: TestDatabase
    beforeAll(async () => {
      handle = await createTestDatabase(kind)
      await handle.db.insert(assets).values({ symbol: 'BTC', scale: 8 })
    })
    afterAll(async () => handle?.close())

    const newUser = async (name: string) => {
      const [user] = await handle.db.insert(users).values({ name }).returning()
      return user!
    }

    it('applies its migrations once: a second run changes nothing', async () => {
      await handle.migrate()
      const rows = await queryRows<{ n: bigint }>(handle.db, sql`select count(*)::int8 as n from assets`)
      expect(rows[0]!.n).toBe(1n)
    })

    it('keeps NUMERIC exact and returns int8 as bigint', async () => {
      const user = await newUser('exact')
      const value = '123456789012345678.123456789012345678'
      const [row] = await handle.db
        .insert(accounts)
        .values({ userId: user.id, asset: 'BTC', available: value })
        .returning()
      expect(row!.available).toBe(value)
      expect(typeof row!.id).toBe('bigint')
      const raw = await queryRows<{ available: string; big: bigint }>(
        handle.db,
        sql`select available, 9223372036854775807::int8 as big from accounts where id = ${row!.id}`,
      )
      expect(raw[0]).toEqual({ available: value, big: 9223372036854775807n })
    })

    it('passes any text, number and time through a pgArray literal unchanged', async () => {
      const texts = [
        '12.5',
        '-0.00000001',
        'BTCUSDT:42',
        '2026-12-07T05:07:03.123Z',
        'fees:BTCUSDT',
        'a_b.c+d-e',
      ]
      const awkward = [
        '',
        'NULL',
        'null',
        'a"b',
        'back\\slash',
        '{,}',
        ' spaced ',
        "it's",
        '"\\',
        'é',
        'tab\t',
      ]
      const values = [...texts, ...awkward, null]
      // Element by element: postgres.js reads a NULL inside a returned text[] as the string "NULL".
      const rows = await queryRows<{ value: string | null }>(
        handle.db,
        sql`select value from unnest(${pgArray(values)}::text[]) with ordinality as t(value, i) order by i`,
      )
      expect(rows.map((r) => r.value)).toEqual(values)
      const [typed] = await queryRows<{ ids: string; amounts: string; times: string }>(
        handle.db,
        sql`select (${pgArray(['1', '9223372036854775807', null])}::int8[])::text as ids,
                   (${pgArray(['0.1', '-12345678901234567890.123456789'])}::numeric[])::text as amounts,
                   (${pgArray(['2026-12-07T05:07:03.123Z'])}::timestamptz[] = array['2026-12-07 05:07:03.123+00'::timestamptz])::text as times`,
      )
      expect(typed).toEqual({
        ids: '{1,9223372036854775807,NULL}',
        amounts: '{0.1,-12345678901234567890.123456789}',
        times: 'true',
      })
    })

    it('rolls a failed transaction back whole', async () => {
      const user = await newUser('rollback')
      await expect(
        handle.db.transaction(async (tx) => {
          await tx.insert(accounts).values({ userId: user.id, asset: 'BTC', available: '5' })
          throw new Error('abort')
        }),
      ).rejects.toThrow('abort')
      const rows = await handle.db.select().from(accounts).where(eq(accounts.userId, user.id))
      expect(rows).toEqual([])
    })

    it('loses no update when many transactions lock and add to one row', async () => {
      const user = await newUser('counter')
      const [account] = await handle.db.insert(accounts).values({ userId: user.id, asset: 'BTC' }).returning()
      const increments = 40
      await Promise.all(
        Array.from({ length: increments }, () =>
          handle.db.transaction(async (tx) => {
            const [locked] = await queryRows<{ available: string }>(
              tx,
              sql`select available from accounts where id = ${account!.id} for update`,
            )
            const next = (BigInt(locked!.available) + 1n).toString()
            await tx.update(accounts).set({ available: next }).where(eq(accounts.id, account!.id))
          }),
        ),
      )
      const [final] = await handle.db.select().from(accounts).where(eq(accounts.id, account!.id))
      expect(final!.available).toBe(String(increments))
    })

    it('refuses a negative user balance and changes nothing', async () => {
      const user = await newUser('negative')
      const [account] = await handle.db
        .insert(accounts)
        .values({ userId: user.id, asset: 'BTC', available: '1' })
        .returning()
      await expect(
        handle.db.update(accounts).set({ available: '-0.00000001' }).where(eq(accounts.id, account!.id)),
      ).rejects.toThrow()
      const [after] = await handle.db.select().from(accounts).where(eq(accounts.id, account!.id))
      expect(after!.available).toBe('1')
    })

    it('keeps the ledger balanced, append-only, its entries on real journals and accounts, and its keys unique', async () => {
      const user = await newUser('ledger')
      const [account] = await handle.db.insert(accounts).values({ userId: user.id, asset: 'BTC' }).returning()
      const [journal] = await handle.db
        .insert(journals)
        .values({ idempotencyKey: 'deposit:tx1:0', kind: 'deposit' })
        .returning()
      const [custody] = await handle.db
        .insert(accounts)
        .values({ system: 'custody', asset: 'BTC' })
        .returning()
      const entry = {
        journalId: journal!.id,
        asset: 'BTC',
        bucket: 'available',
        reason: 'deposit',
        refType: 'deposit',
        refId: 'tx1:0',
      } as const
      await handle.db.insert(ledgerEntries).values([
        { ...entry, accountId: account!.id, amount: '1' },
        { ...entry, accountId: custody!.id, amount: '-1' },
      ])
      await expect(
        handle.db.insert(ledgerEntries).values({ ...entry, accountId: account!.id, amount: '2' }),
      ).rejects.toThrow()
      await expect(
        handle.db.insert(journals).values({ idempotencyKey: 'deposit:tx1:0', kind: 'deposit' }),
      ).rejects.toThrow()
      await expect(handle.db.update(ledgerEntries).set({ amount: '2' })).rejects.toThrow()
      await expect(handle.db.delete(journals).where(eq(journals.id, journal!.id))).rejects.toThrow()
      // The database's own message, under the driver's "Failed query" wrapper.
      const refused = (query: Promise<unknown>, pattern: RegExp) =>
        expect(
          query.then(
            () => 'accepted',
            (e: Error) => String((e.cause as Error | undefined)?.message ?? e.message),
          ),
        ).resolves.toMatch(pattern)
      await refused(handle.db.delete(accounts).where(eq(accounts.id, account!.id)), /append-only/)
      // An entry must name an existing journal, and an account of its own asset.
      const [other] = await handle.db
        .insert(journals)
        .values({ idempotencyKey: 'deposit:tx2:0', kind: 'deposit' })
        .returning()
      const balancedPair = (journalId: bigint, accountId: bigint, asset: 'BTC' | 'ETH') => [
        { ...entry, journalId, asset, accountId, amount: '1' },
        { ...entry, journalId, asset, accountId: custody!.id, amount: '-1' },
      ]
      const orphan = /no such journal, or no such account/
      await refused(
        handle.db.insert(ledgerEntries).values(balancedPair(journal!.id + 1000n, account!.id, 'BTC')),
        orphan,
      )
      await refused(
        handle.db.insert(ledgerEntries).values(balancedPair(other!.id, account!.id + 1000n, 'BTC')),
        orphan,
      )
      await refused(
        handle.db.insert(ledgerEntries).values(balancedPair(other!.id, account!.id, 'ETH')),
        orphan,
      )
      const entries = await handle.db
        .select()
        .from(ledgerEntries)
        .where(eq(ledgerEntries.journalId, journal!.id))
      expect(entries.map((e) => e.amount).sort()).toEqual(['-1', '1'])
    })

    it('keeps orders and trades naming an existing market and user', async () => {
      await handle.db.insert(assets).values({ symbol: 'USDT', scale: 8 }).onConflictDoNothing()
      await handle.db.insert(markets).values(testMarket)
      const user = await newUser('trader')
      const order = (id: bigint, market: string, userId: bigint) => ({
        market,
        id,
        userId,
        clientOrderId: `c${id}`,
        side: 'BUY' as const,
        type: 'LIMIT' as const,
        timeInForce: 'GTC' as const,
        selfTradePrevention: 'NONE' as const,
        price: '1',
        quantity: '1',
        status: 'NEW' as const,
      })
      const trade = (id: bigint, market: string) => ({
        market,
        id,
        takerOrderId: 1n,
        makerOrderId: 2n,
        buyerUserId: user.id,
        sellerUserId: user.id,
        buyerIsMaker: true,
        price: '1',
        quantity: '1',
        quoteQuantity: '1',
        buyerFee: '0',
        sellerFee: '0',
      })
      const refusedWith = async (query: Promise<unknown>, pattern: RegExp) => {
        const error = await query.then(
          () => undefined,
          (e: Error) => e,
        )
        expect(String((error?.cause as Error | undefined)?.message ?? error?.message)).toMatch(pattern)
      }
      await handle.db.insert(orders).values([order(1n, 'BTCUSDT', user.id), order(2n, 'BTCUSDT', user.id)])
      await handle.db.insert(trades).values(trade(1n, 'BTCUSDT'))
      await refusedWith(
        handle.db.insert(orders).values([order(3n, 'BTCUSDT', user.id), order(4n, 'BTCUSDT', user.id + 99n)]),
        /no such market, or no such user/,
      )
      await refusedWith(handle.db.insert(orders).values(order(5n, 'ETHUSDT', user.id)), /no such market/)
      await refusedWith(handle.db.insert(trades).values(trade(2n, 'ETHUSDT')), /no such market/)
      await refusedWith(handle.db.delete(users).where(eq(users.id, user.id)), /orders name users/)
      await refusedWith(handle.db.delete(markets), /orders and trades name markets/)
      await refusedWith(
        handle.db.update(orders).set({ userId: user.id + 99n }),
        /an order's market and user never change/,
      )
      await refusedWith(handle.db.update(trades).set({ market: 'ETHUSDT' }), /a trade's market never changes/)
      // Nothing refused was written; the updates that name neither column go through.
      await handle.db.update(orders).set({ status: 'CANCELED' }).where(eq(orders.id, 2n))
      const stored = await handle.db.select({ id: orders.id, status: orders.status }).from(orders)
      expect(stored.sort((a, b) => Number(a.id - b.id))).toEqual([
        { id: 1n, status: 'NEW' },
        { id: 2n, status: 'CANCELED' },
      ])
      expect((await handle.db.select().from(trades)).map((t) => t.id)).toEqual([1n])
    })
  })
}
