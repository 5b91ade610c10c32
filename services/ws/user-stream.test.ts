/**
 * User data streams end to end on the embedded stores: orders placed and cancelled through the gateway's
 * Binance API on an in-process engine (PGlite), the outbox relay on the in-process bus, the user-events
 * consumer, and ws serving `/ws/<listenKey>` and the WebSocket API's `userDataStream.subscribe.signature`.
 */
import { createHmac } from 'node:crypto'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Bus, createBus } from '../../adapters/bus/index.ts'
import { createPubSubCache, InProcessRedis, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { adjustBalance, creditDeposit, startWithdrawal } from '../../ledger/operations.ts'
import { createLogger } from '../../lib/log.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { ApiKeyStore, createApiKey } from '../gateway/api-keys.ts'
import { createGatewayApp } from '../gateway/app.ts'
import { EngineClient } from '../gateway/engine-client.ts'
import { createOutboxRelay, type OutboxRelay } from '../relay/relay.ts'
import { type RunningWsServer, startWsServer } from './server.ts'
import { connect } from './testing.ts'
import { createUserEventsConsumer, type UserEventsConsumer } from './user-events.ts'
import { ListenKeys } from './user-stream.ts'

const encryptionKey = Buffer.alloc(32, 9)
const log = createLogger('uds-test', { level: 'silent' })

interface Trader {
  userId: bigint
  apiKey: string
  secretKey: string
}

let fx: MarketFixture
let bus: Bus
let cache: PubSubCache
let relay: OutboxRelay
let consumer: UserEventsConsumer
let app: Hono
let ws: RunningWsServer
let alice: Trader
let bob: Trader

async function trader(name: string, funds: { BTC?: string; USDT?: string }): Promise<Trader> {
  const userId = await fx.trader(name, funds)
  const { apiKey, secretKey } = await createApiKey(fx.database.db, encryptionKey, {
    userId,
    kind: 'HMAC',
    canTrade: true,
  })
  return { userId, apiKey, secretKey: secretKey! }
}

const hmac = (t: Trader, payload: string) => createHmac('sha256', t.secretKey).update(payload).digest('hex')

async function call(t: Trader, method: string, path: string, params: Record<string, string>, sign = true) {
  let query = new URLSearchParams(params).toString()
  if (sign) {
    query = `${query}${query ? '&' : ''}timestamp=${Date.now()}`
    query += `&signature=${hmac(t, query)}`
  }
  const res = await app.request(`${path}${query ? `?${query}` : ''}`, {
    method,
    headers: { 'X-MBX-APIKEY': t.apiKey },
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

beforeAll(async () => {
  fx = await marketFixture('pglite')
  bus = createBus({ kind: 'memory' })
  cache = createPubSubCache({ kind: 'memory', server: new InProcessRedis() })
  relay = createOutboxRelay({ db: fx.database.db, bus, batchSize: 100, pollIntervalMs: 20, log })
  const engine = await fx.engine({ onCommit: () => relay.wake() })
  consumer = createUserEventsConsumer({ bus, cache, log, startWindowMs: 20 })
  await consumer.start()
  relay.start()
  app = createGatewayApp({
    db: fx.database.db,
    engines: new Map([[engine.symbol, EngineClient.inProcess(engine)]]),
    cache,
    log,
    config: {
      keyEncryptionKey: encryptionKey,
      weightPerMinute: 6000,
      rejectionsBeforeBan: 10,
      trustProxy: false,
    },
  })
  ws = await startWsServer({
    port: 0,
    host: '127.0.0.1',
    cache,
    log,
    keys: new ApiKeyStore(fx.database.db, encryptionKey),
    listenKeyCheckMs: 50,
  })
  alice = await trader('alice', { USDT: '1000' })
  bob = await trader('bob', { BTC: '5' })
}, 60_000)

afterAll(async () => {
  await ws?.close()
  await consumer?.stop()
  await relay?.stop()
  await bus?.close()
  await cache?.close()
  await fx?.close()
})

type Event = Record<string, unknown> & { e: string }

const report = (x: string, X: string) => (m: Event) => m.e === 'executionReport' && m.x === x && m.X === X
const position = (asset: string, f: string, l: string) => (m: Event) =>
  m.e === 'outboundAccountPosition' &&
  (m.B as { a: string; f: string; l: string }[]).some(
    (b) => b.a === asset && Number(b.f) === Number(f) && Number(b.l) === Number(l),
  )

describe('user data streams', () => {
  it('listen keys: POST creates (the same key while it lives), PUT extends, DELETE closes; the API key alone', async () => {
    const created = await call(alice, 'POST', '/api/v3/userDataStream', {}, false)
    expect(created.status).toBe(200)
    const listenKey = created.body.listenKey as string
    expect(listenKey).toMatch(/^[A-Za-z0-9]{60}$/)
    expect((await call(alice, 'POST', '/api/v3/userDataStream', {}, false)).body).toEqual({ listenKey })
    expect(await call(alice, 'PUT', '/api/v3/userDataStream', { listenKey }, false)).toEqual({
      status: 200,
      body: {},
    })
    // Another user's key is not yours to extend.
    expect((await call(bob, 'PUT', '/api/v3/userDataStream', { listenKey }, false)).body).toEqual({
      code: -1125,
      msg: 'This listenKey does not exist.',
    })
    const noKey = await app.request('/api/v3/userDataStream', { method: 'POST' })
    expect(noKey.status).toBe(401)
    expect(await noKey.json()).toEqual({ code: -2014, msg: 'API-key format invalid.' })
    expect(await call(alice, 'DELETE', '/api/v3/userDataStream', { listenKey }, false)).toEqual({
      status: 200,
      body: {},
    })
    expect((await call(alice, 'DELETE', '/api/v3/userDataStream', { listenKey }, false)).body.code).toBe(
      -1125,
    )
  })

  it('an order placed, partly filled and cancelled: executionReports and outboundAccountPositions on a listen-key stream and a WS API session', async () => {
    const listenKey = (await call(alice, 'POST', '/api/v3/userDataStream', {}, false)).body
      .listenKey as string
    const stream = await connect(`${ws.url}/ws/${listenKey}`)
    const session = await connect(`${ws.url}/ws-api/v3`)
    const timestamp = Date.now()
    session.send({
      id: 'sub-1',
      method: 'userDataStream.subscribe.signature',
      params: {
        apiKey: bob.apiKey,
        timestamp,
        signature: hmac(bob, `apiKey=${bob.apiKey}&timestamp=${timestamp}`),
      },
    })
    expect(await session.next()).toEqual({ id: 'sub-1', status: 200, result: { subscriptionId: 0 } })

    // Alice bids 1 BTC at 100.
    const placed = await call(alice, 'POST', '/api/v3/order', {
      symbol: 'BTCUSDT',
      side: 'BUY',
      type: 'LIMIT',
      timeInForce: 'GTC',
      quantity: '1',
      price: '100',
      newClientOrderId: 'alice-1',
    })
    expect(placed.status).toBe(200)
    const orderId = placed.body.orderId
    const created = await stream.next<Event>(report('NEW', 'NEW'))
    expect(created).toMatchObject({
      s: 'BTCUSDT',
      c: 'alice-1',
      S: 'BUY',
      o: 'LIMIT',
      f: 'GTC',
      i: orderId,
      g: -1,
      C: '',
      r: 'NONE',
      t: -1,
      w: true,
      N: null,
      V: 'EXPIRE_MAKER',
    })
    expect(Number(created.q)).toBe(1)
    expect(Number(created.p)).toBe(100)
    expect(Number(created.z)).toBe(0)
    expect(created.W).toBe(created.O)
    await stream.next(position('USDT', '900', '100'))

    // Bob sells 0.4 into it: alice's order is partly filled (maker), bob's fully (taker).
    const sold = await call(bob, 'POST', '/api/v3/order', {
      symbol: 'BTCUSDT',
      side: 'SELL',
      type: 'LIMIT',
      timeInForce: 'GTC',
      quantity: '0.4',
      price: '100',
      newClientOrderId: 'bob-1',
    })
    expect(sold.status).toBe(200)
    const fill = await stream.next<Event>(report('TRADE', 'PARTIALLY_FILLED'))
    expect(fill).toMatchObject({ i: orderId, c: 'alice-1', m: true, w: true, N: 'BTC' })
    expect([fill.l, fill.L, fill.z, fill.Z, fill.Y, fill.n].map(Number)).toEqual([
      0.4, 100, 0.4, 40, 40, 0.0004,
    ])
    expect(fill.t).toBeGreaterThan(0)
    const afterFill = await stream.next<Event>(position('USDT', '900', '60'))
    expect(afterFill.B).toEqual(expect.arrayContaining([expect.objectContaining({ a: 'BTC' })]))
    expect(Number((afterFill.B as { a: string; f: string }[]).find((b) => b.a === 'BTC')!.f)).toBe(0.3996)

    // Bob's side, in the WebSocket API's event wrapper.
    const bobNew = await session.next<{ subscriptionId: number; event: Event }>((m) =>
      report('NEW', 'NEW')(m.event),
    )
    expect(bobNew.subscriptionId).toBe(0)
    expect(bobNew.event).toMatchObject({ c: 'bob-1', S: 'SELL' })
    const bobFill = await session.next<{ event: Event }>((m) => report('TRADE', 'FILLED')(m.event))
    expect(bobFill.event).toMatchObject({ c: 'bob-1', m: false, w: false, N: 'USDT', t: fill.t })
    expect([bobFill.event.l, bobFill.event.L, bobFill.event.z, bobFill.event.n].map(Number)).toEqual([
      0.4, 100, 0.4, 0.08,
    ])
    await session.next<{ event: Event }>((m) => m.event.e === 'outboundAccountPosition')

    // Alice cancels the rest.
    expect(
      (await call(alice, 'DELETE', '/api/v3/order', { symbol: 'BTCUSDT', orderId: String(orderId) })).status,
    ).toBe(200)
    const cancelled = await stream.next<Event>(report('CANCELED', 'CANCELED'))
    expect(cancelled).toMatchObject({ i: orderId, C: 'alice-1', w: false, t: -1 })
    expect(Number(cancelled.z)).toBe(0.4)
    await stream.next(position('USDT', '960', '0'))

    // Nothing of alice's went to bob's session, and each event came once.
    const bobEvents = session.messages.slice(1) as { event: Event }[]
    expect(bobEvents.every((m) => m.event.e !== 'executionReport' || m.event.c === 'bob-1')).toBe(true)
    const reports = (stream.messages as Event[]).filter((m) => m.e === 'executionReport')
    expect(reports.map((r) => r.x)).toEqual(['NEW', 'TRADE', 'CANCELED'])

    session.send({ id: 2, method: 'userDataStream.unsubscribe' })
    await session.next((m: { event?: Event }) => m.event?.e === 'eventStreamTerminated')
    expect(await session.next()).toEqual({ id: 2, status: 200, result: {} })
    stream.close()
    session.close()
  })

  it('a deposit, a withdrawal request and an adjustment: balanceUpdate, then outboundAccountPosition', async () => {
    const listenKey = (await call(bob, 'POST', '/api/v3/userDataStream', {}, false)).body.listenKey as string
    const stream = await connect(`${ws.url}/ws/${listenKey}`)
    const db = fx.database.db
    await creditDeposit(db, { userId: bob.userId, asset: 'USDT', amount: '250', depositRef: 'uds-deposit' })
    const update = (d: string) => (m: Event) =>
      m.e === 'balanceUpdate' && m.a === 'USDT' && Number(m.d) === Number(d)
    const deposited = await stream.next<Event>(update('250'))
    expect(deposited).toMatchObject({
      e: 'balanceUpdate',
      a: 'USDT',
      E: expect.any(Number),
      T: expect.any(Number),
    })
    await stream.next(position('USDT', '289.92', '0'))
    // The same deposit again books nothing and announces nothing.
    await creditDeposit(db, { userId: bob.userId, asset: 'USDT', amount: '250', depositRef: 'uds-deposit' })
    await startWithdrawal(db, { userId: bob.userId, asset: 'USDT', amount: '90', withdrawalId: 'uds-w1' })
    await stream.next(update('-90'))
    await stream.next(position('USDT', '199.92', '0'))
    await adjustBalance(db, {
      userId: bob.userId,
      asset: 'USDT',
      amount: '-0.5',
      key: 'uds-fix',
      reason: 'test',
      admin: 'ops',
    })
    await stream.next(update('-0.5'))
    await stream.next(position('USDT', '199.42', '0'))
    const updates = (stream.messages as Event[]).filter((m) => m.e === 'balanceUpdate')
    expect(updates.map((m) => Number(m.d))).toEqual([250, -90, -0.5])
    stream.close()
  })

  it('a bad signature is refused with -1022, an unknown key with -2015', async () => {
    const session = await connect(`${ws.url}/ws-api/v3`)
    const timestamp = Date.now()
    session.send({
      id: 7,
      method: 'userDataStream.subscribe.signature',
      params: {
        apiKey: alice.apiKey,
        timestamp,
        signature: hmac(bob, `apiKey=${alice.apiKey}&timestamp=${timestamp}`),
      },
    })
    expect(await session.next()).toEqual({
      id: 7,
      status: 400,
      error: { code: -1022, msg: 'Signature for this request is not valid.' },
    })
    session.send({
      id: 8,
      method: 'userDataStream.subscribe.signature',
      params: { apiKey: 'x'.repeat(64), timestamp, signature: 'ab'.repeat(32) },
    })
    expect(await session.next()).toEqual({
      id: 8,
      status: 401,
      error: { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' },
    })
    session.close()
  })

  it('an expired listen key closes its stream with listenKeyExpired; a deleted one too; an unknown one is refused', async () => {
    const short = await new ListenKeys(cache, 300).create(String(alice.userId) + '0')
    const expiring = await connect(`${ws.url}/ws/${short}`)
    const expired = await expiring.next<Event>((m) => m.e === 'listenKeyExpired', 3000)
    expect(expired).toMatchObject({ listenKey: short })
    expect(await expiring.closed).toBe(1000)

    const listenKey = (await call(alice, 'POST', '/api/v3/userDataStream', {}, false)).body
      .listenKey as string
    const combined = await connect(`${ws.url}/stream?streams=${listenKey}`)
    await call(alice, 'DELETE', '/api/v3/userDataStream', { listenKey }, false)
    const gone = await combined.next<{ stream: string; data: Event }>()
    expect(gone).toMatchObject({ stream: listenKey, data: { e: 'listenKeyExpired', listenKey } })
    expect(await combined.closed).toBe(1000)

    await expect(connect(`${ws.url}/ws/${listenKey}`)).rejects.toThrow('HTTP 400')
  })
})
