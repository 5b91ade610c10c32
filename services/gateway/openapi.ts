/**
 * The gateway's OpenAPI 3.1 document, served at /openapi.json.
 *
 * The /v1 operations are generated from the zod schemas that validate their requests (v1/routes.ts), through
 * z.toJSONSchema (JSON Schema 2020-12, OpenAPI 3.1's dialect), and so are the /linkora ones, from the query
 * schemas that validate them and the schemas of their answers (linkora.ts). The Binance-compatible routes
 * parse their parameters by hand, Binance style (binance/request.ts), not with zod: they are described from
 * the table below — names, where they go and whether they are required, as plain strings, the validation
 * being the handler's — and any route the app serves that the table does not know is listed with no
 * parameters and says so, so the document covers every route the app answers.
 */
import type { Hono } from 'hono'
import { z } from 'zod'
import { LINKORA_ENDPOINTS, LINKORA_PREFIX, type LinkoraEndpoint } from './linkora.ts'
import type { Endpoint } from './v1/routes.ts'
import { ErrorBody } from './v1/schemas.ts'

type JsonSchema = Record<string, unknown>
// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is free-form JSON
type Doc = Record<string, any>

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as JsonSchema
  return rest
}

function parameters(schema: z.ZodObject | undefined, where: 'path' | 'query'): unknown[] {
  if (schema === undefined) return []
  const js = jsonSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] }
  return Object.entries(js.properties ?? {}).map(([name, s]) => {
    const { description, ...rest } = s
    return {
      name,
      in: where,
      required: where === 'path' || (js.required ?? []).includes(name),
      ...(description === undefined ? {} : { description }),
      schema: rest,
    }
  })
}

const errorRef = { $ref: '#/components/schemas/Error' }
const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid input: `field` names it',
  401: 'Not authenticated',
  403: 'Not allowed',
  404: 'Not found',
  409: 'Conflict',
  422: 'Refused (insufficient funds, rejected)',
  503: 'An engine or the OIDC issuer is unavailable; retry',
}

/** The answer's schema under `status`, and the `{code, message, field}` error under each error status. */
function responses(status: number, response: z.ZodType, errors: Iterable<number>): Doc {
  const out: Doc = {
    [status]: {
      description: status === 201 ? 'Created' : 'OK',
      content: { 'application/json': { schema: jsonSchema(response, 'output') } },
    },
  }
  for (const s of [...errors].sort())
    out[s] = { description: ERROR_TEXT[s] ?? 'Error', content: { 'application/json': { schema: errorRef } } }
  return out
}

function v1Operation(e: Endpoint): Doc {
  const statuses = new Set([400, ...(e.auth === 'none' ? [] : [401]), ...e.errors])
  return {
    operationId: e.operationId,
    summary: e.summary,
    ...(e.description === undefined ? {} : { description: e.description }),
    tags: [e.tag],
    security:
      e.auth === 'admin' ? [{ AdminToken: [] }] : e.auth === 'user' ? [{ ApiKey: [] }, { OidcJwt: [] }] : [],
    parameters: [...parameters(e.params, 'path'), ...parameters(e.query, 'query')],
    ...(e.body === undefined
      ? {}
      : {
          requestBody: {
            required: true,
            content: { 'application/json': { schema: jsonSchema(e.body, 'input') } },
          },
        }),
    responses: responses(e.status, e.response, statuses),
  }
}

function linkoraOperation(e: LinkoraEndpoint): Doc {
  return {
    operationId: e.operationId,
    summary: e.summary,
    tags: ['linkora'],
    security: [],
    parameters: parameters(e.query, 'query'),
    responses: responses(200, e.response, e.errors),
  }
}

type Security = 'NONE' | 'USER_DATA' | 'TRADE' | 'WITHDRAW'
interface BinanceRoute {
  summary: string
  security: Security
  /** Parameter names; a trailing `!` marks a required one. */
  params: string[]
}

const SYMBOL_LIST = ['symbol', 'symbols']
const ORDER_PARAMS = [
  'symbol!',
  'side!',
  'type!',
  'timeInForce',
  'quantity',
  'quoteOrderQty',
  'price',
  'newClientOrderId',
  'selfTradePreventionMode',
  'newOrderRespType',
]
const binanceRoutes: Record<string, BinanceRoute> = {
  'GET /api/v3/ping': { summary: 'Test connectivity', security: 'NONE', params: [] },
  'GET /api/v3/time': { summary: 'Server time', security: 'NONE', params: [] },
  'GET /api/v3/exchangeInfo': {
    summary: 'Markets and their filters',
    security: 'NONE',
    params: [...SYMBOL_LIST, 'symbolStatus', 'permissions', 'showPermissionSets'],
  },
  'GET /api/v3/depth': {
    summary: 'Order book',
    security: 'NONE',
    params: ['symbol!', 'limit', 'symbolStatus'],
  },
  'GET /api/v3/trades': { summary: 'Recent trades', security: 'NONE', params: ['symbol!', 'limit'] },
  'GET /api/v3/historicalTrades': {
    summary: 'Older trades',
    security: 'NONE',
    params: ['symbol!', 'limit', 'fromId'],
  },
  'GET /api/v3/aggTrades': {
    summary: 'Aggregate trades',
    security: 'NONE',
    params: ['symbol!', 'fromId', 'startTime', 'endTime', 'limit'],
  },
  'GET /api/v3/klines': {
    summary: 'K-lines',
    security: 'NONE',
    params: ['symbol!', 'interval!', 'startTime', 'endTime', 'timeZone', 'limit'],
  },
  'GET /api/v3/uiKlines': {
    summary: 'K-lines for display',
    security: 'NONE',
    params: ['symbol!', 'interval!', 'startTime', 'endTime', 'timeZone', 'limit'],
  },
  'GET /api/v3/avgPrice': { summary: 'Average price', security: 'NONE', params: ['symbol!'] },
  'GET /api/v3/ticker/24hr': {
    summary: '24h statistics',
    security: 'NONE',
    params: [...SYMBOL_LIST, 'type', 'symbolStatus'],
  },
  'GET /api/v3/ticker': {
    summary: 'Rolling window statistics',
    security: 'NONE',
    params: [...SYMBOL_LIST, 'windowSize', 'type', 'symbolStatus'],
  },
  'GET /api/v3/ticker/tradingDay': {
    summary: 'Trading day statistics',
    security: 'NONE',
    params: [...SYMBOL_LIST, 'timeZone', 'type', 'symbolStatus'],
  },
  'GET /api/v3/ticker/price': {
    summary: 'Latest price',
    security: 'NONE',
    params: [...SYMBOL_LIST, 'symbolStatus'],
  },
  'GET /api/v3/ticker/bookTicker': {
    summary: 'Best bid and ask',
    security: 'NONE',
    params: [...SYMBOL_LIST, 'symbolStatus'],
  },
  'POST /api/v3/order': { summary: 'Place an order', security: 'TRADE', params: ORDER_PARAMS },
  // order/test reads an order with the same parser as order.
  'POST /api/v3/order/test': {
    summary: 'Validate an order without placing it',
    security: 'TRADE',
    params: [...ORDER_PARAMS, 'computeCommissionRates'],
  },
  'DELETE /api/v3/order': {
    summary: 'Cancel an order',
    security: 'TRADE',
    params: ['symbol!', 'orderId', 'origClientOrderId', 'newClientOrderId', 'cancelRestrictions'],
  },
  // cancelReplace reads the new order with the same parser as order, and the cancel with DELETE order's.
  'POST /api/v3/order/cancelReplace': {
    summary: 'Cancel an order and place a new one',
    security: 'TRADE',
    params: [
      ...ORDER_PARAMS,
      'cancelReplaceMode!',
      'cancelOrderId',
      'cancelOrigClientOrderId',
      'cancelNewClientOrderId',
      'cancelRestrictions',
    ],
  },
  'DELETE /api/v3/openOrders': {
    summary: "Cancel a market's open orders",
    security: 'TRADE',
    params: ['symbol!'],
  },
  'GET /api/v3/order': {
    summary: 'Query an order',
    security: 'USER_DATA',
    params: ['symbol!', 'orderId', 'origClientOrderId'],
  },
  'GET /api/v3/openOrders': { summary: 'Open orders', security: 'USER_DATA', params: ['symbol'] },
  'GET /api/v3/allOrders': {
    summary: 'All orders',
    security: 'USER_DATA',
    params: ['symbol!', 'orderId', 'startTime', 'endTime', 'limit'],
  },
  'GET /api/v3/myTrades': {
    summary: 'Account trades',
    security: 'USER_DATA',
    params: ['symbol!', 'orderId', 'startTime', 'endTime', 'fromId', 'limit'],
  },
  'GET /api/v3/account/commission': {
    summary: "Commission rates of a market's trades",
    security: 'USER_DATA',
    params: ['symbol!'],
  },
  'GET /api/v3/myFilters': {
    summary: 'Filters an order of the account meets on a market',
    security: 'USER_DATA',
    params: ['symbol!'],
  },
  'GET /api/v3/account': {
    summary: 'Account and balances',
    security: 'USER_DATA',
    params: ['omitZeroBalances'],
  },
  'GET /sapi/v1/capital/deposit/address': {
    summary: 'Deposit address',
    security: 'USER_DATA',
    params: ['coin!', 'network', 'amount'],
  },
  'GET /sapi/v1/capital/deposit/hisrec': {
    summary: 'Deposit history',
    security: 'USER_DATA',
    params: ['coin', 'status', 'startTime', 'endTime', 'offset', 'limit', 'txId', 'includeSource'],
  },
  'GET /v1/deposit-address': {
    summary: 'Deposit address (Binance-signed)',
    security: 'USER_DATA',
    params: ['coin', 'asset', 'network'],
  },
  'POST /sapi/v1/capital/withdraw/apply': {
    summary: 'Request a withdrawal',
    security: 'WITHDRAW',
    params: ['coin!', 'address!', 'amount!', 'network', 'addressTag', 'withdrawOrderId'],
  },
  'GET /sapi/v1/capital/withdraw/history': {
    summary: 'Withdrawal history',
    security: 'USER_DATA',
    params: ['coin', 'withdrawOrderId', 'status', 'offset', 'limit', 'idList', 'startTime', 'endTime'],
  },
}

const binanceError = {
  type: 'object',
  properties: { code: { type: 'integer' }, msg: { type: 'string' } },
  required: ['code', 'msg'],
}

function binanceOperation(method: string, path: string, known: BinanceRoute | undefined): Doc {
  const security: Security = known?.security ?? 'NONE'
  const names = [...(known?.params ?? [])]
  if (security !== 'NONE') names.push('timestamp!', 'recvWindow', 'signature!')
  return {
    operationId: `binance_${method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ?? '').toUpperCase())}`,
    summary: known?.summary ?? `${method} ${path}`,
    description:
      known === undefined
        ? 'Served by the gateway; its parameters are not described here.'
        : "Binance Spot API compatible: parameters as in Binance's documentation, in the query string or an " +
          'application/x-www-form-urlencoded body, validated by the handler (not by a schema here).' +
          (security === 'NONE'
            ? ''
            : ' SIGNED: X-MBX-APIKEY, `timestamp`, and `signature` (HMAC-SHA256 hex, or Ed25519 base64) over the query string followed by the body.'),
    tags: [path.startsWith('/sapi/') || path.startsWith('/v1/') ? 'binance-wallet' : 'binance'],
    security: security === 'NONE' ? [] : [{ BinanceApiKey: [] }],
    parameters: names.map((n) => ({
      name: n.replace(/!$/, ''),
      in: 'query',
      required: n.endsWith('!'),
      schema: { type: 'string' },
    })),
    responses: {
      200: { description: "OK (Binance's response shape)", content: { 'application/json': { schema: {} } } },
      400: { description: 'Binance error', content: { 'application/json': { schema: binanceError } } },
      401: { description: 'Binance error', content: { 'application/json': { schema: binanceError } } },
      403: { description: 'Binance error', content: { 'application/json': { schema: binanceError } } },
      404: { description: 'Binance error', content: { 'application/json': { schema: binanceError } } },
      429: { description: 'Too many requests', content: { 'application/json': { schema: binanceError } } },
    },
  }
}

export function openApiDocument(app: Hono, v1: readonly Endpoint[]): Doc {
  const paths: Doc = {}
  const add = (path: string, method: string, op: Doc) => {
    paths[path] ??= {}
    paths[path][method] = op
  }
  const documented = new Set<string>()
  for (const e of v1) {
    add(e.path, e.method, v1Operation(e))
    documented.add(`${e.method.toUpperCase()} ${e.path.replace(/\{(\w+)\}/g, ':$1')}`)
  }
  for (const e of Object.values(LINKORA_ENDPOINTS)) {
    add(`${LINKORA_PREFIX}${e.path}`, 'get', linkoraOperation(e))
    documented.add(`GET ${LINKORA_PREFIX}${e.path}`)
  }
  for (const r of app.routes) {
    const method = r.method.toUpperCase()
    if (!['GET', 'POST', 'PUT', 'DELETE', 'PATCH'].includes(method)) continue
    const key = `${method} ${r.path}`
    if (documented.has(key) || r.path === '/openapi.json' || r.path.includes('*')) continue
    documented.add(key)
    const path = r.path.replace(/:(\w+)/g, '{$1}')
    const op = binanceOperation(method, r.path, binanceRoutes[key])
    for (const [, name] of r.path.matchAll(/:(\w+)/g))
      op.parameters.unshift({ name, in: 'path', required: true, schema: { type: 'string' } })
    add(path, method.toLowerCase(), op)
  }
  add('/openapi.json', 'get', {
    operationId: 'openapi',
    summary: 'This document',
    tags: ['meta'],
    security: [],
    responses: {
      200: { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } },
    },
  })
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'Bourse gateway',
      version: '1',
      description:
        'The native /v1 API and the Linkora market-data API under /linkora (schemas generated from the zod ' +
        'schemas that validate them) and the Binance Spot API v3 compatible routes (described by name; ' +
        'Binance documents their shapes).',
    },
    tags: [
      { name: 'users', description: 'Users (administrators)' },
      {
        name: 'api-keys',
        description: 'API keys: the secret is returned once, stored encrypted, never logged',
      },
      { name: 'account', description: "The caller's own account" },
      { name: 'admin', description: 'Market and ledger administration' },
      { name: 'binance', description: 'Binance Spot API v3 compatible' },
      { name: 'binance-wallet', description: 'Binance wallet API compatible (deposits, withdrawals)' },
      { name: 'linkora', description: "The seeds' (Linkora) market-data API: candles, order book, price" },
      { name: 'meta', description: 'This document' },
    ],
    paths,
    components: {
      schemas: { Error: jsonSchema(ErrorBody, 'output') },
      securitySchemes: {
        AdminToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'Authorization: Bearer <the BOURSE_ADMIN_TOKEN Secret>.',
        },
        OidcJwt: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            "Authorization: Bearer <a JWT from the configured OIDC issuer>, verified against the issuer's JWKS; " +
            "its `sub` is a user's `oidcSubject`.",
        },
        ApiKey: {
          type: 'apiKey',
          in: 'header',
          name: 'X-Bourse-Key',
          description:
            'X-Bourse-Key: <apiKey>, X-Bourse-Timestamp: <epoch ms>, X-Bourse-Signature: a signature of ' +
            '`<timestamp>\\n<METHOD>\\n<path and query as sent>\\n<body>` — HMAC-SHA256 hex with the secret, or ' +
            'Ed25519 base64 for an Ed25519 key. The timestamp must be within 5 s of the server clock.',
        },
        BinanceApiKey: { type: 'apiKey', in: 'header', name: 'X-MBX-APIKEY' },
      },
    },
  }
}
