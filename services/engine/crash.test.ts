/**
 * `bourse engine` as a real process on the real Postgres, killed with SIGKILL in the middle of a load of
 * crossing orders and cancels, three times over. After each kill: every acknowledged order is in Postgres
 * with at least its acknowledged state, nothing refused left a trace, anything else in Postgres was in flight
 * at the kill, the ledger balances and holds exactly what the open orders hold, and the restarted engine's
 * book is the one Postgres's open orders describe (and, when the kill fell between batches, the very book
 * the killed engine showed).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { assets, markets, users } from '../../adapters/db/schema.ts'
import { createTestDatabase, type TestDatabase, testMarket } from '../../adapters/db/testing.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { freePort } from '../../lib/net.ts'
import {
  type DepthView,
  engineViolations,
  type LoadRecord,
  noViolations,
  type OpenOrderShape,
  orderShape,
  postgresDepth,
  postgresOpenOrders,
  startLoad,
  trimDepth,
} from './load.ts'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const TRADERS = 6
const FUNDS = { BTC: '50', USDT: '5000' }
const terminal = new Set(['FILLED', 'CANCELED', 'EXPIRED', 'EXPIRED_IN_MATCH'])

interface EngineProcess {
  child: ChildProcess
  url: string
  output: string[]
  exited: Promise<void>
}

describe('bourse engine killed with SIGKILL under load', () => {
  let database: TestDatabase
  const traders: string[] = []
  const children: ChildProcess[] = []

  beforeAll(async () => {
    database = await createTestDatabase('postgres', 4)
    await database.db.insert(assets).values([
      { symbol: 'BTC', scale: 8 },
      { symbol: 'USDT', scale: 8 },
    ])
    await database.db.insert(markets).values(testMarket)
    for (let i = 0; i < TRADERS; i++) {
      const [user] = await database.db
        .insert(users)
        .values({ name: `crash-${i}` })
        .returning()
      for (const [asset, amount] of Object.entries(FUNDS))
        await creditDeposit(database.db, {
          userId: user!.id,
          asset,
          amount,
          depositRef: `seed:${i}:${asset}`,
        })
      traders.push(String(user!.id))
    }
  })
  afterAll(async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await database?.close()
  })

  async function startEngine(): Promise<EngineProcess> {
    const port = await freePort()
    const child = spawn(process.execPath, ['cli/bourse.ts', 'engine', '--market', testMarket.symbol], {
      cwd: repoRoot,
      env: {
        ...process.env,
        BOURSE_DATABASE_URL: database.config.kind === 'postgres' ? database.config.url : '',
        BOURSE_ENGINE_PORT: String(port),
        BOURSE_HTTP_HOST: '127.0.0.1',
        BOURSE_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    const output: string[] = []
    const keep = (chunk: Buffer) => {
      output.push(chunk.toString())
      if (output.length > 50) output.shift()
    }
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    const url = `http://127.0.0.1:${port}`
    const deadline = Date.now() + 30_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`engine exited on start:\n${output.join('')}`)
      if (Date.now() > deadline) throw new Error(`engine not ready in 30 s:\n${output.join('')}`)
      const ready = await fetch(`${url}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      )
      if (ready) return { child, url, output, exited }
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  const getJson = async <T>(url: string): Promise<T> => {
    const response = await fetch(url)
    expect(response.status).toBe(200)
    return (await response.json()) as T
  }
  const engineDepth = (engine: EngineProcess) =>
    getJson<DepthView & { lastUpdateId: string }>(`${engine.url}/depth?limit=5000`)
  const engineOpenOrders = async (engine: EngineProcess) =>
    (
      await Promise.all(
        traders.map((u) => getJson<OpenOrderShape[]>(`${engine.url}/open-orders?userId=${u}`)),
      )
    )
      .flat()
      .map(orderShape)
      .sort((a, b) => Number(BigInt(a.orderId) - BigInt(b.orderId)))

  /** Every acknowledged request's effect is in Postgres; nothing refused is; the rest was in flight. */
  async function checkRecords(records: readonly LoadRecord[]) {
    const rows = await queryRows<{
      id: string
      user_id: string
      client_order_id: string
      status: string
      executed: string
    }>(
      database.db,
      sql`select id::text, user_id::text, client_order_id, status, executed_quantity::text as executed
          from orders where market = ${testMarket.symbol}`,
    )
    const byClientId = new Map(rows.map((r) => [`${r.user_id}:${r.client_order_id}`, r]))
    const byId = new Map(rows.map((r) => [r.id, r]))
    const places = new Map(
      records.filter((r) => r.kind === 'place').map((r) => [`${r.userId}:${r.clientOrderId}`, r]),
    )
    for (const record of records) {
      if (record.kind === 'place') {
        const row = byClientId.get(`${record.userId}:${record.clientOrderId}`)
        if (record.outcome === 'ack') {
          expect(row, `acknowledged order ${record.clientOrderId}`).toBeDefined()
          expect(row!.id).toBe(record.order!.orderId)
          expect(Number(row!.executed)).toBeGreaterThanOrEqual(Number(record.order!.executedQty))
          if (terminal.has(record.order!.status)) expect(row!.status).toBe(record.order!.status)
        } else if (record.outcome === 'refused') {
          expect(row, `refused order ${record.clientOrderId}`).toBeUndefined()
        }
      } else if (record.outcome === 'ack') {
        expect(byId.get(record.orderId!)?.status, `acknowledged cancel of ${record.orderId}`).toBe('CANCELED')
      }
    }
    // An order in Postgres was acknowledged, or its request was in flight when the engine was killed.
    const unexplained = rows.filter((r) => {
      const record = places.get(`${r.user_id}:${r.client_order_id}`)
      return record === undefined || (record.outcome !== 'ack' && record.outcome !== 'lost')
    })
    expect(unexplained).toEqual([])
    const lost = records.filter((r) => r.outcome === 'lost')
    return {
      lost: lost.length,
      lostButCommitted: lost.filter((r) => byClientId.has(`${r.userId}:${r.clientOrderId}`)).length,
    }
  }

  async function checkPostgres() {
    expect(await findImbalances(database.db)).toEqual([])
    const deposits = {
      BTC: String(Number(FUNDS.BTC) * TRADERS),
      USDT: String(Number(FUNDS.USDT) * TRADERS),
    }
    expect(await engineViolations(database.db, testMarket, deposits)).toEqual(noViolations)
  }

  async function lastSeq(): Promise<string> {
    const [row] = await queryRows<{ last_seq: string }>(
      database.db,
      sql`select last_seq::text from markets where symbol = ${testMarket.symbol}`,
    )
    return row!.last_seq
  }

  it('loses no acknowledged order and rebuilds the committed book, three kills in a row', async () => {
    const records: LoadRecord[] = []
    let engine = await startEngine()
    let betweenBatches = 0
    let killedInFlight = 0
    for (let cycle = 0; cycle < 3; cycle++) {
      const load = startLoad({ baseUrl: engine.url, users: traders, tag: `k${cycle}`, seed: 0x5eed + cycle })
      const threshold = 150 + cycle * 60
      while (load.acks() < threshold) {
        if (load.records.some((r) => r.outcome === 'lost'))
          throw new Error(`engine failed:\n${engine.output.join('')}`)
        await new Promise((r) => setTimeout(r, 5))
      }
      // The second cycle lets the load drain first, so its kill falls between batches for certain.
      if (cycle === 1) await load.stop()
      const depthBefore = await engineDepth(engine)
      const openBefore = await engineOpenOrders(engine)
      const depthAfter = await engineDepth(engine)
      // The third kill lands a little later, at whatever point the batch in hand has reached.
      if (cycle === 2) await new Promise((resolve) => setTimeout(resolve, 9))
      const inFlight = load.inFlight()
      engine.child.kill('SIGKILL')
      await engine.exited
      await load.stop()
      records.push(...load.records)
      if (inFlight > 0) killedInFlight++
      expect(load.records.filter((r) => r.outcome === 'pending')).toEqual([])

      const { lost, lostButCommitted } = await checkRecords(records)
      // Refusals are the trader's (a cancel of an order that has filled, funds spent), never the engine's.
      const refusals = records.filter((r) => r.outcome === 'refused')
      expect(
        refusals
          .filter((r) => r.httpStatus !== 404 && r.httpStatus !== 422)
          .map((r) => `${r.httpStatus} ${r.refusal}`),
      ).toEqual([])
      if (cycle === 1) expect(load.records.filter((r) => r.outcome === 'lost')).toEqual([])
      await checkPostgres()
      const committed = await postgresDepth(database.db, testMarket.symbol)
      const committedOpen = await postgresOpenOrders(database.db, testMarket.symbol)

      engine = await startEngine()
      const rebuilt = await engineDepth(engine)
      expect(trimDepth(rebuilt)).toEqual(committed)
      expect(await engineOpenOrders(engine)).toEqual(committedOpen)
      expect(rebuilt.lastUpdateId).toBe(await lastSeq())
      // No batch committed between the old engine's answers and its death: the new book is the old one.
      const quiet =
        depthBefore.lastUpdateId === depthAfter.lastUpdateId &&
        depthAfter.lastUpdateId === rebuilt.lastUpdateId
      if (cycle === 1) expect(quiet).toBe(true)
      if (quiet) {
        betweenBatches++
        expect(trimDepth(rebuilt)).toEqual(trimDepth(depthBefore))
        expect(await engineOpenOrders(engine)).toEqual(openBefore)
      }
      const [{ trades }] = (await queryRows<{ trades: string }>(
        database.db,
        sql`select count(*)::text as trades from trades`,
      )) as [{ trades: string }]
      console.info(
        `kill ${cycle + 1}: ${load.records.length} requests, ${inFlight} in flight, ${lost} lost so far of which ` +
          `${lostButCommitted} committed; ${committed.bids.length} bid and ${committed.asks.length} ask levels rebuilt, ${trades} trades so far`,
      )
    }
    expect(betweenBatches).toBeGreaterThanOrEqual(1)
    expect(killedInFlight).toBeGreaterThanOrEqual(2)
    // The rebuilt engine trades on: an order crossing the whole book still settles and balances.
    const response = await fetch(`${engine.url}/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        userId: traders[0],
        side: 'BUY',
        type: 'LIMIT',
        timeInForce: 'IOC',
        price: '101.00',
        quantity: '0.5',
      }),
    })
    expect(response.status).toBe(200)
    await checkPostgres()
    engine.child.kill('SIGTERM')
    await engine.exited
  }, 120_000)
})
