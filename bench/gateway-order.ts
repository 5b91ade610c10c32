/**
 * Signed orders placed per second through the gateway over HTTP (HMAC-signed `POST /api/v3/order`, LIMIT,
 * mostly resting), its in-process engine and the real Postgres commit, against hono's hello-world served the
 * same way on the same machine and driven by the same keep-alive client loop at the same concurrency.
 *
 * The clients live in a worker thread (they sign, send and read the answers there), so the server side has its
 * own event loop as it would with clients elsewhere: sharing one loop, every Postgres round trip of the engine's
 * commit waited behind the clients' own work. They speak node:http over keep-alive connections: with fetch the
 * client's own work was the hello-world's limit (half the rate), which flattered the ratio. The two sides alternate (hello-world, gateway, hello-world, …)
 * and each reports its median round, so a machine that gets busier or quieter during the run moves both.
 *
 * The load: 256 concurrent clients (BENCH_CONCURRENCY changes it), on both sides. The engine commits what
 * arrived during its previous commit as one batch, and a commit costs nearly as much for a few orders as for
 * dozens, so the order rate depends on how many clients wait while the hello-world rate (CPU-bound) does not:
 * with 64 clients the engine commits batches of about 30 and the rate is about half. The result also gives the
 * orders' p50/p99 latency at that load and the engine's mean batch and commit time, to read the rate by, and
 * the CPU time each side's request costs, by thread (MainThread: the server, the gateway with its engine;
 * WorkerThread: the clients; V8Worker: garbage collection) and Postgres: on a machine with few cores the
 * ratio is bounded by the CPU an order costs all of them together against what a hello-world request costs.
 */
import { createHmac } from 'node:crypto'
import { Agent, request as httpRequest } from 'node:http'
import { isMainThread, parentPort, Worker } from 'node:worker_threads'
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import { createPubSubCache, InProcessRedis } from '../adapters/pubsub/index.ts'
import { createLogger } from '../lib/log.ts'
import { createRegistry, metricsRegistry, startHttpServer } from '../lib/metrics.ts'
import { freePort } from '../lib/net.ts'
import { marketFixture } from '../services/engine/testing.ts'
import { createApiKey } from '../services/gateway/api-keys.ts'
import { createGatewayApp } from '../services/gateway/app.ts'
import { EngineClient } from '../services/gateway/engine-client.ts'
import { cpuMicros, cpuPerOperation, median, report, round, seededRandom } from './report.ts'

const TRADERS = 50
const ROUNDS = 5
const ORDERS = 6_000
const HELLO_REQUESTS = 20_000
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 256)
const encryptionKey = Buffer.alloc(32, 7)

interface Trader {
  apiKey: string
  secretKey: string
}

/** What the clients are asked to do: GET the hello-world, or place signed orders drawn from `seed`. */
type Job =
  | { kind: 'hello'; url: string; count: number }
  | { kind: 'orders'; url: string; count: number; traders: Trader[]; seed: number }

interface Drive {
  rate: number
  failed: number
  firstFailure?: string
  /** Milliseconds from sending a request to reading its whole answer, one per request. */
  latencies: number[]
}

// ---- the clients (worker thread) ----

interface Answer {
  status: number
  body: string
}

/** One request over a keep-alive connection of `agent` (node:http: far less client work per request than fetch). */
function send(
  agent: Agent,
  url: URL,
  method: string,
  headers: Record<string, string>,
  body = '',
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname, method, headers, agent },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (chunk: Buffer) => chunks.push(chunk))
        res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks).toString() }))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** Closed loop: CONCURRENCY keep-alive clients until `count` requests are answered. */
async function drive(count: number, request: (i: number) => Promise<Answer>): Promise<Drive> {
  let next = 0
  let failed = 0
  let firstFailure: string | undefined
  const latencies: number[] = []
  const started = performance.now()
  const client = async () => {
    while (next < count) {
      const sent = performance.now()
      const answer = await request(next++)
      latencies.push(performance.now() - sent)
      if (answer.status !== 200) {
        failed++
        firstFailure ??= `${answer.status} ${answer.body}`
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, client))
  return { rate: count / ((performance.now() - started) / 1000), failed, firstFailure, latencies }
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

const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })

function run(job: Job): Promise<Drive> {
  const url = new URL(job.url)
  if (job.kind === 'hello') return drive(job.count, () => send(agent, url, 'GET', {}))
  const params = orderParams(job.seed)
  return drive(job.count, (i) => {
    const trader = job.traders[i % job.traders.length]!
    const payload = new URLSearchParams({ ...params(), timestamp: String(Date.now()) }).toString()
    const signature = createHmac('sha256', trader.secretKey).update(payload).digest('hex')
    const body = `${payload}&signature=${signature}`
    return send(
      agent,
      url,
      'POST',
      {
        'X-MBX-APIKEY': trader.apiKey,
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    )
  })
}

function clientsWorker(): void {
  parentPort!.on('message', (job: Job) => {
    run(job).then(
      (result) => parentPort!.postMessage({ result }),
      (err: unknown) => parentPort!.postMessage({ error: String(err) }),
    )
  })
}

// ---- the servers (main thread) ----

class Clients {
  readonly #worker = new Worker(new URL(import.meta.url))

  /** Runs the job in the worker; throws when more than 1% of its requests failed. */
  run(name: string, job: Job): Promise<Drive> {
    return new Promise((resolve, reject) => {
      this.#worker.once('message', (m: { result?: Drive; error?: string }) => {
        if (m.error !== undefined) reject(new Error(`${name}: ${m.error}`))
        else if (m.result!.failed > job.count / 100)
          reject(
            new Error(`${name}: ${m.result!.failed} of ${job.count} failed, e.g. ${m.result!.firstFailure}`),
          )
        else resolve(m.result!)
      })
      this.#worker.postMessage(job)
    })
  }

  stop(): Promise<number> {
    return this.#worker.terminate()
  }
}

interface Side {
  round(seed: number): Promise<Drive>
  close(): Promise<void>
}

async function helloWorld(clients: Clients): Promise<Side> {
  const app = new Hono()
  app.get('/', (c) => c.text('Hello Hono!'))
  const server = await startHttpServer({
    port: await freePort(),
    registry: createRegistry({ defaultMetrics: false }),
    app: getRequestListener(app.fetch),
  })
  const url = `${server.url}/`
  // A whole round's worth: after 2,000 requests the hello-world still ran a quarter slower than in later rounds.
  await clients.run('hello-world warm-up', { kind: 'hello', url, count: HELLO_REQUESTS })
  return {
    round: () => clients.run('hello-world', { kind: 'hello', url, count: HELLO_REQUESTS }),
    close: () => server.close(),
  }
}

async function gateway(clients: Clients): Promise<Side> {
  const fx = await marketFixture('postgres', 16)
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
  const url = `${server.url}/api/v3/order`
  await clients.run('gateway warm-up', { kind: 'orders', url, count: ORDERS, traders, seed: 1 })
  return {
    round: (seed) => clients.run('gateway', { kind: 'orders', url, count: ORDERS, traders, seed }),
    async close() {
      await server.close()
      await fx.close()
    },
  }
}

/** The engine's committed batches so far, from its histograms in the process registry. */
async function engineTotals(): Promise<{ batches: number; commands: number; commitSeconds: number }> {
  const sumAndCount = async (name: string) => {
    const values = (await metricsRegistry().getSingleMetric(name)!.get()).values as {
      metricName?: string
      value: number
    }[]
    const pick = (suffix: string) => values.find((v) => v.metricName === `${name}_${suffix}`)?.value ?? 0
    return { sum: pick('sum'), count: pick('count') }
  }
  const size = await sumAndCount('bourse_engine_batch_size')
  const commit = await sumAndCount('bourse_engine_commit_seconds')
  return { batches: size.count, commands: size.sum, commitSeconds: commit.sum }
}

/** Runs a round and adds the CPU each thread and Postgres spent in it to `totals`. */
async function measured<T>(totals: Map<string, number>, round: () => Promise<T>): Promise<T> {
  const before = cpuMicros()
  const result = await round()
  for (const [name, micros] of Object.entries(cpuPerOperation(before, cpuMicros(), 1)))
    totals.set(name, (totals.get(name) ?? 0) + micros)
  return result
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!

async function main(): Promise<void> {
  const clients = new Clients()
  const hello = await helloWorld(clients)
  const orders = await gateway(clients)
  const helloRates: number[] = []
  const orderRates: number[] = []
  const latencies: number[] = []
  const cpu = { hello: new Map<string, number>(), orders: new Map<string, number>() }
  const before = await engineTotals()
  try {
    for (let i = 0; i < ROUNDS; i++) {
      helloRates.push((await measured(cpu.hello, () => hello.round(i))).rate)
      const round = await measured(cpu.orders, () => orders.round(i + 2))
      orderRates.push(round.rate)
      latencies.push(...round.latencies)
    }
  } finally {
    await clients.stop()
    await hello.close()
    await orders.close()
  }
  const after = await engineTotals()
  const batches = after.batches - before.batches
  const meanBatch = Math.round((after.commands - before.commands) / batches)
  const meanCommitMs = round(((after.commitSeconds - before.commitSeconds) / batches) * 1000, 1)
  latencies.sort((a, b) => a - b)
  const [p50, p99] = [percentile(latencies, 0.5), percentile(latencies, 0.99)].map((ms) => round(ms, 1))
  const rates = (values: number[]) => values.map((r) => Math.round(r)).join(', ')
  console.log(`gateway orders/s by round: ${rates(orderRates)}; hono hello-world req/s: ${rates(helloRates)}`)
  console.log(
    `${CONCURRENCY} clients: order latency p50 ${p50} ms, p99 ${p99} ms; engine batches of ${meanBatch} orders, ${meanCommitMs} ms per commit`,
  )
  const helloCpu = cpuPerOperation(new Map(), cpu.hello, ROUNDS * HELLO_REQUESTS)
  const orderCpu = cpuPerOperation(new Map(), cpu.orders, ROUNDS * ORDERS)
  const show = (per: Record<string, number>) =>
    Object.entries(per)
      .map(([name, micros]) => `${name} ${micros}`)
      .join(', ')
  console.log(`CPU µs per hello-world request: ${show(helloCpu)}; per order: ${show(orderCpu)}`)
  report({
    bench: 'gateway-order',
    value: Math.round(median(orderRates)),
    unit: 'signed orders placed/s',
    baseline: Math.round(median(helloRates)),
    baselineUnit: "requests/s of hono's hello-world",
    rounds: ROUNDS,
    ordersPerRound: ORDERS,
    concurrency: CONCURRENCY,
    traders: TRADERS,
    p50LatencyMs: p50,
    p99LatencyMs: p99,
    engineMeanBatch: meanBatch,
    engineMeanCommitMs: meanCommitMs,
    cpuMicrosPerHelloRequest: helloCpu,
    cpuMicrosPerOrder: orderCpu,
    targetRatio: 0.3,
  })
}

if (isMainThread) await main()
else clientsWorker()
