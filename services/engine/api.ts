/**
 * The engine's internal HTTP API, what the gateway calls: place, cancel, cancel-all, query an order, a
 * user's open orders, depth, status, halt and resume. Every input is validated; bad input is a 400 that
 * names the field and changes nothing. Errors are `{code, message, field?}` with the error's HTTP status.
 */
import { Hono } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { z } from 'zod'
import { BourseError, invalidInput } from '../../lib/errors.ts'
import type { MatchingEngine } from './engine.ts'

const userId = z
  .string()
  .regex(/^[1-9]\d{0,18}$/, 'expected a user id')
  .transform(BigInt)
const orderId = z
  .string()
  .regex(/^[1-9]\d{0,18}$/, 'expected an order id')
  .transform(BigInt)
const decimal = z.string().regex(/^\d{1,40}(\.\d{1,40})?$/, 'expected a decimal string')

export const PlaceOrderBody = z.strictObject({
  userId,
  side: z.enum(['BUY', 'SELL']),
  type: z.enum(['LIMIT', 'MARKET', 'LIMIT_MAKER']),
  timeInForce: z.enum(['GTC', 'IOC', 'FOK']).optional(),
  price: decimal.optional(),
  quantity: decimal.optional(),
  quoteOrderQty: decimal.optional(),
  clientOrderId: z
    .string()
    .regex(/^[.A-Za-z0-9_-]{1,36}$/, 'expected 1-36 characters of [.A-Za-z0-9_-]')
    .optional(),
  selfTradePreventionMode: z.enum(['NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH']).optional(),
})

const CancelQuery = z.strictObject({
  userId,
  orderId: orderId.optional(),
  clientOrderId: z.string().min(1).optional(),
})
const UserQuery = z.strictObject({ userId })
const DepthQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(5000).default(100) })

function parse<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issue = result.error.issues[0]!
  // An unknown key is reported on the object that holds it: name the key itself.
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : issue.path
  throw invalidInput(path.join('.') || 'body', issue.message)
}

async function jsonBody(request: Request): Promise<unknown> {
  try {
    return await request.json()
  } catch {
    throw invalidInput('body', 'expected a JSON object')
  }
}

/** One route of the API: validates its query and body and answers a JSON-safe value, or throws a BourseError. */
interface Route {
  method: 'GET' | 'POST' | 'DELETE'
  path: string
  run(query: Record<string, string>, body: () => Promise<unknown>): unknown
}

function routes(engine: MatchingEngine): Route[] {
  return [
    {
      method: 'POST',
      path: '/orders',
      run: async (_, body) => engine.submit({ kind: 'place', order: parse(PlaceOrderBody, await body()) }),
    },
    {
      method: 'DELETE',
      path: '/orders',
      run: (query) => engine.submit({ kind: 'cancel', ...parse(CancelQuery, query) }),
    },
    {
      method: 'GET',
      path: '/orders',
      run(query) {
        const q = parse(CancelQuery, query)
        if ((q.orderId === undefined) === (q.clientOrderId === undefined))
          throw invalidInput('orderId', 'send exactly one of orderId and clientOrderId')
        const order = engine.order(q.userId, q)
        if (order === undefined)
          throw new BourseError('not_found', 'Order does not exist.', { field: 'orderId' })
        return order
      },
    },
    {
      method: 'GET',
      path: '/open-orders',
      run: (query) => engine.openOrders(parse(UserQuery, query).userId),
    },
    {
      method: 'DELETE',
      path: '/open-orders',
      run: (query) => engine.submit({ kind: 'cancelAll', userId: parse(UserQuery, query).userId }),
    },
    { method: 'GET', path: '/depth', run: (query) => engine.depth(parse(DepthQuery, query).limit) },
    { method: 'GET', path: '/status', run: () => engine.status() },
    { method: 'POST', path: '/halt', run: () => engine.submit({ kind: 'halt' }) },
    { method: 'POST', path: '/resume', run: () => engine.submit({ kind: 'resume' }) },
  ]
}

const asBourseError = (err: unknown) =>
  err instanceof BourseError ? err : new BourseError('internal', 'internal error', { cause: err })

export function engineApi(engine: MatchingEngine): Hono {
  const app = new Hono()
  app.onError((err, c) => {
    const error = asBourseError(err)
    return c.json(error.toJSON(), error.status as ContentfulStatusCode)
  })
  for (const route of routes(engine)) {
    app.on(route.method, route.path, async (c) =>
      c.json((await route.run(c.req.query(), () => jsonBody(c.req.raw))) as object),
    )
  }
  return app
}

/** One call to the engine's API (`target`: path and query): its answer, or the engine's BourseError. */
export type EngineTransport = (method: string, target: string, body?: unknown) => Promise<unknown>

/**
 * The same routes called in this process (the embedded mode, tests): `call('DELETE', '/orders?userId=7&…')`
 * answers what the HTTP API's body would hold, or rejects with the BourseError it would answer, without a
 * Request, a Response and JSON in between (those cost an order ~40 µs of the gateway's thread).
 */
export function engineCaller(engine: MatchingEngine): EngineTransport {
  const byKey = new Map(routes(engine).map((r) => [`${r.method} ${r.path}`, r]))
  return async (method, target, body) => {
    const q = target.indexOf('?')
    const route = byKey.get(`${method} ${q === -1 ? target : target.slice(0, q)}`)
    if (route === undefined) throw new BourseError('not_found', `no engine route ${method} ${target}`)
    const query = q === -1 ? {} : Object.fromEntries(new URLSearchParams(target.slice(q + 1)))
    try {
      return await route.run(query, async () => body)
    } catch (err) {
      throw asBourseError(err)
    }
  }
}
