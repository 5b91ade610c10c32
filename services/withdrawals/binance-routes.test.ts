/**
 * The Binance withdrawal endpoints through the gateway app (PGlite, no chain): the withdraw permission,
 * Binance's answer shapes and status codes, validation errors, idempotency by withdrawOrderId; the same
 * withdrawals through the native /v1 API (request, list) and their administration.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { createPubSubCache, InProcessRedis } from '../../adapters/pubsub/index.ts'
import { findImbalances } from '../../ledger/invariants.ts'
import { balancesOf } from '../../ledger/ledger.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { createLogger } from '../../lib/log.ts'
import { parseDecimal } from '../../lib/money.ts'
import { createApiKey } from '../gateway/api-keys.ts'
import { createGatewayApp } from '../gateway/app.ts'
import { approveWithdrawal } from './withdrawals.ts'

const encryptionKey = randomBytes(32)
const ADMIN_TOKEN = 'admin-token-for-the-withdrawal-tests'
const TOKEN = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const TO = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
let tdb: TestDatabase
let app: Hono
let user: bigint
let withdrawKey: { apiKey: string; secretKey?: string }
let tradeKey: { apiKey: string; secretKey?: string }

async function call(method: 'GET' | 'POST', path: string, params: Record<string, string>, key = withdrawKey) {
  const payload = new URLSearchParams({ ...params, timestamp: String(Date.now()) }).toString()
  const signature = createHmac('sha256', key.secretKey!).update(payload).digest('hex')
  const body = `${payload}&signature=${signature}`
  const res =
    method === 'POST'
      ? await app.request(path, {
          method,
          headers: { 'X-MBX-APIKEY': key.apiKey, 'content-type': 'application/x-www-form-urlencoded' },
          body,
        })
      : await app.request(`${path}?${body}`, { method, headers: { 'X-MBX-APIKEY': key.apiKey } })
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown> & Record<string, unknown>[],
  }
}

beforeAll(async () => {
  tdb = await createTestDatabase('pglite')
  const db = tdb.db
  await db.execute(sql`insert into assets (symbol, scale) values ('ETH', 18), ('USDT', 6)`)
  const [u] = await queryRows<{ id: bigint }>(db, sql`insert into users (name) values ('alice') returning id`)
  user = u!.id
  await db.execute(
    sql`insert into chain_wallets (id, chain_id, xpub, confirmations, scanned_block) values ('eth', 31337, 'xpub-unused', 2, 0)`,
  )
  await db.execute(
    sql`insert into chain_wallet_assets (wallet_id, asset, contract, decimals) values ('eth', 'ETH', null, 18), ('eth', 'USDT', ${TOKEN}, 6)`,
  )
  await creditDeposit(db, { userId: user, asset: 'USDT', amount: '1000', depositRef: 'seed' })
  withdrawKey = await createApiKey(db, encryptionKey, { userId: user, kind: 'HMAC', canWithdraw: true })
  tradeKey = await createApiKey(db, encryptionKey, { userId: user, kind: 'HMAC', canTrade: true })
  app = createGatewayApp({
    db,
    engines: new Map(),
    cache: createPubSubCache({ kind: 'memory', server: new InProcessRedis() }),
    config: {
      keyEncryptionKey: encryptionKey,
      weightPerMinute: 6000,
      rejectionsBeforeBan: 100,
      trustProxy: false,
      adminToken: ADMIN_TOKEN,
    },
    log: createLogger('withdraw-test', { level: 'silent' }),
    withdrawals: {
      policy: { assets: { USDT: { dailyLimit: '500', approvalAbove: '100' } } },
      networks: [{ network: 'ETH', walletId: 'eth' }],
    },
  })
})

afterAll(async () => {
  await tdb?.close()
})

describe('POST /sapi/v1/capital/withdraw/apply', () => {
  it('needs a key with the withdraw permission', async () => {
    const res = await call(
      'POST',
      '/sapi/v1/capital/withdraw/apply',
      { coin: 'USDT', address: TO, amount: '1' },
      tradeKey,
    )
    expect(res).toEqual({
      status: 401,
      body: { code: -2015, msg: 'Invalid API-key, IP, or permissions for action.' },
    })
  })

  it('accepts a request, answers {id}, and is idempotent by withdrawOrderId', async () => {
    const params = { coin: 'USDT', network: 'ETH', address: TO, amount: '12.5', withdrawOrderId: 'w-1' }
    const first = await call('POST', '/sapi/v1/capital/withdraw/apply', params)
    expect(first.status).toBe(200)
    expect(first.body).toEqual({ id: expect.stringMatching(/^\d+$/) })
    const again = await call('POST', '/sapi/v1/capital/withdraw/apply', params)
    expect(again.body).toEqual(first.body)
    expect((await balancesOf(tdb.db, user)).find((b) => b.asset === 'USDT')?.available).toBe('987.5')
  })

  it('refuses a bad address, a bad amount, an unknown network, the limit and insufficient funds', async () => {
    const bad = async (params: Record<string, string>) =>
      (
        await call('POST', '/sapi/v1/capital/withdraw/apply', {
          coin: 'USDT',
          address: TO,
          amount: '1',
          ...params,
        })
      ).body
    expect(await bad({ address: TO.toLowerCase().replace('0x7', '0xz') })).toMatchObject({
      code: -1100,
      msg: expect.stringContaining('address'),
    })
    expect(await bad({ address: TO.replace('C51812dc', 'c51812dc') })).toMatchObject({ code: -1100 })
    expect(await bad({ amount: '0.0000001' })).toMatchObject({
      code: -1100,
      msg: expect.stringContaining('decimal places'),
    })
    expect(await bad({ network: 'TRX' })).toMatchObject({ code: -4003 })
    expect(await bad({ amount: '499' })).toMatchObject({ code: -1100, msg: expect.stringContaining('daily') })
    expect(await bad({ coin: 'ETH' })).toMatchObject({ code: -1100, msg: 'coin: ETH cannot be withdrawn' })
    expect(await bad({ address: '' })).toMatchObject({ code: -1102 })
    expect(await findImbalances(tdb.db)).toEqual([])
  })
})

describe('GET /sapi/v1/capital/withdraw/history', () => {
  it('lists the withdrawals in Binance shape with Binance status codes', async () => {
    const big = await call('POST', '/sapi/v1/capital/withdraw/apply', {
      coin: 'USDT',
      address: TO,
      amount: '150',
    })
    const res = await call('GET', '/sapi/v1/capital/withdraw/history', { coin: 'USDT' }, tradeKey)
    expect(res.status).toBe(200)
    expect(res.body).toHaveLength(2)
    expect(res.body[0]).toMatchObject({
      id: big.body.id,
      amount: '150',
      transactionFee: '0',
      coin: 'USDT',
      status: 2,
      address: TO,
      txId: '',
      applyTime: expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/),
      network: 'ETH',
      transferType: 0,
      walletType: 0,
    })
    expect(res.body[1]).toMatchObject({ amount: '12.5', status: 4, withdrawOrderId: 'w-1' })
    await approveWithdrawal(tdb.db, BigInt(big.body.id as string), 'admin')
    const byStatus = await call('GET', '/sapi/v1/capital/withdraw/history', { status: '2' })
    expect(byStatus.body).toEqual([])
    const byOrderId = await call('GET', '/sapi/v1/capital/withdraw/history', { withdrawOrderId: 'w-1' })
    expect(byOrderId.body).toHaveLength(1)
  })
})

describe('admin review of withdrawals over /v1', () => {
  const admin = (path: string, body: Record<string, string>) =>
    app.request(path, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  const heldForApproval = async (amount: string) => {
    const { body } = await call('POST', '/sapi/v1/capital/withdraw/apply', {
      coin: 'USDT',
      network: 'ETH',
      address: TO,
      amount,
    })
    return String(body.id)
  }

  it('approves one held withdrawal and rejects another, giving its funds back', async () => {
    const approved = await heldForApproval('150')
    const rejected = await heldForApproval('120')
    const before = (await balancesOf(tdb.db, user)).find((b) => b.asset === 'USDT')!.available

    const ok = await admin(`/v1/admin/withdrawals/${approved}/approve`, { operator: 'ops' })
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ id: approved, state: 'approved', amount: '150' })

    const noReason = await admin(`/v1/admin/withdrawals/${rejected}/reject`, {})
    expect(noReason.status).toBe(400)
    expect(await noReason.json()).toMatchObject({ code: 'invalid_input', field: 'reason' })
    const no = await admin(`/v1/admin/withdrawals/${rejected}/reject`, {
      operator: 'ops',
      reason: 'unknown address',
    })
    expect(await no.json()).toMatchObject({ id: rejected, state: 'rejected', failReason: 'unknown address' })
    const after = (await balancesOf(tdb.db, user)).find((b) => b.asset === 'USDT')!.available
    expect(parseDecimal(after, 6, { allowZero: true }) - parseDecimal(before, 6, { allowZero: true })).toBe(
      120_000000n,
    )

    const again = await admin(`/v1/admin/withdrawals/${approved}/reject`, { reason: 'too late' })
    expect(again.status).toBe(409)
    expect(await findImbalances(tdb.db)).toEqual([])
  })

  it('needs the admin token, and resumes paused withdrawals', async () => {
    const anonymous = await app.request('/v1/admin/withdrawal-pauses/resume', { method: 'POST', body: '{}' })
    expect(anonymous.status).toBe(401)
    const resumed = await admin('/v1/admin/withdrawal-pauses/resume', { operator: 'ops' })
    expect(await resumed.json()).toEqual({ resumed: false })
  })
})

describe('withdrawals over /v1', () => {
  /** A /v1 request signed with an API key as services/gateway/v1/auth.ts documents. */
  const v1 = (method: 'GET' | 'POST', path: string, body?: unknown, key = withdrawKey) => {
    const text = body === undefined ? '' : JSON.stringify(body)
    const timestamp = String(Date.now())
    const signature = createHmac('sha256', key.secretKey!)
      .update(`${timestamp}\n${method}\n${path}\n${text}`)
      .digest('hex')
    return app.request(path, {
      method,
      headers: {
        'X-Bourse-Key': key.apiKey,
        'X-Bourse-Timestamp': timestamp,
        'X-Bourse-Signature': signature,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: text }),
    })
  }
  const usdt = async () => (await balancesOf(tdb.db, user)).find((b) => b.asset === 'USDT')!.available

  it('takes a request from a key with the withdraw permission, once per clientId', async () => {
    const request = { asset: 'USDT', address: TO, amount: '10', clientId: 'v1-first' }
    expect((await v1('POST', '/v1/withdrawals', request, tradeKey)).status).toBe(403)
    const before = await usdt()
    const created = await v1('POST', '/v1/withdrawals', request)
    expect(created.status).toBe(201)
    const view = (await created.json()) as Record<string, unknown>
    expect(view).toMatchObject({
      userId: String(user),
      asset: 'USDT',
      network: 'eth',
      address: TO,
      amount: '10',
      state: 'approved',
      clientId: 'v1-first',
      txHash: null,
    })
    const again = await v1('POST', '/v1/withdrawals', request)
    expect(((await again.json()) as Record<string, unknown>).id).toBe(view.id)
    const spent =
      parseDecimal(before, 6, { allowZero: true }) - parseDecimal(await usdt(), 6, { allowZero: true })
    expect(spent).toBe(10_000000n)

    const listed = (await (
      await v1('GET', '/v1/withdrawals?limit=1', undefined, tradeKey)
    ).json()) as unknown[]
    expect(listed).toEqual([view])
  })

  it('refuses bad requests naming the field, changing nothing', async () => {
    const before = await usdt()
    const refused = async (body: Record<string, unknown>, field: string) => {
      const res = await v1('POST', '/v1/withdrawals', { asset: 'USDT', address: TO, amount: '1', ...body })
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ code: 'invalid_input', field })
    }
    await refused({ address: TO.replace('C51812dc', 'c51812dc') }, 'address')
    await refused({ address: '0x0000000000000000000000000000000000000000' }, 'address')
    await refused({ amount: '-1' }, 'amount')
    await refused({ amount: '0.0000001' }, 'amount')
    await refused({ network: 'tron' }, 'network')
    await refused({ asset: 'ETH' }, 'asset')
    await refused({ clientId: 'not allowed!' }, 'clientId')
    await refused({ memo: 'x' }, 'memo')
    expect(await usdt()).toBe(before)
    expect(await findImbalances(tdb.db)).toEqual([])
  })
})
