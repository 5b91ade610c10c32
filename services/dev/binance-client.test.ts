/**
 * A real Binance client nobody here wrote — the npm package `binance` (tiagosiebler), its MainClient with
 * nothing changed but `baseUrl` — runs a whole session against `bourse dev` started as a child process:
 * market data after the demo bots traded, the demo trader's account, a LIMIT order placed, queried,
 * listed and cancelled, a MARKET order by quoteOrderQty with FULL fills that move the balances, the
 * history, and the errors as the client surfaces them (Binance's codes and messages word for word).
 *
 * The user data stream through the package's own WebSocket clients, pointed at bourse dev's ws port with
 * `wsUrl`: the WebsocketAPIClient's `subscribeUserDataStream` (Binance's current way, the WebSocket API's
 * `userDataStream.subscribe.signature`) and the WebsocketClient's listen-key stream (`subscribeSpotUserDataStream`,
 * which asks the REST API for the listen key): an order placed and cancelled shows up on both as its
 * executionReports and the outboundAccountPositions of the USDT it holds and gives back.
 *
 * The client's own `getServerTime()`
 * is not used: it ignores `baseUrl` and always asks api.binance.com (it resolves its URL from the base
 * URL key alone), so the test reads /api/v3/time through the same client's generic `get`.
 */
import {
  DefaultLogger,
  MainClient,
  type SpotOrder,
  type SymbolFilter,
  type Ticker24hrFull,
  type TradingDayTickerFull,
  WebsocketAPIClient,
  WebsocketClient,
} from 'binance'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { formatDecimal, parseDecimal } from '../../lib/money.ts'
import { freePort } from '../../lib/net.ts'
import { type DevProcess, startDev } from './dev-process.ts'

const SYMBOL = 'BTCUSDT'
/** Every amount of the test at 8 places, as bigint units (Bourse never sends more than 8 decimals). */
const S = 8
const units = (text: string | number): bigint =>
  parseDecimal(String(text), S, { allowZero: true, allowNegative: true })
const text = (value: bigint): string => formatDecimal(value, S, { trimZeros: true })

/** What the client throws for an error answer: `{code, message, body}` from Binance's `{code, msg}`. */
interface ClientError {
  code: number
  message: string
  body: { code: number; msg: string }
}

async function rejection(promise: Promise<unknown>): Promise<ClientError> {
  try {
    await promise
  } catch (err) {
    return err as ClientError
  }
  throw new Error('expected the request to be refused')
}

type StreamEvent = Record<string, unknown> & { e: string }

/** The WebSocket clients log every connection step at info level: errors only. */
const quiet: DefaultLogger = { ...DefaultLogger, info: () => {} }

/** The user data events a WebSocket client of the package hands over, unwrapped from the WS API's `{subscriptionId, event}`. */
function userEvents(ws: WebsocketClient): { events: StreamEvent[]; exceptions: unknown[] } {
  const events: StreamEvent[] = []
  const exceptions: unknown[] = []
  ws.on('message', (data) => {
    const message = data as unknown as { event?: StreamEvent } & Partial<StreamEvent>
    const event = message.event ?? message
    if (typeof event.e === 'string') events.push(event as StreamEvent)
  })
  ws.on('exception', (error) => exceptions.push(error))
  return { events, exceptions }
}

async function eventually<T>(what: string, read: () => Promise<T>, ok: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const value = await read()
    if (ok(value)) return value
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

describe('the binance npm client against bourse dev', () => {
  let dev: DevProcess
  let client: MainClient
  /** bourse dev's ws server, ws://127.0.0.1:PORT. */
  let wsUrl: string
  /** Filters of BTCUSDT as the client parsed them from exchangeInfo. */
  let tick: bigint
  let lot: bigint
  let minNotional: bigint

  async function balances(): Promise<Map<string, { free: bigint; locked: bigint }>> {
    const account = await client.getAccountInformation()
    return new Map(account.balances.map((b) => [b.asset, { free: units(b.free), locked: units(b.locked) }]))
  }

  async function bestBid(): Promise<bigint> {
    const book = await eventually(
      'a book with bids',
      () => client.getOrderBook({ symbol: SYMBOL, limit: 5 }),
      (b) => b.bids.length > 0,
    )
    return units(book.bids[0]![0])
  }

  /** A LIMIT buy price well under the market, on the tick grid. */
  async function priceBelowMarket(): Promise<bigint> {
    const p = ((await bestBid()) * 8n) / 10n
    return p - (p % tick)
  }

  /** A LIMIT buy under the market, placed and cancelled: its reports and the USDT it holds, seen on `events`. */
  async function orderOnStream(events: StreamEvent[], exceptions: unknown[]): Promise<void> {
    const seen = async (what: string, match: (e: StreamEvent) => boolean): Promise<StreamEvent> => {
      const found = await eventually(
        what,
        async () => {
          if (exceptions.length > 0) throw new Error(`client exception: ${JSON.stringify(exceptions[0])}`)
          return events.find(match)
        },
        (e) => e !== undefined,
      )
      return found!
    }
    const usdtLocked = (e: StreamEvent, locked: bigint) =>
      e.e === 'outboundAccountPosition' &&
      (e.B as { a: string; l: string }[]).some((b) => b.a === 'USDT' && units(b.l) === locked)
    const price = await priceBelowMarket()
    const quantity = 100n * lot
    const cost = (price * quantity) / 10n ** BigInt(S)
    const clientOrderId = client.generateNewOrderId()
    const { orderId } = await client.submitNewOrder({
      symbol: SYMBOL,
      side: 'BUY',
      type: 'LIMIT',
      timeInForce: 'GTC',
      price: Number(text(price)),
      quantity: Number(text(quantity)),
      newClientOrderId: clientOrderId,
    })
    const placed = await seen('the NEW executionReport', (e) => e.e === 'executionReport' && e.i === orderId)
    expect(placed).toMatchObject({ s: SYMBOL, c: clientOrderId, S: 'BUY', o: 'LIMIT', x: 'NEW', X: 'NEW' })
    expect(units(placed.p as string)).toBe(price)
    expect(units(placed.q as string)).toBe(quantity)
    await seen('the USDT held by the order', (e) => usdtLocked(e, cost))

    await client.cancelOrder({ symbol: SYMBOL, orderId })
    const canceled = await seen(
      'the CANCELED executionReport',
      (e) => e.e === 'executionReport' && e.i === orderId && e.X === 'CANCELED',
    )
    expect(canceled).toMatchObject({ x: 'CANCELED', z: expect.stringMatching(/^0(\.0+)?$/) })
    await seen(
      'the USDT given back',
      (e) => usdtLocked(e, 0n) && events.indexOf(e) > events.indexOf(canceled),
    )
  }

  beforeAll(async () => {
    const wsPort = await freePort()
    wsUrl = `ws://127.0.0.1:${wsPort}`
    dev = await startDev({ env: { BOURSE_WS_PORT: String(wsPort) } })
    client = new MainClient({ baseUrl: dev.url, api_key: dev.apiKey, api_secret: dev.apiSecret })
  }, 120_000)

  afterAll(async () => {
    await dev?.stop()
  }, 30_000)

  it('pings and tells the server time', async () => {
    expect(await client.testConnectivity()).toEqual({})
    const before = Date.now()
    const { serverTime } = (await client.get('api/v3/time')) as { serverTime: number }
    expect(serverTime).toBeGreaterThanOrEqual(before - 1000)
    expect(serverTime).toBeLessThanOrEqual(Date.now() + 1000)
    // The client tracks the request weight from the X-MBX-USED-WEIGHT-1M header.
    expect(client.getRateLimitStates()['x-mbx-used-weight-1m']).toBeGreaterThan(0)
  })

  it('describes the markets and their filters in exchangeInfo', async () => {
    const info = await client.getExchangeInfo()
    expect(info.timezone).toBe('UTC')
    expect(info.rateLimits).toContainEqual(
      expect.objectContaining({ rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1 }),
    )
    expect(info.symbols.map((s) => s.symbol).sort()).toEqual(['BTCUSDT', 'ETHUSDT'])

    const btc = (await client.getExchangeInfo({ symbol: SYMBOL })).symbols
    expect(btc).toHaveLength(1)
    const market = btc[0]!
    expect(market).toMatchObject({
      symbol: SYMBOL,
      status: 'TRADING',
      baseAsset: 'BTC',
      quoteAsset: 'USDT',
      quoteOrderQtyMarketAllowed: true,
      isSpotTradingAllowed: true,
    })
    expect(market.orderTypes).toEqual(expect.arrayContaining(['LIMIT', 'LIMIT_MAKER', 'MARKET']))
    const filter = <T extends SymbolFilter['filterType']>(type: T) => {
      const found = market.filters.find((f) => f.filterType === type)
      expect(found, `${type} filter`).toBeDefined()
      return found as Extract<SymbolFilter, { filterType: T }>
    }
    const price = filter('PRICE_FILTER')
    const size = filter('LOT_SIZE')
    const notional = filter('NOTIONAL')
    tick = units(price.tickSize)
    lot = units(size.stepSize)
    minNotional = units(notional.minNotional)
    expect([text(tick), text(lot), text(minNotional)]).toEqual(['0.01', '0.00001', '5'])
    expect(units(price.minPrice)).toBe(tick)
    expect(units(price.maxPrice)).toBeGreaterThan(units(100_000))
    expect(units(size.minQty)).toBe(lot)
    expect(notional.applyMinToMarket).toBe(true)

    // The client's beautifier turns the same filters into numbers.
    const beautified = new MainClient({ baseUrl: dev.url, beautifyResponses: true })
    const parsed = (await beautified.getExchangeInfo({ symbol: SYMBOL })).symbols[0]!.filters
    expect(parsed).toContainEqual(expect.objectContaining({ filterType: 'PRICE_FILTER', tickSize: 0.01 }))
    expect(parsed).toContainEqual(expect.objectContaining({ filterType: 'LOT_SIZE', stepSize: 0.00001 }))
  })

  it('shows an uncrossed order book around the market maker', async () => {
    const book = await eventually(
      'a two-sided book',
      () => client.getOrderBook({ symbol: SYMBOL, limit: 5 }),
      (b) => b.bids.length > 0 && b.asks.length > 0,
    )
    expect(book.lastUpdateId).toBeGreaterThan(0)
    expect(book.bids.length).toBeLessThanOrEqual(5)
    const bids = book.bids.map(([p]) => units(p))
    const asks = book.asks.map(([p]) => units(p))
    expect([...bids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0))).toEqual(bids)
    expect([...asks].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(asks)
    expect(bids[0]!).toBeLessThan(asks[0]!)
    for (const [p, q] of [...book.bids, ...book.asks]) {
      expect(units(p) % tick).toBe(0n)
      expect(units(q) % lot).toBe(0n)
      expect(units(q)).toBeGreaterThan(0n)
    }
    // Around the bot's 65000 start.
    expect(bids[0]!).toBeGreaterThan(units(50_000))
    expect(asks[0]!).toBeLessThan(units(80_000))
  })

  it('has k-lines and a 24h ticker once the bots traded', async () => {
    const klines = await eventually(
      'k-lines with trades',
      () => client.getKlines({ symbol: SYMBOL, interval: '1m', limit: 10 }),
      (ks) => ks.some((k) => Number(k[8]) > 0),
    )
    for (const [openTime, open, high, low, close, volume, closeTime, , count] of klines) {
      expect(Number(closeTime) - Number(openTime)).toBe(59_999)
      expect(Number(openTime) % 60_000).toBe(0)
      if (Number(count) === 0) continue
      expect(units(high)).toBeGreaterThanOrEqual(units(low))
      for (const p of [open, close]) {
        expect(units(p)).toBeGreaterThanOrEqual(units(low))
        expect(units(p)).toBeLessThanOrEqual(units(high))
      }
      expect(units(volume)).toBeGreaterThan(0n)
    }
    const tradeCount = (ks: typeof klines) => ks.reduce((n, k) => n + Number(k[8]), 0)
    const tradesInKlines = tradeCount(klines)

    // The days of a trader at UTC+5:45 open at their midnight, 18:15 UTC, and hold every trade so far.
    const DAY = 86_400_000
    const nepal = await client.getUIKlines({ symbol: SYMBOL, interval: '1d', timeZone: '5:45' })
    const utcDays = await client.getKlines({ symbol: SYMBOL, interval: '1d' })
    for (const [openTime, , , , , , closeTime] of nepal) {
      expect((Number(openTime) + 345 * 60_000) % DAY).toBe(0)
      expect(Number(closeTime) - Number(openTime)).toBe(DAY - 1)
    }
    expect(tradeCount(nepal)).toBeGreaterThanOrEqual(tradesInKlines)
    expect(tradeCount(utcDays)).toBeGreaterThanOrEqual(tradeCount(nepal))

    const ticker = (await client.get24hrChangeStatistics({ symbol: SYMBOL, type: 'FULL' })) as Ticker24hrFull
    expect(ticker.symbol).toBe(SYMBOL)
    expect(ticker.count).toBeGreaterThanOrEqual(tradesInKlines)
    expect(ticker.lastId - ticker.firstId + 1).toBe(ticker.count)
    const [last, open, high, low] = [ticker.lastPrice, ticker.openPrice, ticker.highPrice, ticker.lowPrice]
    expect(units(last)).toBeGreaterThanOrEqual(units(low))
    expect(units(last)).toBeLessThanOrEqual(units(high))
    expect(units(ticker.priceChange)).toBe(units(last) - units(open))
    expect(units(ticker.volume)).toBeGreaterThan(0n)
    expect(ticker.closeTime - ticker.openTime).toBeGreaterThan(23 * 3600_000)

    const recent = await client.getRecentTrades({ symbol: SYMBOL, limit: 5 })
    expect(recent.length).toBeGreaterThan(0)
    expect(recent.map((t) => t.id)).toEqual([...recent.map((t) => t.id)].sort((a, b) => a - b))
    for (const t of recent) expect(units(t.price) % tick).toBe(0n)

    // The same trades again from the history (Postgres), as an older-trades page.
    const older = await client.getHistoricalTrades({
      symbol: SYMBOL,
      fromId: recent[0]!.id,
      limit: recent.length,
    })
    expect(older).toEqual(recent)

    // The same trades as aggregate trades, each its own aggregate.
    const aggregates = await client.getAggregateTrades({ symbol: SYMBOL, fromId: recent[0]!.id, limit: 5 })
    expect(aggregates.map((a) => a.a)).toEqual(recent.map((t) => t.id))
    for (const [i, a] of aggregates.entries()) {
      expect(a).toMatchObject({ f: a.a, l: a.a, p: recent[i]!.price, q: recent[i]!.qty, T: recent[i]!.time })
    }

    const [hour] = (await client.getRollingWindowTicker({
      symbols: [SYMBOL],
      windowSize: '1h',
    })) as TradingDayTickerFull[]
    const day = (await client.getRollingWindowTicker({ symbol: SYMBOL })) as unknown as TradingDayTickerFull
    expect(hour!.symbol).toBe(SYMBOL)
    expect(hour!.closeTime - hour!.openTime).toBeGreaterThanOrEqual(3600_000)
    expect(hour!.closeTime - hour!.openTime).toBeLessThan(3660_000)
    expect(day.closeTime - day.openTime).toBeGreaterThanOrEqual(86_400_000)
    expect(hour!.count).toBeGreaterThan(0)
    expect(hour!.count).toBeLessThanOrEqual(day.count)
    expect(units(hour!.priceChange)).toBe(units(hour!.lastPrice) - units(hour!.openPrice))
    expect(units(hour!.lastPrice)).toBeGreaterThanOrEqual(units(hour!.lowPrice))
    expect(units(hour!.lastPrice)).toBeLessThanOrEqual(units(hour!.highPrice))

    // The UTC day so far: it holds the trades of the last hour unless the day began within it.
    const today = (await client.getTradingDayTicker({ symbol: SYMBOL })) as unknown as TradingDayTickerFull
    expect(today.openTime).toBe(Date.now() - (Date.now() % 86_400_000))
    expect(today.closeTime).toBe(today.openTime + 86_400_000 - 1)
    if (hour!.openTime >= today.openTime) expect(today.count).toBeGreaterThanOrEqual(hour!.count)
  })

  it("shows the demo trader's funds", async () => {
    const account = await client.getAccountInformation()
    expect(account).toMatchObject({ canTrade: true, accountType: 'SPOT' })
    const b = await balances()
    expect(b.get('BTC')).toEqual({ free: units(10), locked: 0n })
    // The demo funds plus the chain deposit bourse dev sends at start (1 ETH, 1000 USDT).
    expect(b.get('ETH')).toEqual({ free: units(101), locked: 0n })
    expect(b.get('USDT')).toEqual({ free: units(101_000), locked: 0n })
    // The demo markets share one fee schedule, which the account shows too.
    const rates = await client.getCommissionRates({ symbol: SYMBOL })
    expect(rates.symbol).toBe(SYMBOL)
    expect(rates.standardCommission.maker).toBe(account.commissionRates.maker)
    expect(rates.standardCommission.taker).toBe(account.commissionRates.taker)
  })

  it('places a LIMIT buy under the market, finds it by id and client id and in open orders, and cancels it', async () => {
    const price = await priceBelowMarket()
    const quantity = 100n * lot // 0.001 BTC
    const cost = (price * quantity) / 10n ** BigInt(S)
    const clientOrderId = client.generateNewOrderId()
    const placed = await client.submitNewOrder({
      symbol: SYMBOL,
      side: 'BUY',
      type: 'LIMIT',
      timeInForce: 'GTC',
      price: Number(text(price)),
      quantity: Number(text(quantity)),
      newClientOrderId: clientOrderId,
      newOrderRespType: 'FULL',
    })
    expect(placed).toMatchObject({
      symbol: SYMBOL,
      clientOrderId,
      status: 'NEW',
      type: 'LIMIT',
      side: 'BUY',
      timeInForce: 'GTC',
      fills: [],
    })
    expect(units(placed.price)).toBe(price)
    expect(units(placed.origQty)).toBe(quantity)
    expect(units(placed.executedQty)).toBe(0n)
    const { orderId } = placed

    const byId = await client.getOrder({ symbol: SYMBOL, orderId })
    const byClientId = await client.getOrder({ symbol: SYMBOL, origClientOrderId: clientOrderId })
    expect(byClientId).toEqual(byId)
    expect(byId).toMatchObject({ orderId, clientOrderId, status: 'NEW', isWorking: true })
    expect(units(byId.price)).toBe(price)

    const open = await client.getOpenOrders({ symbol: SYMBOL })
    expect(open.map((o) => o.orderId)).toEqual([orderId])
    expect((await client.getOpenOrders()).map((o) => o.orderId)).toEqual([orderId])

    const held = await balances()
    expect(held.get('USDT')).toEqual({ free: units(101_000) - cost, locked: cost })

    // Moved a tick down in one request: the order canceled, its replacement resting.
    const replaced = await client.replaceOrder({
      symbol: SYMBOL,
      cancelReplaceMode: 'STOP_ON_FAILURE',
      cancelOrderId: orderId,
      side: 'BUY',
      type: 'LIMIT',
      timeInForce: 'GTC',
      price: Number(text(price - tick)),
      quantity: Number(text(quantity)),
      newOrderRespType: 'RESULT',
    })
    expect(replaced).toMatchObject({
      cancelResult: 'SUCCESS',
      newOrderResult: 'SUCCESS',
      cancelResponse: { orderId, origClientOrderId: clientOrderId, status: 'CANCELED' },
      newOrderResponse: { status: 'NEW' },
    })
    expect((await client.getOrder({ symbol: SYMBOL, orderId })).status).toBe('CANCELED')
    const replacement = replaced.newOrderResponse
    expect(units(replacement.price)).toBe(price - tick)
    expect((await client.getOpenOrders({ symbol: SYMBOL })).map((o) => o.orderId)).toEqual([
      replacement.orderId,
    ])

    const cancelled = await client.cancelOrder({ symbol: SYMBOL, orderId: replacement.orderId })
    expect(cancelled).toMatchObject({
      symbol: SYMBOL,
      orderId: replacement.orderId,
      origClientOrderId: replacement.clientOrderId,
      status: 'CANCELED',
    })
    expect(units(cancelled.executedQty)).toBe(0n)
    expect(await client.getOpenOrders({ symbol: SYMBOL })).toEqual([])
    expect((await balances()).get('USDT')).toEqual({ free: units(101_000), locked: 0n })
  })

  it('fills a MARKET buy by quoteOrderQty with FULL fills, moves the balances, and lists it in myTrades and allOrders', async () => {
    const before = await balances()
    const spend = 100n * 10n ** BigInt(S) // 100 USDT
    // The market maker replaces its whole ladder every second: in the instant between its cancel-all and
    // its new quotes there is nothing to take, and Binance expires a MARKET order that found nothing.
    let order: Awaited<ReturnType<typeof placeMarket>> | undefined
    async function placeMarket() {
      return client.submitNewOrder({
        symbol: SYMBOL,
        side: 'BUY',
        type: 'MARKET',
        quoteOrderQty: 100,
        newOrderRespType: 'FULL',
      })
    }
    for (let attempt = 0; attempt < 10 && order === undefined; attempt++) {
      const answer = await placeMarket()
      if (units(answer.executedQty) > 0n) order = answer
      else {
        expect(answer.status).toBe('EXPIRED')
        await new Promise((r) => setTimeout(r, 300))
      }
    }
    if (order === undefined) throw new Error('no MARKET order found liquidity in 10 attempts')

    // Binance shows a MARKET order with timeInForce GTC (rest-api.md's examples), though it never rests.
    expect(order).toMatchObject({ symbol: SYMBOL, type: 'MARKET', side: 'BUY', timeInForce: 'GTC' })
    expect(['FILLED', 'EXPIRED']).toContain(order.status)
    expect(units(order.origQuoteOrderQty)).toBe(spend)
    const fills = order.fills
    expect(fills.length).toBeGreaterThan(0)
    const filledQty = fills.reduce((s, f) => s + units(f.qty), 0n)
    const filledQuote = fills.reduce((s, f) => s + (units(f.price) * units(f.qty)) / 10n ** BigInt(S), 0n)
    const btcFee = fills.reduce((s, f) => {
      expect(f.commissionAsset).toBe('BTC')
      return s + units(f.commission)
    }, 0n)
    expect(units(order.executedQty)).toBe(filledQty)
    expect(units(order.cummulativeQuoteQty)).toBe(filledQuote)
    expect(filledQuote).toBeLessThanOrEqual(spend)
    if (order.status === 'FILLED') {
      // All but less than one lot's worth at the last price: quantities stay on the lot grid.
      expect(spend - filledQuote).toBeLessThan((units(fills.at(-1)!.price) * lot) / 10n ** BigInt(S))
    }
    // 0.1% taker fee, in the asset received.
    expect(btcFee).toBe(filledQty / 1000n)

    const after = await balances()
    expect(after.get('BTC')).toEqual({ free: before.get('BTC')!.free + filledQty - btcFee, locked: 0n })
    expect(after.get('USDT')).toEqual({ free: before.get('USDT')!.free - filledQuote, locked: 0n })
    expect(after.get('ETH')).toEqual(before.get('ETH'))

    const mine = await client.getAccountTradeList({ symbol: SYMBOL, orderId: order.orderId })
    expect(mine.map((t) => t.id).sort()).toEqual(fills.map((f) => f.tradeId).sort())
    for (const t of mine) {
      expect(t).toMatchObject({ symbol: SYMBOL, orderId: order.orderId, isBuyer: true, isMaker: false })
      const fill = fills.find((f) => f.tradeId === t.id)!
      expect([units(t.price), units(t.qty), units(t.commission)]).toEqual([
        units(fill.price),
        units(fill.qty),
        units(fill.commission),
      ])
    }
    expect((await client.getAccountTradeList({ symbol: SYMBOL })).map((t) => t.id).sort()).toEqual(
      mine.map((t) => t.id).sort(),
    )

    const all: SpotOrder[] = await client.getAllOrders({ symbol: SYMBOL })
    const byId = new Map(all.map((o) => [o.orderId, o]))
    expect(byId.get(order.orderId)).toMatchObject({
      type: 'MARKET',
      status: order.status,
      timeInForce: 'GTC',
    })
    expect(await client.getOrder({ symbol: SYMBOL, orderId: order.orderId })).toEqual(byId.get(order.orderId))
    expect(units(byId.get(order.orderId)!.executedQty)).toBe(filledQty)
    // The LIMIT order of the test before and the one that replaced it.
    expect(all.filter((o) => o.type === 'LIMIT').map((o) => o.status)).toEqual(['CANCELED', 'CANCELED'])
    expect(all.every((o) => o.symbol === SYMBOL)).toBe(true)
  })

  it("refuses bad orders with Binance's codes and messages, changing nothing", async () => {
    const before = await balances()
    const price = await priceBelowMarket()
    const order = (over: Record<string, unknown>) =>
      client.submitNewOrder({
        symbol: SYMBOL,
        side: 'BUY',
        type: 'LIMIT',
        timeInForce: 'GTC',
        price: Number(text(price)),
        quantity: Number(text(100n * lot)),
        ...over,
      } as Parameters<MainClient['submitNewOrder']>[0])
    const refused = async (promise: Promise<unknown>, code: number, msg: string) => {
      const err = await rejection(promise)
      expect({ code: err.code, message: err.message, body: err.body }).toEqual({
        code,
        message: msg,
        body: { code, msg },
      })
    }

    await refused(order({ symbol: 'NOPEUSDT' }), -1121, 'Invalid symbol.')
    await refused(client.getOrderBook({ symbol: 'NOPEUSDT' }), -1121, 'Invalid symbol.')
    await refused(order({ price: Number(text(price + tick / 2n)) }), -1013, 'Filter failure: PRICE_FILTER')
    await refused(order({ quantity: Number(text(lot + lot / 2n)) }), -1013, 'Filter failure: LOT_SIZE')
    const tooSmall = (minNotional * 10n ** BigInt(S)) / price // under 5 USDT's worth at this price
    await refused(
      order({ quantity: Number(text(tooSmall - (tooSmall % lot))) }),
      -1013,
      'Filter failure: NOTIONAL',
    )
    // 10 BTC at ~52000 is ~520000 USDT; the trader has ~100000.
    await refused(order({ quantity: 10 }), -2010, 'Account has insufficient balance for requested action.')
    await refused(client.cancelOrder({ symbol: SYMBOL, orderId: 987_654_321 }), -2011, 'Unknown order sent.')
    await refused(
      client.cancelOrder({ symbol: SYMBOL, origClientOrderId: client.generateNewOrderId() }),
      -2011,
      'Unknown order sent.',
    )
    await refused(client.getOrder({ symbol: SYMBOL, orderId: 987_654_321 }), -2013, 'Order does not exist.')
    const forged = new MainClient({ baseUrl: dev.url, api_key: dev.apiKey, api_secret: `${dev.apiSecret}x` })
    await refused(forged.getAccountInformation(), -1022, 'Signature for this request is not valid.')

    expect(await balances()).toEqual(before)
    expect(await client.getOpenOrders({ symbol: SYMBOL })).toEqual([])
  })
  it("streams the order's executionReports and outboundAccountPositions to the WebsocketAPIClient (userDataStream.subscribe.signature)", async () => {
    const api = new WebsocketAPIClient(
      {
        api_key: dev.apiKey,
        api_secret: dev.apiSecret,
        wsUrl,
        attachEventListeners: false,
      },
      quiet,
    )
    try {
      const { events, exceptions } = userEvents(api.getWSClient())
      const subscribed = await api.subscribeUserDataStream('mainWSAPI')
      expect(subscribed).toMatchObject({ status: 200, result: { subscriptionId: expect.any(Number) } })
      await orderOnStream(events, exceptions)
      expect(await api.unsubscribeUserDataStream('mainWSAPI')).toMatchObject({ status: 200 })
    } finally {
      await api.disconnectAll()
    }
  })

  it('streams them to the WebsocketClient on a listen key it gets from the REST API', async () => {
    const ws = new WebsocketClient(
      { api_key: dev.apiKey, api_secret: dev.apiSecret, wsUrl, restOptions: { baseUrl: dev.url } },
      quiet,
    )
    try {
      const { events, exceptions } = userEvents(ws)
      const opened = new Promise((resolve) => ws.once('open', resolve))
      await ws.subscribeSpotUserDataStream()
      expect(exceptions).toEqual([])
      await opened
      await orderOnStream(events, exceptions)
    } finally {
      await ws.unsubscribeSpotUserDataStream()
      ws.closeAll()
    }
  })
})
