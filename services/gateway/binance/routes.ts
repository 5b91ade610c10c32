/**
 * Binance Spot REST API v3 on hono: the public endpoints (ping, time, exchangeInfo, market data) and the
 * signed ones (order, order/test, cancel, cancelReplace, query, openOrders, allOrders, myTrades, account).
 * Paths, parameters, response shapes, weights and errors follow Binance's documentation
 * (../shared/reference/binance). Orders go to the market's engine; what the engine has committed is read
 * back from Postgres.
 */
import { randomBytes } from 'node:crypto'
import { and, asc, eq, inArray, type SQL } from 'drizzle-orm'
import type { Context, Hono } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Analytics } from '../../../adapters/analytics/analytics.ts'
import type { Executor } from '../../../adapters/db/database.ts'
import { orders } from '../../../adapters/db/schema.ts'
import type { PubSubCache } from '../../../adapters/pubsub/index.ts'
import { balancesOf } from '../../../ledger/ledger.ts'
import { BourseError } from '../../../lib/errors.ts'
import type { Logger } from '../../../lib/log.ts'
import { formatDecimal, parseDecimal } from '../../../lib/money.ts'
import { findOrder, orderHistory, tradeHistory } from '../../analytics/history.ts'
import type { Fill } from '../../engine/batch.ts'
import type { OrderView } from '../../engine/events.ts'
import { bucketStart, parseInterval } from '../../handler/intervals.ts'
import { klines, recentTrades, rollingTicker, ticker24h } from '../../handler/queries.ts'
import { idleTicker, type Ticker24h } from '../../handler/ticker.ts'
import { ListenKeys } from '../../ws/user-stream.ts'
import type { ApiKeyRecord, ApiKeyStore } from '../api-keys.ts'
import { type DepositState, depositHistory, depositNetwork, userDepositAddress } from '../deposits.ts'
import type { EngineClient, PlaceOrder } from '../engine-client.ts'
import { fixed, type MarketDirectory, type MarketInfo } from '../markets.ts'
import { BinanceError, errors, fromBourse } from './errors.ts'
import type { RateLimiter } from './rate-limit.ts'
import { authenticate, checkWindow, type Params, readParams, type Security } from './request.ts'

export interface BinanceDeps {
  db: Executor
  /** The analytics syncer's ClickHouse copy: history reads (allOrders, myTrades, order) look there too. */
  analytics?: Analytics
  engines: ReadonlyMap<string, EngineClient>
  markets: MarketDirectory
  /** The handler's market data (k-lines, 24h ticker, recent trades) and the rate-limit counters. */
  cache: PubSubCache
  keys: ApiKeyStore
  limiter: RateLimiter
  clientIp: (c: Context) => string
  now: () => number
  log: Logger
}

interface Call {
  c: Context
  params: Params
  /** The authenticated key of a SIGNED request. */
  key: ApiKeyRecord
  timestamp: number
  recvWindow: number
}

type Weight = number | ((params: Params) => number)

interface TickerWindow {
  openTime: number
  closeTime: number
}

const DECIMAL = /^([0-9]{1,20})(\.[0-9]{1,20})?$/
const DECIMAL_RANGE = '^([0-9]{1,20})(\\.[0-9]{1,20})?$'
const CLIENT_ORDER_ID = /^[a-zA-Z0-9-_.]{1,36}$/
const CLIENT_ORDER_ID_RANGE = '^[a-zA-Z0-9-_.]{1,36}$'
const STP_MODES = ['NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'] as const
const ORDER_TYPES = ['LIMIT', 'LIMIT_MAKER', 'MARKET'] as const
const UNSUPPORTED_TYPES: Record<string, string> = {
  STOP_LOSS: 'Stop loss orders are not supported for this symbol.',
  STOP_LOSS_LIMIT: 'Stop loss limit orders are not supported for this symbol.',
  TAKE_PROFIT: 'Take profit orders are not supported for this symbol.',
  TAKE_PROFIT_LIMIT: 'Take profit limit orders are not supported for this symbol.',
}
const OPEN_STATUSES = ['NEW', 'PARTIALLY_FILLED'] as const
const SYMBOL_STATUSES = ['TRADING', 'HALT', 'BREAK']
/** Binance's deposit statuses: 0 pending, 1 success, 2 rejected (here: removed from the chain by a reorg). */
const DEPOSIT_STATES: Record<string, DepositState[]> = {
  '0': ['detected', 'confirming'],
  '1': ['credited'],
  '2': ['orphaned'],
}
const DAY_MS = 24 * 3600_000
const MAX_TICKER_SYMBOLS = 100
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER)

export function binanceRoutes(app: Hono, deps: BinanceDeps): void {
  function route(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    security: Security,
    weight: Weight,
    handler: (call: Call) => Promise<unknown> | unknown,
  ): void {
    app.on(method, path, async (c) => {
      try {
        const params = await readParams(c.req.raw)
        const ip = deps.clientIp(c)
        const used = await deps.limiter.charge(ip, typeof weight === 'number' ? weight : weight(params))
        c.header('X-MBX-USED-WEIGHT-1M', String(used))
        let call: Call
        if (security === 'NONE') {
          call = { c, params, key: undefined as unknown as ApiKeyRecord, timestamp: 0, recvWindow: 0 }
        } else {
          const auth = await authenticate(c.req.raw, params, security, deps.keys, ip, deps.now)
          call = { c, params, ...auth }
        }
        return c.json(await handler(call))
      } catch (err) {
        const error = toBinance(err, deps.log)
        for (const [name, value] of Object.entries(error.headers)) c.header(name, value)
        return c.json(error.toJSON(), error.status as ContentfulStatusCode)
      }
    })
  }

  async function market(params: Params): Promise<MarketInfo> {
    const symbol = params.required('symbol')
    const info = await deps.markets.get(symbol.toUpperCase())
    if (info === undefined) throw errors.badSymbol()
    return info
  }

  /**
   * `symbolStatus`: markets in another status are left out of a list; a single symbol in another status is
   * refused with -1220.
   */
  function withStatus(list: MarketInfo[], params: Params, single: boolean): MarketInfo[] {
    const wanted = params.get('symbolStatus')
    if (wanted === undefined) return list
    if (!SYMBOL_STATUSES.includes(wanted)) throw errors.invalidParam('symbolStatus')
    const kept = list.filter((m) => binanceStatus(m) === wanted)
    if (single && kept.length === 0) throw errors.statusMismatch()
    return kept
  }

  function engineOf(info: MarketInfo): EngineClient {
    const engine = deps.engines.get(info.symbol)
    if (engine === undefined) throw errors.disconnected()
    return engine
  }

  // ---- General

  route('GET', '/api/v3/ping', 'NONE', 1, () => ({}))
  route('GET', '/api/v3/time', 'NONE', 1, () => ({ serverTime: deps.now() }))

  route('GET', '/api/v3/exchangeInfo', 'NONE', 20, async ({ params }) => {
    const directory = await deps.markets.directory()
    let list = [...directory.markets.values()]
    const symbol = params.get('symbol')
    const symbols = params.get('symbols')
    const symbolStatus = params.get('symbolStatus')
    if (symbol !== undefined || symbols !== undefined) {
      const wanted = symbol !== undefined ? [symbol] : parseSymbolList(symbols!, 'symbols')
      list = wanted.map((s) => {
        const info = directory.markets.get(s.toUpperCase())
        if (info === undefined) throw errors.badSymbol()
        return info
      })
    }
    if (symbolStatus !== undefined && (symbol !== undefined || symbols !== undefined))
      throw errors.badCombination()
    list = withStatus(list, params, false)
    return {
      timezone: 'UTC',
      serverTime: deps.now(),
      rateLimits: [
        {
          rateLimitType: 'REQUEST_WEIGHT',
          interval: 'MINUTE',
          intervalNum: 1,
          limit: deps.limiter.config.weightPerMinute,
        },
      ],
      exchangeFilters: [],
      symbols: list.map(symbolInfo),
    }
  })

  // ---- Market data

  route(
    'GET',
    '/api/v3/depth',
    'NONE',
    (p) => depthWeight(limitOf(p, 100, 5000, true)),
    async ({ params }) => {
      const info = withStatus([await market(params)], params, true)[0]!
      const limit = limitOf(params, 100, 5000, true)
      const depth = await engineCall(() => engineOf(info).depth(limit), 'query')
      return { lastUpdateId: Number(depth.lastUpdateId), bids: depth.bids, asks: depth.asks }
    },
  )

  route('GET', '/api/v3/trades', 'NONE', 25, async ({ params }) => {
    const info = await market(params)
    const limit = limitOf(params, 500, 1000)
    const list = await recentTrades(deps.cache, info.symbol, limit)
    return list.reverse().map((t) => ({
      id: t.id,
      price: fixed(t.price, info.priceScale),
      qty: fixed(t.qty, info.qtyScale),
      quoteQty: fixed(t.quoteQty, info.quoteScale),
      time: t.time,
      isBuyerMaker: t.isBuyerMaker,
      isBestMatch: t.isBestMatch,
    }))
  })

  // Older trades than the handler's recent list holds: the same history query as aggTrades and myTrades.
  route('GET', '/api/v3/historicalTrades', 'NONE', 25, async ({ params }) => {
    const info = await market(params)
    const limit = limitOf(params, 500, 1000)
    const fromId = longParam(params, 'fromId')
    const rows = await tradeHistory(deps, { market: info.symbol, fromId, limit })
    return rows.map((t) => ({
      id: Number(t.id),
      price: fixed(t.price, info.priceScale),
      qty: fixed(t.quantity, info.qtyScale),
      quoteQty: fixed(t.quoteQuantity, info.quoteScale),
      time: t.createdAt.getTime(),
      isBuyerMaker: t.buyerIsMaker,
      isBestMatch: true,
    }))
  })

  // Each trade is its own aggregate, as on the aggTrade stream: aggregate ids are trade ids.
  route('GET', '/api/v3/aggTrades', 'NONE', 4, async ({ params }) => {
    const info = await market(params)
    const limit = limitOf(params, 500, 1000)
    const fromId = longParam(params, 'fromId')
    const { startTime, endTime } = timeRange(params)
    if (fromId !== undefined && (startTime !== undefined || endTime !== undefined))
      throw errors.badCombination()
    const rows = await tradeHistory(deps, { market: info.symbol, fromId, startTime, endTime, limit })
    return rows.map((t) => ({
      a: Number(t.id),
      p: fixed(t.price, info.priceScale),
      q: fixed(t.quantity, info.qtyScale),
      f: Number(t.id),
      l: Number(t.id),
      T: t.createdAt.getTime(),
      m: t.buyerIsMaker,
      M: true,
    }))
  })

  for (const path of ['/api/v3/klines', '/api/v3/uiKlines']) {
    route('GET', path, 'NONE', 2, async ({ params }) => {
      const info = await market(params)
      const interval = parseInterval(params.required('interval'))
      if (interval === undefined) throw errors.badInterval()
      const time = (name: string) => {
        const v = longParam(params, name)
        return v === undefined ? undefined : Number(v) >= 1e14 ? Math.floor(Number(v) / 1000) : Number(v)
      }
      const startTime = time('startTime')
      const endTime = time('endTime')
      return klines(
        deps.cache,
        info.symbol,
        interval,
        {
          limit: limitOf(params, 500, 1000, true),
          offsetMs: timeZoneOffsetMs(params),
          ...(startTime !== undefined && { startTime }),
          ...(endTime !== undefined && { endTime }),
        },
        deps.analytics,
      )
    })
  }

  route('GET', '/api/v3/avgPrice', 'NONE', 2, async ({ params }) => {
    const info = await market(params)
    const now = deps.now()
    const currentMinute = now - (now % 60_000)
    const rows = await klines(deps.cache, info.symbol, '1m', {
      startTime: currentMinute - 4 * 60_000,
      limit: 5,
    })
    let volume = 0n
    let quote = 0n
    let closeTime = 0
    const scale = 18
    for (const row of rows) {
      volume += parseDecimal(row[5], scale, { allowZero: true, rounding: 'down' })
      quote += parseDecimal(row[7], scale, { allowZero: true, rounding: 'down' })
      closeTime = Math.max(closeTime, row[8] > 0 ? row[6] : 0)
    }
    if (volume === 0n) {
      // No trade in the last 5 minutes: the last price stands.
      const ticker = await ticker24h(deps.cache, info.symbol)
      return {
        mins: 5,
        price: fixed(ticker?.lastPrice ?? '0', Math.max(8, info.priceScale)),
        closeTime: ticker?.closeTime ?? now,
      }
    }
    const priceScale = Math.max(8, info.priceScale)
    const avg = (quote * 10n ** BigInt(priceScale)) / volume
    return { mins: 5, price: formatDecimal(avg, priceScale), closeTime }
  })

  const tickerWeight = (single: number, many: number) => (p: Params) =>
    p.get('symbol') !== undefined ? single : many
  const tickerSymbols = async (params: Params): Promise<{ list: MarketInfo[]; single: boolean }> => {
    const directory = await deps.markets.directory()
    const symbol = params.get('symbol')
    const symbols = params.get('symbols')
    if (symbol !== undefined && symbols !== undefined) throw errors.badCombination()
    if (symbol === undefined && symbols === undefined)
      return { list: withStatus([...directory.markets.values()], params, false), single: false }
    const names = symbol !== undefined ? [symbol] : parseSymbolList(symbols!, 'symbols')
    const list = names.map((s) => {
      const info = directory.markets.get(s.toUpperCase())
      if (info === undefined) throw errors.badSymbol()
      return info
    })
    const single = symbol !== undefined
    return { list: withStatus(list, params, single), single }
  }
  const tickerType = (params: Params): 'FULL' | 'MINI' => {
    const type = params.get('type') ?? 'FULL'
    if (type !== 'FULL' && type !== 'MINI') throw new BinanceError(-1139, 'Invalid ticker type.')
    return type
  }
  /** A ticker's statistics in the market's scales, MINI or FULL. */
  const tickerFields = (info: MarketInfo, t: Ticker24h, type: 'FULL' | 'MINI') => {
    const p = (v: string) => fixed(v, info.priceScale)
    const mini = {
      symbol: info.symbol,
      openPrice: p(t.openPrice),
      highPrice: p(t.highPrice),
      lowPrice: p(t.lowPrice),
      lastPrice: p(t.lastPrice),
      volume: fixed(t.volume, info.qtyScale),
      quoteVolume: fixed(t.quoteVolume, info.quoteScale),
      openTime: t.openTime,
      closeTime: t.closeTime,
      firstId: t.firstId,
      lastId: t.lastId,
      count: t.count,
    }
    if (type === 'MINI') return mini
    return {
      ...mini,
      priceChange: p(t.priceChange),
      priceChangePercent: t.priceChangePercent,
      weightedAvgPrice: p(t.weightedAvgPrice),
    }
  }
  const best = async (info: MarketInfo) => {
    const engine = deps.engines.get(info.symbol)
    const depth = engine === undefined ? undefined : await engineCall(() => engine.depth(1), 'query')
    const zeroPrice = fixed('0', info.priceScale)
    const zeroQty = fixed('0', info.qtyScale)
    const [bid, ask] = [depth?.bids[0], depth?.asks[0]]
    return {
      bidPrice: bid?.[0] ?? zeroPrice,
      bidQty: bid?.[1] ?? zeroQty,
      askPrice: ask?.[0] ?? zeroPrice,
      askQty: ask?.[1] ?? zeroQty,
    }
  }

  route('GET', '/api/v3/ticker/24hr', 'NONE', tickerWeight(2, 80), async ({ params }) => {
    const { list, single } = await tickerSymbols(params)
    const type = tickerType(params)
    const now = deps.now()
    const out = await Promise.all(
      list.map(async (info) => {
        // Before the symbol's first trade: zeros over the last 24 hours.
        const t =
          (await ticker24h(deps.cache, info.symbol)) ?? idleTicker(info.symbol, '0', now - DAY_MS, now)
        const fields = tickerFields(info, t, type)
        if (type === 'MINI') return fields
        return {
          ...fields,
          prevClosePrice: fixed(t.openPrice, info.priceScale),
          lastQty: fixed(t.lastQty, info.qtyScale),
          ...(await best(info)),
        }
      }),
    )
    return single ? out[0] : out
  })

  /** The statistics of a window per symbol: GET /api/v3/ticker (a rolling window) and ticker/tradingDay. */
  function windowTicker(path: string, window: (params: Params, now: number) => TickerWindow): void {
    const weight = (p: Params) => (p.get('symbol') !== undefined ? 4 : Math.min(200, 4 * symbolCount(p)))
    route('GET', path, 'NONE', weight, async ({ params }) => {
      if (params.get('symbol') === undefined && params.get('symbols') === undefined)
        throw errors.eitherParam('symbol', 'symbols')
      const { list, single } = await tickerSymbols(params)
      if (list.length > MAX_TICKER_SYMBOLS)
        throw new BinanceError(
          -1101,
          `Too many parameters; expected '${MAX_TICKER_SYMBOLS}' and received '${list.length}'.`,
        )
      const type = tickerType(params)
      const now = deps.now()
      const { openTime, closeTime } = window(params, now)
      const out = await Promise.all(
        list.map(async (info) => {
          const t = await rollingTicker(deps.cache, info.symbol, openTime, now)
          return tickerFields(info, { ...t, closeTime }, type)
        }),
      )
      return single ? out[0] : out
    })
  }
  // From the start of the minute windowSize before now, until now.
  windowTicker('/api/v3/ticker', (params, now) => ({
    openTime: bucketStart('1m', now) - windowSizeMs(params),
    closeTime: now,
  }))
  // The day so far, in the requested time zone; closeTime is the day's last millisecond, as Binance has it.
  windowTicker('/api/v3/ticker/tradingDay', (params, now) => {
    const offset = timeZoneOffsetMs(params)
    const openTime = now + offset - ((now + offset) % DAY_MS) - offset
    return { openTime, closeTime: openTime + DAY_MS - 1 }
  })

  route('GET', '/api/v3/ticker/price', 'NONE', tickerWeight(2, 4), async ({ params }) => {
    const { list, single } = await tickerSymbols(params)
    const out = await Promise.all(
      list.map(async (info) => {
        const t = await ticker24h(deps.cache, info.symbol)
        return { symbol: info.symbol, price: fixed(t?.lastPrice ?? '0', info.priceScale) }
      }),
    )
    return single ? out[0] : out
  })

  route('GET', '/api/v3/ticker/bookTicker', 'NONE', tickerWeight(2, 4), async ({ params }) => {
    const { list, single } = await tickerSymbols(params)
    const out = await Promise.all(list.map(async (info) => ({ symbol: info.symbol, ...(await best(info)) })))
    return single ? out[0] : out
  })

  // ---- Trading

  route('POST', '/api/v3/order', 'TRADE', 1, async (call) => {
    const info = await market(call.params)
    return placeOrder(call, info, newOrder(call.params, info, call.key.userId))
  })

  route('POST', '/api/v3/order/test', 'TRADE', 1, async (call) => {
    const info = await market(call.params)
    const order = newOrder(call.params, info, call.key.userId)
    checkFilters(info, order.request)
    const compute = call.params.get('computeCommissionRates')
    if (compute !== undefined && compute !== 'true' && compute !== 'false')
      throw errors.invalidParam('computeCommissionRates')
    if (compute !== 'true') return {}
    const rate = (r: string) => fixed(r, 8)
    return {
      standardCommissionForOrder: { maker: rate(info.makerFee), taker: rate(info.takerFee) },
      specialCommissionForOrder: { maker: rate('0'), taker: rate('0') },
      taxCommissionForOrder: { maker: rate('0'), taker: rate('0') },
      discount: {
        enabledForAccount: false,
        enabledForSymbol: false,
        discountAsset: 'BNB',
        discount: rate('0'),
      },
    }
  })

  route('DELETE', '/api/v3/order', 'TRADE', 1, async (call) => {
    const info = await market(call.params)
    return cancelOrder(call, info, cancelRequest(call.params, CANCEL_PARAMS))
  })

  /**
   * Cancels one of the caller's orders: by orderId, or by client order id, or by orderId checked against the
   * client order id; with cancelRestrictions, only an order in that state.
   */
  async function cancelOrder(call: Call, info: MarketInfo, cancel: CancelRequest) {
    const { ref, restrictions } = cancel
    const engine = engineOf(info)
    let target: { orderId?: bigint; clientOrderId?: string } = ref
    if ((ref.orderId !== undefined && ref.clientOrderId !== undefined) || restrictions !== undefined) {
      // The engine looks an order up by one reference: by orderId first, then the client id is checked against it.
      const lookup = ref.orderId !== undefined ? { orderId: ref.orderId } : ref
      const open = await engineCall(() => engine.order(call.key.userId, lookup), 'cancel')
      if (ref.clientOrderId !== undefined && open.clientOrderId !== ref.clientOrderId)
        throw errors.cancelRejected('Unknown order sent.')
      if (
        (restrictions === 'ONLY_NEW' && open.status !== 'NEW') ||
        (restrictions === 'ONLY_PARTIALLY_FILLED' && open.status !== 'PARTIALLY_FILLED')
      )
        throw errors.cancelRejected('Order was not canceled due to cancel restrictions.')
      target = { orderId: BigInt(open.orderId) }
    }
    checkWindow(call.timestamp, call.recvWindow, deps.now())
    const canceled = await engineCall(() => engine.cancel(call.key.userId, target), 'cancel')
    return cancelResponse(info, canceled, cancel.newClientOrderId ?? generatedId(), deps.now())
  }

  async function placeOrder(call: Call, info: MarketInfo, order: ReturnType<typeof newOrder>) {
    checkWindow(call.timestamp, call.recvWindow, deps.now())
    const placed = await engineCall(() => engineOf(info).place(order.request), 'place')
    return orderResponse(info, placed.order, placed.fills, order.respType)
  }

  /**
   * Cancels an order and places a new one, Binance's cancelReplace: both requests are checked before either
   * is sent (the new order against the market's filters too); with STOP_ON_FAILURE a failed cancel sends no
   * new order, with ALLOW_FAILURE it is sent anyway. A failure of either is answered with what each did.
   */
  route('POST', '/api/v3/order/cancelReplace', 'TRADE', 1, async (call) => {
    const { params } = call
    const info = await market(params)
    const mode = params.required('cancelReplaceMode')
    if (mode !== 'STOP_ON_FAILURE' && mode !== 'ALLOW_FAILURE') throw errors.invalidParam('cancelReplaceMode')
    const cancel = cancelRequest(params, REPLACE_CANCEL_PARAMS)
    const order = newOrder(params, info, call.key.userId)
    checkFilters(info, order.request)
    const canceled = await outcome(() => cancelOrder(call, info, cancel))
    const placed =
      canceled.ok || mode === 'ALLOW_FAILURE' ? await outcome(() => placeOrder(call, info, order)) : undefined
    const data = {
      cancelResult: canceled.ok ? 'SUCCESS' : 'FAILURE',
      newOrderResult: placed === undefined ? 'NOT_ATTEMPTED' : placed.ok ? 'SUCCESS' : 'FAILURE',
      cancelResponse: canceled.answer,
      newOrderResponse: placed?.answer ?? null,
    }
    if (canceled.ok && placed?.ok) return data
    if (canceled.ok || placed?.ok)
      throw new BinanceError(-2021, 'Order cancel-replace partially failed.', 409, {}, data)
    throw new BinanceError(-2022, 'Order cancel-replace failed.', 400, {}, data)
  })

  /** A step's answer, or its Binance error as `{code, msg}`. */
  async function outcome(step: () => Promise<object>): Promise<{ ok: boolean; answer: object }> {
    try {
      return { ok: true, answer: await step() }
    } catch (err) {
      return { ok: false, answer: toBinance(err, deps.log).toJSON() }
    }
  }

  route('DELETE', '/api/v3/openOrders', 'TRADE', 1, async (call) => {
    const info = await market(call.params)
    checkWindow(call.timestamp, call.recvWindow, deps.now())
    const canceled = await engineCall(() => engineOf(info).cancelAll(call.key.userId), 'cancel')
    if (canceled.length === 0) throw errors.cancelRejected('Unknown order sent.')
    const now = deps.now()
    return canceled.map((o) => cancelResponse(info, o, generatedId(), now))
  })

  // ---- Account

  route('GET', '/api/v3/order', 'USER_DATA', 4, async ({ params, key }) => {
    const info = await market(params)
    const ref = orderRef(params)
    // A client order id is unique among open orders only: the newest order that had it (archived or not).
    const row = await findOrder(deps, { market: info.symbol, userId: key.userId, ...ref })
    if (row === undefined) throw errors.noSuchOrder()
    return queryOrderView(info, row)
  })

  route(
    'GET',
    '/api/v3/openOrders',
    'USER_DATA',
    (p) => (p.get('symbol') === undefined ? 80 : 6),
    async ({ params, key }) => {
      const directory = await deps.markets.directory()
      const symbol = params.get('symbol')
      const conditions: SQL[] = [eq(orders.userId, key.userId), inArray(orders.status, [...OPEN_STATUSES])]
      if (symbol !== undefined) {
        const info = directory.markets.get(symbol.toUpperCase())
        if (info === undefined) throw errors.badSymbol()
        conditions.push(eq(orders.market, info.symbol))
      }
      const rows = await deps.db
        .select()
        .from(orders)
        .where(and(...conditions))
        .orderBy(asc(orders.createdAt), asc(orders.id))
      return rows.map((row) => queryOrderView(directory.markets.get(row.market)!, row))
    },
  )

  route('GET', '/api/v3/allOrders', 'USER_DATA', 20, async ({ params, key }) => {
    const info = await market(params)
    const limit = limitOf(params, 500, 1000)
    const orderId = longParam(params, 'orderId')
    const { startTime, endTime } = timeRange(params)
    // Recent orders from Postgres, archived ones from ClickHouse, as one page in ascending id order.
    const rows = await orderHistory(deps, {
      market: info.symbol,
      userId: key.userId,
      orderId,
      startTime,
      endTime,
      limit,
    })
    return rows.map((row) => queryOrderView(info, row))
  })

  route(
    'GET',
    '/api/v3/myTrades',
    'USER_DATA',
    (p) => (p.get('orderId') === undefined ? 20 : 5),
    async ({ params, key }) => {
      const info = await market(params)
      const limit = limitOf(params, 500, 1000)
      const orderId = longParam(params, 'orderId')
      const fromId = longParam(params, 'fromId')
      const { startTime, endTime } = timeRange(params)
      if (fromId !== undefined && (startTime !== undefined || endTime !== undefined))
        throw errors.badCombination()
      const user = key.userId
      const rows = await tradeHistory(deps, {
        market: info.symbol,
        userId: user,
        orderId,
        fromId,
        startTime,
        endTime,
        limit,
      })
      const out: Record<string, unknown>[] = []
      for (const t of rows) {
        for (const isBuyer of [true, false]) {
          if ((isBuyer ? t.buyerUserId : t.sellerUserId) !== user) continue
          const isMaker = isBuyer === t.buyerIsMaker
          const myOrderId = isMaker ? t.makerOrderId : t.takerOrderId
          if (orderId !== undefined && myOrderId !== orderId) continue
          out.push({
            symbol: info.symbol,
            id: Number(t.id),
            orderId: Number(myOrderId),
            orderListId: -1,
            price: fixed(t.price, info.priceScale),
            qty: fixed(t.quantity, info.qtyScale),
            quoteQty: fixed(t.quoteQuantity, info.quoteScale),
            commission: isBuyer
              ? fixed(t.buyerFee, info.baseAssetScale)
              : fixed(t.sellerFee, info.quoteAssetScale),
            commissionAsset: isBuyer ? info.base : info.quote,
            time: t.createdAt.getTime(),
            isBuyer,
            isMaker,
            isBestMatch: true,
          })
        }
      }
      return out
    },
  )

  route('GET', '/api/v3/account/commission', 'USER_DATA', 20, async ({ params }) => {
    const info = await market(params)
    const rates = (maker: string, taker: string) => ({
      maker: fixed(maker, 8),
      taker: fixed(taker, 8),
      buyer: fixed('0', 8),
      seller: fixed('0', 8),
    })
    return {
      symbol: info.symbol,
      standardCommission: rates(info.makerFee, info.takerFee),
      specialCommission: rates('0', '0'),
      taxCommission: rates('0', '0'),
      // No asset pays fees at a discount here.
      discount: {
        enabledForAccount: false,
        enabledForSymbol: false,
        discountAsset: '',
        discount: fixed('0', 8),
      },
    }
  })

  // The market's own filters are the ones an order of this account meets; none is per exchange or asset.
  route('GET', '/api/v3/myFilters', 'USER_DATA', 40, async ({ params }) => ({
    exchangeFilters: [],
    symbolFilters: symbolInfo(await market(params)).filters,
    assetFilters: [],
  }))

  route('GET', '/api/v3/account', 'USER_DATA', 20, async ({ params, key }) => {
    const omit = params.get('omitZeroBalances')
    if (omit !== undefined && omit !== 'true' && omit !== 'false')
      throw errors.invalidParam('omitZeroBalances')
    const directory = await deps.markets.directory()
    const held = new Map((await balancesOf(deps.db, key.userId)).map((b) => [b.asset, b]))
    const balances = [...directory.assets.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([asset, scale]) => {
        const b = held.get(asset)
        return { asset, free: fixed(b?.available ?? '0', scale), locked: fixed(b?.frozen ?? '0', scale) }
      })
      .filter((b) => omit !== 'true' || /[1-9]/.test(b.free) || /[1-9]/.test(b.locked))
    // Fees are set per market; the account shows the first market's, as Binance shows one rate per account.
    const first = directory.markets.values().next().value
    const maker = first?.makerFee ?? '0'
    const taker = first?.takerFee ?? '0'
    return {
      makerCommission: basisPoints(maker),
      takerCommission: basisPoints(taker),
      buyerCommission: 0,
      sellerCommission: 0,
      commissionRates: {
        maker: fixed(maker, 8),
        taker: fixed(taker, 8),
        buyer: fixed('0', 8),
        seller: fixed('0', 8),
      },
      canTrade: key.canTrade,
      canWithdraw: false,
      canDeposit: true,
      brokered: false,
      requireSelfTradePrevention: false,
      preventSor: false,
      updateTime: deps.now(),
      accountType: 'SPOT',
      balances,
      permissions: ['SPOT'],
      uid: Number(key.userId),
    }
  })

  // ---- Wallet: deposits (Binance's /sapi/v1/capital endpoints and the native /v1 one)

  /** The asset a `coin` (or `asset`) names, and the network (Wallet) taking it: the named one or the first. */
  async function depositTarget(params: Params, name: 'coin' | 'asset') {
    const coin = params.required(name).toUpperCase()
    const network = params.get('network')
    const target = await depositNetwork(deps.db, coin, network)
    if (target === undefined) throw errors.invalidParam(network === undefined ? name : 'network')
    return { coin, target }
  }

  route('GET', '/sapi/v1/capital/deposit/address', 'USER_DATA', 10, async ({ params, key }) => {
    const amount = params.get('amount')
    if (amount !== undefined && !DECIMAL.test(amount)) throw errors.illegalChars('amount', DECIMAL_RANGE)
    const { coin, target } = await depositTarget(params, 'coin')
    const { address } = await userDepositAddress(deps.db, target, key.userId)
    return { address, coin, tag: '', url: '' }
  })

  route('GET', '/sapi/v1/capital/deposit/hisrec', 'USER_DATA', 1, async ({ params, key }) => {
    const coin = params.get('coin')?.toUpperCase()
    const status = params.get('status')
    const states = status === undefined ? undefined : DEPOSIT_STATES[status]
    if (status !== undefined && states === undefined) throw errors.invalidParam('status')
    const includeSource = params.get('includeSource')
    if (includeSource !== undefined && includeSource !== 'true' && includeSource !== 'false')
      throw errors.invalidParam('includeSource')
    const offset = params.get('offset')
    if (offset !== undefined && !/^\d{1,9}$/.test(offset)) throw errors.illegalChars('offset', '^[0-9]{1,9}$')
    const limit = limitOf(params, 1000, 1000)
    const endTime = longParam(params, 'endTime')
    const startTime = longParam(params, 'startTime')
    const to = endTime === undefined ? deps.now() : Number(endTime)
    // Binance's defaults: the 90 days up to endTime, and no wider window than that.
    const from = startTime === undefined ? to - 90 * DAY_MS : Number(startTime)
    if (to - from > 90 * DAY_MS) throw errors.lookupTooBig(90 * 24)
    const txId = params.get('txId')
    const list = await depositHistory(deps.db, key.userId, {
      ...(coin !== undefined && { asset: coin }),
      ...(states !== undefined && { states }),
      ...(txId !== undefined && { txHash: txId }),
      from: new Date(from),
      to: new Date(to),
      offset: offset === undefined ? 0 : Number(offset),
      limit,
    })
    return list.map((d) => ({
      id: String(d.id),
      amount: d.amount,
      coin: d.asset,
      network: d.walletId.toUpperCase(),
      status: binanceDepositStatus(d.state),
      address: d.address,
      addressTag: '',
      txId: d.txHash,
      insertTime: d.detectedAt.getTime(),
      ...(d.creditedAt !== null && { completeTime: d.creditedAt.getTime() }),
      transferType: 0,
      confirmTimes: `${d.confirmations}/${d.required}`,
      unlockConfirm: d.required,
      walletType: 0,
      ...(includeSource === 'true' && { sourceAddress: d.fromAddress }),
    }))
  })

  route('GET', '/v1/deposit-address', 'USER_DATA', 10, async ({ params, key }) => {
    const { coin, target } = await depositTarget(params, 'asset')
    const { address } = await userDepositAddress(deps.db, target, key.userId)
    return {
      asset: coin,
      network: target.walletId,
      chainId: Number(target.chainId),
      contract: target.contract,
      address,
      confirmations: target.confirmations,
    }
  })

  // ---- User data streams: listen keys for ws's /ws/<listenKey> (services/ws/user-stream.ts)
  const listenKeys = new ListenKeys(deps.cache)
  route('POST', '/api/v3/userDataStream', 'USER_STREAM', 2, async ({ key }) => ({
    listenKey: await listenKeys.create(String(key.userId)),
  }))
  route('PUT', '/api/v3/userDataStream', 'USER_STREAM', 2, async ({ params, key }) => {
    if (!(await listenKeys.keepAlive(params.required('listenKey'), String(key.userId))))
      throw errors.unknownListenKey()
    return {}
  })
  route('DELETE', '/api/v3/userDataStream', 'USER_STREAM', 2, async ({ params, key }) => {
    if (!(await listenKeys.close(params.required('listenKey'), String(key.userId))))
      throw errors.unknownListenKey()
    return {}
  })

  app.notFound((c) => c.json({ code: -1020, msg: 'This operation is not supported.' }, 404))
}

// ---- Orders in and out

function newOrder(
  params: Params,
  info: MarketInfo,
  userId: bigint,
): { request: PlaceOrder; respType: 'ACK' | 'RESULT' | 'FULL' } {
  const side = params.required('side')
  if (side !== 'BUY' && side !== 'SELL') throw errors.invalidSide()
  const type = params.required('type')
  if (UNSUPPORTED_TYPES[type] !== undefined) throw errors.newOrderRejected(UNSUPPORTED_TYPES[type])
  if (!(ORDER_TYPES as readonly string[]).includes(type)) throw errors.invalidOrderType()
  if (params.get('icebergQty') !== undefined)
    throw errors.newOrderRejected('Iceberg orders are not supported for this symbol.')
  if (params.get('trailingDelta') !== undefined)
    throw errors.newOrderRejected('Trailing stop orders are not supported for this symbol.')
  if (params.get('pegPriceType') !== undefined)
    throw errors.newOrderRejected('Pegged orders are not supported for this symbol.')
  if (params.get('stopPrice') !== undefined) throw errors.notRequired('stopPrice')
  const decimal = (name: string) => {
    const v = params.get(name)
    if (v !== undefined && !DECIMAL.test(v)) throw errors.illegalChars(name, DECIMAL_RANGE)
    return v
  }
  const price = decimal('price')
  const quantity = decimal('quantity')
  const quoteOrderQty = decimal('quoteOrderQty')
  const timeInForce = params.get('timeInForce')
  const request: PlaceOrder = { userId, side, type: type as PlaceOrder['type'] }
  if (type === 'MARKET') {
    if (timeInForce !== undefined) throw errors.tifNotRequired()
    if (price !== undefined) throw errors.notRequired('price')
    if (quantity === undefined && quoteOrderQty === undefined)
      throw errors.eitherParam('quantity', 'quoteOrderQty')
    if (quantity !== undefined && quoteOrderQty !== undefined) throw errors.notRequired('quoteOrderQty')
    if (quantity !== undefined) request.quantity = quantity
    else request.quoteOrderQty = quoteOrderQty!
  } else {
    if (type === 'LIMIT') {
      if (timeInForce === undefined) throw errors.mandatory('timeInForce')
      if (timeInForce !== 'GTC' && timeInForce !== 'IOC' && timeInForce !== 'FOK') throw errors.invalidTif()
      request.timeInForce = timeInForce
    } else if (timeInForce !== undefined) throw errors.tifNotRequired()
    if (quantity === undefined) throw errors.mandatory('quantity')
    if (price === undefined) throw errors.mandatory('price')
    if (quoteOrderQty !== undefined) throw errors.notRequired('quoteOrderQty')
    request.price = price
    request.quantity = quantity
  }
  const clientOrderId = clientOrderIdParam(params, 'newClientOrderId')
  if (clientOrderId !== undefined) request.clientOrderId = clientOrderId
  const stp = params.get('selfTradePreventionMode')
  if (stp !== undefined) {
    if (!(STP_MODES as readonly string[]).includes(stp)) throw errors.invalidParam('selfTradePreventionMode')
    request.selfTradePreventionMode = stp as PlaceOrder['selfTradePreventionMode'] & string
  }
  const respType = params.get('newOrderRespType') ?? (type === 'LIMIT_MAKER' ? 'ACK' : 'FULL')
  if (respType !== 'ACK' && respType !== 'RESULT' && respType !== 'FULL')
    throw errors.invalidParam('newOrderRespType')
  if (info.status === 'halted') throw errors.newOrderRejected('Market is closed.')
  return { request, respType }
}

/** The market's filters, as the engine applies them, for an order that never reaches it (order/test). */
function checkFilters(info: MarketInfo, order: PlaceOrder): void {
  const units = info.units
  const attempt = <T>(fn: () => T, filter: string): T => {
    try {
      return fn()
    } catch {
      throw errors.filterFailure(filter)
    }
  }
  if (order.quoteOrderQty !== undefined) {
    const quote = attempt(() => units.quoteToUnits(order.quoteOrderQty!), 'NOTIONAL')
    if (quote < units.bookConfig().minNotional || quote === 0) throw errors.filterFailure('NOTIONAL')
    return
  }
  const lots = attempt(() => units.quantityToLots(order.quantity!), 'LOT_SIZE')
  if (lots < 1) throw errors.filterFailure('LOT_SIZE')
  if (order.price === undefined) return
  const ticks = attempt(() => units.priceToTicks(order.price!), 'PRICE_FILTER')
  if (ticks < 1) throw errors.filterFailure('PRICE_FILTER')
  const notional = ticks * lots
  if (!Number.isSafeInteger(notional) || notional < units.bookConfig().minNotional)
    throw errors.filterFailure('NOTIONAL')
}

function orderRef(
  params: Params,
  names = { orderId: 'orderId', origClientOrderId: 'origClientOrderId' },
): { orderId?: bigint; clientOrderId?: string } {
  const orderId = longParam(params, names.orderId)
  if (params.sent(names.origClientOrderId) && params.get(names.origClientOrderId) === undefined)
    throw errors.emptyOrigClientOrderId()
  const clientOrderId = params.get(names.origClientOrderId)
  if (orderId === undefined && clientOrderId === undefined)
    throw errors.eitherParam(names.origClientOrderId, names.orderId)
  return {
    ...(orderId !== undefined && { orderId }),
    ...(clientOrderId !== undefined && { clientOrderId }),
  }
}

interface CancelRequest {
  ref: { orderId?: bigint; clientOrderId?: string }
  restrictions: 'ONLY_NEW' | 'ONLY_PARTIALLY_FILLED' | undefined
  /** The id the cancel answer shows as its clientOrderId. */
  newClientOrderId: string | undefined
}

/** The parameters naming a cancel: DELETE order's, or cancelReplace's (prefixed with `cancel`). */
const CANCEL_PARAMS = {
  orderId: 'orderId',
  origClientOrderId: 'origClientOrderId',
  newClientOrderId: 'newClientOrderId',
}
const REPLACE_CANCEL_PARAMS = {
  orderId: 'cancelOrderId',
  origClientOrderId: 'cancelOrigClientOrderId',
  newClientOrderId: 'cancelNewClientOrderId',
}

function cancelRequest(params: Params, names: typeof CANCEL_PARAMS): CancelRequest {
  const ref = orderRef(params, names)
  const restrictions = params.get('cancelRestrictions')
  if (restrictions !== undefined && restrictions !== 'ONLY_NEW' && restrictions !== 'ONLY_PARTIALLY_FILLED')
    throw new BinanceError(-1145, 'Invalid cancelRestrictions')
  return { ref, restrictions, newClientOrderId: clientOrderIdParam(params, names.newClientOrderId) }
}

function clientOrderIdParam(params: Params, name: string): string | undefined {
  if (params.sent(name) && params.get(name) === undefined) throw errors.emptyNewClientOrderId()
  const v = params.get(name)
  if (v !== undefined && !CLIENT_ORDER_ID.test(v)) throw errors.illegalChars(name, CLIENT_ORDER_ID_RANGE)
  return v
}

function longParam(params: Params, name: string): bigint | undefined {
  const v = params.get(name)
  if (v === undefined) return undefined
  if (!/^\d{1,19}$/.test(v)) throw errors.illegalChars(name, '^[0-9]{1,19}$')
  const n = BigInt(v)
  if (n > 9223372036854775807n) throw new BinanceError(-1108, `Parameter '${name}' overflowed.`)
  return n
}

function limitOf(params: Params, fallback: number, max: number, cap = false): number {
  const v = params.get('limit')
  if (v === undefined) return fallback
  if (!/^\d{1,10}$/.test(v)) throw errors.illegalChars('limit', '^[0-9]{1,10}$')
  const n = Number(v)
  if (n < 1) throw errors.invalidParam('limit')
  if (n > max) {
    if (cap) return max
    throw errors.tooGreat('limit', String(max))
  }
  return n
}

function timeRange(params: Params): { startTime?: number; endTime?: number } {
  const time = (name: string) => {
    const v = longParam(params, name)
    if (v === undefined) return undefined
    const n = Number(v)
    return n >= 1e14 ? Math.floor(n / 1000) : n
  }
  const startTime = time('startTime')
  const endTime = time('endTime')
  if (startTime !== undefined && endTime !== undefined && endTime - startTime > DAY_MS)
    throw errors.lookupTooBig(24)
  return {
    ...(startTime !== undefined && { startTime }),
    ...(endTime !== undefined && { endTime }),
  }
}

const WINDOW_UNITS: Record<string, { max: number; ms: number }> = {
  m: { max: 59, ms: 60_000 },
  h: { max: 23, ms: 3_600_000 },
  d: { max: 7, ms: DAY_MS },
}

/** The rolling ticker's windowSize: 1m…59m, 1h…23h or 1d…7d, a day when not sent. */
function windowSizeMs(params: Params): number {
  const text = params.get('windowSize') ?? '1d'
  const match = /^([1-9][0-9]?)([mhd])$/.exec(text)
  const count = Number(match?.[1])
  const unit = WINDOW_UNITS[match?.[2] ?? '']
  if (unit === undefined || count > unit.max) throw errors.invalidParam('windowSize')
  return count * unit.ms
}

/** `timeZone`: hours (`8`, `-1`) or hours and minutes (`05:45`, `-1:00`), from -12:00 to +14:00; default UTC. */
function timeZoneOffsetMs(params: Params): number {
  const text = params.get('timeZone') ?? '0'
  const match = /^([+-])?(\d{1,2})(?::([0-5]\d))?$/.exec(text)
  if (match === null) throw errors.invalidParam('timeZone')
  const minutes = (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3] ?? 0))
  if (minutes < -12 * 60 || minutes > 14 * 60) throw errors.invalidParam('timeZone')
  return minutes * 60_000
}

/** How many symbols a `symbols` list names, for the weight: one more than its commas (the route parses it). */
function symbolCount(params: Params): number {
  return (params.get('symbols') ?? '').split(',').length
}

function depthWeight(limit: number): number {
  return limit <= 100 ? 5 : limit <= 500 ? 25 : limit <= 1000 ? 50 : 250
}

function parseSymbolList(text: string, name: string): string[] {
  let list: unknown
  try {
    list = JSON.parse(text)
  } catch {
    throw errors.mandatory(name)
  }
  if (!Array.isArray(list) || list.length === 0 || !list.every((s) => typeof s === 'string'))
    throw errors.mandatory(name)
  if (new Set(list).size !== list.length)
    throw new BinanceError(-1151, 'Symbol is present multiple times in the list.')
  return list as string[]
}

async function engineCall<T>(fn: () => Promise<T>, action: 'place' | 'cancel' | 'query'): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (err instanceof BourseError) throw fromBourse(err, action)
    throw err
  }
}

function generatedId(): string {
  return randomBytes(16).toString('base64url').slice(0, 22)
}

function binanceDepositStatus(state: DepositState): number {
  return state === 'credited' ? 1 : state === 'orphaned' ? 2 : 0
}

function basisPoints(rate: string): number {
  return Number(parseDecimal(rate, 4, { allowZero: true, allowNegative: true, rounding: 'half-even' }))
}

function binanceStatus(info: MarketInfo): 'TRADING' | 'HALT' {
  return info.status === 'trading' ? 'TRADING' : 'HALT'
}

function symbolInfo(info: MarketInfo) {
  const shown = (value: string, scale: number) => fixed(value, Math.max(8, scale))
  const tick = parseDecimal(info.tickSize, info.priceScale)
  const lot = parseDecimal(info.lotSize, info.qtyScale)
  return {
    symbol: info.symbol,
    status: binanceStatus(info),
    baseAsset: info.base,
    baseAssetPrecision: info.baseAssetScale,
    quoteAsset: info.quote,
    quotePrecision: info.quoteAssetScale,
    quoteAssetPrecision: info.quoteAssetScale,
    baseCommissionPrecision: info.baseAssetScale,
    quoteCommissionPrecision: info.quoteAssetScale,
    orderTypes: [...ORDER_TYPES],
    icebergAllowed: false,
    ocoAllowed: false,
    otoAllowed: false,
    opoAllowed: false,
    quoteOrderQtyMarketAllowed: true,
    allowTrailingStop: false,
    cancelReplaceAllowed: true,
    amendAllowed: false,
    pegInstructionsAllowed: false,
    isSpotTradingAllowed: true,
    isMarginTradingAllowed: false,
    filters: [
      {
        filterType: 'PRICE_FILTER',
        minPrice: shown(info.tickSize, info.priceScale),
        maxPrice: shown(formatDecimal(tick * MAX_SAFE, info.priceScale), info.priceScale),
        tickSize: shown(info.tickSize, info.priceScale),
      },
      {
        filterType: 'LOT_SIZE',
        minQty: shown(info.lotSize, info.qtyScale),
        maxQty: shown(formatDecimal(lot * MAX_SAFE, info.qtyScale), info.qtyScale),
        stepSize: shown(info.lotSize, info.qtyScale),
      },
      {
        filterType: 'NOTIONAL',
        minNotional: shown(info.minNotional, info.quoteScale),
        applyMinToMarket: true,
        maxNotional: shown(formatDecimal(tick * lot * MAX_SAFE, info.quoteScale), info.quoteScale),
        applyMaxToMarket: false,
        avgPriceMins: 5,
      },
    ],
    permissions: [],
    permissionSets: [['SPOT']],
    defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
    allowedSelfTradePreventionModes: [...STP_MODES],
  }
}

/**
 * The engine runs a MARKET order as IOC, but Binance shows every MARKET order with timeInForce GTC (each
 * MARKET example of rest-api.md, and what its clients receive).
 */
function shownTimeInForce(type: string, timeInForce: string): string {
  return type === 'MARKET' ? 'GTC' : timeInForce
}

function orderResponse(info: MarketInfo, o: OrderView, fills: Fill[], respType: 'ACK' | 'RESULT' | 'FULL') {
  const ack = {
    symbol: info.symbol,
    orderId: Number(o.orderId),
    orderListId: -1,
    clientOrderId: o.clientOrderId,
    transactTime: o.updateTime,
  }
  if (respType === 'ACK') return ack
  const result = {
    ...ack,
    price: o.price,
    origQty: o.origQty,
    executedQty: o.executedQty,
    origQuoteOrderQty: o.origQuoteOrderQty,
    cummulativeQuoteQty: o.cummulativeQuoteQty,
    status: o.status,
    timeInForce: shownTimeInForce(o.type, o.timeInForce),
    type: o.type,
    side: o.side,
    workingTime: o.time,
    selfTradePreventionMode: o.selfTradePreventionMode,
  }
  if (respType === 'RESULT') return result
  return {
    ...result,
    fills: fills.map((f) => ({
      price: f.price,
      qty: f.qty,
      commission: f.commission,
      commissionAsset: f.commissionAsset,
      tradeId: Number(f.tradeId),
    })),
  }
}

function cancelResponse(info: MarketInfo, o: OrderView, clientOrderId: string, now: number) {
  return {
    symbol: info.symbol,
    origClientOrderId: o.clientOrderId,
    orderId: Number(o.orderId),
    orderListId: -1,
    clientOrderId,
    transactTime: now,
    price: o.price,
    origQty: o.origQty,
    executedQty: o.executedQty,
    origQuoteOrderQty: o.origQuoteOrderQty,
    cummulativeQuoteQty: o.cummulativeQuoteQty,
    status: o.status,
    timeInForce: shownTimeInForce(o.type, o.timeInForce),
    type: o.type,
    side: o.side,
    selfTradePreventionMode: o.selfTradePreventionMode,
  }
}

function queryOrderView(info: MarketInfo, row: typeof orders.$inferSelect) {
  return {
    symbol: info.symbol,
    orderId: Number(row.id),
    orderListId: -1,
    clientOrderId: row.clientOrderId,
    price: fixed(row.price ?? '0', info.priceScale),
    origQty: fixed(row.quantity ?? row.executedQuantity, info.qtyScale),
    executedQty: fixed(row.executedQuantity, info.qtyScale),
    cummulativeQuoteQty: fixed(row.cumulativeQuoteQuantity, info.quoteScale),
    status: row.status,
    timeInForce: shownTimeInForce(row.type, row.timeInForce),
    type: row.type,
    side: row.side,
    stopPrice: fixed('0', info.priceScale),
    icebergQty: fixed('0', info.qtyScale),
    time: row.createdAt.getTime(),
    updateTime: row.updatedAt.getTime(),
    isWorking: true,
    workingTime: row.createdAt.getTime(),
    origQuoteOrderQty: fixed(row.quoteQuantity ?? '0', info.quoteScale),
    selfTradePreventionMode: row.selfTradePrevention,
  }
}

function toBinance(err: unknown, log: Logger): BinanceError {
  if (err instanceof BinanceError) return err
  if (err instanceof BourseError) {
    if (err.code === 'unavailable') return errors.disconnected()
    if (err.code === 'invalid_input') return new BinanceError(-1100, err.message)
  }
  log.error({ err }, 'unexpected error in the Binance API')
  return errors.unknown()
}
