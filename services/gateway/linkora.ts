/**
 * The seeds' market-data REST API (Linkora's api-server), mounted under /linkora so its bare names (/health,
 * /symbols, …) cannot collide with the Binance routes or the process's own /healthz: GET /linkora/health,
 * /linkora/symbols, /linkora/candles?symbol&timeframe&limit, /linkora/orderbook?symbol&levels and
 * /linkora/price?symbol&timeframe. Served from the same sources as the Binance routes: k-lines and the 24h
 * ticker from the handler's cache, the book from the market's engine. Timeframes are Linkora's (1, 3, 5, 15,
 * 30, 45, 1H, 2H, 3H, 4H, 1D, 1W, 1M) and every Binance interval (parseInterval); buckets are UTC, weeks
 * start Monday 00:00, months are calendar months. Errors are the native `{code, message, field}`.
 */
import type { Context, Hono } from 'hono'
import { z } from 'zod'
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import type { PubSubCache } from '../../adapters/pubsub/index.ts'
import { BourseError, invalidInput } from '../../lib/errors.ts'
import type { Logger } from '../../lib/log.ts'
import { formatDecimal, parseDecimal } from '../../lib/money.ts'
import { type Interval, parseInterval } from '../handler/intervals.ts'
import { klines, ticker24h } from '../handler/queries.ts'
import type { EngineClient } from './engine-client.ts'
import { fixed, type MarketDirectory, type MarketInfo } from './markets.ts'

export interface LinkoraDeps {
  engines: ReadonlyMap<string, EngineClient>
  markets: MarketDirectory
  cache: PubSubCache
  /** The handler's ClickHouse: candles older than Redis keeps. */
  analytics?: Analytics
  now: () => number
  log: Logger
}

export const LINKORA_PREFIX = '/linkora'

const SymbolParam = z.string().min(1).max(32).meta({ description: 'A market symbol, e.g. BTCUSDT.' })
const Timeframe = z.string().min(1).max(8).meta({
  description:
    '1, 3, 5, 15, 30, 45 (minutes), 1H, 2H, 3H, 4H, 1D, 1W, 1M, or any Binance interval (1s, 1m, …)',
})
const intParam = (min: number, max: number, fallback: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback)

const CandlesQuery = z.object({
  symbol: SymbolParam,
  timeframe: Timeframe.default('1m'),
  limit: intParam(1, 1000, 100),
})
const OrderbookQuery = z.object({ symbol: SymbolParam, levels: intParam(1, 1000, 20) })
const PriceQuery = z.object({ symbol: SymbolParam, timeframe: Timeframe.default('1H') })

const Amount = z.string().meta({ description: 'A decimal string.' })
const EpochMs = z.number().int().meta({ description: 'Epoch milliseconds.' })
const Level = z.object({ price: Amount, quantity: Amount })

const Health = z.object({
  status: z.literal('healthy'),
  timestamp: z.string().meta({ description: 'An ISO 8601 timestamp.' }),
  symbols: z.number().int().meta({ description: 'How many markets are served.' }),
})
const Symbols = z.object({
  symbols: z.array(
    z.object({
      symbol: z.string(),
      base: z.string(),
      quote: z.string(),
      status: z.enum(['trading', 'halted']),
    }),
  ),
  count: z.number().int(),
})
const Candles = z.object({
  symbol: z.string(),
  timeframe: z.string().meta({ description: 'As asked.' }),
  interval: z.string().meta({ description: "The timeframe's Binance interval name." }),
  count: z.number().int(),
  candles: z.array(
    z.object({
      timestamp: EpochMs.meta({ description: 'Open time (UTC bucket start).' }),
      closeTime: EpochMs,
      open: Amount,
      high: Amount,
      low: Amount,
      close: Amount,
      volume: Amount,
      quoteVolume: Amount,
      trades: z.number().int(),
    }),
  ),
})
const Orderbook = z.object({
  symbol: z.string(),
  timestamp: EpochMs,
  lastUpdateId: z.number().int(),
  levels: z.number().int(),
  bids: z.array(Level),
  asks: z.array(Level),
  spread: Amount.nullable().meta({ description: 'Best ask minus best bid; null with a side empty.' }),
})
const Price = z.object({
  symbol: z.string(),
  timeframe: z.string(),
  interval: z.string(),
  price: Amount,
  open: Amount.meta({ description: "The open of the timeframe's current bucket." }),
  change: Amount,
  changePercent: z.string().meta({ description: 'Percent at 2 places, truncated toward zero.' }),
  high: Amount,
  low: Amount,
  volume: Amount,
  trend: z.enum(['up', 'down', 'flat']),
  openTime: EpochMs,
  timestamp: EpochMs,
})

/** One route: its query and answer schemas validate and describe it (openapi.ts), its errors are `{code, message, field}`. */
export interface LinkoraEndpoint {
  /** Under LINKORA_PREFIX. */
  path: string
  operationId: string
  summary: string
  query?: z.ZodObject
  response: z.ZodType
  /** Error statuses it answers. */
  errors: number[]
}

export const LINKORA_ENDPOINTS = {
  health: {
    path: '/health',
    operationId: 'linkora_health',
    summary: 'Service health and the number of markets',
    response: Health,
    errors: [],
  },
  symbols: {
    path: '/symbols',
    operationId: 'linkora_symbols',
    summary: 'The markets',
    response: Symbols,
    errors: [],
  },
  candles: {
    path: '/candles',
    operationId: 'linkora_candles',
    summary: 'Candles of a timeframe, oldest first (UTC buckets; weeks from Monday, calendar months)',
    query: CandlesQuery,
    response: Candles,
    errors: [400, 404],
  },
  orderbook: {
    path: '/orderbook',
    operationId: 'linkora_orderbook',
    summary: 'The order book to a depth, with the spread',
    query: OrderbookQuery,
    response: Orderbook,
    errors: [400, 404, 503],
  },
  price: {
    path: '/price',
    operationId: 'linkora_price',
    summary: 'The current price with its change, high, low, volume and trend over a timeframe',
    query: PriceQuery,
    response: Price,
    errors: [400, 404],
  },
} as const satisfies Record<string, LinkoraEndpoint>

type QueryOf<E extends LinkoraEndpoint> = E['query'] extends z.ZodObject ? z.output<E['query']> : undefined

function parseQuery<S extends z.ZodObject>(schema: S, c: Context): z.output<S> {
  const result = schema.safeParse(c.req.query())
  if (!result.success) {
    const issue = result.error.issues[0]!
    const field = String(issue.path[0] ?? 'query')
    throw invalidInput(
      field,
      issue.code === 'invalid_type' && issue.input === undefined ? 'required' : issue.message,
    )
  }
  return result.data
}

function timeframeOf(name: string): Interval {
  const interval = parseInterval(name)
  if (interval === undefined)
    throw invalidInput(
      'timeframe',
      'must be 1, 3, 5, 15, 30, 45, 1H, 2H, 3H, 4H, 1D, 1W, 1M or a Binance interval',
    )
  return interval
}

const ORDER = ['bids', 'asks'] as const
type Side = (typeof ORDER)[number]

export function linkoraRoutes(app: Hono, deps: LinkoraDeps): void {
  async function market(symbol: string): Promise<MarketInfo> {
    const info = await deps.markets.get(symbol.toUpperCase())
    if (info === undefined) throw new BourseError('not_found', `no market ${symbol}`, { field: 'symbol' })
    return info
  }

  function get<E extends LinkoraEndpoint>(
    endpoint: E,
    handler: (query: QueryOf<E>) => Promise<z.input<E['response']>>,
  ): void {
    app.get(`${LINKORA_PREFIX}${endpoint.path}`, async (c) => {
      try {
        const query = (endpoint.query === undefined ? undefined : parseQuery(endpoint.query, c)) as QueryOf<E>
        return c.json((await handler(query)) as object)
      } catch (err) {
        if (err instanceof BourseError) {
          return c.json(err.toJSON(), err.status as 400)
        }
        deps.log.error({ err, path: endpoint.path }, 'linkora route failed')
        return c.json({ code: 'internal', message: 'internal error' }, 500)
      }
    })
  }

  get(LINKORA_ENDPOINTS.health, async () => {
    const { markets } = await deps.markets.directory()
    return {
      status: 'healthy' as const,
      timestamp: new Date(deps.now()).toISOString(),
      symbols: markets.size,
    }
  })

  get(LINKORA_ENDPOINTS.symbols, async () => {
    const { markets } = await deps.markets.directory()
    const symbols = [...markets.values()].map((m) => ({
      symbol: m.symbol,
      base: m.base,
      quote: m.quote,
      status: m.status,
    }))
    return { symbols, count: symbols.length }
  })

  get(LINKORA_ENDPOINTS.candles, async (q) => {
    const interval = timeframeOf(q.timeframe)
    const info = await market(q.symbol)
    const rows = await klines(deps.cache, info.symbol, interval, { limit: q.limit }, deps.analytics)
    const candles = rows.map((k) => ({
      timestamp: k[0],
      closeTime: k[6],
      open: k[1],
      high: k[2],
      low: k[3],
      close: k[4],
      volume: k[5],
      quoteVolume: k[7],
      trades: k[8],
    }))
    return { symbol: info.symbol, timeframe: q.timeframe, interval, count: candles.length, candles }
  })

  get(LINKORA_ENDPOINTS.orderbook, async (q) => {
    const info = await market(q.symbol)
    const engine = deps.engines.get(info.symbol)
    if (engine === undefined)
      throw new BourseError('unavailable', `no engine serves ${info.symbol}`, { field: 'symbol' })
    let depth: Awaited<ReturnType<EngineClient['depth']>>
    try {
      depth = await engine.depth(q.levels)
    } catch (cause) {
      throw new BourseError('unavailable', `the ${info.symbol} engine did not answer`, { cause })
    }
    const side = (s: Side) => depth[s].slice(0, q.levels).map(([price, quantity]) => ({ price, quantity }))
    const bids = side('bids')
    const asks = side('asks')
    const spread =
      bids[0] !== undefined && asks[0] !== undefined
        ? formatDecimal(
            parseDecimal(asks[0].price, info.priceScale, { rounding: 'down' }) -
              parseDecimal(bids[0].price, info.priceScale, { rounding: 'down' }),
            info.priceScale,
          )
        : null
    return {
      symbol: info.symbol,
      timestamp: deps.now(),
      lastUpdateId: Number(depth.lastUpdateId),
      levels: q.levels,
      bids,
      asks,
      spread,
    }
  })

  get(LINKORA_ENDPOINTS.price, async (q) => {
    const interval = timeframeOf(q.timeframe)
    const info = await market(q.symbol)
    const [rows, ticker] = await Promise.all([
      klines(deps.cache, info.symbol, interval, { limit: 1 }),
      ticker24h(deps.cache, info.symbol),
    ])
    const k = rows.at(-1)
    if (k === undefined && ticker === undefined)
      throw new BourseError('not_found', `${info.symbol} has no trades yet`, { field: 'symbol' })
    const scale = info.priceScale
    const units = (v: string) => parseDecimal(v, scale, { allowZero: true, rounding: 'down' })
    // The current bucket of the timeframe, else (no trade in it listed) the 24h ticker's window.
    const price = units(ticker?.lastPrice ?? k![4])
    const open = units(k !== undefined ? k[1] : ticker!.openPrice)
    const high = k !== undefined ? k[2] : ticker!.highPrice
    const low = k !== undefined ? k[3] : ticker!.lowPrice
    const volume = k !== undefined ? k[5] : ticker!.volume
    const change = price - open
    // Percent at 2 places, truncated toward zero.
    const changePercent = open === 0n ? '0.00' : formatDecimal((change * 10_000n) / open, 2)
    return {
      symbol: info.symbol,
      timeframe: q.timeframe,
      interval,
      price: formatDecimal(price, scale),
      open: formatDecimal(open, scale),
      change: formatDecimal(change, scale),
      changePercent,
      high: fixed(high, scale),
      low: fixed(low, scale),
      volume: fixed(volume, info.qtyScale),
      trend: change > 0n ? ('up' as const) : change < 0n ? ('down' as const) : ('flat' as const),
      openTime: k !== undefined ? k[0] : ticker!.openTime,
      timestamp: deps.now(),
    }
  })
}
