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

export function engineApi(engine: MatchingEngine): Hono {
  const app = new Hono()
  app.onError((err, c) => {
    const error =
      err instanceof BourseError ? err : new BourseError('internal', 'internal error', { cause: err })
    return c.json(error.toJSON(), error.status as ContentfulStatusCode)
  })
  app.post('/orders', async (c) => {
    const order = parse(PlaceOrderBody, await jsonBody(c.req.raw))
    return c.json(await engine.submit({ kind: 'place', order }))
  })
  app.delete('/orders', async (c) => {
    const q = parse(CancelQuery, c.req.query())
    return c.json(await engine.submit({ kind: 'cancel', ...q }))
  })
  app.get('/orders', (c) => {
    const q = parse(CancelQuery, c.req.query())
    if ((q.orderId === undefined) === (q.clientOrderId === undefined))
      throw invalidInput('orderId', 'send exactly one of orderId and clientOrderId')
    const order = engine.order(q.userId, q)
    if (order === undefined) throw new BourseError('not_found', 'Order does not exist.', { field: 'orderId' })
    return c.json(order)
  })
  app.get('/open-orders', (c) => c.json(engine.openOrders(parse(UserQuery, c.req.query()).userId)))
  app.delete('/open-orders', async (c) => {
    const { userId } = parse(UserQuery, c.req.query())
    return c.json(await engine.submit({ kind: 'cancelAll', userId }))
  })
  app.get('/depth', async (c) => c.json(await engine.depth(parse(DepthQuery, c.req.query()).limit)))
  app.get('/status', (c) => c.json(engine.status()))
  app.post('/halt', async (c) => c.json(await engine.submit({ kind: 'halt' })))
  app.post('/resume', async (c) => c.json(await engine.submit({ kind: 'resume' })))
  return app
}
