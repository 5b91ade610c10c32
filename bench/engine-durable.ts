/**
 * Acknowledged orders per second through the engine with the real Postgres commit, against the raw speed of
 * inserting the very rows the engine wrote (orders, trades, journals, ledger entries, outbox events) into
 * copies of the same tables of the same Postgres, in as many transactions as the engine committed batches:
 * the limit any design that writes those rows could reach. Then p50 and p99 acknowledgement latency with
 * orders arriving at half the maximum rate.
 */
import { sql } from 'drizzle-orm'
import { queryRows } from '../adapters/db/database.ts'
import { accounts, assets, markets, users } from '../adapters/db/schema.ts'
import { createTestDatabase, type TestDatabase, testMarket } from '../adapters/db/testing.ts'
import { createLogger } from '../lib/log.ts'
import { type EngineRequest, MatchingEngine } from '../services/engine/engine.ts'
import { median, report, round, seededRandom } from './report.ts'

const TRADERS = 500
const ORDERS = 30_000
const IN_FLIGHT = 4_000
const LATENCY_SECONDS = 5
const TABLES = ['orders', 'trades', 'journals', 'ledger_entries', 'outbox'] as const

/** Limit orders around 100.00: most rest, about one in five crosses and trades. */
function workload(count: number, userIds: bigint[], seed: number): EngineRequest[] {
  const next = seededRandom(seed)
  return Array.from({ length: count }, () => {
    const side = next() < 0.5 ? 'BUY' : 'SELL'
    const crossing = next() < 0.2
    const offset = Math.floor(next() * 200) + 1
    const cents =
      side === 'BUY' ? 10_000 + (crossing ? offset : -offset) : 10_000 + (crossing ? -offset : offset)
    return {
      kind: 'place',
      order: {
        userId: userIds[Math.floor(next() * userIds.length)]!,
        side,
        type: 'LIMIT',
        price: (cents / 100).toFixed(2),
        quantity: (Math.floor(next() * 50 + 1) / 1000).toFixed(3),
      },
    }
  })
}

async function setUp(): Promise<{ database: TestDatabase; engine: MatchingEngine; userIds: bigint[] }> {
  const database = await createTestDatabase('postgres', 8)
  await database.db.insert(assets).values([
    { symbol: 'BTC', scale: 8 },
    { symbol: 'USDT', scale: 8 },
  ])
  await database.db.insert(markets).values(testMarket)
  const rows = await database.db
    .insert(users)
    .values(Array.from({ length: TRADERS }, (_, i) => ({ name: `bench${i}` })))
    .returning()
  const userIds = rows.map((r) => r.id)
  // Funding straight into balances is fine for a benchmark: it measures trading, not deposits.
  await database.db
    .insert(accounts)
    .values(
      userIds.flatMap((userId) =>
        ['BTC', 'USDT'].map((asset) => ({ userId, asset, available: '1000000000' })),
      ),
    )
  const engine = await MatchingEngine.start({
    database,
    symbol: 'BTCUSDT',
    batchMaxCommands: 2000,
    batchWindowMs: 2,
    log: createLogger('bench', { level: 'silent' }),
  })
  return { database, engine, userIds }
}

/** Closed loop: keeps IN_FLIGHT orders outstanding until all are acknowledged. */
async function maxRate(engine: MatchingEngine, requests: EngineRequest[]): Promise<number> {
  let next = 0
  const started = performance.now()
  const worker = async () => {
    while (next < requests.length) {
      const request = requests[next++]!
      await engine.submit(request).catch(() => {})
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  return requests.length / ((performance.now() - started) / 1000)
}

/** Open loop at `rate` orders/s for LATENCY_SECONDS: the acknowledgement latency of each, in ms. */
async function latencies(engine: MatchingEngine, requests: EngineRequest[], rate: number): Promise<number[]> {
  const measured: Promise<number>[] = []
  const started = performance.now()
  let sent = 0
  while (performance.now() - started < LATENCY_SECONDS * 1000 && sent < requests.length) {
    const due = Math.floor(((performance.now() - started) / 1000) * rate)
    for (; sent < due && sent < requests.length; sent++) {
      const at = performance.now()
      measured.push(
        engine.submit(requests[sent]!).then(
          () => performance.now() - at,
          () => performance.now() - at,
        ),
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  return Promise.all(measured)
}

/** Inserts copies of everything the engine wrote, in `transactions` transactions: orders/s at that speed. */
async function rawInsertRate(
  database: TestDatabase,
  orders: number,
  transactions: number,
): Promise<{ ordersPerSecond: number; rows: number }> {
  const { db } = database
  const rows: Record<string, unknown[]> = {}
  for (const table of TABLES) {
    await db.execute(
      sql.raw(`create table raw_${table} (like ${table} including defaults including indexes)`),
    )
    const [{ data }] = (await queryRows<{ data: unknown[] }>(
      db,
      sql.raw(`select coalesce(json_agg(t), '[]') as data from ${table} t`),
    )) as [{ data: unknown[] }]
    rows[table] = data
  }
  const started = performance.now()
  for (let i = 0; i < transactions; i++) {
    await db.transaction(async (tx) => {
      for (const table of TABLES) {
        const all = rows[table]!
        const chunk = all.slice(
          Math.floor((all.length * i) / transactions),
          Math.floor((all.length * (i + 1)) / transactions),
        )
        if (chunk.length === 0) continue
        await tx.execute(
          sql`insert into ${sql.raw(`raw_${table}`)} select * from json_populate_recordset(null::${sql.raw(`raw_${table}`)}, ${JSON.stringify(chunk)}::json)`,
        )
      }
    })
  }
  const seconds = (performance.now() - started) / 1000
  return { ordersPerSecond: orders / seconds, rows: Object.values(rows).reduce((n, r) => n + r.length, 0) }
}

async function main(): Promise<void> {
  const { database, engine, userIds } = await setUp()
  try {
    await maxRate(engine, workload(2_000, userIds, 1))
    const counts = async () =>
      (await queryRows<{ n: bigint }>(database.db, sql`select count(*)::int8 as n from orders`))[0]!.n
    const ordersBefore = await counts()
    const rate = await maxRate(engine, workload(ORDERS, userIds, 2))
    const acknowledged = Number((await counts()) - ordersBefore)
    const lat = await latencies(engine, workload(Math.ceil(rate * LATENCY_SECONDS), userIds, 3), rate / 2)
    await engine.stop()
    const batches = (
      await queryRows<{ n: bigint }>(
        database.db,
        sql`select count(*)::int8 as n from journals where kind = 'engine_batch'`,
      )
    )[0]!.n
    const totalOrders = Number(await counts())
    const limit = await rawInsertRate(database, totalOrders, Number(batches))
    const rowsPerOrder = round(limit.rows / totalOrders)
    const sorted = [...lat].sort((a, b) => a - b)
    report({
      bench: 'engine-durable',
      value: Math.round(rate),
      unit: 'acknowledged orders/s',
      baseline: Math.round(limit.ordersPerSecond),
      baselineUnit: 'orders/s of raw inserts of the same rows',
      acknowledged,
      batches: Number(batches),
      rowsPerOrder,
      p50AckMs: round(median(sorted)),
      p99AckMs: round(sorted[Math.floor(sorted.length * 0.99)] ?? 0),
      latencyRate: Math.round(rate / 2),
      targetOrdersPerSecond: 50_000,
      targetRatio: 0.5,
      targetP99Ms: 25,
    })
  } finally {
    await database.close()
  }
}

await main()
