/**
 * The Binance-compatible API end to end through app.request: PGlite, the in-process engine behind the
 * EngineClient's in-process transport, and the in-process cache. Every answer is checked against Binance's
 * documented codes and messages.
 */
import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPubSubCache, InProcessRedis, type PubSubCache } from '../../../adapters/pubsub/index.ts'
import { startSilentServer } from '../../../adapters/testing/silent-server.ts'
import { createLogger } from '../../../lib/log.ts'
import { parseDecimal } from '../../../lib/money.ts'
import type { MatchingEngine } from '../../engine/engine.ts'
import { type MarketFixture, marketFixture } from '../../engine/testing.ts'
import type { Interval } from '../../handler/intervals.ts'
import { keys, klineIndexCap } from '../../handler/keys.ts'
import { aggregate, klineToHash, newKline, SCALE } from '../../handler/klines.ts'
import { createApiKey, revokeApiKey } from '../api-keys.ts'
import { createGatewayApp } from '../app.ts'
import { EngineClient } from '../engine-client.ts'

const encryptionKey = Buffer.alloc(32, 7)

// biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field against Binance's shapes
type Answer = any

interface Credentials {
  apiKey: string
  secretKey?: string
  privateKey?: KeyObject
}

let fx: MarketFixture
let engine: MatchingEngine
let app: Hono
let cache: PubSubCache
let clock = 0
let alice: bigint
let bob: bigint
let aliceKey: Credentials
let bobKey: Credentials
let readOnly: Credentials
let ipBound: Credentials

beforeAll(async () => {
  fx = await marketFixture('pglite')
  engine = await fx.engine()
  alice = await fx.trader('alice', { USDT: '10000' })
  bob = await fx.trader('bob', { BTC: '10' })
  const db = fx.database.db
  aliceKey = await createApiKey(db, encryptionKey, { userId: alice, kind: 'HMAC', canTrade: true })
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const bobPublic = publicKey.export({ type: 'spki', format: 'pem' }).toString()
  bobKey = {
    ...(await createApiKey(db, encryptionKey, {
      userId: bob,
      kind: 'ED25519',
      publicKey: bobPublic,
      canTrade: true,
    })),
    privateKey,
  }
  readOnly = await createApiKey(db, encryptionKey, { userId: alice, kind: 'HMAC' })
  ipBound = await createApiKey(db, encryptionKey, {
    userId: alice,
    kind: 'HMAC',
    canTrade: true,
    allowedIps: ['10.1.2.3'],
  })
  cache = createPubSubCache({ kind: 'memory', server: new InProcessRedis() })
  app = gatewayOver(EngineClient.inProcess(engine))
})

/** The gateway under test, its BTCUSDT engine reached through `client`. */
function gatewayOver(client: EngineClient): Hono {
  return createGatewayApp({
    db: fx.database.db,
    engines: new Map([['BTCUSDT', client]]),
    cache,
    config: {
      keyEncryptionKey: encryptionKey,
      weightPerMinute: 6000,
      rejectionsBeforeBan: 2,
      trustProxy: true,
    },
    log: createLogger('gateway-test', { level: 'silent' }),
    now: () => (clock === 0 ? Date.now() : clock),
  })
}

afterAll(async () => {
  await fx?.close()
})

let ipCounter = 0
/** Each test speaks from its own address, so the weight limit of one never spills into another. */
function freshIp(): string {
  ipCounter++
  return `192.0.2.${ipCounter}`
}

function signPayload(creds: Credentials, payload: string): string {
  if (creds.secretKey !== undefined)
    return createHmac('sha256', creds.secretKey).update(payload).digest('hex')
  return sign(null, Buffer.from(payload), creds.privateKey!).toString('base64')
}

async function signed(
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  params: Record<string, string>,
  creds: Credentials,
  options: { inBody?: boolean; ip?: string; timestamp?: number; tamper?: boolean; via?: Hono } = {},
) {
  const gateway = options.via ?? app
  const all = new URLSearchParams({ ...params, timestamp: String(options.timestamp ?? Date.now()) })
  const payload = all.toString()
  let signature = signPayload(creds, payload)
  if (options.tamper) signature = signPayload(creds, `${payload}&x=1`)
  const signedQuery = `${payload}&signature=${encodeURIComponent(signature)}`
  const headers: Record<string, string> = {
    'X-MBX-APIKEY': creds.apiKey,
    'X-Forwarded-For': options.ip ?? freshIp(),
  }
  const response = options.inBody
    ? await gateway.request(path, {
        method,
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded' },
        body: signedQuery,
      })
    : await gateway.request(`${path}?${signedQuery}`, { method, headers })
  return { status: response.status, headers: response.headers, body: (await response.json()) as Answer }
}

async function publicGet(path: string, ip = freshIp()) {
  const response = await app.request(path, { headers: { 'X-Forwarded-For': ip } })
  return { status: response.status, headers: response.headers, body: (await response.json()) as Answer }
}

const limit = (
  side: 'BUY' | 'SELL',
  price: string,
  quantity: string,
  extra: Record<string, string> = {},
) => ({
  symbol: 'BTCUSDT',
  side,
  type: 'LIMIT',
  timeInForce: 'GTC',
  price,
  quantity,
  ...extra,
})

describe('public endpoints', () => {
  it('answers ping and time', async () => {
    expect(await publicGet('/api/v3/ping')).toMatchObject({ status: 200, body: {} })
    const before = Date.now()
    const { body, headers } = await publicGet('/api/v3/time')
    expect(body.serverTime).toBeGreaterThanOrEqual(before)
    expect(headers.get('X-MBX-USED-WEIGHT-1M')).toBe('1')
  })

  it('describes the market with its filters in exchangeInfo', async () => {
    const { body, headers } = await publicGet('/api/v3/exchangeInfo')
    expect(headers.get('X-MBX-USED-WEIGHT-1M')).toBe('20')
    expect(body.timezone).toBe('UTC')
    expect(body.rateLimits).toEqual([
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000 },
    ])
    const [symbol] = body.symbols
    expect(symbol).toMatchObject({
      symbol: 'BTCUSDT',
      status: 'TRADING',
      baseAsset: 'BTC',
      quoteAsset: 'USDT',
      baseAssetPrecision: 8,
      orderTypes: ['LIMIT', 'LIMIT_MAKER', 'MARKET'],
      quoteOrderQtyMarketAllowed: true,
      permissionSets: [['SPOT']],
      defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
      allowedSelfTradePreventionModes: ['NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'],
    })
    expect(symbol.filters[0]).toMatchObject({
      filterType: 'PRICE_FILTER',
      minPrice: '0.01000000',
      tickSize: '0.01000000',
    })
    expect(symbol.filters[1]).toMatchObject({
      filterType: 'LOT_SIZE',
      minQty: '0.00100000',
      stepSize: '0.00100000',
    })
    expect(symbol.filters[2]).toMatchObject({ filterType: 'NOTIONAL', minNotional: '1.00000000' })
    expect((await publicGet('/api/v3/exchangeInfo?symbol=BTCUSDT')).body.symbols).toHaveLength(1)
    expect((await publicGet('/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22%5D')).body.symbols).toHaveLength(1)
    expect(await publicGet('/api/v3/exchangeInfo?symbol=NOPE')).toMatchObject({
      status: 400,
      body: { code: -1121, msg: 'Invalid symbol.' },
    })
  })

  it('names a missing symbol and refuses an unknown one on depth', async () => {
    expect((await publicGet('/api/v3/depth')).body).toEqual({
      code: -1102,
      msg: "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
    })
    expect((await publicGet('/api/v3/depth?symbol=ETHUSDT')).body).toEqual({
      code: -1121,
      msg: 'Invalid symbol.',
    })
  })
})

describe("market data from the handler's cache", () => {
  it('serves trades, klines, uiKlines, tickers and avgPrice from what the handler wrote', async () => {
    const minute = Math.floor(Date.now() / 60_000) * 60_000 - 60_000
    const units = (v: string) => parseDecimal(v, SCALE)
    const kline = newKline('1m', {
      symbol: 'BTCUSDT',
      id: 1n,
      price: units('250'),
      qty: units('0.5'),
      quoteQty: units('125'),
      time: minute + 1000,
      buyerIsMaker: false,
    })
    await cache.hashSet(keys.kline('BTCUSDT', '1m', minute), klineToHash(kline))
    await cache.pushCapped(keys.klineIndex('BTCUSDT', '1m'), String(minute), 1500)
    await cache.pushCapped(
      keys.trades('BTCUSDT'),
      JSON.stringify({
        id: 1,
        price: '250',
        qty: '0.5',
        quoteQty: '125',
        time: minute + 1000,
        isBuyerMaker: false,
        isBestMatch: true,
      }),
      1000,
    )
    await cache.hashSet(keys.ticker('BTCUSDT'), {
      symbol: 'BTCUSDT',
      priceChange: '-10',
      priceChangePercent: '-3.846',
      weightedAvgPrice: '250',
      lastPrice: '250',
      lastQty: '0.5',
      openPrice: '260',
      highPrice: '260',
      lowPrice: '250',
      volume: '0.5',
      quoteVolume: '125',
      openTime: String(minute - 86_340_000),
      closeTime: String(minute + 59_999),
      firstId: '1',
      lastId: '1',
      count: '1',
    })

    expect((await publicGet('/api/v3/trades?symbol=BTCUSDT')).body).toEqual([
      {
        id: 1,
        price: '250.00',
        qty: '0.500',
        quoteQty: '125.00000',
        time: minute + 1000,
        isBuyerMaker: false,
        isBestMatch: true,
      },
    ])
    for (const path of ['klines', 'uiKlines']) {
      const { body } = await publicGet(`/api/v3/${path}?symbol=BTCUSDT&interval=1m`)
      expect(body).toEqual([
        [minute, '250', '250', '250', '250', '0.5', minute + 59_999, '125', 1, '0.5', '125', '0'],
      ])
    }
    // In a zone a whole number of hours from UTC the minutes are the same; its hours at +5:30 are made of
    // 30m k-lines, which the handler has not written here.
    expect((await publicGet('/api/v3/klines?symbol=BTCUSDT&interval=1m&timeZone=8')).body).toEqual(
      (await publicGet('/api/v3/klines?symbol=BTCUSDT&interval=1m')).body,
    )
    expect((await publicGet('/api/v3/uiKlines?symbol=BTCUSDT&interval=1h&timeZone=05:30')).body).toEqual([])
    expect((await publicGet('/api/v3/klines?symbol=BTCUSDT&interval=1d&timeZone=-12:30')).body).toEqual({
      code: -1130,
      msg: "Data sent for parameter 'timeZone' is not valid.",
    })
    expect((await publicGet('/api/v3/klines?symbol=BTCUSDT&interval=7m')).body).toEqual({
      code: -1120,
      msg: 'Invalid interval.',
    })
    const ticker = await publicGet('/api/v3/ticker/24hr?symbol=BTCUSDT')
    expect(ticker.body).toMatchObject({
      symbol: 'BTCUSDT',
      priceChange: '-10.00',
      priceChangePercent: '-3.846',
      lastPrice: '250.00',
      openPrice: '260.00',
      volume: '0.500',
      count: 1,
      bidPrice: '0.00',
    })
    expect((await publicGet('/api/v3/ticker/price?symbol=BTCUSDT')).body).toEqual({
      symbol: 'BTCUSDT',
      price: '250.00',
    })
    expect((await publicGet('/api/v3/ticker/price')).body).toEqual([{ symbol: 'BTCUSDT', price: '250.00' }])
    const book = await publicGet('/api/v3/ticker/bookTicker?symbol=BTCUSDT')
    expect(book.body).toEqual({
      symbol: 'BTCUSDT',
      bidPrice: '0.00',
      bidQty: '0.000',
      askPrice: '0.00',
      askQty: '0.000',
    })
    expect((await publicGet('/api/v3/avgPrice?symbol=BTCUSDT')).body).toMatchObject({
      mins: 5,
      price: '250.00000000',
    })
  })
})

describe('rolling window statistics (ticker)', () => {
  const at = (time: string) => Date.parse(`2026-01-05T${time}Z`)
  const trade = (id: number, time: string, price: string, qty: string) => ({
    symbol: 'BTCUSDT',
    id: BigInt(id),
    price: parseDecimal(price, SCALE),
    qty: parseDecimal(qty, SCALE),
    quoteQty: (parseDecimal(price, SCALE) * parseDecimal(qty, SCALE)) / 10n ** BigInt(SCALE),
    time: at(time),
    buyerIsMaker: false,
  })
  // One trade before a 2h window ending at 10:30:20, three inside it across the hours, one in its last minute.
  const trades = [
    trade(1, '08:29:30', '1000', '1'),
    trade(2, '08:30:10', '10', '1'),
    trade(3, '09:15:00', '50', '2'),
    trade(4, '09:59:59', '20', '1'),
    trade(5, '10:30:05', '30', '1'),
  ]

  beforeAll(async () => {
    // The 1h k-lines hold every trade. Of the 1m k-lines, the one of 09:15 has gone (the 1m index keeps only a
    // day or so), and the one of 09:59 is still there: read from both, the hour would count it twice.
    const store = async (interval: Interval, list: typeof trades) => {
      for (const [start, k] of aggregate(list, interval)) {
        await cache.hashSet(keys.kline('BTCUSDT', interval, start), klineToHash(k))
        await cache.pushCapped(keys.klineIndex('BTCUSDT', interval), String(start), klineIndexCap(interval))
      }
    }
    await store('1h', trades)
    await store(
      '1m',
      trades.filter((t) => t.id !== 3n),
    )
  })

  async function ticker(query: string, now: number) {
    clock = now
    try {
      return await publicGet(`/api/v3/ticker?${query}`)
    } finally {
      clock = 0
    }
  }

  it('sums the whole hours from 1h k-lines and the minutes at both ends from 1m k-lines', async () => {
    const now = at('10:30:20')
    const { status, headers, body } = await ticker('symbol=BTCUSDT&windowSize=2h', now)
    expect(status).toBe(200)
    expect(headers.get('X-MBX-USED-WEIGHT-1M')).toBe('4')
    expect(body).toEqual({
      symbol: 'BTCUSDT',
      priceChange: '20.00',
      priceChangePercent: '200.000',
      weightedAvgPrice: '32.00',
      openPrice: '10.00',
      highPrice: '50.00',
      lowPrice: '10.00',
      lastPrice: '30.00',
      volume: '5.000',
      quoteVolume: '160.00000',
      openTime: at('08:30:00'),
      closeTime: now,
      firstId: 2,
      lastId: 5,
      count: 4,
    })
    const mini = await ticker('symbols=%5B%22BTCUSDT%22%5D&windowSize=1m&type=MINI', now)
    expect(mini.body).toEqual([
      {
        symbol: 'BTCUSDT',
        openPrice: '30.00',
        highPrice: '30.00',
        lowPrice: '30.00',
        lastPrice: '30.00',
        volume: '1.000',
        quoteVolume: '30.00000',
        openTime: at('10:29:00'),
        closeTime: now,
        firstId: 5,
        lastId: 5,
        count: 1,
      },
    ])
    expect((await ticker('symbol=BTCUSDT&windowSize=7d', now)).body).toMatchObject({
      openPrice: '1000.00',
      count: 5,
      openTime: now - (now % 60_000) - 7 * 86_400_000,
    })
  })

  it('shows a window without trades as idle, with the last price', async () => {
    await cache.hashSet(keys.ticker('BTCUSDT'), {
      symbol: 'BTCUSDT',
      lastPrice: '30',
      openTime: '0',
      closeTime: '0',
    })
    const { body } = await ticker('symbol=BTCUSDT&windowSize=5m&type=MINI', at('10:45:00'))
    expect(body).toMatchObject({
      lastPrice: '30.00',
      openPrice: '0.00',
      volume: '0.000',
      firstId: -1,
      count: 0,
    })
  })

  it('refuses a bad windowSize or type, and a request naming no symbol', async () => {
    const now = at('10:30:20')
    for (const windowSize of ['60m', '24h', '8d', '0m', '1w', '1d2h', 'x']) {
      expect((await ticker(`symbol=BTCUSDT&windowSize=${windowSize}`, now)).body).toEqual({
        code: -1130,
        msg: "Data sent for parameter 'windowSize' is not valid.",
      })
    }
    expect((await ticker('symbol=BTCUSDT&type=FOO', now)).body).toEqual({
      code: -1139,
      msg: 'Invalid ticker type.',
    })
    expect((await ticker('windowSize=1h', now)).body).toEqual({
      code: -1102,
      msg: "Param 'symbol' or 'symbols' must be sent, but both were empty/null!",
    })
    expect((await ticker('symbol=NOPE', now)).body).toEqual({ code: -1121, msg: 'Invalid symbol.' })
  })

  it('gives the trading day so far in the requested time zone (ticker/tradingDay)', async () => {
    const now = at('10:30:20')
    const tradingDay = async (query: string) => {
      clock = now
      try {
        return await publicGet(`/api/v3/ticker/tradingDay?${query}`)
      } finally {
        clock = 0
      }
    }
    const day = (openTime: number) => ({ openTime, closeTime: openTime + 86_400_000 - 1 })
    const utc = await tradingDay('symbol=BTCUSDT')
    expect(utc.headers.get('X-MBX-USED-WEIGHT-1M')).toBe('4')
    expect(utc.body).toMatchObject({
      openPrice: '1000.00',
      lastPrice: '30.00',
      count: 5,
      ...day(at('00:00:00')),
    })
    // 01:30 at UTC-9: the day began at 09:00 UTC.
    expect((await tradingDay('symbol=BTCUSDT&timeZone=-9')).body).toMatchObject({
      openPrice: '50.00',
      firstId: 3,
      count: 3,
      ...day(at('09:00:00')),
    })
    // 00:00:20 at UTC-10:30, and 00:30:20 the next day at UTC+14: each day began with the last trade only.
    expect((await tradingDay('symbols=["BTCUSDT"]&timeZone=-10:30&type=MINI')).body).toEqual([
      expect.objectContaining({ openPrice: '30.00', count: 1, ...day(at('10:30:00')) }),
    ])
    expect((await tradingDay('symbol=BTCUSDT&timeZone=%2B14:00')).body).toMatchObject({
      count: 1,
      ...day(at('10:00:00')),
    })
    for (const timeZone of ['15', '-13', '-12:30', '8:60', '+8:0', 'x']) {
      expect((await tradingDay(`symbol=BTCUSDT&timeZone=${encodeURIComponent(timeZone)}`)).body).toEqual({
        code: -1130,
        msg: "Data sent for parameter 'timeZone' is not valid.",
      })
    }
    expect((await tradingDay('timeZone=0')).body).toMatchObject({ code: -1102 })
  })
})

describe('signed requests', () => {
  it('refuses a request without an API key, or with one it does not know', async () => {
    const none = await app.request('/api/v3/account?timestamp=1&signature=ab')
    expect(none.status).toBe(401)
    expect(await none.json()).toEqual({ code: -2014, msg: 'API-key format invalid.' })
    const unknown = await signed('GET', '/api/v3/account', {}, { apiKey: 'x'.repeat(64), secretKey: 's' })
    expect(unknown).toMatchObject({
      status: 401,
      body: { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' },
    })
  })

  it('refuses a bad signature and a missing one', async () => {
    expect(await signed('GET', '/api/v3/account', {}, aliceKey, { tamper: true })).toMatchObject({
      status: 400,
      body: { code: -1022, msg: 'Signature for this request is not valid.' },
    })
    expect(await signed('GET', '/api/v3/account', {}, bobKey, { tamper: true })).toMatchObject({
      body: { code: -1022 },
    })
    const response = await app.request(`/api/v3/account?timestamp=${Date.now()}`, {
      headers: { 'X-MBX-APIKEY': aliceKey.apiKey },
    })
    expect(await response.json()).toEqual({
      code: -1102,
      msg: "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.",
    })
  })

  it('refuses a timestamp outside the recvWindow, one ahead of the server, and a recvWindow over 60000', async () => {
    expect(
      await signed('GET', '/api/v3/account', {}, aliceKey, { timestamp: Date.now() - 6000 }),
    ).toMatchObject({
      status: 400,
      body: { code: -1021, msg: 'Timestamp for this request is outside of the recvWindow.' },
    })
    const wide = await signed('GET', '/api/v3/account', { recvWindow: '10000' }, aliceKey, {
      timestamp: Date.now() - 6000,
    })
    expect(wide.status).toBe(200)
    expect(
      await signed('GET', '/api/v3/account', {}, aliceKey, { timestamp: Date.now() + 5000 }),
    ).toMatchObject({
      body: { code: -1021, msg: "Timestamp for this request was 1000ms ahead of the server's time." },
    })
    expect(await signed('GET', '/api/v3/account', { recvWindow: '60001' }, aliceKey)).toMatchObject({
      body: { code: -1102, msg: "'recvWindow' contains unexpected value. Cannot be greater than 60000." },
    })
  })

  it('refuses trading with a read-only key and a key used from an address it is not bound to', async () => {
    expect(await signed('POST', '/api/v3/order', limit('BUY', '100', '0.1'), readOnly)).toMatchObject({
      status: 401,
      body: { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' },
    })
    expect((await signed('GET', '/api/v3/account', {}, readOnly)).status).toBe(200)
    expect(await signed('GET', '/api/v3/account', {}, ipBound, { ip: '10.9.9.9' })).toMatchObject({
      status: 401,
      body: { code: -2015 },
    })
    expect((await signed('GET', '/api/v3/account', {}, ipBound, { ip: '10.1.2.3' })).status).toBe(200)
    // The proxy appends the address it saw; what comes before it is the client's to write.
    expect((await signed('GET', '/api/v3/account', {}, ipBound, { ip: '10.1.2.3, 10.9.9.9' })).status).toBe(
      401,
    )
    expect((await signed('GET', '/api/v3/account', {}, ipBound, { ip: '10.9.9.9, 10.1.2.3' })).status).toBe(
      200,
    )
  })

  it('refuses a revoked key', async () => {
    const key = await createApiKey(fx.database.db, encryptionKey, { userId: alice, kind: 'HMAC' })
    await revokeApiKey(fx.database.db, key.apiKey)
    expect((await signed('GET', '/api/v3/account', {}, key)).body.code).toBe(-2015)
  })
})

describe('account', () => {
  it("gives a market's commission rates and the filters an order meets there", async () => {
    const commission = await signed('GET', '/api/v3/account/commission', { symbol: 'BTCUSDT' }, aliceKey)
    expect(commission.headers.get('X-MBX-USED-WEIGHT-1M')).toBe('20')
    const zero = { maker: '0.00000000', taker: '0.00000000', buyer: '0.00000000', seller: '0.00000000' }
    expect(commission.body).toEqual({
      symbol: 'BTCUSDT',
      standardCommission: { ...zero, maker: '0.00100000', taker: '0.00200000' },
      specialCommission: zero,
      taxCommission: zero,
      discount: {
        enabledForAccount: false,
        enabledForSymbol: false,
        discountAsset: '',
        discount: '0.00000000',
      },
    })
    const filters = await signed('GET', '/api/v3/myFilters', { symbol: 'BTCUSDT' }, aliceKey)
    expect(filters.headers.get('X-MBX-USED-WEIGHT-1M')).toBe('40')
    const listed = (await publicGet('/api/v3/exchangeInfo?symbol=BTCUSDT')).body.symbols[0].filters
    expect(filters.body).toEqual({ exchangeFilters: [], symbolFilters: listed, assetFilters: [] })
    expect(listed.map((f: { filterType: string }) => f.filterType)).toEqual([
      'PRICE_FILTER',
      'LOT_SIZE',
      'NOTIONAL',
    ])
    expect((await signed('GET', '/api/v3/account/commission', {}, aliceKey)).body).toEqual({
      code: -1102,
      msg: "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
    })
    expect((await signed('GET', '/api/v3/myFilters', { symbol: 'ETHUSDT' }, aliceKey)).body).toEqual({
      code: -1121,
      msg: 'Invalid symbol.',
    })
  })
})

describe('orders', () => {
  it('places, queries and cancels a LIMIT order signed with HMAC, parameters in the body', async () => {
    const placed = await signed(
      'POST',
      '/api/v3/order',
      limit('BUY', '100', '0.5', { newClientOrderId: 'a-1' }),
      aliceKey,
      {
        inBody: true,
      },
    )
    expect(placed.status).toBe(200)
    expect(placed.body).toMatchObject({
      symbol: 'BTCUSDT',
      orderListId: -1,
      clientOrderId: 'a-1',
      price: '100.00',
      origQty: '0.500',
      executedQty: '0.000',
      status: 'NEW',
      timeInForce: 'GTC',
      type: 'LIMIT',
      side: 'BUY',
      selfTradePreventionMode: 'EXPIRE_MAKER',
      fills: [],
    })
    expect(typeof placed.body.orderId).toBe('number')
    const query = await signed(
      'GET',
      '/api/v3/order',
      { symbol: 'BTCUSDT', origClientOrderId: 'a-1' },
      aliceKey,
    )
    expect(query.body).toMatchObject({
      orderId: placed.body.orderId,
      status: 'NEW',
      isWorking: true,
      price: '100.00',
    })
    const open = await signed('GET', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, aliceKey)
    expect(open.body.map((o: { orderId: number }) => o.orderId)).toContain(placed.body.orderId)
    const canceled = await signed(
      'DELETE',
      '/api/v3/order',
      { symbol: 'BTCUSDT', orderId: String(placed.body.orderId) },
      aliceKey,
    )
    expect(canceled.body).toMatchObject({
      origClientOrderId: 'a-1',
      status: 'CANCELED',
      orderId: placed.body.orderId,
    })
    expect(
      (
        await signed(
          'GET',
          '/api/v3/order',
          { symbol: 'BTCUSDT', orderId: String(placed.body.orderId) },
          aliceKey,
        )
      ).body.status,
    ).toBe('CANCELED')
    expect(
      await signed(
        'DELETE',
        '/api/v3/order',
        { symbol: 'BTCUSDT', orderId: String(placed.body.orderId) },
        aliceKey,
      ),
    ).toMatchObject({ status: 400, body: { code: -2011, msg: 'Unknown order sent.' } })
    const second = await signed(
      'POST',
      '/api/v3/order',
      limit('BUY', '100', '0.5', { newClientOrderId: 'a-2' }),
      aliceKey,
    )
    const both = { symbol: 'BTCUSDT', orderId: String(second.body.orderId) }
    expect(
      await signed('DELETE', '/api/v3/order', { ...both, origClientOrderId: 'other' }, aliceKey),
    ).toMatchObject({
      body: { code: -2011, msg: 'Unknown order sent.' },
    })
    expect(await signed('DELETE', '/api/v3/order', { symbol: 'BTCUSDT' }, aliceKey)).toMatchObject({
      body: {
        code: -1102,
        msg: "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
      },
    })
    expect(
      (
        await signed(
          'DELETE',
          '/api/v3/order',
          { ...both, origClientOrderId: 'a-2', newClientOrderId: 'c-2' },
          aliceKey,
        )
      ).body,
    ).toMatchObject({ status: 'CANCELED', origClientOrderId: 'a-2', clientOrderId: 'c-2' })
    expect(
      await signed('GET', '/api/v3/order', { symbol: 'BTCUSDT', orderId: '999999' }, aliceKey),
    ).toMatchObject({
      body: { code: -2013, msg: 'Order does not exist.' },
    })
  })

  it('trades between an Ed25519-signed seller and an HMAC buyer: FULL fills, balances, allOrders, myTrades', async () => {
    const before = await signed('GET', '/api/v3/account', {}, aliceKey)
    const usdtBefore = before.body.balances.find((b: { asset: string }) => b.asset === 'USDT')
    expect(usdtBefore).toEqual({ asset: 'USDT', free: '10000.00000000', locked: '0.00000000' })

    const ask = await signed('POST', '/api/v3/order', limit('SELL', '200', '1'), bobKey, { inBody: true })
    expect(ask.body).toMatchObject({ status: 'NEW', side: 'SELL' })
    const depth = await publicGet('/api/v3/depth?symbol=BTCUSDT&limit=5')
    expect(depth.body.asks).toEqual([['200.00', '1.000']])
    expect(typeof depth.body.lastUpdateId).toBe('number')

    const buy = await signed(
      'POST',
      '/api/v3/order',
      { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '0.25' },
      aliceKey,
    )
    expect(buy.body).toMatchObject({
      status: 'FILLED',
      type: 'MARKET',
      executedQty: '0.250',
      cummulativeQuoteQty: '50.00000',
    })
    expect(buy.body.fills).toEqual([
      {
        price: '200.00',
        qty: '0.250',
        commission: expect.any(String),
        commissionAsset: 'BTC',
        tradeId: expect.any(Number),
      },
    ])

    const account = await signed('GET', '/api/v3/account', { omitZeroBalances: 'true' }, aliceKey)
    expect(account.body).toMatchObject({
      canTrade: true,
      accountType: 'SPOT',
      permissions: ['SPOT'],
      uid: Number(alice),
    })
    const usdt = account.body.balances.find((b: { asset: string }) => b.asset === 'USDT')
    expect(usdt).toEqual({ asset: 'USDT', free: '9950.00000000', locked: '0.00000000' })
    const btc = account.body.balances.find((b: { asset: string }) => b.asset === 'BTC')
    expect(btc.free).toBe('0.24950000') // 0.25 less the 0.2% taker fee
    const bobAccount = await signed('GET', '/api/v3/account', {}, bobKey)
    expect(bobAccount.body.balances.find((b: { asset: string }) => b.asset === 'BTC')).toEqual({
      asset: 'BTC',
      free: '9.00000000',
      locked: '0.75000000',
    })

    const mine = await signed('GET', '/api/v3/myTrades', { symbol: 'BTCUSDT' }, aliceKey)
    expect(mine.body).toEqual([
      expect.objectContaining({
        symbol: 'BTCUSDT',
        orderId: buy.body.orderId,
        price: '200.00',
        qty: '0.250',
        quoteQty: '50.00000',
        commissionAsset: 'BTC',
        isBuyer: true,
        isMaker: false,
        isBestMatch: true,
      }),
    ])
    const bobs = await signed(
      'GET',
      '/api/v3/myTrades',
      { symbol: 'BTCUSDT', orderId: String(ask.body.orderId) },
      bobKey,
    )
    expect(bobs.body).toEqual([
      expect.objectContaining({ isBuyer: false, isMaker: true, commissionAsset: 'USDT' }),
    ])
    const all = await signed('GET', '/api/v3/allOrders', { symbol: 'BTCUSDT' }, aliceKey)
    const statuses = all.body.map((o: { status: string }) => o.status)
    expect(statuses).toEqual(['CANCELED', 'CANCELED', 'FILLED'])
    const fromId = await signed(
      'GET',
      '/api/v3/allOrders',
      { symbol: 'BTCUSDT', orderId: String(buy.body.orderId) },
      aliceKey,
    )
    expect(fromId.body).toHaveLength(1)

    // Each trade is its own aggregate; the buyer took, so the buyer was not the maker.
    const tradeId = buy.body.fills[0].tradeId
    const agg = await publicGet('/api/v3/aggTrades?symbol=BTCUSDT')
    expect(agg.headers.get('X-MBX-USED-WEIGHT-1M')).toBe('4')
    expect(agg.body).toEqual([
      {
        a: tradeId,
        p: '200.00',
        q: '0.250',
        f: tradeId,
        l: tradeId,
        T: expect.any(Number),
        m: false,
        M: true,
      },
    ])
    expect(Math.abs(agg.body[0].T - Date.now())).toBeLessThan(60_000)
    expect((await publicGet(`/api/v3/aggTrades?symbol=BTCUSDT&fromId=${tradeId}`)).body).toHaveLength(1)
    expect((await publicGet(`/api/v3/aggTrades?symbol=BTCUSDT&fromId=${tradeId + 1}`)).body).toEqual([])
    const T = agg.body[0].T
    expect((await publicGet(`/api/v3/aggTrades?symbol=BTCUSDT&startTime=${T + 1}`)).body).toEqual([])
    expect(
      (await publicGet(`/api/v3/aggTrades?symbol=BTCUSDT&startTime=${T}&endTime=${T}`)).body,
    ).toHaveLength(1)
    expect((await publicGet(`/api/v3/aggTrades?symbol=BTCUSDT&fromId=1&startTime=${T}`)).body).toEqual({
      code: -1128,
      msg: 'Combination of optional parameters invalid.',
    })

    // The same trade as an older trade, read from the history rather than the handler's recent list.
    const old = await publicGet('/api/v3/historicalTrades?symbol=BTCUSDT')
    expect(old.headers.get('X-MBX-USED-WEIGHT-1M')).toBe('25')
    expect(old.body).toEqual([
      {
        id: tradeId,
        price: '200.00',
        qty: '0.250',
        quoteQty: '50.00000',
        time: T,
        isBuyerMaker: false,
        isBestMatch: true,
      },
    ])
    expect((await publicGet(`/api/v3/historicalTrades?symbol=BTCUSDT&fromId=${tradeId}`)).body).toEqual(
      old.body,
    )
    expect((await publicGet(`/api/v3/historicalTrades?symbol=BTCUSDT&fromId=${tradeId + 1}`)).body).toEqual(
      [],
    )
    expect((await publicGet('/api/v3/historicalTrades?symbol=BTCUSDT&fromId=x')).body).toMatchObject({
      code: -1100,
    })

    const cancelAll = await signed('DELETE', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, bobKey)
    expect(cancelAll.body).toEqual([
      expect.objectContaining({ orderId: ask.body.orderId, status: 'CANCELED' }),
    ])
    expect(await signed('DELETE', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, bobKey)).toMatchObject({
      body: { code: -2011, msg: 'Unknown order sent.' },
    })
  })

  it('answers ACK and RESULT response types and a MARKET order by quoteOrderQty', async () => {
    await signed('POST', '/api/v3/order', limit('SELL', '300', '1'), bobKey)
    const ack = await signed(
      'POST',
      '/api/v3/order',
      limit('BUY', '100', '0.1', { newOrderRespType: 'ACK' }),
      aliceKey,
    )
    expect(Object.keys(ack.body).sort()).toEqual([
      'clientOrderId',
      'orderId',
      'orderListId',
      'symbol',
      'transactTime',
    ])
    const result = await signed(
      'POST',
      '/api/v3/order',
      { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quoteOrderQty: '30', newOrderRespType: 'RESULT' },
      aliceKey,
    )
    // The quantity an order by quote amount came to is its origQty, as Binance shows it.
    const filled = {
      status: 'FILLED',
      origQty: '0.100',
      executedQty: '0.100',
      cummulativeQuoteQty: '30.00000',
      origQuoteOrderQty: '30.00000',
    }
    expect(result.body).toMatchObject(filled)
    expect(result.body.fills).toBeUndefined()
    const queried = await signed(
      'GET',
      '/api/v3/order',
      { symbol: 'BTCUSDT', orderId: result.body.orderId },
      aliceKey,
    )
    expect(queried.body).toMatchObject(filled)
    await signed('DELETE', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, bobKey)
    await signed('DELETE', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, aliceKey)
  })

  it('validates an order without placing it on order/test', async () => {
    const ok = await signed('POST', '/api/v3/order/test', limit('BUY', '100', '0.1'), aliceKey)
    expect(ok).toMatchObject({ status: 200, body: {} })
    expect((await signed('GET', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, aliceKey)).body).toEqual([])
    expect(
      (await signed('POST', '/api/v3/order/test', limit('BUY', '100.001', '0.1'), aliceKey)).body,
    ).toEqual({
      code: -1013,
      msg: 'Filter failure: PRICE_FILTER',
    })
    const rates = await signed(
      'POST',
      '/api/v3/order/test',
      limit('BUY', '100', '0.1', { computeCommissionRates: 'true' }),
      aliceKey,
    )
    expect(rates.body.standardCommissionForOrder).toEqual({ maker: '0.00100000', taker: '0.00200000' })
  })

  it.each([
    [limit('BUY', '100.001', '0.1'), -1013, 'Filter failure: PRICE_FILTER'],
    [limit('BUY', '0', '0.1'), -1013, 'Filter failure: PRICE_FILTER'],
    [limit('BUY', '100', '0.0001'), -1013, 'Filter failure: LOT_SIZE'],
    [limit('BUY', '0.01', '0.001'), -1013, 'Filter failure: NOTIONAL'],
    [limit('BUY', '1000', '100'), -2010, 'Account has insufficient balance for requested action.'],
    [
      limit('BUY', 'abc', '1'),
      -1100,
      "Illegal characters found in parameter 'price'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
    ],
    [
      { ...limit('BUY', '100', '0.1'), timeInForce: '' },
      -1102,
      "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed.",
    ],
    [
      { ...limit('BUY', '100', '0.1'), quantity: '' },
      -1102,
      "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
    ],
    [{ ...limit('BUY', '100', '0.1'), side: 'UP' }, -1117, 'Invalid side.'],
    [{ ...limit('BUY', '100', '0.1'), type: 'BEST' }, -1116, 'Invalid orderType.'],
    [{ ...limit('BUY', '100', '0.1'), timeInForce: 'GTX' }, -1115, 'Invalid timeInForce.'],
    [{ ...limit('BUY', '100', '0.1'), symbol: 'DOGEUSDT' }, -1121, 'Invalid symbol.'],
    [
      { ...limit('BUY', '100', '0.1'), type: 'STOP_LOSS_LIMIT' },
      -2010,
      'Stop loss limit orders are not supported for this symbol.',
    ],
    [
      { ...limit('BUY', '100', '0.1'), newClientOrderId: 'a b' },
      -1100,
      "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[a-zA-Z0-9-_.]{1,36}$'.",
    ],
    [
      { ...limit('BUY', '100', '0.1'), selfTradePreventionMode: 'DECREMENT' },
      -1130,
      "Data sent for parameter 'selfTradePreventionMode' is not valid.",
    ],
    [
      { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET' },
      -1102,
      "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!",
    ],
    [
      { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '1', timeInForce: 'GTC' },
      -1114,
      'TimeInForce parameter sent when not required.',
    ],
    [
      { symbol: 'BTCUSDT', side: 'BUY', type: 'MARKET', quantity: '1', price: '1' },
      -1106,
      "Parameter 'price' sent when not required.",
    ],
  ])('refuses %j with %i', async (params, code, msg) => {
    const response = await signed('POST', '/api/v3/order', params as Record<string, string>, aliceKey)
    expect(response.status).toBe(400)
    expect(response.body).toEqual({ code, msg })
  })

  it('cancels and replaces an order, and says what each half did when one fails (cancelReplace)', async () => {
    const replace = (mode: string, cancel: Record<string, string>, order: Record<string, string>) =>
      signed(
        'POST',
        '/api/v3/order/cancelReplace',
        { cancelReplaceMode: mode, ...cancel, ...order },
        aliceKey,
      )
    const openIds = async () =>
      (await signed('GET', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, aliceKey)).body.map(
        (o: { clientOrderId: string }) => o.clientOrderId,
      )
    await signed('POST', '/api/v3/order', limit('BUY', '100', '0.01', { newClientOrderId: 'cr-1' }), aliceKey)

    const replaced = await replace(
      'STOP_ON_FAILURE',
      { cancelOrigClientOrderId: 'cr-1', cancelNewClientOrderId: 'cr-cancel' },
      limit('BUY', '101', '0.02', { newClientOrderId: 'cr-2' }),
    )
    expect(replaced.status).toBe(200)
    expect(replaced.body).toMatchObject({
      cancelResult: 'SUCCESS',
      newOrderResult: 'SUCCESS',
      cancelResponse: { origClientOrderId: 'cr-1', clientOrderId: 'cr-cancel', status: 'CANCELED' },
      newOrderResponse: {
        clientOrderId: 'cr-2',
        status: 'NEW',
        price: '101.00',
        origQty: '0.020',
        fills: [],
      },
    })
    expect(await openIds()).toEqual(['cr-2'])

    // STOP_ON_FAILURE: the cancel fails, no new order is sent.
    const unknownCancel = { cancelOrderId: '999999' }
    const stopped = await replace('STOP_ON_FAILURE', unknownCancel, limit('BUY', '99', '0.02'))
    expect(stopped).toMatchObject({
      status: 400,
      body: {
        code: -2022,
        msg: 'Order cancel-replace failed.',
        data: {
          cancelResult: 'FAILURE',
          newOrderResult: 'NOT_ATTEMPTED',
          cancelResponse: { code: -2011, msg: 'Unknown order sent.' },
          newOrderResponse: null,
        },
      },
    })
    expect(await openIds()).toEqual(['cr-2'])

    // ALLOW_FAILURE: the new order goes in all the same.
    const allowed = await replace(
      'ALLOW_FAILURE',
      unknownCancel,
      limit('BUY', '99', '0.02', { newClientOrderId: 'cr-3', newOrderRespType: 'ACK' }),
    )
    expect(allowed).toMatchObject({
      status: 409,
      body: {
        code: -2021,
        msg: 'Order cancel-replace partially failed.',
        data: {
          cancelResult: 'FAILURE',
          newOrderResult: 'SUCCESS',
          cancelResponse: { code: -2011 },
          newOrderResponse: { clientOrderId: 'cr-3' },
        },
      },
    })
    expect(await openIds()).toEqual(['cr-2', 'cr-3'])

    // The cancel succeeds and the new order is refused: the order is gone, nothing took its place.
    const tooBig = limit('BUY', '101', '1000')
    const half = await replace('STOP_ON_FAILURE', { cancelOrigClientOrderId: 'cr-3' }, tooBig)
    expect(half).toMatchObject({
      status: 409,
      body: {
        code: -2021,
        data: {
          cancelResult: 'SUCCESS',
          newOrderResult: 'FAILURE',
          cancelResponse: { origClientOrderId: 'cr-3', status: 'CANCELED' },
          newOrderResponse: { code: -2010, msg: 'Account has insufficient balance for requested action.' },
        },
      },
    })
    const both = await replace('ALLOW_FAILURE', unknownCancel, tooBig)
    expect(both).toMatchObject({
      status: 400,
      body: { code: -2022, data: { cancelResult: 'FAILURE', newOrderResult: 'FAILURE' } },
    })
    expect(await openIds()).toEqual(['cr-2'])

    // Refused whole before anything is done: a bad mode, no order to cancel, a new order off the tick.
    const cr2 = { cancelOrigClientOrderId: 'cr-2' }
    expect((await replace('SOMETIMES', cr2, limit('BUY', '99', '0.02'))).body).toEqual({
      code: -1130,
      msg: "Data sent for parameter 'cancelReplaceMode' is not valid.",
    })
    expect((await replace('STOP_ON_FAILURE', {}, limit('BUY', '99', '0.02'))).body).toEqual({
      code: -1102,
      msg: "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!",
    })
    expect((await replace('STOP_ON_FAILURE', cr2, limit('BUY', '99.001', '0.02'))).body).toEqual({
      code: -1013,
      msg: 'Filter failure: PRICE_FILTER',
    })
    expect(await openIds()).toEqual(['cr-2'])
    await signed('DELETE', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, aliceKey)
  })

  it('answers -1007 for an order the engine received but never answered: its outcome is unknown', async () => {
    const silentEngine = await startSilentServer()
    try {
      const unanswered = gatewayOver(EngineClient.remote('BTCUSDT', silentEngine.url))
      const placed = await signed('POST', '/api/v3/order', limit('BUY', '10.00', '1'), aliceKey, {
        via: unanswered,
      })
      expect(placed).toMatchObject({
        status: 503,
        body: {
          code: -1007,
          msg: 'Timeout waiting for response from backend server. Send status unknown; execution status unknown.',
        },
      })
    } finally {
      await silentEngine.close()
    }
  })

  it('refuses a duplicate client order id among open orders and a LIMIT_MAKER that would take', async () => {
    await signed('POST', '/api/v3/order', limit('SELL', '500', '0.1'), bobKey)
    const first = await signed(
      'POST',
      '/api/v3/order',
      limit('BUY', '100', '0.1', { newClientOrderId: 'dup' }),
      aliceKey,
    )
    expect(first.status).toBe(200)
    expect(
      await signed(
        'POST',
        '/api/v3/order',
        limit('BUY', '100', '0.1', { newClientOrderId: 'dup' }),
        aliceKey,
      ),
    ).toMatchObject({
      body: { code: -2010, msg: 'Duplicate order sent.' },
    })
    expect(
      await signed(
        'POST',
        '/api/v3/order',
        { symbol: 'BTCUSDT', side: 'BUY', type: 'LIMIT_MAKER', price: '500', quantity: '0.1' },
        aliceKey,
      ),
    ).toMatchObject({ body: { code: -2010, msg: 'Order would immediately match and take.' } })
    await signed('DELETE', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, bobKey)
    await signed('DELETE', '/api/v3/openOrders', { symbol: 'BTCUSDT' }, aliceKey)
  })

  it('refuses orders on a halted market with Binance\'s "Market is closed."; symbolStatus filters by it', async () => {
    const mismatch = { code: -1220, msg: "The symbol's status does not match the requested symbolStatus." }
    const prices = async (query: string) => (await publicGet(`/api/v3/ticker/price?${query}`)).body
    expect(await prices('symbol=BTCUSDT&symbolStatus=TRADING')).toEqual({
      symbol: 'BTCUSDT',
      price: expect.any(String),
    })
    expect(await prices('symbolStatus=HALT')).toEqual([])
    await engine.submit({ kind: 'halt' })
    try {
      await new Promise((r) => setTimeout(r, 2100)) // the market directory's cache
      expect(await signed('POST', '/api/v3/order', limit('BUY', '100', '0.1'), aliceKey)).toMatchObject({
        body: { code: -2010, msg: 'Market is closed.' },
      })
      expect((await publicGet('/api/v3/exchangeInfo')).body.symbols[0].status).toBe('HALT')
      // A single symbol in another status is refused; a list leaves it out.
      const refused = await publicGet('/api/v3/ticker/price?symbol=BTCUSDT&symbolStatus=TRADING')
      expect([refused.status, refused.body]).toEqual([400, mismatch])
      expect(await prices('symbolStatus=TRADING')).toEqual([])
      expect(await prices('symbolStatus=HALT')).toEqual([{ symbol: 'BTCUSDT', price: expect.any(String) }])
      expect((await publicGet('/api/v3/depth?symbol=BTCUSDT&symbolStatus=BREAK')).body).toEqual(mismatch)
      expect((await publicGet('/api/v3/depth?symbol=BTCUSDT&symbolStatus=HALT')).body).toHaveProperty('bids')
      expect((await publicGet('/api/v3/ticker?symbol=BTCUSDT&symbolStatus=TRADING')).body).toEqual(mismatch)
      expect(
        (await publicGet('/api/v3/ticker/bookTicker?symbols=["BTCUSDT"]&symbolStatus=TRADING')).body,
      ).toEqual([])
      expect((await publicGet('/api/v3/ticker/24hr?type=MINI&symbolStatus=HALT')).body).toEqual([
        expect.objectContaining({ symbol: 'BTCUSDT' }),
      ])
      expect((await publicGet('/api/v3/exchangeInfo?symbolStatus=TRADING')).body.symbols).toEqual([])
      expect((await publicGet('/api/v3/exchangeInfo?symbol=BTCUSDT&symbolStatus=HALT')).body).toEqual({
        code: -1128,
        msg: 'Combination of optional parameters invalid.',
      })
      expect((await publicGet('/api/v3/ticker/price?symbolStatus=OPEN')).body).toEqual({
        code: -1130,
        msg: "Data sent for parameter 'symbolStatus' is not valid.",
      })
    } finally {
      await engine.submit({ kind: 'resume' })
    }
  })
})

describe('rate limits', () => {
  it('counts weight per IP, answers 429 with Retry-After past the limit, then 418 for a repeat offender', async () => {
    const ip = '198.51.100.7'
    const start = Date.UTC(2030, 0, 1, 0, 0, 10)
    clock = start
    try {
      let last: Awaited<ReturnType<typeof publicGet>> | undefined
      for (let i = 0; i < 300; i++) last = await publicGet('/api/v3/exchangeInfo', ip) // 20 × 300 = 6000
      expect(last!.status).toBe(200)
      expect(last!.headers.get('X-MBX-USED-WEIGHT-1M')).toBe('6000')
      const limited = await publicGet('/api/v3/ping', ip)
      expect(limited.status).toBe(429)
      expect(limited.headers.get('Retry-After')).toBe('50')
      expect(limited.body).toEqual({
        code: -1003,
        msg: 'Too much request weight used; current limit is 6000 request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.',
      })
      expect((await publicGet('/api/v3/ping', ip)).status).toBe(429)
      const banned = await publicGet('/api/v3/ping', ip)
      expect(banned.status).toBe(418)
      expect(banned.headers.get('Retry-After')).toBe('120')
      expect(banned.body).toEqual({
        code: -1003,
        msg: `Way too much request weight used; IP banned until ${start + 120_000}. Please use WebSocket Streams for live updates to avoid bans.`,
      })
      // Another address is not affected.
      expect((await publicGet('/api/v3/ping', '198.51.100.8')).status).toBe(200)
    } finally {
      clock = 0
    }
  })
})
