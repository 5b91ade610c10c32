import { connect as netConnect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createPubSubCache, InProcessRedis, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { waitUntil } from '../../adapters/testing/wait.ts'
import { createLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { parseDecimal } from '../../lib/money.ts'
import type { DepthUpdate } from '../engine/events.ts'
import { channels, keys, klineIndexCap } from '../handler/keys.ts'
import { aggregate, klineToHash, SCALE } from '../handler/klines.ts'
import { depthPublisher } from './depth-source.ts'
import { type RunningWsServer, startWsServer, type WsServerOptions } from './server.ts'
import { connect, type TestClient } from './testing.ts'

const log = createLogger('ws-test', { level: 'silent' })
const redis = new InProcessRedis()
const publisher = createPubSubCache({ kind: 'memory', server: redis })

const trade = (id: number, price = '100.5') => ({
  e: 'trade',
  E: 1_700_000_000_000 + id,
  s: 'BTCUSDT',
  t: id,
  p: price,
  q: '0.25',
  T: 1_700_000_000_000 + id,
  m: id % 2 === 0,
  M: true,
})

const servers: RunningWsServer[] = []
const caches: PubSubCache[] = []
const clients: TestClient[] = []

async function start(options: Partial<WsServerOptions> = {}) {
  const cache = createPubSubCache({ kind: 'memory', server: redis })
  caches.push(cache)
  const running = await startWsServer({ port: 0, cache, log, registry: createRegistry(), ...options })
  servers.push(running)
  return running
}

async function client(url: string, options?: { autoPong?: boolean }) {
  const c = await connect(url, options)
  clients.push(c)
  return c
}

afterEach(() => {
  for (const c of clients.splice(0)) c.close()
})
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()))
  await Promise.all(caches.map((c) => c.close()))
})

describe('ws market streams on the in-process pub/sub', () => {
  let ws: RunningWsServer
  beforeAll(async () => {
    ws = await start()
  })

  it('serves a raw stream at /ws/<stream>: the handler’s trade payload as published, and aggTrade from it', async () => {
    const raw = await client(`${ws.url}/ws/btcusdt@trade`)
    const agg = await client(`${ws.url}/ws/btcusdt@aggTrade`)
    await waitUntil(() => ws.server.stats.feeds === 2, 'both feeds are up')
    await publisher.publish(channels.trade('BTCUSDT'), JSON.stringify(trade(7)))
    expect(await raw.next()).toEqual(trade(7))
    expect(await agg.next()).toEqual({
      e: 'aggTrade',
      E: trade(7).E,
      s: 'BTCUSDT',
      a: 7,
      p: '100.5',
      q: '0.25',
      f: 7,
      l: 7,
      T: trade(7).T,
      m: false,
      M: true,
    })
  })

  it('wraps combined streams as {stream, data}, several streams on one connection', async () => {
    const c = await client(`${ws.url}/stream?streams=btcusdt@trade/btcusdt@kline_1m`)
    await waitUntil(() => ws.server.stats.channels >= 2, 'channels subscribed')
    const kline = { e: 'kline', E: 1, s: 'BTCUSDT', k: { t: 0, T: 59_999, s: 'BTCUSDT', i: '1m', o: '1' } }
    await publisher.publish(channels.kline('BTCUSDT', '1m'), JSON.stringify(kline))
    await publisher.publish(channels.trade('BTCUSDT'), JSON.stringify(trade(8)))
    expect(await c.next()).toEqual({ stream: 'btcusdt@kline_1m', data: kline })
    expect(await c.next()).toEqual({ stream: 'btcusdt@trade', data: trade(8) })
  })

  it('sends a bucket again closed (x: true) when the next one begins, or within a second after it ends', async () => {
    const channelsBefore = ws.server.stats.channels
    const c = await client(`${ws.url}/stream?streams=ethbtc@kline_1m/bnbbtc@kline_1m`)
    await waitUntil(() => ws.server.stats.channels === channelsBefore + 2, 'both k-line channels')
    const kline = (s: string, t: number, T: number, o: string) => ({
      e: 'kline',
      E: t,
      s,
      k: { t, T, s, i: '1m', o, x: false },
    })
    const closed = (event: ReturnType<typeof kline>) => ({
      ...event,
      E: expect.any(Number),
      k: { ...event.k, x: true },
    })
    const now = Date.now()
    const first = kline('ETHBTC', now - 55_000, now + 4_999, '1')
    const second = kline('ETHBTC', now + 5_000, now + 64_999, '2')
    await publisher.publish(channels.kline('ETHBTC', '1m'), JSON.stringify(first))
    expect(await c.next()).toEqual({ stream: 'ethbtc@kline_1m', data: first })
    await publisher.publish(channels.kline('ETHBTC', '1m'), JSON.stringify(second))
    expect(await c.next()).toEqual({ stream: 'ethbtc@kline_1m', data: closed(first) })
    expect(await c.next()).toEqual({ stream: 'ethbtc@kline_1m', data: second })
    // No next bucket: the clock closes it.
    const ending = kline('BNBBTC', now - 59_000, Date.now() + 300, '3')
    await publisher.publish(channels.kline('BNBBTC', '1m'), JSON.stringify(ending))
    expect(await c.next()).toEqual({ stream: 'bnbbtc@kline_1m', data: ending })
    expect(await c.next(undefined, 3_000)).toEqual({ stream: 'bnbbtc@kline_1m', data: closed(ending) })
  })

  it('sends the UTC+8 k-lines of kline_<interval>@+08:00, merged from the UTC k-lines that tile them', async () => {
    // Two 8h k-lines of the day that began at midnight in UTC+8, 16:00 UTC, as the handler stores them.
    const dayOpen = Date.parse('2024-05-04T16:00:00Z')
    const units = (v: string) => parseDecimal(v, SCALE)
    const trades = [
      [1, '100', dayOpen + 1_000],
      [2, '90', dayOpen + 9 * 3_600_000],
      [3, '95', dayOpen + 10 * 3_600_000],
    ].map(([id, price, time]) => ({
      symbol: 'BTCUSDT',
      id: BigInt(id!),
      price: units(String(price)),
      qty: units('1'),
      quoteQty: units(String(price)),
      time: Number(time),
      buyerIsMaker: false,
    }))
    for (const [openTime, k] of aggregate(trades, '8h')) {
      await publisher.hashSet(keys.kline('BTCUSDT', '8h', openTime), klineToHash(k))
      await publisher.pushCapped(keys.klineIndex('BTCUSDT', '8h'), String(openTime), klineIndexCap('8h'))
    }
    // A `+` as written in the query, and one percent-encoded in a raw stream's path.
    const combined = await client(`${ws.url}/stream?streams=btcusdt@kline_1d@+08:00/btcusdt@kline_1h@+08:00`)
    const raw = await client(`${ws.url}/ws/btcusdt@kline_1d@%2B08:00`)
    await waitUntil(() => ws.server.stats.channels >= 2, 'the 8h and 1h channels subscribed')
    const hour = { e: 'kline', E: 1, s: 'BTCUSDT', k: { t: 0, T: 3_599_999, s: 'BTCUSDT', i: '1h', o: '1' } }
    await publisher.publish(channels.kline('BTCUSDT', '1h'), JSON.stringify(hour))
    await publisher.publish(channels.kline('BTCUSDT', '8h'), JSON.stringify({ e: 'kline' }))
    // An hour of UTC+8 is an hour of UTC: the UTC k-line as it is.
    expect(await combined.next((m: { stream: string }) => m.stream.includes('1h'))).toEqual({
      stream: 'btcusdt@kline_1h@+08:00',
      data: hour,
    })
    const day = { t: dayOpen, T: dayOpen + 86_399_999, i: '1d', o: '100', c: '95', h: '100', l: '90', n: 3 }
    expect(await combined.next((m: { stream: string }) => m.stream.includes('1d'))).toMatchObject({
      stream: 'btcusdt@kline_1d@+08:00',
      data: { e: 'kline', s: 'BTCUSDT', k: { ...day, s: 'BTCUSDT', f: 1, L: 3, v: '3', q: '285', x: true } },
    })
    expect(await raw.next()).toMatchObject({ e: 'kline', k: day })
  })

  it('answers SUBSCRIBE, UNSUBSCRIBE, LIST_SUBSCRIPTIONS and the properties as Binance does', async () => {
    const c = await client(`${ws.url}/ws`)
    c.send({ method: 'SUBSCRIBE', params: ['btcusdt@ticker', 'btcusdt@miniTicker'], id: 1 })
    expect(await c.next()).toEqual({ result: null, id: 1 })
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 'abc' })
    expect(await c.next()).toEqual({ result: ['btcusdt@ticker', 'btcusdt@miniTicker'], id: 'abc' })

    const ticker = {
      e: '24hrTicker',
      E: 5,
      s: 'BTCUSDT',
      p: '1',
      P: '1',
      w: '100',
      c: '101',
      Q: '1',
      o: '100',
      h: '102',
      l: '99',
      v: '10',
      q: '1000',
      O: 0,
      C: 1,
      F: 1,
      L: 9,
      n: 9,
    }
    await publisher.publish(channels.ticker('BTCUSDT'), JSON.stringify(ticker))
    const got = [await c.next(), await c.next()]
    expect(got).toContainEqual(ticker)
    expect(got).toContainEqual({
      e: '24hrMiniTicker',
      E: 5,
      s: 'BTCUSDT',
      c: '101',
      o: '100',
      h: '102',
      l: '99',
      v: '10',
      q: '1000',
    })

    c.send({ method: 'UNSUBSCRIBE', params: ['btcusdt@ticker'], id: 2 })
    expect(await c.next()).toEqual({ result: null, id: 2 })
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 3 })
    expect(await c.next()).toEqual({ result: ['btcusdt@miniTicker'], id: 3 })

    await sleep(1000) // the 5-a-second limit
    c.send({ method: 'GET_PROPERTY', params: ['combined'], id: 4 })
    expect(await c.next()).toEqual({ result: false, id: 4 })
    c.send({ method: 'SET_PROPERTY', params: ['combined', true], id: 5 })
    expect(await c.next()).toEqual({ result: null, id: 5 })
    await publisher.publish(channels.ticker('BTCUSDT'), JSON.stringify(ticker))
    expect(await c.next()).toMatchObject({ stream: 'btcusdt@miniTicker', data: { e: '24hrMiniTicker' } })
  })

  it('answers bad requests with Binance’s error codes and keeps the connection', async () => {
    const c = await client(`${ws.url}/ws`)
    const ask = async (request: unknown) => {
      c.send(request)
      return c.next()
    }
    expect(await ask({ method: 'SUBSCRIBE', params: ['btcusdt@nope'], id: 1 })).toEqual({
      error: { code: 2, msg: 'Invalid request: invalid stream' },
      id: 1,
    })
    expect(await ask({ method: 'SUBSCRIBE', params: ['BTCUSDT@trade'], id: 2 })).toMatchObject({
      error: { code: 2 },
    })
    expect(await ask('{not json')).toEqual({
      error: { code: 3, msg: 'Invalid JSON: expected value at line 1 column 1' },
      id: null,
    })
    expect(await ask({ method: 'SUBSCRIB', id: 3 })).toMatchObject({
      error: { code: 2, msg: expect.stringContaining('unknown variant `SUBSCRIB`') },
    })
    await sleep(1000) // the 5-a-second limit
    expect(await ask({ params: [], id: 4 })).toMatchObject({
      error: { code: 2, msg: 'Invalid request: missing field `method`' },
    })
    expect(await ask({ method: 'LIST_SUBSCRIPTIONS', id: { x: 1 } })).toEqual({
      error: { code: 2, msg: 'Invalid request: request ID must be an unsigned integer' },
      id: null,
    })
    expect(await ask({ method: 'GET_PROPERTY', params: ['colour'], id: 5 })).toEqual({
      error: { code: 0, msg: 'Unknown property' },
      id: 5,
    })
    expect(await ask({ method: 'SET_PROPERTY', params: ['combined', 'yes'], id: 6 })).toEqual({
      error: { code: 1, msg: 'Invalid value type: expected Boolean' },
      id: 6,
    })
    c.send({ method: 'LIST_SUBSCRIPTIONS', id: 7 })
    expect(await c.next()).toEqual({ result: [], id: 7 })
  })

  it('refuses an unknown stream in the URL with 400 and an unknown path with 404', async () => {
    await expect(connect(`${ws.url}/ws/btcusdt@bogus`)).rejects.toThrow('HTTP 400')
    await expect(connect(`${ws.url}/stream?streams=btcusdt@trade/x`)).rejects.toThrow('HTTP 400')
    await expect(connect(`${ws.url}/elsewhere`)).rejects.toThrow('HTTP 404')
    const res = await fetch(`${ws.url.replace('ws:', 'http:')}/healthz`)
    expect(res.status).toBe(200)
  })

  it('holds one pub/sub subscription per channel on a replica, however many streams and clients share it', async () => {
    const fresh = await start()
    const cs = await Promise.all([
      client(`${fresh.url}/ws/ethusdt@trade`),
      client(`${fresh.url}/ws/ethusdt@aggTrade`),
      client(`${fresh.url}/stream?streams=ethusdt@trade/ethusdt@depth/ethusdt@bookTicker/ethusdt@depth5`),
    ])
    await waitUntil(() => fresh.server.stats.feeds === 5, 'the feeds are up')
    expect(fresh.server.stats.channels).toBe(2) // trade, depth
    for (const c of cs) c.close()
    await waitUntil(() => fresh.server.stats.channels === 0, 'the channels are let go')
    expect(fresh.server.stats.feeds).toBe(0)
  })

  it('sends everything published in one turn, in order, batched into one write per connection', async () => {
    const c = await client(`${ws.url}/ws/btcusdt@trade`)
    await waitUntil(() => ws.server.stats.feeds >= 1, 'feed up')
    for (let i = 100; i < 600; i++)
      void publisher.publish(channels.trade('BTCUSDT'), JSON.stringify(trade(i)))
    await waitUntil(() => c.messages.length >= 500, '500 trades arrived')
    expect(c.messages.map((m) => (m as { t: number }).t)).toEqual(
      Array.from({ length: 500 }, (_, i) => 100 + i),
    )
  })

  it('cuts a connection that sends more than 5 messages a second', async () => {
    const c = await client(`${ws.url}/ws`)
    for (let i = 0; i < 8; i++) c.send({ method: 'LIST_SUBSCRIPTIONS', id: i })
    expect(await c.closed).toBe(1008)
  })

  it('pings, and cuts a client that does not answer with a pong', async () => {
    const fast = await start({ pingIntervalMs: 50, pongTimeoutMs: 200 })
    const polite = await client(`${fast.url}/ws`)
    const silent = await client(`${fast.url}/ws`, { autoPong: false })
    let pings = 0
    polite.ws.on('ping', () => pings++)
    expect(await silent.closed).toBe(1006)
    expect(pings).toBeGreaterThan(2)
    expect(polite.ws.readyState).toBe(polite.ws.OPEN)
  })

  it('sends serverShutdown before closing on shutdown', async () => {
    const doomed = await start()
    const raw = await client(`${doomed.url}/ws`)
    const combined = await client(`${doomed.url}/stream?streams=btcusdt@trade`)
    await doomed.close()
    expect(await raw.next()).toMatchObject({ e: 'serverShutdown', E: expect.any(Number) })
    expect(await combined.next()).toMatchObject({ stream: '!serverShutdown', data: { e: 'serverShutdown' } })
    expect(await raw.closed).toBe(1001)
  })
})

describe('depth, partial depth and bookTicker from the engine’s depth updates', () => {
  let ws: RunningWsServer
  const publish = depthPublisher(publisher, log)
  const update = (
    first: number,
    last: number,
    bids: [string, string][],
    asks: [string, string][],
    top: DepthUpdate['top'],
  ): DepthUpdate => ({
    market: 'BNBBTC',
    firstSeq: String(first),
    lastSeq: String(last),
    time: 1,
    bids,
    asks,
    top,
  })

  beforeAll(async () => {
    ws = await start()
  })

  it('merges the batches of each window, sends nothing for a window without level changes, never merges over a gap', async () => {
    const c = await client(`${ws.url}/ws/bnbbtc@depth@100ms`)
    await waitUntil(() => ws.server.stats.channels === 1, 'subscribed')
    const top = { bids: [['1.0', '5']], asks: [['1.1', '2']] } as DepthUpdate['top']
    publish(update(11, 12, [['1.0', '5']], [], top))
    publish(update(13, 13, [], [['1.1', '2']], top))
    publish(update(14, 15, [['1.0', '4']], [], top))
    const first = await c.next<Record<string, unknown>>()
    expect(first).toMatchObject({
      e: 'depthUpdate',
      s: 'BNBBTC',
      U: 11,
      u: 15,
      b: [['1.0', '4']],
      a: [['1.1', '2']],
    })
    publish(update(16, 16, [], [], top)) // a halt: seqs, no levels
    await sleep(250)
    publish(update(17, 17, [['0.9', '1']], [], top))
    expect(await c.next()).toMatchObject({ U: 16, u: 17, b: [['0.9', '1']], a: [] })
    // 18 is lost: 17's window gets sent on its own, 19 starts a new range.
    publish(update(19, 19, [['0.8', '1']], [], top))
    publish(update(20, 20, [['0.8', '0']], [], top))
    expect(await c.next()).toMatchObject({ U: 19, u: 20, b: [['0.8', '0']] })
  })

  it('sends the top levels every interval and the best bid and ask when they change', async () => {
    const top = {
      bids: Array.from({ length: 20 }, (_, i): [string, string] => [(10 - i * 0.1).toFixed(1), '1']),
      asks: Array.from({ length: 20 }, (_, i): [string, string] => [(11 + i * 0.1).toFixed(1), '2']),
    }
    publish(update(30, 31, [], [], top)) // before anyone listens: kept under the book key
    await sleep(20)
    const c = await client(`${ws.url}/stream?streams=bnbbtc@depth5@100ms/bnbbtc@bookTicker`)
    const partial = await c.next<{ stream: string; data: unknown }>((m) => m.stream === 'bnbbtc@depth5@100ms')
    expect(partial.data).toEqual({ lastUpdateId: 31, bids: top.bids.slice(0, 5), asks: top.asks.slice(0, 5) })
    publish(
      update(32, 32, [['10.0', '3']], [], { bids: [['10.0', '3'], ...top.bids.slice(1)], asks: top.asks }),
    )
    const book = await c.next<{ stream: string; data: unknown }>((m) => m.stream === 'bnbbtc@bookTicker')
    expect(book.data).toEqual({ u: 32, s: 'BNBBTC', b: '10.0', B: '3', a: '11.0', A: '2' })
    publish(
      update(33, 33, [], [['20', '1']], { bids: [['10.0', '3'], ...top.bids.slice(1)], asks: top.asks }),
    )
    const later = await c.next<{ stream: string; data: { lastUpdateId: number } }>(
      (m) => m.stream === 'bnbbtc@depth5@100ms' && m.data.lastUpdateId === 33,
    )
    expect(later.data.lastUpdateId).toBe(33)
    // The best did not change with 33: no bookTicker for it.
    expect(c.messages.filter((m) => (m as { stream: string }).stream === 'bnbbtc@bookTicker')).toHaveLength(1)
  })
})

describe('the seeds’ Linkora socket', () => {
  it('sends candles of a Linkora timeframe and the order book at /ws?symbol=…&type=…', async () => {
    const ws = await start()
    const candles = await client(`${ws.url}/ws?symbol=BTCUSDT&timeframe=5&type=candles`)
    const book = await client(`${ws.url}/ws?symbol=BTCUSDT&type=orderbook`)
    await waitUntil(() => ws.server.stats.channels === 2, 'subscribed')
    const k = { t: 0, T: 299_999, s: 'BTCUSDT', i: '5m', o: '1', h: '3', l: '1', c: '2', v: '7', x: false }
    await publisher.publish(
      channels.kline('BTCUSDT', '5m'),
      JSON.stringify({ e: 'kline', E: 1, s: 'BTCUSDT', k }),
    )
    expect(await candles.next()).toEqual({
      type: 'candle',
      symbol: 'BTCUSDT',
      timeframe: '5m',
      timestamp: 0,
      open: '1',
      high: '3',
      low: '1',
      close: '2',
      volume: '7',
      closed: false,
    })
    // Its 5 minutes are long over: the same candle once more, closed.
    expect(await candles.next(undefined, 3_000)).toMatchObject({ type: 'candle', timestamp: 0, closed: true })
    depthPublisher(
      publisher,
      log,
    )({
      market: 'BTCUSDT',
      firstSeq: '1',
      lastSeq: '2',
      time: 9,
      bids: [['1', '1']],
      asks: [],
      top: { bids: [['1', '1']], asks: [['2', '1']] },
    })
    expect(await book.next()).toEqual({
      type: 'orderbook',
      symbol: 'BTCUSDT',
      timestamp: 9,
      last_update_id: 2,
      bids: [['1', '1']],
      asks: [['2', '1']],
    })
    await expect(connect(`${ws.url}/ws?symbol=BTCUSDT&type=candles&timeframe=7`)).rejects.toThrow('HTTP 400')
  })
})

describe('slow consumers', () => {
  it('cuts a client that does not read at the buffer bound, and its buffer never grows past it', async () => {
    const limit = 256 * 1024
    const ws = await start({ maxBufferBytes: limit })
    // A client that does the handshake and then never reads.
    const socket = netConnect(ws.port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    socket.write(
      'GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    )
    await waitUntil(() => ws.server.stats.feeds === 1, 'subscribed')
    socket.pause()
    const reader = await client(`${ws.url}/ws/btcusdt@trade`)
    const pad = 'x'.repeat(1000)
    const heapBefore = process.memoryUsage().heapUsed
    let maxBuffered = 0
    let sent = 0
    while (ws.server.stats.connections === 2 && sent < 200_000) {
      for (let i = 0; i < 20; i++, sent++)
        void publisher.publish(channels.trade('BTCUSDT'), JSON.stringify({ ...trade(sent), pad }))
      await sleep(1)
      maxBuffered = Math.max(maxBuffered, ws.server.stats.maxBufferedBytes)
    }
    expect(ws.server.stats.connections).toBe(1)
    expect(reader.ws.readyState).toBe(reader.ws.OPEN)
    expect(maxBuffered).toBeLessThanOrEqual(limit)
    // The reader kept up and got everything.
    await waitUntil(() => reader.messages.length === sent, 'the reader got every trade', 20_000)
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 * 1024 * 1024)
    const metrics = await (await fetch(`${ws.url.replace('ws:', 'http:')}/metrics`)).text()
    expect(metrics).toContain('bourse_ws_disconnects_total{reason="slow_consumer"} 1')
    socket.destroy()
  }, 60_000)
})
