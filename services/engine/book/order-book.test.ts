import { describe, expect, it } from 'vitest'
import { BourseError } from '../../../lib/errors.ts'
import { OrderBook } from './order-book.ts'
import { rejectionError } from './rules.ts'
import type {
  BookEvent,
  CommandRejected,
  LimitOrderCommand,
  MarketConfig,
  OrderUpdated,
  Side,
  Trade,
} from './types.ts'

const config: MarketConfig = {
  symbol: 'BTC-USDT',
  tickSize: '0.01',
  lotSize: '0.0001',
  minNotional: 100,
  maxPrice: 1_000_000,
  maxQuantity: 1_000_000,
  makerFeeRate: '0.001',
  takerFeeRate: '0.002',
  defaultStpMode: 'NONE',
}

let nextId = 0
function limit(
  side: Side,
  price: number,
  quantity: number,
  extra: Partial<LimitOrderCommand> = {},
): LimitOrderCommand {
  return { type: 'limit', orderId: `o${++nextId}`, userId: 'alice', side, price, quantity, ...extra }
}

const trades = (events: BookEvent[]) => events.filter((e): e is Trade => e.type === 'trade')
const updates = (events: BookEvent[]) => events.filter((e): e is OrderUpdated => e.type === 'order')
const rejected = (events: BookEvent[]) => events.find((e): e is CommandRejected => e.type === 'rejected')

describe('OrderBook matching', () => {
  it('rests a non-crossing limit order and reports it NEW', () => {
    const book = new OrderBook(config)
    const events = book.placeLimit(limit('BUY', 100, 5, { orderId: 'b1' }))
    expect(events).toEqual([
      {
        type: 'accepted',
        orderId: 'b1',
        userId: 'alice',
        side: 'BUY',
        orderType: 'LIMIT',
        price: 100,
        quantity: 5,
        quoteAmount: null,
        timeInForce: 'GTC',
        postOnly: false,
        stpMode: 'NONE',
      },
    ])
    expect(book.levels()).toEqual({ bids: [{ price: 100, quantity: 5, orderCount: 1 }], asks: [] })
  })

  it('fills at the maker price in price-time priority', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 101, 2, { orderId: 'a101', userId: 'm1' }))
    book.placeLimit(limit('SELL', 100, 2, { orderId: 'a100-first', userId: 'm1' }))
    book.placeLimit(limit('SELL', 100, 2, { orderId: 'a100-second', userId: 'm2' }))
    const events = book.placeLimit(limit('BUY', 105, 5, { orderId: 'taker', userId: 't' }))
    expect(trades(events).map((t) => [t.makerOrderId, t.price, t.quantity, t.quoteAmount])).toEqual([
      ['a100-first', 100, 2, 200],
      ['a100-second', 100, 2, 200],
      ['a101', 101, 1, 101],
    ])
    expect(trades(events)[0]).toMatchObject({ takerOrderId: 'taker', takerUserId: 't', makerUserId: 'm1' })
    expect(updates(events).map((u) => [u.orderId, u.status, u.remainingQuantity])).toEqual([
      ['a100-first', 'FILLED', 0],
      ['a100-second', 'FILLED', 0],
      ['a101', 'PARTIALLY_FILLED', 1],
      ['taker', 'FILLED', 0],
    ])
    expect(book.order('a101')).toMatchObject({ remainingQuantity: 1, executedQuote: 101 })
    expect(book.bestAsk()).toBe(101)
    expect(book.bestBid()).toBeNull()
  })

  it('rests the unfilled part of a GTC taker as PARTIALLY_FILLED', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 100, 2, { userId: 'm' }))
    const events = book.placeLimit(limit('BUY', 100, 5, { orderId: 'b' }))
    expect(updates(events).at(-1)).toMatchObject({
      orderId: 'b',
      status: 'PARTIALLY_FILLED',
      executedQuantity: 2,
      executedQuote: 200,
      remainingQuantity: 3,
    })
    expect(book.levels()).toEqual({ bids: [{ price: 100, quantity: 3, orderCount: 1 }], asks: [] })
  })

  it('expires the rest of an IOC order', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 100, 2, { userId: 'm' }))
    const events = book.placeLimit(limit('BUY', 100, 5, { timeInForce: 'IOC' }))
    expect(updates(events).at(-1)).toMatchObject({
      status: 'EXPIRED',
      executedQuantity: 2,
      remainingQuantity: 0,
      reason: 'UNFILLED_IOC_QUANTITY_EXPIRED',
    })
    expect(book.openOrderCount).toBe(0)
  })

  it('fills a FOK order completely or not at all', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 100, 2, { userId: 'm' }))
    book.placeLimit(limit('SELL', 102, 2, { userId: 'm' }))
    const before = book.snapshot()
    const tooMuch = book.placeLimit(limit('BUY', 101, 3, { timeInForce: 'FOK' }))
    expect(trades(tooMuch)).toEqual([])
    expect(updates(tooMuch)).toEqual([
      expect.objectContaining({ status: 'EXPIRED', reason: 'UNFILLED_FOK_ORDER_EXPIRED' }),
    ])
    expect(book.snapshot()).toEqual(before)
    const enough = book.placeLimit(limit('BUY', 102, 3, { timeInForce: 'FOK' }))
    expect(trades(enough).map((t) => t.quantity)).toEqual([2, 1])
    expect(updates(enough).at(-1)).toMatchObject({ status: 'FILLED' })
  })

  it('rejects a post-only order that would take, and rests one that would not', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 100, 2, { userId: 'm' }))
    const taking = book.placeLimit(limit('BUY', 100, 1, { postOnly: true }))
    expect(taking).toEqual([
      expect.objectContaining({ type: 'rejected', reason: 'Order would immediately match and take.' }),
    ])
    const making = book.placeLimit(limit('BUY', 99, 2, { postOnly: true }))
    expect(making.map((e) => e.type)).toEqual(['accepted'])
    expect(book.bestBid()).toBe(99)
  })
})

describe('OrderBook market orders', () => {
  it('buys by base quantity across levels and expires what the book cannot fill', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 100, 2, { userId: 'm' }))
    book.placeLimit(limit('SELL', 110, 2, { userId: 'm' }))
    const events = book.placeMarket({ type: 'market', orderId: 'mk', userId: 't', side: 'BUY', quantity: 5 })
    expect(trades(events).map((t) => [t.price, t.quantity])).toEqual([
      [100, 2],
      [110, 2],
    ])
    expect(updates(events).at(-1)).toMatchObject({
      orderId: 'mk',
      status: 'EXPIRED',
      executedQuantity: 4,
      executedQuote: 420,
      reason: 'INSUFFICIENT_LIQUIDITY',
    })
  })

  it('buys by quote amount until the rest cannot buy one more lot', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 100, 2, { userId: 'm' }))
    book.placeLimit(limit('SELL', 110, 5, { userId: 'm' }))
    const events = book.placeMarket({
      type: 'market',
      orderId: 'q',
      userId: 't',
      side: 'BUY',
      quoteAmount: 430,
    })
    // 2 lots at 100 (200), then 230 buys 2 lots at 110 (220); the last 10 cannot buy a lot.
    expect(trades(events).map((t) => [t.price, t.quantity])).toEqual([
      [100, 2],
      [110, 2],
    ])
    expect(updates(events).at(-1)).toMatchObject({
      status: 'FILLED',
      executedQuantity: 4,
      executedQuote: 420,
    })
    expect(book.order(book.snapshot().asks[0]!.orderId)?.remainingQuantity).toBe(3)
  })

  it('reports a quote order that spends exactly the last liquidity as FILLED', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 100, 3, { userId: 'm' }))
    const events = book.placeMarket({
      type: 'market',
      orderId: 'q',
      userId: 't',
      side: 'BUY',
      quoteAmount: 300,
    })
    expect(updates(events).at(-1)).toMatchObject({ status: 'FILLED', executedQuantity: 3, reason: null })
  })

  it('sells by quote amount and expires when the book runs out', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('BUY', 100, 1, { userId: 'm' }))
    const events = book.placeMarket({
      type: 'market',
      orderId: 'q',
      userId: 't',
      side: 'SELL',
      quoteAmount: 1000,
    })
    expect(trades(events)).toHaveLength(1)
    expect(updates(events).at(-1)).toMatchObject({ status: 'EXPIRED', reason: 'INSUFFICIENT_LIQUIDITY' })
  })

  it('needs exactly one of quantity and quote amount', () => {
    const book = new OrderBook(config)
    const both = book.placeMarket({
      type: 'market',
      orderId: 'x',
      userId: 't',
      side: 'BUY',
      quantity: 1,
      quoteAmount: 500,
    })
    expect(rejected(both)?.field).toBe('quantity')
    expect(
      rejected(book.placeMarket({ type: 'market', orderId: 'y', userId: 't', side: 'BUY' })),
    ).toBeDefined()
  })
})

describe('OrderBook filters', () => {
  const book = new OrderBook(config)
  it.each([
    [{ price: 0 }, 'Filter failure: PRICE_FILTER', 'price'],
    [{ price: 1.5 }, 'Filter failure: PRICE_FILTER', 'price'],
    [{ price: 2_000_000 }, 'Filter failure: PRICE_FILTER', 'price'],
    [{ quantity: 0 }, 'Filter failure: LOT_SIZE', 'quantity'],
    [{ quantity: 2.5 }, 'Filter failure: LOT_SIZE', 'quantity'],
    [{ price: 10, quantity: 9 }, 'Filter failure: NOTIONAL', 'quantity'],
    [{ postOnly: true, timeInForce: 'IOC' as const }, 'Post-only orders must be GTC.', 'timeInForce'],
  ])('rejects %o with %s', (change, reason, field) => {
    const events = book.placeLimit({ ...limit('BUY', 100, 5), ...change })
    expect(events).toEqual([
      expect.objectContaining({ type: 'rejected', reason, field, code: 'invalid_input' }),
    ])
    expect(book.openOrderCount).toBe(0)
  })

  it('judges a market order by quantity at the best price, and by quote amount directly', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 10, 50, { userId: 'm' }))
    const small = book.placeMarket({ type: 'market', orderId: 'a', userId: 't', side: 'BUY', quantity: 9 })
    expect(rejected(small)?.reason).toBe('Filter failure: NOTIONAL')
    const quote = book.placeMarket({
      type: 'market',
      orderId: 'b',
      userId: 't',
      side: 'BUY',
      quoteAmount: 99,
    })
    expect(rejected(quote)).toMatchObject({ reason: 'Filter failure: NOTIONAL', field: 'quoteAmount' })
  })

  it('turns a rejection into a BourseError the HTTP edge can return', () => {
    const event = rejected(new OrderBook(config).placeLimit(limit('BUY', 0, 5)))!
    const error = rejectionError(event)
    expect(error).toBeInstanceOf(BourseError)
    expect(error.toJSON()).toEqual({
      code: 'invalid_input',
      message: 'Filter failure: PRICE_FILTER',
      field: 'price',
    })
  })

  it('refuses a config with a bad unit', () => {
    expect(() => new OrderBook({ ...config, tickSize: '0' })).toThrow(/tickSize/)
    expect(() => new OrderBook({ ...config, minNotional: 1.5 })).toThrow(/minNotional/)
  })

  it('rejects a duplicate id of a resting order', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('BUY', 100, 5, { orderId: 'same' }))
    expect(rejected(book.placeLimit(limit('BUY', 99, 5, { orderId: 'same' })))).toMatchObject({
      code: 'conflict',
    })
  })
})

describe('OrderBook self-trade prevention', () => {
  function bookWithOwnAndOtherMaker() {
    const book = new OrderBook(config)
    book.placeLimit(limit('SELL', 100, 2, { orderId: 'own', userId: 'alice' }))
    book.placeLimit(limit('SELL', 100, 2, { orderId: 'other', userId: 'bob' }))
    return book
  }

  it('EXPIRE_TAKER expires the taker in match and leaves the maker', () => {
    const book = bookWithOwnAndOtherMaker()
    const events = book.placeLimit(limit('BUY', 100, 3, { orderId: 't', stpMode: 'EXPIRE_TAKER' }))
    expect(trades(events)).toEqual([])
    expect(events.find((e) => e.type === 'preventedMatch')).toMatchObject({
      makerOrderId: 'own',
      takerOrderId: 't',
    })
    expect(updates(events)).toEqual([
      expect.objectContaining({ orderId: 't', status: 'EXPIRED_IN_MATCH', reason: 'SELF_TRADE_PREVENTION' }),
    ])
    expect(book.openOrderCount).toBe(2)
  })

  it('EXPIRE_MAKER expires the own maker and keeps matching', () => {
    const book = bookWithOwnAndOtherMaker()
    const events = book.placeLimit(limit('BUY', 100, 3, { orderId: 't', stpMode: 'EXPIRE_MAKER' }))
    expect(updates(events).map((u) => [u.orderId, u.status])).toEqual([
      ['own', 'EXPIRED_IN_MATCH'],
      ['other', 'FILLED'],
      ['t', 'PARTIALLY_FILLED'],
    ])
    expect(trades(events).map((t) => t.makerOrderId)).toEqual(['other'])
    expect(book.bestBid()).toBe(100)
  })

  it('EXPIRE_BOTH expires both', () => {
    const book = bookWithOwnAndOtherMaker()
    const events = book.placeLimit(limit('BUY', 100, 3, { orderId: 't', stpMode: 'EXPIRE_BOTH' }))
    expect(updates(events).map((u) => [u.orderId, u.status])).toEqual([
      ['own', 'EXPIRED_IN_MATCH'],
      ['t', 'EXPIRED_IN_MATCH'],
    ])
    expect(book.snapshot().asks.map((o) => o.orderId)).toEqual(['other'])
  })

  it('NONE lets a user trade with themself', () => {
    const book = bookWithOwnAndOtherMaker()
    const events = book.placeLimit(limit('BUY', 100, 1, { stpMode: 'NONE' }))
    expect(trades(events)).toEqual([
      expect.objectContaining({ makerOrderId: 'own', makerUserId: 'alice', takerUserId: 'alice' }),
    ])
  })

  it('uses the market default mode and counts STP in the FOK check', () => {
    const book = new OrderBook({ ...config, defaultStpMode: 'EXPIRE_TAKER' })
    book.placeLimit(limit('SELL', 100, 2, { orderId: 'own', userId: 'alice' }))
    book.placeLimit(limit('SELL', 101, 2, { orderId: 'other', userId: 'bob' }))
    const before = book.snapshot()
    const events = book.placeLimit(limit('BUY', 101, 2, { timeInForce: 'FOK' }))
    expect(updates(events)).toEqual([
      expect.objectContaining({ status: 'EXPIRED', reason: 'UNFILLED_FOK_ORDER_EXPIRED' }),
    ])
    expect(book.snapshot()).toEqual(before)
  })
})

describe('OrderBook cancel and halt', () => {
  it('cancels an order of its owner only', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('BUY', 100, 5, { orderId: 'b', userId: 'alice' }))
    expect(rejected(book.cancel({ type: 'cancel', orderId: 'b', userId: 'mallory' }))).toMatchObject({
      code: 'not_found',
      reason: 'Unknown order sent.',
    })
    const events = book.cancel({ type: 'cancel', orderId: 'b', userId: 'alice' })
    expect(updates(events)).toEqual([
      expect.objectContaining({
        status: 'CANCELED',
        reason: 'CANCELED_BY_USER',
        remainingQuantity: 0,
        executedQuantity: 0,
      }),
    ])
    expect(book.levels()).toEqual({ bids: [], asks: [] })
  })

  it('cancels all orders of one user, oldest first', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('BUY', 99, 5, { orderId: 'a1', userId: 'alice' }))
    book.placeLimit(limit('BUY', 99, 5, { orderId: 'b1', userId: 'bob' }))
    book.placeLimit(limit('SELL', 120, 5, { orderId: 'a2', userId: 'alice' }))
    book.placeLimit(limit('BUY', 100, 5, { orderId: 'a3', userId: 'alice' }))
    const events = book.cancelAll({ type: 'cancelAll', userId: 'alice' })
    expect(updates(events).map((u) => u.orderId)).toEqual(['a1', 'a2', 'a3'])
    expect(book.snapshot().bids.map((o) => o.orderId)).toEqual(['b1'])
    expect(book.cancelAll({ type: 'cancelAll', userId: 'alice' })).toEqual([])
  })

  it('rejects new orders while halted but still cancels', () => {
    const book = new OrderBook(config)
    book.placeLimit(limit('BUY', 100, 5, { orderId: 'b' }))
    expect(book.halt()).toEqual([{ type: 'marketStatus', status: 'HALTED' }])
    expect(book.halt()).toEqual([])
    expect(rejected(book.placeLimit(limit('BUY', 100, 5)))?.reason).toBe('Market is halted.')
    expect(updates(book.cancel({ type: 'cancel', orderId: 'b', userId: 'alice' }))[0]?.status).toBe(
      'CANCELED',
    )
    book.resume()
    expect(book.placeLimit(limit('BUY', 100, 5))[0]?.type).toBe('accepted')
  })

  it('matches a single order as fast against a deep level as a shallow one (no scan of the queue)', () => {
    const book = new OrderBook(config)
    for (let i = 0; i < 5000; i++)
      book.placeLimit(limit('SELL', 100, 1, { orderId: `deep${i}`, userId: `m${i}` }))
    const events = book.placeMarket({ type: 'market', orderId: 'mk', userId: 't', side: 'BUY', quantity: 1 })
    expect(trades(events)).toEqual([expect.objectContaining({ makerOrderId: 'deep0' })])
    book.cancel({ type: 'cancel', orderId: 'deep2500', userId: 'm2500' })
    expect(book.levels()).toEqual({ bids: [], asks: [{ price: 100, quantity: 4998, orderCount: 4998 }] })
  })
})

describe('OrderBook batches and restore', () => {
  function busyBook() {
    const book = new OrderBook(config)
    for (let i = 0; i < 6; i++) {
      book.placeLimit(limit('BUY', 95 + i, 3, { orderId: `b${i}`, userId: `u${i % 2}` }))
      book.placeLimit(limit('SELL', 102 + i, 3, { orderId: `s${i}`, userId: `u${i % 3}` }))
    }
    return book
  }

  it('rolls a batch back to the exact state before it', () => {
    const book = busyBook()
    const before = book.snapshot()
    book.beginBatch()
    book.placeLimit(limit('BUY', 104, 7, { userId: 'x' }))
    book.placeMarket({
      type: 'market',
      orderId: 'm',
      userId: 'u0',
      side: 'SELL',
      quantity: 4,
      stpMode: 'EXPIRE_MAKER',
    })
    book.cancel({ type: 'cancel', orderId: 's5', userId: 'u2' })
    book.cancelAll({ type: 'cancelAll', userId: 'u1' })
    book.halt()
    expect(book.snapshot()).not.toEqual(before)
    book.rollbackBatch()
    expect(book.snapshot()).toEqual(before)
    expect(book.levels()).toEqual(busyBook().levels())
    // Cancel-all order after rollback is the same as on a book that never saw the batch.
    expect(book.cancelAll({ type: 'cancelAll', userId: 'u0' })).toEqual(
      busyBook().cancelAll({ type: 'cancelAll', userId: 'u0' }),
    )
  })

  it('rolls back to a savepoint: only what came after it is undone', () => {
    const book = busyBook()
    book.beginBatch()
    book.cancel({ type: 'cancel', orderId: 'b0', userId: 'u0' })
    const kept = book.snapshot()
    const savepoint = book.savepoint()
    book.placeMarket({ type: 'market', orderId: 'm', userId: 'x', side: 'BUY', quantity: 5 })
    book.placeLimit(limit('SELL', 99, 2, { orderId: 'late', userId: 'y' }))
    expect(book.snapshot()).not.toEqual(kept)
    book.rollbackTo(savepoint)
    expect(book.snapshot()).toEqual(kept)
    book.commitBatch()
    expect(book.order('b0')).toBeUndefined()
    expect(book.order('s0')).toMatchObject({ remainingQuantity: 3 })
    expect(() => book.savepoint()).toThrow(/No batch/)
  })

  it('keeps a committed batch and refuses nested or missing batches', () => {
    const book = busyBook()
    book.beginBatch()
    expect(() => book.beginBatch()).toThrow(BourseError)
    book.cancel({ type: 'cancel', orderId: 'b0', userId: 'u0' })
    book.commitBatch()
    expect(book.order('b0')).toBeUndefined()
    expect(() => book.rollbackBatch()).toThrow(/No batch/)
  })

  it('restores from its own snapshot into an identical book', () => {
    const book = busyBook()
    book.placeLimit(limit('BUY', 103, 4, { userId: 'x' }))
    const copy = new OrderBook(config)
    const snapshot = book.snapshot()
    copy.restore([...snapshot.bids, ...snapshot.asks])
    expect(copy.snapshot()).toEqual(snapshot)
    const order = limit('BUY', 110, 9, { userId: 'y' })
    expect(copy.placeLimit(order)).toEqual(book.placeLimit(order))
  })

  it('refuses a restore that no book could produce', () => {
    const open = {
      orderId: 'a',
      userId: 'u',
      side: 'BUY' as const,
      price: 100,
      quantity: 5,
      remainingQuantity: 5,
      executedQuote: 0,
    }
    expect(() =>
      new OrderBook(config).restore([open, { ...open, orderId: 'b', side: 'SELL', price: 100 }]),
    ).toThrow(/crossed/)
    expect(() => new OrderBook(config).restore([open, open])).toThrow(/duplicate/)
    expect(() => new OrderBook(config).restore([{ ...open, remainingQuantity: 6 }])).toThrow(
      /remainingQuantity/,
    )
  })
})
