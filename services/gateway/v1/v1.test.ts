/**
 * The native /v1 API through app.request: PGlite, the in-process engine, admin token, API keys signed as
 * documented in auth.ts, and JWTs of an OIDC issuer served from a local HTTP server (discovery + JWKS) with a
 * key pair generated here.
 */
import { createHmac, generateKeyPairSync, type KeyObject, sign } from 'node:crypto'
import { Writable } from 'node:stream'
import { sql } from 'drizzle-orm'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../../adapters/db/database.ts'
import { createPubSubCache, InProcessRedis } from '../../../adapters/pubsub/index.ts'
import { createLogger } from '../../../lib/log.ts'
import type { MatchingEngine } from '../../engine/engine.ts'
import { type MarketFixture, marketFixture } from '../../engine/testing.ts'
import { createGatewayApp, type GatewayConfig } from '../app.ts'
import { EngineClient } from '../engine-client.ts'
import { startTestIssuer, type TestIssuer } from './testing.ts'

const ADMIN = 'admin-token-for-tests-0123456789'
const encryptionKey = Buffer.alloc(32, 9)

// biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field
type Answer = any

let fx: MarketFixture
let engine: MatchingEngine
let app: Hono
let issuer: string
let oidc: TestIssuer
const logLines: string[] = []
let alice: bigint

beforeAll(async () => {
  fx = await marketFixture('pglite')
  engine = await fx.engine()
  alice = await fx.trader('alice', { USDT: '1000' })
  await fx.database.db.execute(sql`update users set oidc_subject = 'alice-sub' where id = ${alice}`)

  oidc = await startTestIssuer()
  issuer = oidc.issuer
  app = gateway({ adminToken: ADMIN, oidc: { issuer, audience: 'bourse' } })
})

afterAll(async () => {
  await fx?.close()
  await oidc?.close()
})

function gateway(extra: Partial<GatewayConfig>): Hono {
  const destination = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk))
      done()
    },
  })
  return createGatewayApp({
    db: fx.database.db,
    engines: new Map([['BTCUSDT', EngineClient.inProcess(engine)]]),
    cache: createPubSubCache({ kind: 'memory', server: new InProcessRedis() }),
    config: {
      keyEncryptionKey: encryptionKey,
      weightPerMinute: 6000,
      rejectionsBeforeBan: 10,
      trustProxy: true,
      ...extra,
    },
    log: createLogger('gateway-test', { level: 'info', destination }),
  })
}

async function call(
  method: string,
  path: string,
  options: { body?: unknown; headers?: Record<string, string> } = {},
) {
  const init: RequestInit = { method, headers: { 'x-forwarded-for': '198.51.100.1', ...options.headers } }
  if (options.body !== undefined) {
    init.body = typeof options.body === 'string' ? options.body : JSON.stringify(options.body)
    ;(init.headers as Record<string, string>)['content-type'] = 'application/json'
  }
  const response = await app.request(path, init)
  return { status: response.status, body: (await response.json()) as Answer }
}

const admin = (method: string, path: string, body?: unknown) =>
  call(method, path, { body, headers: { authorization: `Bearer ${ADMIN}` } })

interface Creds {
  apiKey: string
  secretKey?: string
  privateKey?: KeyObject
}

function signedHeaders(creds: Creds, method: string, path: string, body = '', timestamp = Date.now()) {
  const payload = `${timestamp}\n${method}\n${path}\n${body}`
  const signature =
    creds.secretKey !== undefined
      ? createHmac('sha256', creds.secretKey).update(payload).digest('hex')
      : sign(null, Buffer.from(payload), creds.privateKey!).toString('base64')
  return {
    'x-bourse-key': creds.apiKey,
    'x-bourse-timestamp': String(timestamp),
    'x-bourse-signature': signature,
  }
}

async function asKey(
  creds: Creds,
  method: string,
  path: string,
  opts: { ip?: string; timestamp?: number } = {},
) {
  const response = await app.request(path, {
    method,
    headers: {
      ...signedHeaders(creds, method, path, '', opts.timestamp),
      'x-forwarded-for': opts.ip ?? '198.51.100.1',
    },
  })
  return { status: response.status, body: (await response.json()) as Answer }
}

const jwt = (claims: { sub?: string; iss?: string; aud?: string; exp?: string }, foreign = false) =>
  oidc.sign({ ...claims, foreign })

describe('admin auth', () => {
  it('refuses a missing or wrong token and accepts the configured one', async () => {
    expect((await call('GET', '/v1/users')).status).toBe(401)
    const wrong = await call('GET', '/v1/users', { headers: { authorization: 'Bearer nope' } })
    expect(wrong).toEqual({ status: 401, body: { code: 'unauthorized', message: 'wrong admin token' } })
    expect((await admin('GET', '/v1/users')).status).toBe(200)
  })

  it('is off without a configured token', async () => {
    const off = gateway({})
    const r = await off.request('/v1/users', { headers: { authorization: `Bearer ${ADMIN}` } })
    expect(r.status).toBe(401)
    expect(((await r.json()) as Answer).message).toMatch(/admin API is off/)
  })
})

describe('users', () => {
  it('creates, lists, reads and refuses duplicates and bad input with the field', async () => {
    const created = await admin('POST', '/v1/users', { name: 'carol', oidcSubject: 'carol-sub' })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({ name: 'carol', oidcSubject: 'carol-sub' })
    expect((await admin('POST', '/v1/users', { name: 'carol' })).status).toBe(409)
    expect((await admin('GET', `/v1/users/${created.body.id}`)).body.name).toBe('carol')
    expect((await admin('GET', '/v1/users/999999')).status).toBe(404)
    const list = await admin('GET', `/v1/users?limit=1&after=${alice}`)
    expect(list.body.map((u: Answer) => u.name)).toEqual(['carol'])

    expect(await admin('POST', '/v1/users', { name: 'no spaces' })).toMatchObject({
      status: 400,
      body: { code: 'invalid_input', field: 'name' },
    })
    expect((await admin('POST', '/v1/users', { name: 'x', extra: 1 })).body.field).toBe('extra')
    expect((await admin('POST', '/v1/users', '{not json')).body.field).toBe('body')
    expect((await admin('GET', '/v1/users/99999999999999999999')).body.field).toBe('userId')
    expect((await admin('GET', '/v1/users?limit=0')).body.field).toBe('limit')
    expect((await admin('GET', '/v1/users?bogus=1')).body.field).toBe('bogus')
  })
})

describe('API keys and user auth', () => {
  it('shows the secret once, stores it encrypted, never logs it, lists without it, and signs /v1 and Binance requests', async () => {
    const created = await admin('POST', `/v1/users/${alice}/api-keys`, {
      label: 'bot',
      permissions: ['read', 'trade'],
      allowedIps: ['198.51.100.1'],
    })
    expect(created.status).toBe(201)
    expect(created.body).toMatchObject({
      kind: 'HMAC',
      permissions: ['read', 'trade'],
      allowedIps: ['198.51.100.1'],
    })
    const creds: Creds = created.body
    expect(creds.secretKey).toMatch(/^[A-Za-z0-9]{64}$/)

    const listed = await admin('GET', `/v1/users/${alice}/api-keys`)
    expect(listed.body).toHaveLength(1)
    expect(listed.body[0]).not.toHaveProperty('secretKey')
    expect(JSON.stringify(listed.body)).not.toContain(creds.secretKey)
    const [row] = await queryRows<{ secret_encrypted: string }>(
      fx.database.db,
      sql`select secret_encrypted from api_keys where api_key = ${creds.apiKey}`,
    )
    expect(row!.secret_encrypted).not.toContain(creds.secretKey)

    const balances = await asKey(creds, 'GET', '/v1/balances')
    expect(balances).toEqual({ status: 200, body: [{ asset: 'USDT', available: '1000', frozen: '0' }] })
    const me = await asKey(creds, 'GET', '/v1/me')
    expect(me.body).toEqual({
      userId: String(alice),
      name: 'alice',
      authenticatedBy: 'apiKey',
      permissions: ['read', 'trade'],
    })

    // The same key on the Binance API.
    const query = `timestamp=${Date.now()}`
    const signature = createHmac('sha256', creds.secretKey!).update(query).digest('hex')
    const account = await app.request(`/api/v3/account?${query}&signature=${signature}`, {
      headers: { 'x-mbx-apikey': creds.apiKey, 'x-forwarded-for': '198.51.100.1' },
    })
    expect(account.status).toBe(200)

    expect((await asKey(creds, 'GET', '/v1/balances', { ip: '203.0.113.9' })).status).toBe(403)
    expect((await asKey(creds, 'GET', '/v1/balances', { timestamp: Date.now() - 60_000 })).status).toBe(401)
    const tampered = await app.request('/v1/balances', {
      headers: { ...signedHeaders(creds, 'GET', '/v1/me'), 'x-forwarded-for': '198.51.100.1' },
    })
    expect(tampered.status).toBe(401)
    expect(logLines.join('')).not.toContain(creds.secretKey)
    expect(logLines.join('')).toContain('API key created')
  })

  it('needs the read permission for balances, and an Ed25519 key works as well', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    const created = await admin('POST', `/v1/users/${alice}/api-keys`, {
      kind: 'ED25519',
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      permissions: ['trade'],
    })
    expect(created.status).toBe(201)
    expect(created.body.secretKey).toBeUndefined()
    const creds = { apiKey: created.body.apiKey, privateKey }
    expect((await asKey(creds, 'GET', '/v1/me')).status).toBe(200)
    expect((await asKey(creds, 'GET', '/v1/balances')).body).toMatchObject({ code: 'forbidden' })
    expect(
      (await admin('POST', `/v1/users/${alice}/api-keys`, { kind: 'ED25519', publicKey: 'nope' })).body.field,
    ).toBe('publicKey')
    expect(
      (await admin('POST', `/v1/users/${alice}/api-keys`, { allowedIps: ['1.2.3.999'] })).body.field,
    ).toBe('allowedIps.0')
    expect((await admin('POST', '/v1/users/424242/api-keys', {})).status).toBe(404)
  })

  it('revokes a key: it is refused afterwards', async () => {
    const created = await admin('POST', `/v1/users/${alice}/api-keys`, {})
    const revoked = await admin('DELETE', `/v1/users/${alice}/api-keys/${created.body.id}`)
    expect(revoked.status).toBe(200)
    expect(revoked.body.revokedAt).not.toBeNull()
    expect((await asKey(created.body, 'GET', '/v1/me')).status).toBe(401)
    expect((await admin('DELETE', `/v1/users/${alice}/api-keys/999999`)).status).toBe(404)
  })
})

describe('OIDC sign-in', () => {
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

  it('accepts a JWT of the issuer for the user with that subject; a JWT creates, lists and revokes keys', async () => {
    const token = await jwt({ sub: 'alice-sub' })
    const me = await call('GET', '/v1/me', { headers: bearer(token) })
    expect(me.body).toMatchObject({ userId: String(alice), authenticatedBy: 'jwt' })
    const created = await call('POST', '/v1/api-keys', {
      headers: bearer(token),
      body: { permissions: ['read'] },
    })
    expect(created.status).toBe(201)
    expect(created.body.secretKey).toBeDefined()
    const mine = await call('GET', '/v1/api-keys', { headers: bearer(token) })
    expect(mine.body.map((k: Answer) => k.id)).toContain(created.body.id)
    // A key cannot mint keys.
    const byKey = await app.request('/v1/api-keys', {
      method: 'POST',
      body: '{}',
      headers: {
        ...signedHeaders(created.body, 'POST', '/v1/api-keys', '{}'),
        'x-forwarded-for': '198.51.100.1',
      },
    })
    expect(byKey.status).toBe(403)
    expect((await call('DELETE', `/v1/api-keys/${created.body.id}`, { headers: bearer(token) })).status).toBe(
      200,
    )
  })

  it('refuses another issuer, audience, signing key, an expired token and an unknown subject', async () => {
    for (const token of [
      await jwt({ sub: 'alice-sub', iss: 'http://evil' }),
      await jwt({ sub: 'alice-sub', aud: 'other' }),
      await jwt({ sub: 'alice-sub' }, true),
      await jwt({ sub: 'alice-sub', exp: '-1m' }),
      await jwt({ sub: 'nobody' }),
      await jwt({}),
      'not.a.jwt',
    ]) {
      const r = await call('GET', '/v1/me', { headers: bearer(token) })
      expect(r.status, token).toBe(401)
      expect(r.body.code).toBe('unauthorized')
    }
  })
})

describe('administration', () => {
  it('halts and resumes a market through its engine', async () => {
    expect(await admin('POST', '/v1/admin/markets/BTCUSDT/halt')).toEqual({
      status: 200,
      body: { symbol: 'BTCUSDT', status: 'halted' },
    })
    const client = EngineClient.inProcess(engine)
    expect((await client.status()).status).toBe('halted')
    expect((await admin('POST', '/v1/admin/markets/BTCUSDT/resume')).body.status).toBe('trading')
    expect((await client.status()).status).toBe('trading')
    expect((await admin('POST', '/v1/admin/markets/ETHUSDT/halt')).status).toBe(404)
  })

  it('adjusts a balance with the reason in the ledger, once per idempotency key, never below zero', async () => {
    const body = {
      userId: String(alice),
      asset: 'USDT',
      amount: '25.5',
      reason: 'goodwill credit #42',
      idempotencyKey: 'adj-1',
    }
    const first = await admin('POST', '/v1/admin/balance-adjustments', { ...body, operator: 'ops@bourse' })
    expect(first.status).toBe(201)
    expect(first.body).toMatchObject({ duplicate: false, balance: { asset: 'USDT', available: '1025.5' } })
    const again = await admin('POST', '/v1/admin/balance-adjustments', body)
    expect(again.body).toMatchObject({ duplicate: true, balance: { available: '1025.5' } })
    const [journal] = await queryRows<{ kind: string; memo: string }>(
      fx.database.db,
      sql`select kind, memo from journals where id = ${BigInt(first.body.journalId)}`,
    )
    expect(journal).toEqual({ kind: 'adjustment', memo: 'ops@bourse: goodwill credit #42' })

    const debit = await admin('POST', '/v1/admin/balance-adjustments', {
      ...body,
      amount: '-0.5',
      idempotencyKey: undefined,
    })
    expect(debit.body.balance.available).toBe('1025')
    const tooMuch = await admin('POST', '/v1/admin/balance-adjustments', {
      ...body,
      amount: '-5000',
      idempotencyKey: 'adj-2',
    })
    expect(tooMuch.body.code).toBe('insufficient_funds')
    expect((await admin('POST', '/v1/admin/balance-adjustments', { ...body, asset: 'DOGE' })).status).toBe(
      404,
    )
    expect((await admin('POST', '/v1/admin/balance-adjustments', { ...body, userId: '777777' })).status).toBe(
      404,
    )
    expect(
      (await admin('POST', '/v1/admin/balance-adjustments', { ...body, amount: '0.000000001' })).body.field,
    ).toBe('amount')
    expect((await admin('POST', '/v1/admin/balance-adjustments', { ...body, amount: '0' })).body.field).toBe(
      'amount',
    )
    expect((await admin('POST', '/v1/admin/balance-adjustments', { ...body, reason: ' ' })).body.field).toBe(
      'reason',
    )
    // Found by fuzzing: text Postgres cannot store is refused as input, not a 500.
    const nul = await admin('POST', '/v1/admin/balance-adjustments', {
      ...body,
      reason: 'a\u0000b',
      idempotencyKey: 'adj-3',
    })
    expect(nul.body, JSON.stringify(nul)).toMatchObject({ field: 'reason' })
    expect((await admin('POST', `/v1/users/${alice}/api-keys`, { label: '\ud800' })).body.field).toBe('label')
    expect((await admin('POST', '/v1/users', { name: 'zed', oidcSubject: 'x\u0000' })).body.field).toBe(
      'oidcSubject',
    )
    expect((await admin('GET', '/v1/users?after=null')).body.field).toBe('after')
  })
})
