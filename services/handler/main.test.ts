/**
 * `bourse handler` as a child process against the test nsqd and Redis Cluster, as the operator runs it: trades
 * published on NSQ's `trades` topic become k-lines, a ticker and recent trades in Redis (a redelivered trade
 * counted once), /readyz passes once subscribed, /metrics counts the trades, SIGTERM stops it with exit 0.
 * `bourse handler --user-events` the same way: engine events on NSQ become the user's executionReport and
 * outboundAccountPosition on their Redis channel. A missing setting exits 2 naming it.
 *
 * No ClickHouse server runs on these machines, so the market-data process is started through the same
 * `serveHandler` as `bourse handler` with chDB in place of `openClickhouseFromEnv` (the only difference).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Bus, createBus } from '../../adapters/bus/index.ts'
import { createPubSubCache, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { runNode as run, waitFor } from '../../adapters/testing/child.ts'
import { nsqdHttpUrl, nsqdTcpAddress, redisClusterNodes, uniqueName } from '../../adapters/testing/servers.ts'
import { freePort } from '../../lib/net.ts'
import type { BalanceEvent, OrderEvent, TradeEvent } from '../engine/events.ts'
import { userChannel } from '../ws/user-stream.ts'
import { klines, recentTrades, ticker24h } from './queries.ts'

const CHDB_LAUNCHER = `
import { openAnalytics } from './adapters/analytics/analytics.ts'
import { fromEnv } from './lib/config.ts'
import { HandlerEnv, serveHandler } from './services/handler/main.ts'
await serveHandler({
  mode: 'market-data',
  config: fromEnv(HandlerEnv, { component: 'handler' }),
  analytics: openAnalytics({ kind: 'chdb' }),
})
`

async function serverEnv(): Promise<{ env: Record<string, string>; base: string }> {
  const port = await freePort()
  return {
    base: `http://127.0.0.1:${port}`,
    env: {
      BOURSE_NSQ: JSON.stringify({ nsqd: nsqdTcpAddress(), nsqdHttp: nsqdHttpUrl() }),
      BOURSE_REDIS_NODES: redisClusterNodes().join(','),
      BOURSE_HANDLER_PORT: String(port),
    },
  }
}

let bus: Bus
let cache: PubSubCache

beforeAll(() => {
  bus = createBus({ kind: 'nsq', nsqdTcp: nsqdTcpAddress(), nsqdHttp: nsqdHttpUrl() })
  cache = createPubSubCache({ kind: 'redis', nodes: redisClusterNodes() })
})

afterAll(async () => {
  await bus?.close()
  await cache?.close()
})

function trade(symbol: string, id: number, price: string, quantity: string, time: number): TradeEvent {
  return {
    topic: 'trades',
    market: symbol,
    seq: String(id),
    tradeId: String(id),
    price,
    quantity,
    quoteQuantity: String(Number(price) * Number(quantity)),
    buyerOrderId: `b${id}`,
    sellerOrderId: `s${id}`,
    buyerUserId: '1',
    sellerUserId: '2',
    buyerIsMaker: false,
    time,
  }
}

describe('bourse handler', () => {
  it('turns trades from NSQ into k-lines, a ticker and recent trades in Redis, and stops on SIGTERM', async () => {
    const symbol = uniqueName('HM').toUpperCase()
    const { env, base } = await serverEnv()
    const p = run(['--input-type=module', '-e', CHDB_LAUNCHER], env)
    try {
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, 'ready', p.output)
      const minute = Math.floor(Date.now() / 60_000) * 60_000
      const t1 = trade(symbol, 1, '100', '1', minute + 1)
      const t2 = trade(symbol, 2, '110', '2', minute + 2)
      const t3 = trade(symbol, 3, '90', '1', minute + 3)
      // Trade 2 is delivered twice and arrives last.
      await bus.publishMany('trades', [t1, t3, t2, t2])
      await waitFor(
        async () => (await klines(cache, symbol, '1m'))[0]?.[8] === 3,
        'the 1m k-line counts three trades',
        p.output,
      )
      expect(await klines(cache, symbol, '1h')).toEqual([
        [
          Math.floor(minute / 3_600_000) * 3_600_000,
          '100',
          '110',
          '90',
          '90',
          '4',
          Math.floor(minute / 3_600_000) * 3_600_000 + 3_599_999,
          '410',
          3,
          '4',
          '410',
          '0',
        ],
      ])
      expect(await ticker24h(cache, symbol)).toMatchObject({ lastPrice: '90', volume: '4', count: 3 })
      expect((await recentTrades(cache, symbol)).map((t) => t.id)).toEqual([3, 2, 1]) // newest first
      const metrics = await (await fetch(`${base}/metrics`)).text()
      expect(metrics).toMatch(/md_trades_total\{result="counted"\} [3-9]/)
      expect((await fetch(`${base}/healthz`)).status).toBe(200)

      p.child.kill('SIGTERM')
      expect(await p.exited).toBe(0)
      expect(p.output()).toContain('handler running')
      expect(p.output()).toContain('market-data handler stopped')
    } finally {
      p.child.kill('SIGKILL')
    }
  }, 60_000)

  it('--user-events: publishes executionReport and outboundAccountPosition on the user channel', async () => {
    const market = uniqueName('UE').toUpperCase()
    const userId = String(900_000_000 + Math.floor(Math.random() * 1_000_000))
    const received: Record<string, unknown>[] = []
    const unsubscribe = await cache.subscribe(userChannel(userId), (message) =>
      received.push(JSON.parse(message) as Record<string, unknown>),
    )
    const { env, base } = await serverEnv()
    const p = run(['cli/bourse.ts', 'handler', '--user-events'], env)
    try {
      await waitFor(async () => (await fetch(`${base}/readyz`)).status === 200, 'ready', p.output)
      const now = Date.now()
      const order: OrderEvent = {
        topic: 'orders',
        market,
        seq: '1',
        order: {
          symbol: market,
          orderId: '7',
          clientOrderId: 'mine-7',
          userId,
          side: 'BUY',
          type: 'LIMIT',
          timeInForce: 'GTC',
          selfTradePreventionMode: 'NONE',
          price: '100',
          origQty: '1',
          origQuoteOrderQty: '0',
          executedQty: '0',
          cummulativeQuoteQty: '0',
          status: 'NEW',
          time: now,
          updateTime: now,
        },
      }
      const balance: BalanceEvent = {
        topic: 'balances',
        market,
        seq: '2',
        userId,
        asset: 'USDT',
        available: '900',
        frozen: '100',
        time: now,
      }
      await bus.publish('balances', balance)
      await bus.publish('orders', order)
      await waitFor(async () => received.length >= 2, 'two user events', p.output)
      expect(received[0]).toMatchObject({
        e: 'executionReport',
        s: market,
        c: 'mine-7',
        x: 'NEW',
        X: 'NEW',
        i: 7,
      })
      expect(received[1]).toMatchObject({
        e: 'outboundAccountPosition',
        B: [{ a: 'USDT', f: '900', l: '100' }],
      })

      p.child.kill('SIGTERM')
      expect(await p.exited).toBe(0)
    } finally {
      p.child.kill('SIGKILL')
      await unsubscribe()
    }
  }, 60_000)

  it('exits 2 naming a missing setting; only the market-data mode asks for ClickHouse', async () => {
    const { env } = await serverEnv()
    const marketData = run(['cli/bourse.ts', 'handler'], env)
    expect(await marketData.exited).toBe(2)
    expect(marketData.output()).toContain('BOURSE_CLICKHOUSE_URL: missing')
    const userEvents = run(['cli/bourse.ts', 'handler', '--user-events'], {
      ...env,
      BOURSE_NSQ: '{"nsqd": "nsqd"}',
    })
    expect(await userEvents.exited).toBe(2)
    expect(userEvents.output()).toContain('BOURSE_NSQ: nsqd: expected host:port')
    expect(userEvents.output()).not.toContain('BOURSE_CLICKHOUSE_URL')
  })
})
