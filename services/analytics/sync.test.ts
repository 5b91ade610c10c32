/**
 * The copier and the archiver against a real Postgres (two connections, so one transaction can commit a
 * lower id after another's higher one) and chDB.
 */
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Analytics, openAnalytics } from '../../adapters/analytics/analytics.ts'
import { type Database, queryRows } from '../../adapters/db/database.ts'
import { book } from '../../ledger/ledger.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { archiveOrders } from './archiver.ts'
import { type CopyOptions, copyAll, copyTable } from './copier.ts'
import { LEDGER_HISTORY, migrateHistory, ORDER_HISTORY, USER_TRADES } from './tables.ts'

let fx: MarketFixture
let db: Database
let ch: Analytics
let alice: bigint
let bob: bigint
let nextOrderId = 1000n
let nextTradeId = 1n

beforeAll(async () => {
  fx = await marketFixture('postgres', 4)
  db = fx.database.db
  alice = await fx.trader('alice', { USDT: '1000' })
  bob = await fx.trader('bob', { BTC: '5' })
  ch = openAnalytics({ kind: 'chdb' })
  await migrateHistory(ch)
  await migrateHistory(ch) // twice: idempotent
})

afterAll(async () => {
  await ch?.close()
  await fx?.close()
})

/** An order written as the engine writes it, with chosen times (seconds ago, database clock). */
async function order(o: {
  user: bigint
  status?: string
  createdAgo?: number
  updatedAgo?: number
  executed?: string
}): Promise<bigint> {
  const id = nextOrderId++
  await db.execute(
    sql`insert into orders (market, id, user_id, client_order_id, side, type, time_in_force, self_trade_prevention,
          price, quantity, executed_quantity, status, created_at, updated_at)
        values ('BTCUSDT', ${id}, ${o.user}, ${`c${id}`}, 'BUY', 'LIMIT', 'GTC', 'NONE', '100.5', '0.25',
          ${o.executed ?? '0'}, ${o.status ?? 'NEW'},
          now() - ${o.createdAgo ?? 0}::int8 * interval '1 second',
          now() - ${o.updatedAgo ?? o.createdAgo ?? 0}::int8 * interval '1 second')`,
  )
  return id
}

async function trade(agoSeconds = 0): Promise<bigint> {
  const id = nextTradeId++
  await db.execute(
    sql`insert into trades (market, id, taker_order_id, maker_order_id, buyer_user_id, seller_user_id, buyer_is_maker,
          price, quantity, quote_quantity, buyer_fee, seller_fee, created_at)
        values ('BTCUSDT', ${id}, 1, 2, ${alice}, ${bob}, false, '100.12345678', '0.001', '0.10012345', '0.000001', '0.0001',
          now() - ${agoSeconds}::int8 * interval '1 second')`,
  )
  return id
}

async function chQuery<T>(query: string): Promise<T[]> {
  return (await ch.query({ query, format: 'JSONEachRow' })).json<T>()
}

/** A table's rows as ClickHouse's FINAL shows them, in key order, as text. */
async function finalRows(table: string, key: string): Promise<string[]> {
  const rows = await chQuery<Record<string, unknown>>(`SELECT * FROM ${table} FINAL ORDER BY ${key}`)
  return rows.map((r) => JSON.stringify(r))
}

const pgCount = async (table: string) =>
  Number((await queryRows<{ n: string }>(db, sql`select count(*)::text as n from ${sql.raw(table)}`))[0]!.n)
const chCount = async (table: string, final = true) =>
  Number((await chQuery<{ n: string }>(`SELECT count() AS n FROM ${table}${final ? ' FINAL' : ''}`))[0]!.n)

describe('copier', () => {
  const opts = (o: Partial<CopyOptions> = {}): CopyOptions => ({
    db,
    analytics: ch,
    lagMs: 0,
    batchSize: 3,
    ...o,
  })

  it('copies orders, trades and ledger entries in batches, and a re-copy changes nothing', async () => {
    for (let i = 0; i < 7; i++) await order({ user: alice, createdAgo: 30 - i })
    for (let i = 0; i < 5; i++) await trade(20 - i)
    const first = await copyAll(opts())
    expect(first.map((r) => r.rows)).toEqual([7, 5, await pgCount('ledger_entries')])
    expect(await chCount(ORDER_HISTORY)).toBe(7)
    expect(await chCount(USER_TRADES)).toBe(5)
    expect(await chCount(LEDGER_HISTORY)).toBe(await pgCount('ledger_entries'))
    const before = {
      orders: await finalRows(ORDER_HISTORY, 'market, id'),
      trades: await finalRows(USER_TRADES, 'market, id'),
      ledger: await finalRows(LEDGER_HISTORY, 'id'),
    }
    // The overlap (a day here) re-reads every row: inserted again, the same rows come out of FINAL.
    const again = await copyAll(opts({ overlapMs: 86_400_000 }))
    expect(again.map((r) => r.rows)).toEqual(first.map((r) => r.rows))
    expect({
      orders: await finalRows(ORDER_HISTORY, 'market, id'),
      trades: await finalRows(USER_TRADES, 'market, id'),
      ledger: await finalRows(LEDGER_HISTORY, 'id'),
    }).toEqual(before)
    // Exact decimals and microsecond times, as Postgres has them.
    const [t] = await chQuery<{ price: string; created_at: string }>(
      `SELECT toString(price) AS price, toString(created_at) AS created_at FROM ${USER_TRADES} FINAL WHERE id = 1`,
    )
    const [pg] = await queryRows<{ created_at: string }>(
      db,
      sql`select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') as created_at from trades where id = 1`,
    )
    expect(t).toEqual({ price: '100.12345678', created_at: pg!.created_at })
  })

  it('keeps the latest state of an order copied while open and again once closed', async () => {
    const id = await order({ user: alice })
    await copyTable(opts(), 'orders')
    await db.execute(
      sql`update orders set status = 'FILLED', executed_quantity = '0.25', updated_at = now() where id = ${id}`,
    )
    await copyTable(opts(), 'orders')
    // Re-inserting the open state after the closed one (an out-of-order retry) does not bring it back.
    await ch.insert({
      table: ORDER_HISTORY,
      format: 'JSONEachRow',
      values: [
        {
          ...(
            await chQuery<Record<string, unknown>>(`SELECT * FROM ${ORDER_HISTORY} FINAL WHERE id = ${id}`)
          )[0],
          status: 'NEW',
          executed_quantity: '0',
          updated_at: '2000-01-01 00:00:00.000000',
        },
      ],
    })
    const rows = await chQuery<{ status: string; executed: string }>(
      `SELECT status, toString(executed_quantity) AS executed FROM ${ORDER_HISTORY} FINAL WHERE id = ${id}`,
    )
    expect(rows).toEqual([{ status: 'FILLED', executed: '0.25' }])
  })

  it('does not skip a lower id that commits after a higher one was copied', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let entered!: () => void
    const inside = new Promise<void>((resolve) => {
      entered = resolve
    })
    const deposit = (tx: Parameters<typeof book>[0], user: bigint, asset: string, ref: string) =>
      book(tx, {
        key: `test:${ref}`,
        kind: 'deposit',
        movements: [
          {
            owner: { system: 'custody' },
            asset,
            bucket: 'available',
            amount: '-1',
            reason: 'deposit',
            refType: 'deposit',
            refId: ref,
          },
          {
            owner: { userId: user },
            asset,
            bucket: 'available',
            amount: '1',
            reason: 'deposit',
            refType: 'deposit',
            refId: ref,
          },
        ],
      })
    // A takes the lower ids and stays open; B takes higher ids and commits; a pass copies B.
    const slow = db.transaction(async (tx) => {
      await deposit(tx, alice, 'BTC', 'slow')
      entered()
      await gate
    })
    await inside
    await db.transaction((tx) => deposit(tx, bob, 'USDT', 'fast'))
    const ids = await queryRows<{ ref_id: string; id: string }>(
      db,
      sql`select ref_id, id::text as id from ledger_entries where ref_id in ('slow', 'fast') order by id`,
    )
    expect(ids.map((r) => r.ref_id)).toEqual(['fast', 'fast']) // the slow ones are not visible yet
    await copyTable(opts({ overlapMs: 0 }), 'ledger_entries')
    const copied = async (ref: string) =>
      Number(
        (
          await chQuery<{ n: string }>(
            `SELECT count() AS n FROM ${LEDGER_HISTORY} FINAL WHERE ref_id = '${ref}'`,
          )
        )[0]!.n,
      )
    expect(await copied('fast')).toBe(2)
    release()
    await slow
    const [slowId] = await queryRows<{ id: string }>(
      db,
      sql`select min(id)::text as id from ledger_entries where ref_id = 'slow'`,
    )
    const [fastId] = await queryRows<{ id: string }>(
      db,
      sql`select min(id)::text as id from ledger_entries where ref_id = 'fast'`,
    )
    expect(BigInt(slowId!.id)).toBeLessThan(BigInt(fastId!.id))
    // With no overlap (and no lag) the late commit lies behind the watermark: this is what the margins are for.
    await copyTable(opts({ overlapMs: 0 }), 'ledger_entries')
    expect(await copied('slow')).toBe(0)
    // The overlap re-reads behind the watermark and finds it.
    await copyTable(opts({ overlapMs: 60_000 }), 'ledger_entries')
    expect(await copied('slow')).toBe(2)
    expect(await chCount(LEDGER_HISTORY)).toBe(await pgCount('ledger_entries'))
  })

  it('waits out the lag: rows younger than it are left for a later pass', async () => {
    const id = await order({ user: bob })
    await copyTable(opts({ lagMs: 60_000 }), 'orders')
    expect(await chCount(`${ORDER_HISTORY} FINAL WHERE id = ${id} AND 1`, false)).toBe(0)
    await copyTable(opts({ lagMs: 0, overlapMs: 120_000 }), 'orders')
    expect(await chCount(`${ORDER_HISTORY} FINAL WHERE id = ${id} AND 1`, false)).toBe(1)
  })
})

describe('archiver', () => {
  const DAY = 86_400

  it('moves old closed orders out of Postgres and never deletes one ClickHouse does not hold as it is', async () => {
    const oldClosed = [
      await order({
        user: alice,
        status: 'FILLED',
        executed: '0.25',
        createdAgo: 3 * DAY,
        updatedAgo: 2 * DAY,
      }),
      await order({ user: alice, status: 'CANCELED', createdAgo: 3 * DAY, updatedAgo: 2 * DAY }),
      await order({ user: bob, status: 'EXPIRED', createdAgo: 3 * DAY, updatedAgo: 2 * DAY }),
      await order({ user: bob, status: 'REJECTED', createdAgo: 3 * DAY, updatedAgo: 2 * DAY }),
      await order({ user: bob, status: 'EXPIRED_IN_MATCH', createdAgo: 3 * DAY, updatedAgo: 2 * DAY }),
    ]
    const oldOpen = await order({
      user: alice,
      status: 'PARTIALLY_FILLED',
      executed: '0.1',
      createdAgo: 3 * DAY,
    })
    const recentClosed = await order({ user: alice, status: 'FILLED', executed: '0.25', createdAgo: 60 })
    // Copied while open; then closed (a late commit) with a time far behind the watermark, so no pass copies
    // it again: ClickHouse holds a stale state.
    const stale = await order({ user: alice, status: 'NEW', createdAgo: 3 * DAY })
    await copyAll({ db, analytics: ch, lagMs: 0, batchSize: 2, overlapMs: 3 * DAY * 1000 })
    await db.execute(
      sql`update orders set status = 'CANCELED', updated_at = now() - interval '2 days' where id = ${stale}`,
    )
    // Committed late with an old time and never copied.
    const missing = await order({
      user: bob,
      status: 'FILLED',
      executed: '0.25',
      createdAgo: 3 * DAY,
      updatedAgo: 2 * DAY,
    })

    const result = await archiveOrders({ db, analytics: ch, retentionMs: DAY * 1000, chunkSize: 2 })
    expect(result).toEqual({ archived: oldClosed.length, unverified: 2 })
    const left = await queryRows<{ id: string }>(db, sql`select id::text as id from orders`)
    const leftIds = new Set(left.map((r) => BigInt(r.id)))
    for (const id of oldClosed) expect(leftIds.has(id)).toBe(false)
    for (const id of [oldOpen, recentClosed, stale, missing]) expect(leftIds.has(id)).toBe(true)
    // The archived ones are all in ClickHouse.
    const inCh = await chQuery<{ id: string }>(
      `SELECT toString(id) AS id FROM ${ORDER_HISTORY} FINAL WHERE id IN (${oldClosed.join(',')})`,
    )
    expect(inCh.length).toBe(oldClosed.length)

    // Once the copy catches up (a wide overlap here), the rest goes too; a second run has nothing to do.
    await copyTable({ db, analytics: ch, lagMs: 0, overlapMs: 3 * DAY * 1000 }, 'orders')
    expect(await archiveOrders({ db, analytics: ch, retentionMs: DAY * 1000 })).toEqual({
      archived: 2,
      unverified: 0,
    })
    expect(await archiveOrders({ db, analytics: ch, retentionMs: DAY * 1000 })).toEqual({
      archived: 0,
      unverified: 0,
    })
    const after = await queryRows<{ id: string }>(db, sql`select id::text as id from orders`)
    expect(new Set(after.map((r) => BigInt(r.id)))).toContain(oldOpen)
    expect(after.some((r) => BigInt(r.id) === stale || BigInt(r.id) === missing)).toBe(false)
  })
})
