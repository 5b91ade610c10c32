/**
 * Binance-compatible market streams over WebSocket. Raw streams at `/ws/<stream>[/<stream>…]` (or bare `/ws`),
 * combined streams at `/stream?streams=<a>/<b>` (wrapped as `{"stream":…,"data":…}`); live SUBSCRIBE,
 * UNSUBSCRIBE, LIST_SUBSCRIPTIONS, SET_PROPERTY/GET_PROPERTY `combined`, with Binance's answers and errors.
 * Binance's connection rules: a ping every 20 s and a cut after a minute without a pong, at most 5 incoming
 * messages (pings and pongs count) a second, at most 1024 streams, a connection lives 24 hours.
 *
 * Outbound, each connection queues what it is sent during an event-loop turn and writes it all at once
 * (socket corked: one write for many frames). Whatever a connection has queued or not yet handed to the
 * kernel is bounded by `maxBufferBytes`: a consumer that does not keep up is cut there, never buffered further.
 */
import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { type WebSocket, WebSocketServer } from 'ws'
import type { PubSubCache } from '../../adapters/pubsub/index.ts'
import type { Logger } from '../../lib/log.ts'
import {
  Counter,
  Gauge,
  metricsRegistry,
  type ReadyCheck,
  type Registry,
  startHttpServer,
} from '../../lib/metrics.ts'
import { clientAddress } from '../../lib/net.ts'
import type { ApiKeyStore } from '../gateway/api-keys.ts'
import { type Frame, Hub, type Subscriber } from './feeds.ts'
import { parseLinkora, parseStream, type StreamSpec } from './streams.ts'
import { ListenKeys, listenKeyPattern } from './user-stream.ts'
import { type ApiAuth, ApiSession } from './ws-api.ts'

export interface WsServerOptions {
  cache: PubSubCache
  log: Logger
  /** Default: the process registry of lib/metrics.ts. */
  registry?: Registry
  /** Bytes a connection may have queued and unsent before it is cut as a slow consumer (default 1 MiB). */
  maxBufferBytes?: number
  /** Default 20 s. */
  pingIntervalMs?: number
  /** A connection that sent no pong for this long is cut (default 60 s). */
  pongTimeoutMs?: number
  /** Incoming messages, pings and pongs a second before the connection is cut (default 5). */
  maxIncomingPerSecond?: number
  /** Default 1024. */
  maxStreams?: number
  /** Default 24 h. */
  maxConnectionMs?: number
  /**
   * The gateway's API keys (Postgres): enables the WebSocket API at `/ws-api/v3` and its
   * `userDataStream.subscribe.signature`. Without it, that endpoint answers 404.
   */
  keys?: ApiKeyStore
  /** Behind an ingress that sets X-Forwarded-For: a client's address (API-key allow-lists) is its last entry. */
  trustProxy?: boolean
  /** The server clock for signatures' recvWindow (default Date.now). */
  now?: () => number
  /** How often each `/ws/<listenKey>` stream checks its key is still alive (default 30 s). */
  listenKeyCheckMs?: number
}

interface Metrics {
  connections: Gauge
  frames: Counter<'kind'>
  cut: Counter<'reason'>
  requests: Counter<'method'>
}

const metricsByRegistry = new WeakMap<Registry, Metrics>()

function wsMetrics(registry: Registry): Metrics {
  let m = metricsByRegistry.get(registry)
  if (m === undefined) {
    const registers = [registry]
    m = {
      connections: new Gauge({
        name: 'bourse_ws_connections',
        help: 'Open WebSocket connections',
        registers,
      }),
      frames: new Counter({
        name: 'bourse_ws_frames_sent_total',
        help: 'Frames sent to clients: stream events and request answers',
        labelNames: ['kind'] as const,
        registers,
      }),
      cut: new Counter({
        name: 'bourse_ws_disconnects_total',
        help: 'Connections the server cut, by reason (slow_consumer is a drop of everything it had queued)',
        labelNames: ['reason'] as const,
        registers,
      }),
      requests: new Counter({
        name: 'bourse_ws_requests_total',
        help: 'Requests received from clients, by method',
        labelNames: ['method'] as const,
        registers,
      }),
    }
    metricsByRegistry.set(registry, m)
  }
  return m
}

interface Route {
  combined: boolean
  /** `/ws-api/v3`: Binance's WebSocket API (ws-api.ts). */
  api: boolean
  /** Listen keys among the streams, resolved to their users before the upgrade. */
  listenKeys: string[]
  /** The seeds' Linkora socket: JSON heartbeats every 30 s answered by `{"type":"pong"}`, no requests. */
  linkora: boolean
  streams: [string, StreamSpec][]
}

const LINKORA_HEARTBEAT_MS = 30_000

const METHODS = ['SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS', 'SET_PROPERTY', 'GET_PROPERTY']
const idPattern = /^[A-Za-z0-9]{1,36}$/

class BinanceError extends Error {
  readonly code: number
  constructor(code: number, message: string) {
    super(message)
    this.code = code
  }
}

const invalid = (message: string) => new BinanceError(2, `Invalid request: ${message}`)

export class WsServer {
  readonly #options: Required<Omit<WsServerOptions, 'registry' | 'keys' | 'now'>>
  readonly #auth: ApiAuth | undefined
  readonly #listenKeys: ListenKeys
  readonly #listenKeySweep: NodeJS.Timeout
  readonly #hub: Hub
  readonly #wss: WebSocketServer
  readonly #metrics: Metrics
  readonly #connections = new Set<Connection>()
  readonly #dirty = new Set<Connection>()
  #flushScheduled = false
  readonly #sweep: NodeJS.Timeout
  #closed = false

  constructor(options: WsServerOptions) {
    this.#options = {
      cache: options.cache,
      log: options.log,
      maxBufferBytes: options.maxBufferBytes ?? 1 << 20,
      pingIntervalMs: options.pingIntervalMs ?? 20_000,
      pongTimeoutMs: options.pongTimeoutMs ?? 60_000,
      maxIncomingPerSecond: options.maxIncomingPerSecond ?? 5,
      maxStreams: options.maxStreams ?? 1024,
      maxConnectionMs: options.maxConnectionMs ?? 24 * 3_600_000,
      listenKeyCheckMs: options.listenKeyCheckMs ?? 30_000,
      trustProxy: options.trustProxy ?? false,
    }
    this.#auth = options.keys && { keys: options.keys, now: options.now ?? Date.now }
    this.#listenKeys = new ListenKeys(options.cache)
    this.#listenKeySweep = setInterval(() => {
      for (const connection of this.#connections) connection.checkListenKeys()
    }, this.#options.listenKeyCheckMs)
    this.#listenKeySweep.unref()
    this.#metrics = wsMetrics(options.registry ?? metricsRegistry())
    this.#hub = new Hub(options.cache, options.log)
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: 16 * 1024,
      perMessageDeflate: false,
      clientTracking: false,
    })
    this.#sweep = setInterval(() => this.#heartbeat(), this.#options.pingIntervalMs)
    this.#sweep.unref()
  }

  get stats() {
    return {
      connections: this.#connections.size,
      channels: this.#hub.channelCount,
      feeds: this.#hub.feedCount,
      /** The most any connection holds queued or unsent right now. */
      maxBufferedBytes: Math.max(0, ...[...this.#connections].map((c) => c.buffered)),
    }
  }

  /** The HTTP server's 'upgrade' handler: takes /ws… and /stream…, answers 404 or 400 to anything else. */
  handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const route = this.#route(url)
    const refuse = (status: string) =>
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    if (this.#closed || typeof route === 'string') {
      refuse(this.#closed ? '503 Service Unavailable' : (route as string))
      return
    }
    if (route.listenKeys.length === 0) {
      this.#upgrade(req, socket, head, route)
      return
    }
    // A listen key's stream is its user's: look the keys up first; an unknown or expired one is refused.
    Promise.all(route.listenKeys.map((k) => this.#listenKeys.userOf(k))).then(
      (users) => {
        if (users.some((u) => u === undefined)) return refuse('400 Bad Request')
        const byKey = new Map(route.listenKeys.map((k, i) => [k, users[i]!]))
        for (const stream of route.streams)
          if (stream[1].kind === 'user') stream[1] = { kind: 'user', userId: byKey.get(stream[0])! }
        this.#upgrade(req, socket, head, route)
      },
      (err: unknown) => {
        this.#options.log.warn({ err }, 'looking up listen keys failed')
        refuse('503 Service Unavailable')
      },
    )
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, route: Route): void {
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      const forwarded = req.headers['x-forwarded-for']
      const ip = clientAddress(
        Array.isArray(forwarded) ? forwarded.join(',') : forwarded,
        req.socket.remoteAddress,
        this.#options.trustProxy,
      )
      const connection = new Connection(this, ws, socket, route.combined, route.linkora, ip)
      if (route.api) connection.api = new ApiSession(connection, this.#auth)
      for (const key of route.listenKeys) connection.listenKeys.add(key)
      this.#connections.add(connection)
      this.#metrics.connections.inc()
      ws.on('close', () => {
        this.#connections.delete(connection)
        this.#dirty.delete(connection)
        this.#metrics.connections.dec()
        connection.dispose()
      })
      connection.start(route.streams)
    })
  }

  #route(url: URL): Route | string {
    if (url.pathname === '/ws' && url.searchParams.has('symbol')) {
      const stream = parseLinkora(url.searchParams)
      return stream === undefined
        ? '400 Bad Request'
        : { combined: false, linkora: true, api: false, listenKeys: [], streams: [stream] }
    }
    if (url.pathname === '/ws-api/v3' || url.pathname === '/ws-api/v3/') {
      if (this.#auth === undefined) return '404 Not Found'
      return { combined: false, linkora: false, api: true, listenKeys: [], streams: [] }
    }
    let names: string[] | undefined
    let combined: boolean
    if (url.pathname === '/ws' || url.pathname === '/ws/' || url.pathname.startsWith('/ws/')) {
      combined = false
      names = streamNames(url.pathname.slice(4))
    } else if (url.pathname === '/stream' || url.pathname === '/stream/') {
      combined = true
      // Read as written: searchParams would turn the `+` of `…@kline_1d@+08:00` into a space.
      names = streamNames(/(?:^|&)streams=([^&]*)/.exec(url.search.slice(1))?.[1] ?? '')
    } else {
      return '404 Not Found'
    }
    if (names === undefined || names.length > this.#options.maxStreams) return '400 Bad Request'
    const streams: [string, StreamSpec][] = []
    const listenKeys: string[] = []
    for (const name of new Set(names)) {
      const spec = parseStream(name)
      if (spec !== undefined) streams.push([name, spec])
      else if (listenKeyPattern.test(name)) {
        listenKeys.push(name)
        streams.push([name, { kind: 'user', userId: '' }])
      } else return '400 Bad Request'
    }
    return { combined, linkora: false, api: false, listenKeys, streams }
  }

  /** Sends `serverShutdown` to every connection, closes them and stops taking new ones. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#sweep)
    clearInterval(this.#listenKeySweep)
    const E = Date.now()
    for (const connection of this.#connections) connection.shutdown(E)
    this.#flush()
    await Promise.all(
      [...this.#connections].map(
        (c) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              c.ws.terminate()
              resolve()
            }, 1000)
            c.ws.once('close', () => {
              clearTimeout(timer)
              resolve()
            })
            c.ws.close(1001, 'server shutdown')
          }),
      ),
    )
    this.#hub.close()
    this.#wss.close()
  }

  // For connections.
  get options() {
    return this.#options
  }
  get hub() {
    return this.#hub
  }
  get metrics() {
    return this.#metrics
  }
  get listenKeyStore() {
    return this.#listenKeys
  }

  markDirty(connection: Connection): void {
    this.#dirty.add(connection)
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    setImmediate(() => this.#flush())
  }

  #flush(): void {
    this.#flushScheduled = false
    for (const connection of this.#dirty) connection.flush()
    this.#dirty.clear()
  }

  #heartbeat(): void {
    const now = Date.now()
    for (const connection of this.#connections) connection.heartbeat(now)
  }
}

class Connection implements Subscriber {
  readonly ws: WebSocket
  readonly ip: string
  /** Set on `/ws-api/v3` connections. */
  api: ApiSession | undefined
  /** The listen keys among this connection's streams (each stream is named by its key). */
  readonly listenKeys = new Set<string>()
  #checkingKeys = false
  readonly #server: WsServer
  readonly #socket: Duplex
  #combined: boolean
  readonly #linkora: boolean
  #linkoraTimer: NodeJS.Timeout | undefined
  readonly #streams = new Map<string, StreamSpec>()
  #queue: string[] = []
  #queuedBytes = 0
  #work: Promise<void> = Promise.resolve()
  #closed = false
  readonly #opened = Date.now()
  #lastPong = Date.now()
  #windowStart = 0
  #windowCount = 0

  constructor(
    server: WsServer,
    ws: WebSocket,
    socket: Duplex,
    combined: boolean,
    linkora: boolean,
    ip: string,
  ) {
    this.#server = server
    this.ip = ip
    this.ws = ws
    this.#socket = socket
    this.#combined = combined
    this.#linkora = linkora
  }

  get buffered(): number {
    return this.#queuedBytes + this.ws.bufferedAmount
  }

  start(streams: [string, StreamSpec][]): void {
    if (this.#linkora) {
      // Linkora's heartbeat: a JSON heartbeat every 30 s; a client silent for three of them is dropped.
      let lastHeard = Date.now()
      this.#linkoraTimer = setInterval(() => {
        if (Date.now() - lastHeard > 3 * LINKORA_HEARTBEAT_MS) return this.#cut('pong_timeout')
        this.#send(JSON.stringify({ type: 'heartbeat', timestamp: Date.now() }), 'event')
      }, LINKORA_HEARTBEAT_MS)
      this.#linkoraTimer.unref()
      this.ws.on('message', () => {
        lastHeard = Date.now()
        this.#count()
      })
    }
    this.ws.on('message', (data, isBinary) => {
      if (this.#linkora || !this.#count()) return
      const text = isBinary ? '' : data.toString()
      const api = this.api
      this.#work = this.#work.then(() => (api === undefined ? this.#request(text) : api.request(text)))
    })
    this.ws.on('ping', () => this.#count())
    this.ws.on('pong', () => {
      this.#lastPong = Date.now()
      this.#count()
    })
    this.ws.on('error', () => this.ws.terminate())
    if (streams.length > 0)
      this.#work = this.#work.then(() =>
        this.#subscribe(streams).catch((err: unknown) => {
          // The URL's streams could not be subscribed (pub/sub down): the client reconnects, maybe elsewhere.
          this.#server.options.log.warn({ err }, 'subscribing the URL streams failed')
          this.#cut('subscribe_failed', 1011, 'try again')
        }),
      )
  }

  /** Counts an incoming message against the per-second limit; false (and cut) beyond it. */
  #count(): boolean {
    const now = Date.now()
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now
      this.#windowCount = 0
    }
    if (++this.#windowCount <= this.#server.options.maxIncomingPerSecond) return true
    this.#cut('rate_limit', 1008, 'Too many messages')
    return false
  }

  heartbeat(now: number): void {
    const { pongTimeoutMs, maxConnectionMs } = this.#server.options
    if (now - this.#lastPong > pongTimeoutMs) this.#cut('pong_timeout')
    else if (now - this.#opened > maxConnectionMs) this.#cut('max_age', 1000, 'connection expired')
    else this.ws.ping()
  }

  deliver(frame: Frame): void {
    if (this.api !== undefined) this.api.deliver(frame)
    else this.#send(this.#combined ? frame.combined : frame.raw, 'event')
  }

  // For the WebSocket API session.
  send(text: string, kind: 'event' | 'answer'): void {
    this.#send(text, kind)
  }
  join(name: string, spec: StreamSpec): Promise<void> {
    return this.#closed ? Promise.resolve() : this.#server.hub.join(this, name, spec)
  }
  leave(name: string, spec: StreamSpec): void {
    this.#server.hub.leave(this, name, spec)
  }

  /** Sends `listenKeyExpired` and closes the connection when one of its listen keys is gone (expired or deleted). */
  checkListenKeys(): void {
    if (this.listenKeys.size === 0 || this.#checkingKeys || this.#closed) return
    this.#checkingKeys = true
    const keys = [...this.listenKeys]
    Promise.all(keys.map((k) => this.#server.listenKeyStore.userOf(k)))
      .then((users) => {
        const expired = keys.filter((_, i) => users[i] === undefined)
        if (expired.length === 0 || this.#closed) return
        const E = Date.now()
        for (const listenKey of expired) {
          const event = JSON.stringify({ e: 'listenKeyExpired', E, listenKey })
          this.#send(
            this.#combined ? `{"stream":${JSON.stringify(listenKey)},"data":${event}}` : event,
            'event',
          )
        }
        this.flush()
        this.#cut('listen_key_expired', 1000, 'listenKeyExpired')
      })
      .catch((err: unknown) => this.#server.options.log.warn({ err }, 'checking listen keys failed'))
      .finally(() => {
        this.#checkingKeys = false
      })
  }

  shutdown(E: number): void {
    const event = JSON.stringify({ e: 'serverShutdown', E })
    this.#send(this.#combined ? `{"stream":"!serverShutdown","data":${event}}` : event, 'event')
  }

  #send(text: string, kind: 'event' | 'answer'): void {
    if (this.#closed) return
    const bytes = text.length
    if (this.#queuedBytes + bytes + this.ws.bufferedAmount > this.#server.options.maxBufferBytes) {
      this.#cut('slow_consumer')
      return
    }
    this.#queue.push(text)
    this.#queuedBytes += bytes
    this.#server.metrics.frames.inc({ kind })
    this.#server.markDirty(this)
  }

  /** Writes everything queued during this turn in one go. */
  flush(): void {
    if (this.#closed || this.#queue.length === 0) return
    const queue = this.#queue
    this.#queue = []
    this.#queuedBytes = 0
    this.#socket.cork()
    for (const text of queue) this.ws.send(text)
    this.#socket.uncork()
  }

  #cut(reason: string, code?: number, why?: string): void {
    if (this.#closed) return
    this.#server.metrics.cut.inc({ reason })
    this.#server.options.log.info({ reason, streams: this.#streams.size }, 'ws connection cut')
    this.dispose()
    if (code === undefined) this.ws.terminate()
    else this.ws.close(code, why)
  }

  dispose(): void {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#linkoraTimer)
    this.#queue = []
    this.#queuedBytes = 0
    for (const [name, spec] of this.#streams) this.#server.hub.leave(this, name, spec)
    this.#streams.clear()
    this.api?.dispose()
  }

  #answer(id: unknown, result: unknown): void {
    this.#send(JSON.stringify({ result, id }), 'answer')
  }

  async #request(text: string): Promise<void> {
    if (this.#closed) return
    let id: unknown = null
    try {
      let request: unknown
      try {
        request = JSON.parse(text)
      } catch {
        throw new BinanceError(3, 'Invalid JSON: expected value at line 1 column 1')
      }
      if (typeof request !== 'object' || request === null || Array.isArray(request))
        throw invalid('expected an object')
      const r = request as Record<string, unknown>
      if (!('method' in r)) throw invalid('missing field `method`')
      if (typeof r.method !== 'string' || !METHODS.includes(r.method))
        throw invalid(
          `unknown variant \`${String(r.method)}\`, expected one of ${METHODS.map((m) => `\`${m}\``).join(', ')}`,
        )
      id = r.id
      if (
        !(
          id === null ||
          (typeof id === 'number' && Number.isSafeInteger(id)) ||
          (typeof id === 'string' && idPattern.test(id))
        )
      ) {
        id = null
        throw invalid('request ID must be an unsigned integer')
      }
      this.#server.metrics.requests.inc({ method: r.method })
      const params = r.params
      switch (r.method) {
        case 'SUBSCRIBE':
        case 'UNSUBSCRIBE': {
          if (!Array.isArray(params) || params.some((p) => typeof p !== 'string'))
            throw invalid('invalid stream')
          const streams: [string, StreamSpec][] = []
          for (const name of params as string[]) {
            const spec = parseStream(name)
            if (spec === undefined) throw invalid('invalid stream')
            streams.push([name, spec])
          }
          if (r.method === 'SUBSCRIBE') await this.#subscribe(streams)
          else this.#unsubscribe(streams)
          return this.#answer(id, null)
        }
        case 'LIST_SUBSCRIPTIONS':
          if (params !== undefined && !(Array.isArray(params) && params.length === 0))
            throw invalid('too many parameters')
          return this.#answer(id, [...this.#streams.keys()])
        case 'SET_PROPERTY': {
          if (!Array.isArray(params) || params.length !== 2 || typeof params[0] !== 'string')
            throw invalid('property name must be a string')
          if (params[0] !== 'combined') throw new BinanceError(0, 'Unknown property')
          if (typeof params[1] !== 'boolean')
            throw new BinanceError(1, 'Invalid value type: expected Boolean')
          this.#combined = params[1]
          return this.#answer(id, null)
        }
        case 'GET_PROPERTY': {
          if (!Array.isArray(params) || typeof params[0] !== 'string')
            throw invalid('property name must be a string')
          if (params.length > 1) throw invalid('too many parameters')
          if (params[0] !== 'combined') throw new BinanceError(0, 'Unknown property')
          return this.#answer(id, this.#combined)
        }
      }
    } catch (err) {
      if (err instanceof BinanceError) {
        this.#send(JSON.stringify({ error: { code: err.code, msg: err.message }, id }), 'answer')
        return
      }
      this.#server.options.log.warn({ err }, 'ws request failed')
      this.#send(JSON.stringify({ error: { code: -1, msg: 'Internal error; try again.' }, id }), 'answer')
    }
  }

  async #subscribe(streams: [string, StreamSpec][]): Promise<void> {
    const fresh = streams.filter(([name]) => !this.#streams.has(name))
    if (this.#streams.size + new Set(fresh.map(([n]) => n)).size > this.#server.options.maxStreams)
      throw invalid(`too many streams: at most ${this.#server.options.maxStreams} a connection`)
    for (const [name, spec] of fresh) this.#streams.set(name, spec)
    const results = await Promise.allSettled(
      fresh.map(([name, spec]) => this.#server.hub.join(this, name, spec)),
    )
    if (this.#closed) {
      for (const [name, spec] of fresh) this.#server.hub.leave(this, name, spec)
      return
    }
    // The hub has let go of the streams it could not subscribe; those that worked stay.
    const failed = results.findIndex((r) => r.status === 'rejected')
    if (failed >= 0) {
      for (const [i, [name]] of fresh.entries())
        if (results[i]!.status === 'rejected') this.#streams.delete(name)
      throw (results[failed] as PromiseRejectedResult).reason
    }
  }

  #unsubscribe(streams: [string, StreamSpec][]): void {
    for (const [name, spec] of streams) {
      if (!this.#streams.delete(name)) continue
      this.#server.hub.leave(this, name, spec)
    }
  }
}

export interface RunningWsServer {
  readonly server: WsServer
  readonly port: number
  /** `ws://host:port` */
  readonly url: string
  close(): Promise<void>
}

/**
 * `bourse ws` on its own port: the streams, plus /metrics, /healthz and /readyz (lib/metrics.ts) for any
 * other path. In the embedded mode, start it the same way on the shared in-process cache.
 */
export async function startWsServer(
  options: WsServerOptions & { port: number; host?: string; ready?: ReadyCheck },
): Promise<RunningWsServer> {
  const server = new WsServer(options)
  const http = await startHttpServer({
    port: options.port,
    ...(options.host && { host: options.host }),
    ...(options.registry && { registry: options.registry }),
    ...(options.ready && { ready: options.ready }),
    upgrade: server.handleUpgrade,
  })
  let closing: Promise<void> | undefined
  return {
    server,
    port: http.port,
    url: http.url.replace(/^http/, 'ws'),
    close() {
      closing ??= server.close().then(() => http.close())
      return closing
    },
  }
}

/** The stream names of `a/b/…` as a URL carries them (percent-encoded or not); undefined when malformed. */
function streamNames(text: string): string[] | undefined {
  try {
    return decodeURIComponent(text).split('/').filter(Boolean)
  } catch {
    return undefined
  }
}
