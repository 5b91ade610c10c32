/**
 * The gateway's withdrawal settings from its environment (BOURSE_WITHDRAWAL_POLICY, BOURSE_WITHDRAWAL_WALLETS
 * as `bourse gateway` parses them) through the gateway app on PGlite: networks derived from the registered
 * Wallets, the limits and the approval threshold applied, the endpoints off without a policy, and a bad
 * policy reported by variable and JSON path.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import type { Hono } from 'hono'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { createPubSubCache, InProcessRedis } from '../../adapters/pubsub/index.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { ConfigError, loadConfig } from '../../lib/config.ts'
import { createLogger } from '../../lib/log.ts'
import { createApiKey } from '../gateway/api-keys.ts'
import { createGatewayApp } from '../gateway/app.ts'
import { GatewayEnv } from '../gateway/main.ts'
import { withdrawalsConfig } from './config.ts'

const encryptionKey = randomBytes(32)
const TO = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
const BASE_ENV = {
  BOURSE_DATABASE_URL: 'postgres://bourse@127.0.0.1:5432/bourse',
  BOURSE_ENGINES: 'BTCUSDT=http://engine-btcusdt:7000',
  BOURSE_REDIS_NODES: '127.0.0.1:7000',
  BOURSE_KEY_ENCRYPTION_SECRET: encryptionKey.toString('hex'),
}
const POLICY = JSON.stringify({
  USDT: { dailyLimit: '500', approvalAbove: '100', minAmount: '10' },
  ETH: { dailyLimit: '2', approvalAbove: '1' },
})

let tdb: TestDatabase
let key: { apiKey: string; secretKey?: string }

function gateway(withdrawals: Awaited<ReturnType<typeof withdrawalsConfig>>): Hono {
  return createGatewayApp({
    db: tdb.db,
    engines: new Map(),
    cache: createPubSubCache({ kind: 'memory', server: new InProcessRedis() }),
    config: {
      keyEncryptionKey: encryptionKey,
      weightPerMinute: 6000,
      rejectionsBeforeBan: 100,
      trustProxy: false,
    },
    log: createLogger('withdraw-config-test', { level: 'silent' }),
    ...(withdrawals !== undefined && { withdrawals }),
  })
}

async function apply(app: Hono, params: Record<string, string>) {
  const payload = new URLSearchParams({ ...params, timestamp: String(Date.now()) }).toString()
  const signature = createHmac('sha256', key.secretKey!).update(payload).digest('hex')
  const res = await app.request('/sapi/v1/capital/withdraw/apply', {
    method: 'POST',
    headers: { 'X-MBX-APIKEY': key.apiKey, 'content-type': 'application/x-www-form-urlencoded' },
    body: `${payload}&signature=${signature}`,
  })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

beforeAll(async () => {
  tdb = await createTestDatabase('pglite')
  const db = tdb.db
  await db.execute(sql`insert into assets (symbol, scale) values ('ETH', 8), ('USDT', 6)`)
  const [u] = await queryRows<{ id: bigint }>(db, sql`insert into users (name) values ('carol') returning id`)
  // Two Wallets registered by their syncers: eth (ETH, USDT) and bsc (USDT only).
  await db.execute(
    sql`insert into chain_wallets (id, chain_id, xpub, confirmations, scanned_block)
        values ('eth', 1, 'xpub-unused', 12, 0), ('bsc', 56, 'xpub-unused', 15, 0)`,
  )
  await db.execute(
    sql`insert into chain_wallet_assets (wallet_id, asset, contract, decimals) values
        ('eth', 'ETH', null, 18), ('eth', 'USDT', '0xdAC17F958D2ee523a2206206994597C13D831ec7', 6),
        ('bsc', 'USDT', '0x55d398326f99059fF775485246999027B3197955', 18)`,
  )
  await creditDeposit(db, { userId: u!.id, asset: 'USDT', amount: '1000', depositRef: 'seed' })
  key = await createApiKey(db, encryptionKey, { userId: u!.id, kind: 'HMAC', canWithdraw: true })
})

afterAll(async () => {
  await tdb?.close()
})

describe('the gateway withdrawal settings', () => {
  it('enables the endpoints from BOURSE_WITHDRAWAL_POLICY, networks derived from the registered Wallets', async () => {
    const env = loadConfig(GatewayEnv, { ...BASE_ENV, BOURSE_WITHDRAWAL_POLICY: POLICY })
    const settings = await withdrawalsConfig(tdb.db, {
      policy: env.BOURSE_WITHDRAWAL_POLICY,
      wallets: env.BOURSE_WITHDRAWAL_WALLETS,
    })
    expect(settings?.networks).toEqual([
      { network: 'BSC', walletId: 'bsc' },
      { network: 'ETH', walletId: 'eth' },
    ])
    const app = gateway(settings)
    // Below the approval threshold: approved at once (Binance status 4, processing), on the network named.
    const small = await apply(app, { coin: 'USDT', network: 'eth', address: TO, amount: '50' })
    expect(small.status).toBe(200)
    const [row] = await queryRows<{ wallet_id: string; state: string }>(
      tdb.db,
      sql`select wallet_id, state from withdrawals where id = ${BigInt(small.body.id as string)}`,
    )
    expect(row).toEqual({ wallet_id: 'eth', state: 'approved' })
    // Above it: waits for an administrator.
    const big = await apply(app, { coin: 'USDT', network: 'ETH', address: TO, amount: '150' })
    const [waiting] = await queryRows<{ state: string }>(
      tdb.db,
      sql`select state from withdrawals where id = ${BigInt(big.body.id as string)}`,
    )
    expect(waiting!.state).toBe('pending_approval')
    // The minimum and the daily limit (50 + 150 used of 500).
    expect((await apply(app, { coin: 'USDT', network: 'ETH', address: TO, amount: '5' })).body.msg).toMatch(
      /below the minimum withdrawal of 10 USDT/,
    )
    expect((await apply(app, { coin: 'USDT', network: 'ETH', address: TO, amount: '301' })).body.msg).toMatch(
      /daily withdrawal limit of 500 USDT/,
    )
    // Not in the policy: BTC cannot be withdrawn.
    expect((await apply(app, { coin: 'BTC', network: 'ETH', address: TO, amount: '1' })).body.msg).toMatch(
      /BTC cannot be withdrawn/,
    )
  })

  it('takes the networks from BOURSE_WITHDRAWAL_WALLETS, the first the default', async () => {
    const env = loadConfig(GatewayEnv, {
      ...BASE_ENV,
      BOURSE_WITHDRAWAL_POLICY: POLICY,
      BOURSE_WITHDRAWAL_WALLETS: 'eth',
    })
    const settings = await withdrawalsConfig(tdb.db, {
      policy: env.BOURSE_WITHDRAWAL_POLICY,
      wallets: env.BOURSE_WITHDRAWAL_WALLETS,
    })
    expect(settings?.networks).toEqual([{ network: 'ETH', walletId: 'eth' }])
    const app = gateway(settings)
    const res = await apply(app, { coin: 'USDT', address: TO, amount: '20' })
    expect(res.status).toBe(200)
    const [row] = await queryRows<{ wallet_id: string }>(
      tdb.db,
      sql`select wallet_id from withdrawals where id = ${BigInt(res.body.id as string)}`,
    )
    expect(row!.wallet_id).toBe('eth')
    expect((await apply(app, { coin: 'USDT', network: 'BSC', address: TO, amount: '20' })).body).toEqual({
      code: -4003,
      msg: 'Network BSC is not supported.',
    })
  })

  it('leaves the endpoints off without a policy', async () => {
    const env = loadConfig(GatewayEnv, BASE_ENV)
    expect(await withdrawalsConfig(tdb.db, { policy: env.BOURSE_WITHDRAWAL_POLICY })).toBeUndefined()
    const res = await apply(gateway(undefined), { coin: 'USDT', address: TO, amount: '20' })
    expect(res.status).toBe(404)
  })

  it('reports a bad policy by variable and JSON path', () => {
    const issues = (text: string) => {
      try {
        loadConfig(GatewayEnv, { ...BASE_ENV, BOURSE_WITHDRAWAL_POLICY: text })
      } catch (err) {
        if (err instanceof ConfigError) return err.issues
        throw err
      }
      throw new Error('accepted')
    }
    expect(issues('{"USDT":{"dailyLimit":"1e6","approvalAbove":"10"}}')).toEqual([
      {
        variable: 'BOURSE_WITHDRAWAL_POLICY[USDT][dailyLimit]',
        problem: 'expected a decimal string like "100.5", got "1e6"',
      },
    ])
    expect(issues('{"USDT":')[0]!.problem).toMatch(/^expected JSON like/)
    expect(issues('{"USDT":{"dailyLimit":"5"}}')[0]!.variable).toBe(
      'BOURSE_WITHDRAWAL_POLICY[USDT][approvalAbove]',
    )
  })
})
