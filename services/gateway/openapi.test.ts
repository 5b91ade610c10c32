/**
 * /openapi.json: an OpenAPI 3.1 document whose /v1 operations are the zod schemas that validate them, every
 * documented route served by the app (and every route the app serves documented), and every reference and
 * path parameter resolvable. (Full validation against the OpenAPI 3.1 schema: fuzz.test.ts.)
 */
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createPubSubCache, InProcessRedis } from '../../adapters/pubsub/index.ts'
import { createLogger } from '../../lib/log.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { createGatewayApp } from './app.ts'
import { EngineClient } from './engine-client.ts'
import { LINKORA_ENDPOINTS } from './linkora.ts'
import { AdjustBalanceBody } from './v1/schemas.ts'

// biome-ignore lint/suspicious/noExplicitAny: a free-form JSON document, checked by shape
type Doc = any

let fx: MarketFixture
let app: Hono
let doc: Doc

beforeAll(async () => {
  fx = await marketFixture('pglite')
  const engine = await fx.engine()
  app = createGatewayApp({
    db: fx.database.db,
    engines: new Map([['BTCUSDT', EngineClient.inProcess(engine)]]),
    cache: createPubSubCache({ kind: 'memory', server: new InProcessRedis() }),
    config: {
      keyEncryptionKey: Buffer.alloc(32, 1),
      weightPerMinute: 6000,
      rejectionsBeforeBan: 10,
      trustProxy: false,
      adminToken: 'token',
    },
    log: createLogger('gateway-test', { level: 'silent' }),
  })
  const response = await app.request('/openapi.json')
  expect(response.status).toBe(200)
  doc = await response.json()
})

afterAll(async () => {
  await fx?.close()
})

const METHODS = ['get', 'post', 'put', 'delete', 'patch']

function operations(): Array<{ path: string; method: string; op: Doc }> {
  return Object.entries(doc.paths as Record<string, Doc>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.includes(method))
      .map(([method, op]) => ({ path, method, op })),
  )
}

function resolve(ref: string): unknown {
  expect(ref.startsWith('#/')).toBe(true)
  return ref
    .slice(2)
    .split('/')
    .reduce<Doc>((node, part) => node?.[part.replaceAll('~1', '/').replaceAll('~0', '~')], doc)
}

function refs(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) refs(n, out)
  else if (node !== null && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v)
      else refs(v, out)
    }
  }
  return out
}

describe('/openapi.json', () => {
  it('is OpenAPI 3.1 with unique operation ids, answers for each operation, and resolvable references', () => {
    expect(doc.openapi).toBe('3.1.0')
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) })
    const ids = operations().map((o) => o.op.operationId)
    expect(new Set(ids).size).toBe(ids.length)
    for (const { path, method, op } of operations()) {
      expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0)
      for (const status of Object.keys(op.responses)) expect(status).toMatch(/^[1-5]\d\d$/)
      const declared = (op.parameters ?? []).filter((p: Doc) => p.in === 'path').map((p: Doc) => p.name)
      const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1])
      expect(declared.sort(), `${method} ${path}`).toEqual(inPath.sort())
      for (const p of op.parameters ?? []) {
        expect(['path', 'query', 'header']).toContain(p.in)
        if (p.in === 'path') expect(p.required).toBe(true)
      }
      for (const requirement of op.security ?? [])
        for (const scheme of Object.keys(requirement))
          expect(doc.components.securitySchemes[scheme]).toBeDefined()
    }
    for (const ref of refs(doc)) expect(resolve(ref), ref).toBeDefined()
  })

  it('documents /v1 from the zod schemas that validate it', () => {
    const op = doc.paths['/v1/admin/balance-adjustments'].post
    const schema = op.requestBody.content['application/json'].schema
    const { $schema: _, ...expected } = z.toJSONSchema(AdjustBalanceBody, {
      target: 'draft-2020-12',
      io: 'input',
    })
    expect(schema).toEqual(expected)
    expect(schema.required).toEqual(['userId', 'asset', 'amount', 'reason'])
    expect(schema.additionalProperties).toBe(false)
    expect(op.security).toEqual([{ AdminToken: [] }])
    expect(op.responses['400'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Error',
    })
    const list = doc.paths['/v1/users'].get.parameters
    expect(list.map((p: Doc) => [p.name, p.in, p.required])).toEqual([
      ['limit', 'query', false],
      ['after', 'query', false],
    ])
    expect(doc.paths['/v1/balances'].get.security).toEqual([{ ApiKey: [] }, { OidcJwt: [] }])
    // The Binance routes are described by name, honestly untyped.
    const depth = doc.paths['/api/v3/depth'].get
    expect(depth.parameters.map((p: Doc) => [p.name, p.required])).toEqual([
      ['symbol', true],
      ['limit', false],
      ['symbolStatus', false],
    ])
    expect(doc.paths['/api/v3/order'].post.parameters.map((p: Doc) => p.name)).toContain('signature')
  })

  it('documents /linkora from the zod schemas that validate its queries and shape its answers', () => {
    const candles = doc.paths['/linkora/candles'].get
    expect(candles.parameters.map((p: Doc) => [p.name, p.in, p.required])).toEqual([
      ['symbol', 'query', true],
      ['timeframe', 'query', false],
      ['limit', 'query', false],
    ])
    expect(candles.parameters[2].schema).toMatchObject({ minimum: 1, maximum: 1000, default: 100 })
    const { $schema: _, ...expected } = z.toJSONSchema(LINKORA_ENDPOINTS.candles.response, {
      target: 'draft-2020-12',
      io: 'output',
    })
    expect(candles.responses['200'].content['application/json'].schema).toEqual(expected)
    expect(candles.responses['400'].content['application/json'].schema).toEqual({
      $ref: '#/components/schemas/Error',
    })
    expect(
      doc.paths['/linkora/price'].get.responses['200'].content['application/json'].schema.properties.trend,
    ).toEqual({ type: 'string', enum: ['up', 'down', 'flat'] })
    expect(
      Object.keys(doc.paths)
        .filter((p) => p.startsWith('/linkora/'))
        .sort(),
    ).toEqual([
      '/linkora/candles',
      '/linkora/health',
      '/linkora/orderbook',
      '/linkora/price',
      '/linkora/symbols',
    ])
  })

  it('documents every route the app serves, and the app serves every documented route', async () => {
    const served = new Set(
      app.routes
        .filter((r) => METHODS.includes(r.method.toLowerCase()))
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`),
    )
    const documented = new Set(operations().map((o) => `${o.method} ${o.path}`))
    expect([...documented].sort()).toEqual([...served].sort())
    // And each answers as itself, not as the router's 404.
    for (const { path, method } of operations()) {
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => (name === 'symbol' ? 'BTCUSDT' : '1'))
      const response = await app.request(url, { method: method.toUpperCase() })
      const text = await response.text()
      expect(text, `${method} ${path}`).not.toBe('404 Not Found')
      expect(response.status, `${method} ${path}`).toBeLessThan(500)
    }
  })
})
