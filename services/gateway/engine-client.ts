/**
 * How the gateway reaches one market's engine: its internal API (services/engine/api.ts). In a deployment
 * that is HTTP to the engine's Service URL through a `fetch`-like function (undici keeps connections alive
 * between calls); in the embedded mode and in tests it is `engineCaller(engine)`, the same routes called in
 * process. One client, two transports, the same errors: the engine's `{code, message, field}` answers become
 * BourseErrors again here.
 */
import { BourseError, ERROR_CODES, type ErrorCode, errorChain } from '../../lib/errors.ts'
import { type EngineTransport, engineCaller } from '../engine/api.ts'
import type { CommandResult, Fill } from '../engine/batch.ts'
import type { MatchingEngine } from '../engine/engine.ts'
import type { OrderView } from '../engine/events.ts'

export type FetchLike = (input: string, init?: RequestInit) => Response | Promise<Response>

export interface PlaceOrder {
  userId: bigint
  side: 'BUY' | 'SELL'
  type: 'LIMIT' | 'MARKET' | 'LIMIT_MAKER'
  timeInForce?: 'GTC' | 'IOC' | 'FOK'
  price?: string
  quantity?: string
  quoteOrderQty?: string
  clientOrderId?: string
  selfTradePreventionMode?: 'NONE' | 'EXPIRE_TAKER' | 'EXPIRE_MAKER' | 'EXPIRE_BOTH'
}

export interface OrderRef {
  orderId?: bigint
  clientOrderId?: string
}

export interface EngineDepth {
  bids: [string, string][]
  asks: [string, string][]
  lastUpdateId: string
}

export interface EngineStatus {
  symbol: string
  status: 'trading' | 'halted'
  epoch: string
  fenced: boolean
  openOrders: number
  lastPrice: string | null
  lastSeq: string
}

const errorCodes = new Set<string>(ERROR_CODES)

export class EngineClient {
  readonly symbol: string
  private readonly transport: EngineTransport

  constructor(symbol: string, transport: EngineTransport) {
    this.symbol = symbol
    this.transport = transport
  }

  /** The engine's API over the network: `url` is its Service, e.g. http://engine-btcusdt:7000. */
  static remote(symbol: string, url: string, fetchImpl: FetchLike = fetch): EngineClient {
    return new EngineClient(symbol, httpTransport(symbol, url.replace(/\/+$/, ''), fetchImpl))
  }

  /** The same API called in this process (embedded mode, tests): no socket, the same routes and errors. */
  static inProcess(engine: MatchingEngine): EngineClient {
    return new EngineClient(engine.symbol, engineCaller(engine))
  }

  async place(order: PlaceOrder): Promise<{ order: OrderView; fills: Fill[] }> {
    const result = await this.call<CommandResult>('POST', '/orders', {
      ...order,
      userId: String(order.userId),
    })
    if (result.kind !== 'order') throw unexpected(result)
    return { order: result.order, fills: result.fills }
  }

  async cancel(userId: bigint, ref: OrderRef): Promise<OrderView> {
    const result = await this.call<CommandResult>('DELETE', `/orders?${refQuery(userId, ref)}`)
    if (result.kind !== 'order') throw unexpected(result)
    return result.order
  }

  async cancelAll(userId: bigint): Promise<OrderView[]> {
    const result = await this.call<CommandResult>('DELETE', `/open-orders?userId=${userId}`)
    if (result.kind !== 'orders') throw unexpected(result)
    return result.orders
  }

  /** An open order of the user's; not_found once it is closed (closed orders are in Postgres). */
  order(userId: bigint, ref: OrderRef): Promise<OrderView> {
    return this.call('GET', `/orders?${refQuery(userId, ref)}`)
  }

  openOrders(userId: bigint): Promise<OrderView[]> {
    return this.call('GET', `/open-orders?userId=${userId}`)
  }

  depth(limit: number): Promise<EngineDepth> {
    return this.call('GET', `/depth?limit=${limit}`)
  }

  status(): Promise<EngineStatus> {
    return this.call('GET', '/status')
  }

  /** Halts trading (committed before it answers); halting a halted market changes nothing. */
  halt(): Promise<'trading' | 'halted'> {
    return this.marketCommand('/halt')
  }

  resume(): Promise<'trading' | 'halted'> {
    return this.marketCommand('/resume')
  }

  private async marketCommand(path: string): Promise<'trading' | 'halted'> {
    const result = await this.call<CommandResult>('POST', path)
    if (result.kind !== 'market') throw unexpected(result)
    return result.status
  }

  private async call<T>(method: string, target: string, body?: unknown): Promise<T> {
    return (await this.transport(method, target, body)) as T
  }
}

function httpTransport(symbol: string, baseUrl: string, fetchImpl: FetchLike): EngineTransport {
  return async (method, target, body) => {
    const init: RequestInit = { method }
    if (body !== undefined) {
      init.body = JSON.stringify(body)
      init.headers = { 'content-type': 'application/json' }
    }
    let response: Response
    try {
      response = await fetchImpl(`${baseUrl}${target}`, init)
    } catch (err) {
      // A read, or a connection refused, changed nothing; any other command may have reached the engine.
      if (method === 'GET' || [...errorChain(err)].some((e) => e.code === 'ECONNREFUSED'))
        throw new BourseError('unavailable', `engine ${symbol} is unreachable`, { cause: err })
      throw new BourseError('outcome_unknown', `engine ${symbol} did not answer`, { cause: err })
    }
    const text = await response.text()
    let payload: unknown
    try {
      payload = JSON.parse(text)
    } catch (err) {
      throw new BourseError('internal', `engine ${symbol} answered ${response.status} without JSON`, {
        cause: err,
      })
    }
    if (response.ok) return payload
    throw engineError(payload, response.status)
  }
}

function refQuery(userId: bigint, ref: OrderRef): string {
  const q = new URLSearchParams({ userId: String(userId) })
  if (ref.orderId !== undefined) q.set('orderId', String(ref.orderId))
  if (ref.clientOrderId !== undefined) q.set('clientOrderId', ref.clientOrderId)
  return q.toString()
}

function engineError(payload: unknown, status: number): BourseError {
  const p = (payload ?? {}) as { code?: unknown; message?: unknown; field?: unknown }
  const code = typeof p.code === 'string' && errorCodes.has(p.code) ? (p.code as ErrorCode) : null
  const message = typeof p.message === 'string' ? p.message : `engine answered ${status}`
  const field = typeof p.field === 'string' ? p.field : undefined
  return new BourseError(
    code ?? (status >= 500 ? 'unavailable' : 'internal'),
    message,
    field === undefined ? {} : { field },
  )
}

function unexpected(result: CommandResult): BourseError {
  return new BourseError('internal', `unexpected engine answer of kind ${result.kind}`)
}
