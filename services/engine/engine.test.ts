import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { creditDeposit, startWithdrawal } from '../../ledger/operations.ts'
import { Batch } from './batch.ts'
import type { MatchingEngine } from './engine.ts'
import { type MarketFixture, marketFixture } from './testing.ts'

const place = (
  engine: MatchingEngine,
  userId: bigint,
  side: 'BUY' | 'SELL',
  price: string,
  quantity: string,
  extra = {},
) => engine.submit({ kind: 'place', order: { userId, side, type: 'LIMIT', price, quantity, ...extra } })

describe('matching engine on PGlite', () => {
  let market: MarketFixture
  let engine: MatchingEngine
  beforeAll(async () => {
    market = await marketFixture('pglite')
    engine = await market.engine()
  })
  afterAll(async () => market?.close())

  it('freezes funds for a resting order and settles a trade at the maker price with fees', async () => {
    const maker = await market.trader('maker', { BTC: '1' })
    const taker = await market.trader('taker', { USDT: '1000' })
    const ask = await place(engine, maker, 'SELL', '100.00', '0.5')
    expect(ask).toMatchObject({ kind: 'order', order: { status: 'NEW', origQty: '0.500' } })
    expect(await market.balances(maker)).toEqual({ BTC: ['0.5', '0.5'] })

    const bid = await place(engine, taker, 'BUY', '101.00', '0.2')
    expect(bid).toMatchObject({
      kind: 'order',
      order: { status: 'FILLED', executedQty: '0.200', cummulativeQuoteQty: '20.00000' },
      fills: [{ price: '100.00', qty: '0.200', commission: '0.0004', commissionAsset: 'BTC' }],
    })
    // Taker paid 20 USDT at the maker's price and received 0.2 BTC less the 0.2% taker fee.
    expect(await market.balances(taker)).toEqual({ BTC: ['0.1996', '0'], USDT: ['980', '0'] })
    // Maker received 20 USDT less the 0.1% maker fee; 0.3 BTC still frozen for the rest of the ask.
    expect(await market.balances(maker)).toEqual({ BTC: ['0.5', '0.3'], USDT: ['19.98', '0'] })
    expect(await findImbalances(market.database.db)).toEqual([])
  })

  it('rejects an order without funds and still commits the rest of its batch', async () => {
    const rich = await market.trader('rich', { USDT: '100' })
    const poor = await market.trader('poor', { USDT: '1' })
    const [good, bad] = await Promise.allSettled([
      place(engine, rich, 'BUY', '50.00', '1'),
      place(engine, poor, 'BUY', '50.00', '1'),
    ])
    expect(good).toMatchObject({ status: 'fulfilled', value: { order: { status: 'NEW' } } })
    expect(bad).toMatchObject({
      status: 'rejected',
      reason: {
        code: 'insufficient_funds',
        message: 'Account has insufficient balance for requested action.',
      },
    })
    expect(await market.balances(poor)).toEqual({ USDT: ['1', '0'] })
    expect(await market.balances(rich)).toEqual({ USDT: ['50', '50'] })
  })

  it('draws on the balances it knows, yet never refuses what a deposit paid for nor overdraws', async () => {
    const user = await market.trader('known', { USDT: '100' })
    await place(engine, user, 'BUY', '5.00', '10')
    // Changes made past the engine, which knows 50 USDT available: a deposit…
    await creditDeposit(market.database.db, {
      userId: user,
      asset: 'USDT',
      amount: '100',
      depositRef: 'known:2',
    })
    await expect(place(engine, user, 'BUY', '10.00', '10')).resolves.toMatchObject({
      order: { status: 'NEW' },
    })
    expect(await market.balances(user)).toEqual({ USDT: ['50', '150'] })
    // …and a withdrawal, which leaves 10 where the engine knows 50.
    await startWithdrawal(market.database.db, {
      userId: user,
      asset: 'USDT',
      amount: '40',
      withdrawalId: 'known',
    })
    await expect(place(engine, user, 'BUY', '2.00', '10')).rejects.toMatchObject({
      code: 'insufficient_funds',
    })
    expect(await market.balances(user)).toEqual({ USDT: ['10', '150'] })
    await expect(place(engine, user, 'BUY', '1.00', '10')).resolves.toMatchObject({
      order: { status: 'NEW' },
    })
    expect(await market.balances(user)).toEqual({ USDT: ['0', '160'] })
    expect(await findImbalances(market.database.db)).toEqual([])
  })

  it('refuses bad input before it reaches a batch, naming the field', async () => {
    const user = await market.trader('careless', { USDT: '100' })
    await expect(place(engine, user, 'BUY', '10.001', '1')).rejects.toMatchObject({
      code: 'invalid_input',
      field: 'price',
    })
    await expect(place(engine, user, 'BUY', '10', '0.0005')).rejects.toMatchObject({
      code: 'invalid_input',
      field: 'quantity',
    })
    await expect(place(engine, user, 'BUY', '0.01', '0.001')).rejects.toMatchObject({
      message: 'Filter failure: NOTIONAL',
    })
    expect(await market.balances(user)).toEqual({ USDT: ['100', '0'] })
  })

  it('releases the frozen funds of a cancelled order, by order id or client order id', async () => {
    const user = await market.trader('canceller', { USDT: '100' })
    const first = await place(engine, user, 'BUY', '10.00', '1', { clientOrderId: 'mine-1' })
    await place(engine, user, 'BUY', '20.00', '1', { clientOrderId: 'mine-2' })
    expect(await market.balances(user)).toEqual({ USDT: ['70', '30'] })
    const orderId = BigInt(first.kind === 'order' ? first.order.orderId : 0)
    await expect(engine.submit({ kind: 'cancel', userId: user, orderId })).resolves.toMatchObject({
      order: { status: 'CANCELED' },
    })
    await expect(
      engine.submit({ kind: 'cancel', userId: user, clientOrderId: 'mine-2' }),
    ).resolves.toMatchObject({
      order: { status: 'CANCELED' },
    })
    await expect(
      engine.submit({ kind: 'cancel', userId: user, clientOrderId: 'mine-2' }),
    ).rejects.toMatchObject({
      message: 'Unknown order sent.',
    })
    expect(await market.balances(user)).toEqual({ USDT: ['100', '0'] })
    expect(await findImbalances(market.database.db)).toEqual([])
  })

  it('refuses a client order id still open, and accepts it again once closed', async () => {
    const user = await market.trader('reuser', { USDT: '100' })
    await place(engine, user, 'BUY', '10.00', '1', { clientOrderId: 'again' })
    await expect(place(engine, user, 'BUY', '11.00', '1', { clientOrderId: 'again' })).rejects.toMatchObject({
      message: 'Duplicate order sent.',
    })
    await engine.submit({ kind: 'cancelAll', userId: user })
    await expect(place(engine, user, 'BUY', '11.00', '1', { clientOrderId: 'again' })).resolves.toMatchObject(
      {
        order: { status: 'NEW' },
      },
    )
  })

  it('answers an order only after it is in Postgres, with its trades, ledger entries and outbox events', async () => {
    const seller = await market.trader('seller2', { BTC: '1' })
    const buyer = await market.trader('buyer2', { USDT: '1000' })
    await place(engine, seller, 'SELL', '200.00', '1')
    const result = await engine.submit({
      kind: 'place',
      order: { userId: buyer, side: 'BUY', type: 'MARKET', quoteOrderQty: '100' },
    })
    // The first test's 0.3 BTC left at 100 goes first (30 USDT), then 0.35 BTC at 200 spends the other 70.
    expect(result).toMatchObject({
      order: { status: 'FILLED', executedQty: '0.650', cummulativeQuoteQty: '100.00000', type: 'MARKET' },
    })
    const orderId = result.kind === 'order' ? result.order.orderId : ''
    const [row] = await queryRows<{ status: string; executed: string }>(
      market.database.db,
      sql`select status, executed_quantity::text as executed from orders where market = 'BTCUSDT' and id = ${orderId}`,
    )
    expect(row).toEqual({ status: 'FILLED', executed: '0.650' })
    const events = await queryRows<{ seq: bigint; topic: string }>(
      market.database.db,
      sql`select seq, topic from outbox where market = 'BTCUSDT' order by seq`,
    )
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => BigInt(i + 1)))
    expect(new Set(events.map((e) => e.topic))).toEqual(new Set(['orders', 'trades', 'balances']))
  })

  it('answers every caller and rolls the book back when applying a batch fails unexpectedly', async () => {
    const user = await market.trader('unlucky', { USDT: '100' })
    const before = engine.snapshot()
    const apply = vi.spyOn(Batch.prototype, 'apply').mockImplementationOnce(() => {
      throw new TypeError('a bug while applying')
    })
    try {
      await expect(place(engine, user, 'BUY', '1.00', '10')).rejects.toMatchObject({ code: 'unavailable' })
    } finally {
      apply.mockRestore()
    }
    expect(engine.snapshot()).toEqual(before)
    await expect(place(engine, user, 'BUY', '1.00', '10')).resolves.toMatchObject({
      order: { status: 'NEW' },
    })
  })

  it('halts: new orders refused, cancels allowed; resumes', async () => {
    const user = await market.trader('halter', { USDT: '100' })
    const open = await place(engine, user, 'BUY', '1.00', '10')
    await engine.submit({ kind: 'halt' })
    await expect(place(engine, user, 'BUY', '1.00', '10')).rejects.toMatchObject({
      message: 'Market is halted.',
    })
    const orderId = BigInt(open.kind === 'order' ? open.order.orderId : 0)
    await expect(engine.submit({ kind: 'cancel', userId: user, orderId })).resolves.toMatchObject({
      order: { status: 'CANCELED' },
    })
    await engine.submit({ kind: 'resume' })
    expect(engine.status()).toMatchObject({ status: 'trading' })
  })
})

describe('matching engine durability on the real Postgres', () => {
  let market: MarketFixture
  beforeAll(async () => {
    market = await marketFixture('postgres')
  })
  afterAll(async () => market?.close())

  it('rebuilds the same book from Postgres after a restart', async () => {
    const first = await market.engine()
    const a = await market.trader('rebuild-a', { BTC: '5', USDT: '5000' })
    const b = await market.trader('rebuild-b', { BTC: '5', USDT: '5000' })
    await Promise.all([
      place(first, a, 'BUY', '99.00', '1'),
      place(first, a, 'BUY', '98.50', '2'),
      place(first, b, 'SELL', '101.00', '1.5'),
      place(first, b, 'SELL', '102.00', '0.75'),
    ])
    await place(first, a, 'BUY', '101.00', '0.5')
    const before = first.snapshot()
    await first.stop()
    const second = await market.engine()
    expect(second.snapshot()).toEqual(before)
    expect(
      second
        .openOrders(a)
        .map((o) => o.price)
        .sort(),
    ).toEqual(['98.50', '99.00'])
  })

  it('fences out the older of two engines for one market', async () => {
    const older = await market.engine()
    const user = await market.trader('fenced', { USDT: '100' })
    await place(older, user, 'BUY', '1.00', '1')
    const newer = await market.engine()
    await expect(place(older, user, 'BUY', '1.00', '2')).rejects.toMatchObject({ code: 'conflict' })
    await expect(place(older, user, 'BUY', '1.00', '3')).rejects.toMatchObject({ code: 'conflict' })
    await expect(place(newer, user, 'BUY', '1.00', '4')).resolves.toMatchObject({ order: { status: 'NEW' } })
    const rows = await queryRows<{ quantity: string }>(
      market.database.db,
      sql`select quantity::text from orders where user_id = ${user} order by id`,
    )
    expect(rows.map((r) => r.quantity)).toEqual(['1.000', '4.000'])
    expect(await market.balances(user)).toEqual({ USDT: ['95', '5'] })
  })

  it('writes nothing for a fenced batch, even while another transaction holds its accounts', async () => {
    const older = await market.engine()
    const user = await market.trader('fenced-late', { USDT: '100' })
    await place(older, user, 'BUY', '1.00', '1')
    const newer = await market.engine()
    const journals = async () =>
      (await queryRows<{ n: bigint }>(market.database.db, sql`select count(*) as n from journals`))[0]!.n
    const before = { balances: await market.balances(user), journals: await journals() }
    // Another transaction holds the user's account: had the batch's booking gone ahead of its fence, it would
    // wait behind it.
    const held = Promise.withResolvers<void>()
    const locked = Promise.withResolvers<void>()
    const holder = market.database.db.transaction(async (tx) => {
      await tx.execute(sql`select id from accounts where user_id = ${user} for update`)
      locked.resolve()
      await held.promise
    })
    await locked.promise
    const fenced = expect(place(older, user, 'BUY', '1.00', '2')).rejects.toMatchObject({ code: 'conflict' })
    await new Promise((resolve) => setTimeout(resolve, 200))
    held.resolve()
    await holder
    await fenced
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect({ balances: await market.balances(user), journals: await journals() }).toEqual(before)
    await newer.stop()
  })

  it('rolls the book back when a commit fails, and answers with a retryable error', async () => {
    const engine = await market.engine()
    const maker = await market.trader('rollback-maker', { BTC: '1' })
    const taker = await market.trader('rollback-taker', { USDT: '1000' })
    await place(engine, maker, 'SELL', '100.00', '1')
    const before = engine.snapshot()
    const [{ next }] = (await queryRows<{ next: bigint }>(
      market.database.db,
      sql`select last_trade_id + 1 as next from markets where symbol = 'BTCUSDT'`,
    )) as [{ next: bigint }]
    // A trade row already holding the next id makes the batch's insert fail inside its transaction.
    await market.database.db.execute(
      sql`insert into trades (market, id, taker_order_id, maker_order_id, buyer_user_id, seller_user_id, buyer_is_maker,
            price, quantity, quote_quantity, buyer_fee, seller_fee) values ('BTCUSDT', ${next}, 0, 0, 0, 0, false, 1, 1, 1, 0, 0)`,
    )
    await expect(place(engine, taker, 'BUY', '100.00', '1')).rejects.toMatchObject({
      code: 'unavailable',
      retryable: true,
    })
    expect(engine.snapshot()).toEqual(before)
    expect(await market.balances(taker)).toEqual({ USDT: ['1000', '0'] })
    await market.database.db.execute(sql`delete from trades where market = 'BTCUSDT' and id = ${next}`)
    await expect(place(engine, taker, 'BUY', '100.00', '1')).resolves.toMatchObject({
      order: { status: 'FILLED' },
    })
    expect(await findImbalances(market.database.db)).toEqual([])
  })
})
