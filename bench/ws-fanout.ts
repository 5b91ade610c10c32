/**
 * Trade messages per second delivered to many WebSocket clients of one ws server (the `/ws/btcusdt@trade`
 * stream, fed through the in-process cache as the handler publishes it), against a raw `ws` WebSocketServer
 * broadcasting the very same messages the way the ws server batches them: each connection's frames of an
 * event-loop turn written at once, socket corked. The clients live in a worker thread, so the server side
 * has its own event loop; both sides use the same clients. The sides alternate (raw, bourse, raw, bourse, …),
 * each with fresh connections, and each reports its median round: neither runs cold alone or on a machine
 * the other did not see.
 */
import { spawnSync } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { isMainThread, parentPort, Worker } from 'node:worker_threads'
import { WebSocket, WebSocketServer } from 'ws'
import { createPubSubCache, InProcessRedis } from '../adapters/pubsub/index.ts'
import { createLogger } from '../lib/log.ts'
import { createRegistry } from '../lib/metrics.ts'
import { freePort } from '../lib/net.ts'
import { channels } from '../services/handler/keys.ts'
import { startWsServer } from '../services/ws/server.ts'
import { median, report, seededRandom } from './report.ts'

const WANTED_CLIENTS = 5_000
const MESSAGES = 2_000
const WARMUP_MESSAGES = 100
const PER_TICK = 10
const CONNECT_CONCURRENCY = 250
const TIMEOUT_MS = 60_000
const ROUNDS = 3

type ToWorker = { kind: 'connect'; url: string; clients: number } | { kind: 'expect'; count: number }
type FromWorker = { kind: 'connected' } | { kind: 'received'; count: number } | { kind: 'error'; msg: string }

// ---- the clients (worker thread) ----

async function clientsWorker(): Promise<void> {
  const port = parentPort!
  const sockets: WebSocket[] = []
  let received = 0
  let target = Number.POSITIVE_INFINITY
  const check = () => {
    if (received >= target) {
      target = Number.POSITIVE_INFINITY
      const count = received
      received = 0
      port.postMessage({ kind: 'received', count } satisfies FromWorker)
    }
  }
  const connectOne = (url: string) =>
    new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, { perMessageDeflate: false })
      ws.on('message', () => {
        received++
        if (received >= target) check()
      })
      ws.once('open', () => {
        sockets.push(ws)
        resolve()
      })
      ws.once('error', reject)
    })
  port.on('message', async (message: ToWorker) => {
    try {
      if (message.kind === 'connect') {
        let next = 0
        const worker = async () => {
          while (next < message.clients) {
            next++
            await connectOne(message.url)
          }
        }
        await Promise.all(Array.from({ length: CONNECT_CONCURRENCY }, worker))
        port.postMessage({ kind: 'connected' } satisfies FromWorker)
      } else {
        target = message.count
        check()
      }
    } catch (err) {
      port.postMessage({ kind: 'error', msg: String(err) } satisfies FromWorker)
    }
  })
}

// ---- the server side (main thread) ----

class Clients {
  readonly #worker = new Worker(new URL(import.meta.url))
  #waiting: ((m: FromWorker) => void) | undefined

  constructor() {
    this.#worker.on('message', (m: FromWorker) => this.#waiting?.(m))
    this.#worker.on('error', (err) => this.#waiting?.({ kind: 'error', msg: String(err) }))
  }

  #next(what: string): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`clients: timed out waiting for ${what}`)), TIMEOUT_MS)
      this.#waiting = (m) => {
        clearTimeout(timer)
        this.#waiting = undefined
        if (m.kind === 'error') reject(new Error(m.msg))
        else resolve(m)
      }
    })
  }

  async connect(url: string, clients: number): Promise<void> {
    const done = this.#next('connections')
    this.#worker.postMessage({ kind: 'connect', url, clients } satisfies ToWorker)
    await done
  }

  /** Resolves once the clients together received `count` messages. */
  expect(count: number): Promise<FromWorker> {
    const done = this.#next(`${count} messages`)
    this.#worker.postMessage({ kind: 'expect', count } satisfies ToWorker)
    return done
  }

  stop(): Promise<number> {
    return this.#worker.terminate()
  }
}

/** Binance trade payloads, as the handler publishes them. */
function tradeMessages(count: number, seed: number, firstId: number): string[] {
  const next = seededRandom(seed)
  const now = Date.now()
  return Array.from({ length: count }, (_, i) =>
    JSON.stringify({
      e: 'trade',
      E: now + i,
      s: 'BTCUSDT',
      t: firstId + i,
      p: (100 + Math.floor(next() * 200) / 100).toFixed(2),
      q: ((Math.floor(next() * 50) + 1) / 1000).toFixed(3),
      T: now + i,
      m: next() < 0.5,
      M: true,
    }),
  )
}

/** Publishes PER_TICK messages per event-loop turn; resolves with messages/s once all clients have them all. */
async function deliver(
  clients: Clients,
  clientCount: number,
  messages: string[],
  publish: (message: string) => void,
): Promise<number> {
  const received = clients.expect(messages.length * clientCount)
  const started = performance.now()
  for (let i = 0; i < messages.length; i += PER_TICK) {
    for (const message of messages.slice(i, i + PER_TICK)) publish(message)
    await new Promise((resolve) => setImmediate(resolve))
  }
  await received
  return (messages.length * clientCount) / ((performance.now() - started) / 1000)
}

async function bourseSide(clientCount: number): Promise<number> {
  const cache = createPubSubCache({ kind: 'memory', server: new InProcessRedis() })
  const server = await startWsServer({
    port: await freePort(),
    cache,
    log: createLogger('bench', { level: 'silent' }),
    registry: createRegistry({ defaultMetrics: false }),
  })
  const clients = new Clients()
  try {
    await clients.connect(`${server.url}/ws/btcusdt@trade`, clientCount)
    while (server.server.stats.connections < clientCount || server.server.stats.channels === 0)
      await new Promise((resolve) => setTimeout(resolve, 50))
    const channel = channels.trade('BTCUSDT')
    const publish = (message: string) => void cache.publish(channel, message)
    await deliver(clients, clientCount, tradeMessages(WARMUP_MESSAGES, 1, 1), publish)
    return await deliver(clients, clientCount, tradeMessages(MESSAGES, 2, 1_000), publish)
  } finally {
    await clients.stop()
    await server.close()
  }
}

/** A raw ws broadcast, batched per tick as the ws server does: queue, then one corked write per socket. */
async function rawSide(clientCount: number): Promise<number> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false })
  const sockets: { ws: WebSocket; socket: Duplex }[] = []
  const http: Server = createServer()
  http.on('upgrade', (req, socket, head) =>
    wss.handleUpgrade(req, socket, head, (ws) => sockets.push({ ws, socket })),
  )
  const port = await freePort()
  await new Promise<void>((resolve) => http.listen(port, '127.0.0.1', resolve))
  let pending: string[] = []
  let scheduled = false
  const flush = () => {
    scheduled = false
    const batch = pending
    pending = []
    for (const { ws, socket } of sockets) {
      socket.cork()
      for (const text of batch) ws.send(text)
      socket.uncork()
    }
  }
  const publish = (message: string) => {
    pending.push(message)
    if (!scheduled) {
      scheduled = true
      setImmediate(flush)
    }
  }
  const clients = new Clients()
  try {
    await clients.connect(`ws://127.0.0.1:${port}/ws/btcusdt@trade`, clientCount)
    await deliver(clients, clientCount, tradeMessages(WARMUP_MESSAGES, 1, 1), publish)
    return await deliver(clients, clientCount, tradeMessages(MESSAGES, 2, 1_000), publish)
  } finally {
    await clients.stop()
    for (const { ws } of sockets) ws.terminate()
    http.closeAllConnections()
    await new Promise((resolve) => http.close(resolve))
  }
}

/** Each client is two sockets in this process (client and server end), plus some headroom. */
function clientsWithinFdLimit(): number {
  const limit = Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim())
  if (!Number.isFinite(limit)) return WANTED_CLIENTS
  const fits = Math.floor((limit - 256) / 2)
  if (fits >= WANTED_CLIENTS) return WANTED_CLIENTS
  console.log(
    `note: ulimit -n is ${limit}; ${WANTED_CLIENTS} clients need about ${WANTED_CLIENTS * 2 + 256} fds, using ${fits} clients`,
  )
  return fits
}

async function main(): Promise<void> {
  const clientCount = clientsWithinFdLimit()
  const baselines: number[] = []
  const values: number[] = []
  for (let i = 0; i < ROUNDS; i++) {
    baselines.push(await rawSide(clientCount))
    values.push(await bourseSide(clientCount))
  }
  const show = (rates: number[]) => rates.map((r) => Math.round(r)).join(', ')
  console.log(`ws server msg/s by round: ${show(values)}; raw ws broadcast: ${show(baselines)}`)
  report({
    bench: 'ws-fanout',
    value: Math.round(median(values)),
    unit: 'messages/s delivered',
    baseline: Math.round(median(baselines)),
    baselineUnit: 'messages/s of a raw ws broadcast batched per tick',
    rounds: ROUNDS,
    clients: clientCount,
    messages: MESSAGES,
    perTick: PER_TICK,
    deliveries: MESSAGES * clientCount,
    targetRatio: 0.8,
  })
}

if (isMainThread) await main()
else await clientsWorker()
