/**
 * The engine's internal HTTP API, called through hono's fetch on an engine over PGlite: every endpoint does
 * what it says, and every bad input is a 400 `{code: 'invalid_input', message, field}` naming the field at
 * fault and changing nothing.
 */
import { sql } from 'drizzle-orm'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { engineApi } from './api.ts'
import type { MatchingEngine } from './engine.ts'
import { type MarketFixture, marketFixture } from './testing.ts'

describe('engine internal API', () => {
  let market: MarketFixture
  let engine: MatchingEngine
  let app: Hono
  let alice: bigint
  let bob: bigint

  beforeAll(async () => {
    market = await marketFixture('pglite')
    engine = await market.engine()
    app = engineApi(engine)
    alice = await market.trader('alice', { BTC: '2', USDT: '1000' })
    bob = await market.trader('bob', { BTC: '2', USDT: '1000' })
  })
  afterAll(async () => market?.close())

  const call = async (
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> => {
    const init: RequestInit =
      body === undefined
        ? { method }
        : {
            method,
            headers: { 'content-type': 'application/json' },
            body: typeof body === 'string' ? body : JSON.stringify(body),
          }
    const response = await app.request(path, init)
    return { status: response.status, body: await response.json() }
  }
  const place = (order: Record<string, unknown>) => call('POST', '/orders', order)

  it('places, queries, lists and cancels orders, and shows them in the depth', async () => {
    const ask = await place({
      userId: String(alice),
      side: 'SELL',
      type: 'LIMIT',
      price: '100.00',
      quantity: '1',
      clientOrderId: 'ask-1',
    })
    expect(ask).toMatchObject({
      status: 200,
      body: {
        kind: 'order',
        order: { status: 'NEW', side: 'SELL', price: '100.00', origQty: '1.000' },
        fills: [],
      },
    })
    const askId = (ask.body as { order: { orderId: string } }).order.orderId
    await place({
      userId: String(alice),
      side: 'SELL',
      type: 'LIMIT_MAKER',
      price: '101.50',
      quantity: '0.5',
    })
    await place({ userId: String(bob), side: 'BUY', type: 'LIMIT', price: '99.00', quantity: '2' })

    const bid = await place({
      userId: String(bob),
      side: 'BUY',
      type: 'LIMIT',
      price: '100.00',
      quantity: '0.25',
    })
    expect(bid).toMatchObject({
      status: 200,
      body: {
        order: { status: 'FILLED', executedQty: '0.250', cummulativeQuoteQty: '25.00000' },
        fills: [{ price: '100.00', qty: '0.250', commissionAsset: 'BTC' }],
      },
    })

    const byId = await call('GET', `/orders?userId=${alice}&orderId=${askId}`)
    expect(byId).toMatchObject({
      status: 200,
      body: { orderId: askId, clientOrderId: 'ask-1', status: 'PARTIALLY_FILLED', executedQty: '0.250' },
    })
    expect(await call('GET', `/orders?userId=${alice}&clientOrderId=ask-1`)).toEqual(byId)
    // Another user's order is not theirs to see.
    expect(await call('GET', `/orders?userId=${bob}&orderId=${askId}`)).toMatchObject({
      status: 404,
      body: { code: 'not_found' },
    })

    const open = await call('GET', `/open-orders?userId=${alice}`)
    expect(open.status).toBe(200)
    expect((open.body as { price: string }[]).map((o) => o.price).sort()).toEqual(['100.00', '101.50'])

    expect(await call('GET', '/depth?limit=10')).toMatchObject({
      status: 200,
      body: {
        bids: [['99.00', '2.000']],
        asks: [
          ['100.00', '0.750'],
          ['101.50', '0.500'],
        ],
      },
    })
    expect((await call('GET', '/depth?limit=1')).body).toMatchObject({
      bids: [['99.00', '2.000']],
      asks: [['100.00', '0.750']],
    })
    // Without a limit: the default.
    expect((await call('GET', '/depth')).body).toMatchObject({
      asks: [
        ['100.00', '0.750'],
        ['101.50', '0.500'],
      ],
    })

    expect(await call('DELETE', `/orders?userId=${alice}&orderId=${askId}`)).toMatchObject({
      status: 200,
      body: { kind: 'order', order: { orderId: askId, status: 'CANCELED', executedQty: '0.250' } },
    })
    expect(await call('DELETE', `/orders?userId=${alice}&orderId=${askId}`)).toMatchObject({
      status: 404,
      body: { code: 'not_found', message: 'Unknown order sent.', field: 'orderId' },
    })
    await place({
      userId: String(bob),
      side: 'BUY',
      type: 'LIMIT',
      price: '98.00',
      quantity: '1',
      clientOrderId: 'b-2',
    })
    expect(await call('DELETE', `/orders?userId=${bob}&clientOrderId=b-2`)).toMatchObject({
      status: 200,
      body: { order: { clientOrderId: 'b-2', status: 'CANCELED' } },
    })

    const all = await call('DELETE', `/open-orders?userId=${bob}`)
    expect(all).toMatchObject({
      status: 200,
      body: { kind: 'orders', orders: [{ price: '99.00', status: 'CANCELED' }] },
    })
    expect(await call('GET', `/open-orders?userId=${bob}`)).toEqual({ status: 200, body: [] })
    expect(await market.balances(bob)).toEqual({ BTC: ['2.2495', '0'], USDT: ['975', '0'] })
    expect(await findImbalances(market.database.db)).toEqual([])
  })

  it('answers a market order by quote amount, and refuses an order without the funds for it', async () => {
    const result = await place({ userId: String(bob), side: 'BUY', type: 'MARKET', quoteOrderQty: '10.15' })
    expect(result).toMatchObject({
      status: 200,
      body: {
        order: { type: 'MARKET', status: 'FILLED', executedQty: '0.100', cummulativeQuoteQty: '10.15000' },
      },
    })
    const before = await market.balances(bob)
    expect(
      await place({ userId: String(bob), side: 'BUY', type: 'LIMIT', price: '90.00', quantity: '100' }),
    ).toMatchObject({
      status: 422,
      body: { code: 'insufficient_funds', message: 'Account has insufficient balance for requested action.' },
    })
    expect(await market.balances(bob)).toEqual(before)
  })

  it('reports status, halts and resumes', async () => {
    expect(await call('GET', '/status')).toMatchObject({
      status: 200,
      body: { symbol: 'BTCUSDT', status: 'trading', fenced: false, openOrders: 1, lastPrice: '101.50' },
    })
    expect(await call('POST', '/halt')).toEqual({ status: 200, body: { kind: 'market', status: 'halted' } })
    expect((await call('GET', '/status')).body).toMatchObject({ status: 'halted' })
    expect(
      await place({ userId: String(bob), side: 'BUY', type: 'LIMIT', price: '90.00', quantity: '1' }),
    ).toMatchObject({ status: 422, body: { message: 'Market is halted.' } })
    expect(await call('POST', '/resume')).toEqual({
      status: 200,
      body: { kind: 'market', status: 'trading' },
    })
    expect(
      await place({ userId: String(bob), side: 'BUY', type: 'LIMIT', price: '90.00', quantity: '1' }),
    ).toMatchObject({ status: 200, body: { order: { status: 'NEW' } } })
  })

  describe('bad input', () => {
    // The tables are built before the traders exist: alice is the first user of a fresh database.
    const ALICE = '1'
    const good = () => ({ userId: ALICE, side: 'BUY', type: 'LIMIT', price: '95.00', quantity: '1' })
    const without = (key: string) => Object.fromEntries(Object.entries(good()).filter(([k]) => k !== key))
    const badOrders: [string, unknown, string][] = [
      ['missing userId', without('userId'), 'userId'],
      ['missing side', without('side'), 'side'],
      ['missing type', without('type'), 'type'],
      ['missing price of a LIMIT', without('price'), 'price'],
      ['missing quantity of a LIMIT', without('quantity'), 'quantity'],
      ['userId as a number', { ...good(), userId: 1 }, 'userId'],
      ['userId zero', { ...good(), userId: '0' }, 'userId'],
      ['userId negative', { ...good(), userId: '-1' }, 'userId'],
      ['side in lower case', { ...good(), side: 'buy' }, 'side'],
      ['unknown type', { ...good(), type: 'STOP_LOSS' }, 'type'],
      ['unknown timeInForce', { ...good(), timeInForce: 'DAY' }, 'timeInForce'],
      ['price as a number', { ...good(), price: 95 }, 'price'],
      ['quantity as a boolean', { ...good(), quantity: true }, 'quantity'],
      ['price in exponent notation', { ...good(), price: '9.5e1' }, 'price'],
      ['price with a trailing dot', { ...good(), price: '95.' }, 'price'],
      ['price with a leading dot', { ...good(), price: '.5' }, 'price'],
      ['empty price', { ...good(), price: '' }, 'price'],
      ['price with spaces', { ...good(), price: ' 95.00' }, 'price'],
      ['price finer than the tick', { ...good(), price: '95.001' }, 'price'],
      ['price zero', { ...good(), price: '0' }, 'price'],
      ['price too large', { ...good(), price: '99999999999999999999999' }, 'price'],
      ['negative quantity', { ...good(), quantity: '-1' }, 'quantity'],
      ['quantity zero', { ...good(), quantity: '0.000' }, 'quantity'],
      ['quantity finer than the lot', { ...good(), quantity: '0.0005' }, 'quantity'],
      ['unknown field', { ...good(), icebergQty: '1' }, 'icebergQty'],
      ['client order id too long', { ...good(), clientOrderId: 'x'.repeat(37) }, 'clientOrderId'],
      ['client order id with a space', { ...good(), clientOrderId: 'a b' }, 'clientOrderId'],
      ['unknown STP mode', { ...good(), selfTradePreventionMode: 'EXPIRE_ALL' }, 'selfTradePreventionMode'],
      ['LIMIT_MAKER that is IOC', { ...good(), type: 'LIMIT_MAKER', timeInForce: 'IOC' }, 'timeInForce'],
      ['LIMIT with a quote amount', { ...good(), quoteOrderQty: '10' }, 'quoteOrderQty'],
      ['MARKET with neither quantity', { userId: ALICE, side: 'BUY', type: 'MARKET' }, 'quantity'],
      [
        'MARKET with both quantities',
        { userId: ALICE, side: 'BUY', type: 'MARKET', quantity: '1', quoteOrderQty: '10' },
        'quantity',
      ],
      [
        'MARKET with a price',
        { userId: ALICE, side: 'BUY', type: 'MARKET', quantity: '1', price: '95.00' },
        'price',
      ],
      [
        'MARKET with a negative quote amount',
        { userId: ALICE, side: 'BUY', type: 'MARKET', quoteOrderQty: '-10' },
        'quoteOrderQty',
      ],
      ['a JSON array', [good()], 'body'],
      ['JSON null', null, 'body'],
      ['a JSON string', '"order"', 'body'],
      ['not JSON', '{"userId": "1",', 'body'],
      ['an empty body', '', 'body'],
    ]

    const badRequests: [string, string, string, string][] = [
      ['cancel without a user', 'DELETE', '/orders?orderId=1', 'userId'],
      ['cancel with a bad user', 'DELETE', '/orders?userId=alice&orderId=1', 'userId'],
      ['cancel with a bad order id', 'DELETE', '/orders?userId=1&orderId=1.5', 'orderId'],
      ['cancel naming no order', 'DELETE', '/orders?userId=1', 'orderId'],
      ['cancel naming two orders', 'DELETE', '/orders?userId=1&orderId=1&clientOrderId=x', 'orderId'],
      ['cancel with an unknown parameter', 'DELETE', '/orders?userId=1&orderId=1&force=yes', 'force'],
      ['query without a user', 'GET', '/orders?orderId=1', 'userId'],
      ['query with a bad order id', 'GET', '/orders?userId=1&orderId=-3', 'orderId'],
      ['query naming no order', 'GET', '/orders?userId=1', 'orderId'],
      ['open orders without a user', 'GET', '/open-orders', 'userId'],
      ['open orders of a bad user', 'GET', '/open-orders?userId=1x', 'userId'],
      ['cancel-all without a user', 'DELETE', '/open-orders', 'userId'],
      ['cancel-all with an unknown parameter', 'DELETE', '/open-orders?userId=1&symbol=ETHUSDT', 'symbol'],
      ['depth limit zero', 'GET', '/depth?limit=0', 'limit'],
      ['depth limit not a number', 'GET', '/depth?limit=ten', 'limit'],
      ['depth limit too large', 'GET', '/depth?limit=5001', 'limit'],
      ['depth limit fractional', 'GET', '/depth?limit=2.5', 'limit'],
    ]

    let before: unknown
    const state = async () => ({
      alice: await market.balances(alice),
      bob: await market.balances(bob),
      rows: await queryRows(
        market.database.db,
        sql`select (select count(*) from orders)::int as orders, (select count(*) from outbox)::int as events,
                   (select count(*) from ledger_entries)::int as entries`,
      ),
      depth: await engine.depth(100),
    })
    beforeAll(async () => {
      expect(String(alice)).toBe(ALICE)
      await place({ userId: String(alice), side: 'SELL', type: 'LIMIT', price: '120.00', quantity: '0.5' })
      before = await state()
    })

    it.each(badOrders)('place: %s → 400 naming the field', async (_, body, field) => {
      const response = await call('POST', '/orders', body === null ? 'null' : body)
      expect(response).toEqual({
        status: 400,
        body: { code: 'invalid_input', message: expect.any(String), field },
      })
    })

    it.each(badRequests)('%s → 400 naming the field', async (_, method, path, field) => {
      const response = await call(method, path)
      expect(response).toEqual({
        status: 400,
        body: { code: 'invalid_input', message: expect.any(String), field },
      })
    })

    it('changed nothing: balances, orders, events, ledger and book as they were', async () => {
      expect(await state()).toEqual(before)
      expect(await findImbalances(market.database.db)).toEqual([])
    })
  })
})

// PGlite answers a transaction's statements without giving the event loop a turn: only a real server
// leaves a window in which a request can arrive while a batch's commit is under way.
describe('engine internal API on the real Postgres', () => {
  let market: MarketFixture
  let app: Hono
  beforeAll(async () => {
    market = await marketFixture('postgres')
    app = engineApi(await market.engine())
  })
  afterAll(async () => market?.close())

  const call = async (
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }> => {
    const init: RequestInit =
      body === undefined
        ? { method }
        : { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
    const response = await app.request(path, init)
    return { status: response.status, body: await response.json() }
  }
  const place = (order: Record<string, unknown>) => call('POST', '/orders', order)

  it('shows in its depth only what is committed: never a trade whose commit is running, or failed', async () => {
    const carol = await market.trader('carol', { USDT: '1000' })
    const maker = await market.trader('dave', { BTC: '1' })
    await place({ userId: String(maker), side: 'SELL', type: 'LIMIT', price: '101.50', quantity: '0.4' })
    const before = await call('GET', '/depth?limit=100')
    const [{ next }] = (await queryRows<{ next: bigint }>(
      market.database.db,
      sql`select last_trade_id + 1 as next from markets where symbol = 'BTCUSDT'`,
    )) as [{ next: bigint }]
    // A trade row already holding the next id makes the batch's commit fail, after the book has matched.
    await market.database.db.execute(
      sql`insert into trades (market, id, taker_order_id, maker_order_id, buyer_user_id, seller_user_id, buyer_is_maker,
            price, quantity, quote_quantity, buyer_fee, seller_fee) values ('BTCUSDT', ${next}, 0, 0, 0, 0, false, 1, 1, 1, 0, 0)`,
    )
    try {
      let settled = false
      const placing = place({
        userId: String(carol),
        side: 'BUY',
        type: 'LIMIT',
        timeInForce: 'IOC',
        price: '120.00',
        quantity: '0.5',
      }).finally(() => {
        settled = true
      })
      const seen: unknown[] = []
      while (!settled) {
        seen.push((await call('GET', '/depth?limit=100')).body)
        await new Promise((resolve) => setImmediate(resolve))
      }
      expect(await placing).toMatchObject({ status: 503, body: { code: 'unavailable' } })
      expect(seen.length).toBeGreaterThan(0)
      for (const depth of seen) expect(depth).toEqual(before.body)
      expect(await call('GET', '/depth?limit=100')).toEqual(before)
    } finally {
      await market.database.db.execute(sql`delete from trades where market = 'BTCUSDT' and id = ${next}`)
    }
  })

  it('answers what it accepted before it stops, and refuses what comes after, changing nothing', async () => {
    // The last test here: this engine fences out the one above.
    const engine = await market.engine({ batchWindowMs: 50 })
    const api = engineApi(engine)
    const user = await market.trader('stopper', { USDT: '100' })
    const order = { userId: String(user), side: 'BUY', type: 'LIMIT', price: '10.00', quantity: '1' }
    const post = () =>
      api.request('/orders', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(order),
      })
    const accepted = post()
    // Let the request reach the engine's queue; its batch window is still open.
    await new Promise((resolve) => setTimeout(resolve, 10))
    const stopped = engine.stop()
    const late = await post()
    await stopped
    const answer = await Promise.race([
      accepted,
      new Promise<'no answer'>((resolve) => setTimeout(() => resolve('no answer'), 2000)),
    ])
    expect(answer).not.toBe('no answer')
    expect((answer as Response).status).toBe(200)
    expect(late.status).toBe(503)
    expect(await late.json()).toMatchObject({ code: 'unavailable' })
    expect(await market.balances(user)).toEqual({ USDT: ['90', '10'] })
  })
})
