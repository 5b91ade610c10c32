/**
 * Signed orders placed per second through the gateway over HTTP (HMAC-signed `POST /api/v3/order`, LIMIT,
 * mostly resting), its in-process engine and the real Postgres commit, against hono's hello-world served the
 * same way on the same machine and driven by the same keep-alive client loop.
 */
import { createHmac } from 'node:crypto'
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import { createPubSubCache, InProcessRedis } from '../adapters/pubsub/index.ts'
import { createLogger } from '../lib/log.ts'
import { createRegistry, startHttpServer } from '../lib/metrics.ts'
import { freePort } from '../lib/net.ts'
import { marketFixture } from '../services/engine/testing.ts'
import { createApiKey } from '../services/gateway/api-keys.ts'
import { createGatewayApp } from '../services/gateway/app.ts'
import { EngineClient } from '../services/gateway/engine-client.ts'
import { report, seededRandom } from './report.ts'

const TRADERS = 50
const ORDERS = 20_000
const WARMUP = 2_000
const HELLO_REQUESTS = 40_000
const CONCURRENCY = 64
const encryptionKey = Buffer.alloc(32, 7)

interface Trader {
  apiKey: string
  secretKey: string
}

/** Closed loop: CONCURRENCY keep-alive clients until `count` requests are answered; requests/s and failures. */
async function drive(
  count: number,
  request: (i: number) => Promise<Response>,
): Promise<{ rate: number; failed: number; firstFailure?: string }> {
  let next = 0
  let failed = 0
  let firstFailure: string | undefined
  const started = performance.now()
  const client = async () => {
    while (next < count) {
      const response = await request(next++)
      const body = await response.text()
      if (!response.ok) {
        failed++
        firstFailure ??= `${response.status} ${body}`
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, client))
  return { rate: count / ((performance.now() - started) / 1000), failed, firstFailure }
}

/** Limit orders around 100.00: most rest, about one in five crosses and trades. */
function orderParams(seed: number): () => Record<string, string> {
  const next = seededRandom(seed)
  return () => {
    const side = next() < 0.5 ? 'BUY' : 'SELL'
    const crossing = next() < 0.2
    const offset = Math.floor(next() * 200) + 1
    const cents =
      side === 'BUY' ? 10_000 + (crossing ? offset : -offset) : 10_000 + (crossing ? -offset : offset)
    return {
      symbol: 'BTCUSDT',
      side,
      type: 'LIMIT',
      timeInForce: 'GTC',
      price: (cents / 100).toFixed(2),
      quantity: ((Math.floor(next() * 50) + 11) / 1000).toFixed(3),
    }
  }
}

async function helloWorldRate(): Promise<number> {
  const app = new Hono()
  app.get('/', (c) => c.text('Hello Hono!'))
  const server = await startHttpServer({
    port: await freePort(),
    registry: createRegistry({ defaultMetrics: false }),
    app: getRequestListener(app.fetch),
  })
  try {
    await drive(WARMUP, () => fetch(`${server.url}/`))
    const { rate, failed } = await drive(HELLO_REQUESTS, () => fetch(`${server.url}/`))
    if (failed > 0) throw new Error(`hello-world: ${failed} requests failed`)
    return rate
  } finally {
    await server.close()
  }
}

async function gatewayRate(): Promise<{ rate: number; failed: number; firstFailure?: string }> {
  const fx = await marketFixture('postgres', 16)
  try {
    const engine = await fx.engine({ batchMaxCommands: 2000, batchWindowMs: 2 })
    const traders: Trader[] = []
    for (let i = 0; i < TRADERS; i++) {
      const userId = await fx.trader(`bench${i}`, { BTC: '1000000', USDT: '1000000000' })
      const key = await createApiKey(fx.database.db, encryptionKey, { userId, kind: 'HMAC', canTrade: true })
      traders.push({ apiKey: key.apiKey, secretKey: key.secretKey! })
    }
    const app = createGatewayApp({
      db: fx.database.db,
      engines: new Map([['BTCUSDT', EngineClient.inProcess(engine)]]),
      cache: createPubSubCache({ kind: 'memory', server: new InProcessRedis() }),
      config: {
        keyEncryptionKey: encryptionKey,
        // High enough never to throttle: the bench measures placement, not the limiter's 429s.
        weightPerMinute: 1_000_000_000,
        rejectionsBeforeBan: 1_000_000_000,
        trustProxy: false,
      },
      log: createLogger('bench', { level: 'silent' }),
    })
    const server = await startHttpServer({
      port: await freePort(),
      registry: createRegistry({ defaultMetrics: false }),
      app: getRequestListener(app.fetch),
    })
    try {
      const place = (params: () => Record<string, string>) => (i: number) => {
        const trader = traders[i % traders.length]!
        const payload = new URLSearchParams({ ...params(), timestamp: String(Date.now()) }).toString()
        const signature = createHmac('sha256', trader.secretKey).update(payload).digest('hex')
        return fetch(`${server.url}/api/v3/order`, {
          method: 'POST',
          headers: { 'X-MBX-APIKEY': trader.apiKey, 'content-type': 'application/x-www-form-urlencoded' },
          body: `${payload}&signature=${signature}`,
        })
      }
      const warm = await drive(WARMUP, place(orderParams(1)))
      if (warm.failed > 0) throw new Error(`warm-up: ${warm.failed} orders failed, e.g. ${warm.firstFailure}`)
      return await drive(ORDERS, place(orderParams(2)))
    } finally {
      await server.close()
      await engine.stop()
    }
  } finally {
    await fx.close()
  }
}

async function main(): Promise<void> {
  const baseline = await helloWorldRate()
  const orders = await gatewayRate()
  if (orders.failed > ORDERS / 100)
    throw new Error(`${orders.failed} of ${ORDERS} orders failed, e.g. ${orders.firstFailure}`)
  console.log(`gateway: ${Math.round(orders.rate)} orders/s; hono hello-world: ${Math.round(baseline)} req/s`)
  report({
    bench: 'gateway-order',
    value: Math.round(orders.rate),
    unit: 'signed orders placed/s',
    baseline: Math.round(baseline),
    baselineUnit: "requests/s of hono's hello-world",
    orders: ORDERS,
    failed: orders.failed,
    concurrency: CONCURRENCY,
    traders: TRADERS,
    targetRatio: 0.3,
  })
}

await main()
