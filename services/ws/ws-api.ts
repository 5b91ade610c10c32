/**
 * Binance's WebSocket API at `/ws-api/v3`, the part that serves user data streams: `userDataStream.subscribe.signature`
 * (apiKey, timestamp, signature and recvWindow, verified by the gateway's own `authenticate`, so keys, IP allow
 * lists, signatures and the recvWindow are refused with the same codes and messages as the REST API),
 * `userDataStream.unsubscribe`, `session.subscriptions`, `ping` and `time`. Answers are
 * `{"id","status","result"}` or `{"id","status","error":{"code","msg"}}`; events come as
 * `{"subscriptionId":N,"event":{…}}`, and a subscription that ends sends `eventStreamTerminated`.
 */
import type { ApiKeyStore } from '../gateway/api-keys.ts'
import { BinanceError } from '../gateway/binance/errors.ts'
import { authenticate, Params } from '../gateway/binance/request.ts'
import type { Frame } from './feeds.ts'
import type { StreamSpec } from './streams.ts'

export interface ApiHost {
  /** Queues a text frame for the client. */
  send(text: string, kind: 'event' | 'answer'): void
  join(name: string, spec: StreamSpec): Promise<void>
  leave(name: string, spec: StreamSpec): void
  readonly ip: string
}

export interface ApiAuth {
  keys: ApiKeyStore
  now: () => number
}

const MAX_SUBSCRIPTIONS = 1000
const MAX_LIFETIME_SUBSCRIPTIONS = 65_535

class ApiError extends Error {
  readonly code: number
  readonly status: number
  constructor(code: number, msg: string, status = 400) {
    super(msg)
    this.code = code
    this.status = status
  }
}

const userFeed = (userId: string) => `user:${userId}`

export class ApiSession {
  readonly #host: ApiHost
  readonly #auth: ApiAuth | undefined
  /** Feed name → subscription id, and back. */
  readonly #byFeed = new Map<string, number>()
  readonly #byId = new Map<number, { name: string; spec: StreamSpec }>()
  #nextId = 0

  constructor(host: ApiHost, auth: ApiAuth | undefined) {
    this.#host = host
    this.#auth = auth
  }

  deliver(frame: Frame): void {
    const id = this.#byFeed.get(frame.stream)
    if (id !== undefined) this.#host.send(`{"subscriptionId":${id},"event":${frame.raw}}`, 'event')
  }

  dispose(): void {
    for (const { name, spec } of this.#byId.values()) this.#host.leave(name, spec)
    this.#byId.clear()
    this.#byFeed.clear()
  }

  async request(text: string): Promise<void> {
    let id: unknown = null
    try {
      let request: unknown
      try {
        request = JSON.parse(text)
      } catch {
        throw new ApiError(-1102, "Mandatory parameter 'id' was not sent, was empty/null, or malformed.")
      }
      if (typeof request !== 'object' || request === null || Array.isArray(request))
        throw new ApiError(-1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.")
      const r = request as Record<string, unknown>
      id = r.id ?? null
      if (typeof r.method !== 'string')
        throw new ApiError(-1102, "Mandatory parameter 'method' was not sent, was empty/null, or malformed.")
      const params = (r.params ?? {}) as Record<string, unknown>
      if (typeof params !== 'object' || Array.isArray(params))
        throw new ApiError(-1104, 'Not all sent parameters were read.')
      this.#answer(id, await this.#call(r.method, params))
    } catch (err) {
      const error =
        err instanceof ApiError || err instanceof BinanceError
          ? { status: err.status, code: err.code, msg: err.message }
          : { status: 500, code: -1000, msg: 'An unknown error occurred while processing the request.' }
      this.#host.send(
        JSON.stringify({ id, status: error.status, error: { code: error.code, msg: error.msg } }),
        'answer',
      )
    }
  }

  #answer(id: unknown, result: unknown): void {
    this.#host.send(JSON.stringify({ id, status: 200, result }), 'answer')
  }

  async #call(method: string, params: Record<string, unknown>): Promise<unknown> {
    switch (method) {
      case 'ping':
        return {}
      case 'time':
        return { serverTime: (this.#auth?.now ?? Date.now)() }
      case 'userDataStream.subscribe.signature':
        return this.#subscribe(params)
      case 'userDataStream.unsubscribe':
        return this.#unsubscribe(params)
      case 'session.subscriptions':
        return [...this.#byId.keys()].map((subscriptionId) => ({ subscriptionId }))
      default:
        throw new ApiError(-1020, 'This operation is not supported.')
    }
  }

  async #subscribe(params: Record<string, unknown>): Promise<unknown> {
    if (this.#auth === undefined) throw new ApiError(-1020, 'This operation is not supported.')
    for (const name of ['apiKey', 'timestamp', 'signature'])
      if (params[name] === undefined || params[name] === null || params[name] === '')
        throw new ApiError(-1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`)
    const unknown = Object.keys(params).find(
      (k) => !['apiKey', 'timestamp', 'signature', 'recvWindow'].includes(k),
    )
    if (unknown !== undefined) throw new ApiError(-1104, 'Not all sent parameters were read.')
    const apiKey = String(params.apiKey)
    if (!/^[A-Za-z0-9]{1,128}$/.test(apiKey)) throw new ApiError(-2014, 'API-key format invalid.', 401)
    // The WebSocket API signs its params sorted by name, `signature` left out (ws-api.md, SIGNED requests).
    const payload = Object.keys(params)
      .filter((k) => k !== 'signature')
      .sort()
      .map((k) => `${k}=${String(params[k])}`)
      .join('&')
    const query = `${payload}&signature=${encodeURIComponent(String(params.signature))}`
    const request = new Request('http://ws-api.invalid/', { headers: { 'x-mbx-apikey': apiKey } })
    const { key } = await authenticate(
      request,
      new Params(query, ''),
      'USER_DATA',
      this.#auth.keys,
      this.#host.ip,
      this.#auth.now,
    )
    const name = userFeed(String(key.userId))
    const existing = this.#byFeed.get(name)
    if (existing !== undefined) return { subscriptionId: existing }
    if (this.#byId.size >= MAX_SUBSCRIPTIONS)
      throw new ApiError(-1003, 'Too many subscriptions on this connection.')
    if (this.#nextId >= MAX_LIFETIME_SUBSCRIPTIONS)
      throw new ApiError(-1003, 'Too many subscriptions over the lifetime of this connection.')
    const subscriptionId = this.#nextId++
    const spec: StreamSpec = { kind: 'user', userId: String(key.userId) }
    this.#byFeed.set(name, subscriptionId)
    this.#byId.set(subscriptionId, { name, spec })
    try {
      await this.#host.join(name, spec)
    } catch (err) {
      this.#byFeed.delete(name)
      this.#byId.delete(subscriptionId)
      throw err
    }
    return { subscriptionId }
  }

  #unsubscribe(params: Record<string, unknown>): unknown {
    const raw = params.subscriptionId
    let ids: number[]
    if (raw === undefined || raw === null) ids = [...this.#byId.keys()]
    else {
      const id = Number(raw)
      if (!Number.isSafeInteger(id))
        throw new ApiError(
          -1100,
          "Illegal characters found in parameter 'subscriptionId'; legal range is '^[0-9]{1,5}$'.",
        )
      ids = this.#byId.has(id) ? [id] : []
    }
    const E = (this.#auth?.now ?? Date.now)()
    for (const id of ids) {
      const sub = this.#byId.get(id)!
      this.#byId.delete(id)
      this.#byFeed.delete(sub.name)
      this.#host.leave(sub.name, sub.spec)
      this.#host.send(
        JSON.stringify({ subscriptionId: id, event: { e: 'eventStreamTerminated', E } }),
        'event',
      )
    }
    return {}
  }
}
