/**
 * The deposit endpoints through the gateway app (PGlite): Binance's signed
 * GET /sapi/v1/capital/deposit/address and /hisrec, and the native /v1/deposit-address. Addresses are the
 * Wallet xpub's children, one per user and network, the same on every ask; the history shows what the
 * syncer recorded (the rows are written here as it writes them), newest first, with Binance's statuses.
 */
import { createHmac } from 'node:crypto'
import { mnemonicToSeedSync } from '@scure/bip39'
import { sql } from 'drizzle-orm'
import type { Hono } from 'hono'
import { HDKey } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../../adapters/db/testing.ts'
import { createPubSubCache, InProcessRedis } from '../../../adapters/pubsub/index.ts'
import { watchOnlyKey } from '../../../chain/hd.ts'
import { createLogger } from '../../../lib/log.ts'
import { registerWallet } from '../../syncer/wallet.ts'
import { createApiKey } from '../api-keys.ts'
import { createGatewayApp } from '../app.ts'

const encryptionKey = Buffer.alloc(32, 9)
const TOKEN = '0x5FbDB2315678afecb367f032d93F642f64180aa3'
const BSC_TOKEN = '0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512'
const xpubOf = (mnemonic: string) =>
  HDKey.fromMasterSeed(mnemonicToSeedSync(mnemonic)).derive("m/44'/60'/0'").publicExtendedKey
const ethXpub = xpubOf('legal winner thank year wave sausage worth useful legal winner thank yellow')
const bscXpub = xpubOf('letter advice cage absurd amount doctor acoustic avoid letter advice cage above')

// biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field
type Answer = any

let tdb: TestDatabase
let app: Hono
let alice: bigint
let aliceKey: { apiKey: string; secretKey: string }
let bobKey: { apiKey: string; secretKey: string }

async function signed(path: string, params: Record<string, string>, creds = aliceKey) {
  const payload = new URLSearchParams({ ...params, timestamp: String(Date.now()) }).toString()
  const signature = createHmac('sha256', creds.secretKey).update(payload).digest('hex')
  const response = await app.request(`${path}?${payload}&signature=${signature}`, {
    headers: { 'X-MBX-APIKEY': creds.apiKey },
  })
  return { status: response.status, body: (await response.json()) as Answer }
}

beforeAll(async () => {
  tdb = await createTestDatabase('pglite')
  const db = tdb.db
  await db.execute(sql`insert into assets (symbol, scale) values ('ETH', 8), ('USDT', 6), ('BTC', 8)`)
  const ids = await queryRows<{ id: bigint }>(
    db,
    sql`insert into users (name) values ('alice'), ('bob') returning id`,
  )
  alice = ids[0]!.id
  const bob = ids[1]!.id
  aliceKey = (await createApiKey(db, encryptionKey, { userId: alice, kind: 'HMAC' })) as typeof aliceKey
  bobKey = (await createApiKey(db, encryptionKey, { userId: bob, kind: 'HMAC' })) as typeof bobKey
  await registerWallet(db, {
    id: 'eth',
    chainId: 1,
    xpub: ethXpub,
    confirmations: 12,
    startBlock: 100n,
    assets: [
      { asset: 'ETH', contract: null, decimals: 18 },
      { asset: 'USDT', contract: TOKEN, decimals: 6 },
    ],
  })
  await registerWallet(db, {
    id: 'bsc',
    chainId: 56,
    xpub: bscXpub,
    confirmations: 15,
    startBlock: 100n,
    assets: [{ asset: 'USDT', contract: BSC_TOKEN, decimals: 18 }],
  })
  app = createGatewayApp({
    db,
    engines: new Map(),
    cache: createPubSubCache({ kind: 'memory', server: new InProcessRedis() }),
    config: {
      keyEncryptionKey: encryptionKey,
      weightPerMinute: 6000,
      rejectionsBeforeBan: 10,
      trustProxy: false,
    },
    log: createLogger('gateway-test', { level: 'error' }),
  })
})

afterAll(async () => {
  await tdb?.close()
})

describe('GET /sapi/v1/capital/deposit/address', () => {
  it("answers the user's address on the coin's first network, the same every time, derived from the xpub", async () => {
    const first = await signed('/sapi/v1/capital/deposit/address', { coin: 'usdt' })
    expect(first.status).toBe(200)
    // Networks in id order: bsc before eth.
    expect(first.body).toEqual({ address: watchOnlyKey(bscXpub).address(0), coin: 'USDT', tag: '', url: '' })
    expect((await signed('/sapi/v1/capital/deposit/address', { coin: 'USDT' })).body).toEqual(first.body)
    const eth = await signed('/sapi/v1/capital/deposit/address', { coin: 'USDT', network: 'ETH' })
    expect(eth.body.address).toBe(watchOnlyKey(ethXpub).address(0))
    // One address per user and chain: ETH on the eth wallet is the same address as its USDT.
    expect((await signed('/sapi/v1/capital/deposit/address', { coin: 'ETH' })).body.address).toBe(
      eth.body.address,
    )
    // Bob gets the next index.
    const bob = await signed('/sapi/v1/capital/deposit/address', { coin: 'ETH' }, bobKey)
    expect(bob.body.address).toBe(watchOnlyKey(ethXpub).address(1))
  })

  it("refuses a coin or network the exchange does not take, and an unsigned request, with Binance's errors", async () => {
    expect(await signed('/sapi/v1/capital/deposit/address', { coin: 'BTC' })).toEqual({
      status: 400,
      body: { code: -1130, msg: "Data sent for parameter 'coin' is not valid." },
    })
    expect(await signed('/sapi/v1/capital/deposit/address', { coin: 'ETH', network: 'BSC' })).toEqual({
      status: 400,
      body: { code: -1130, msg: "Data sent for parameter 'network' is not valid." },
    })
    expect((await signed('/sapi/v1/capital/deposit/address', {})).body).toEqual({
      code: -1102,
      msg: "Mandatory parameter 'coin' was not sent, was empty/null, or malformed.",
    })
    const unsigned = await app.request('/sapi/v1/capital/deposit/address?coin=ETH', {
      headers: { 'X-MBX-APIKEY': aliceKey.apiKey },
    })
    expect(unsigned.status).toBe(400)
    expect(await unsigned.json()).toEqual({
      code: -1102,
      msg: "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    })
  })
})

describe('GET /v1/deposit-address', () => {
  it('answers the address with its network, chain and contract', async () => {
    const r = await signed('/v1/deposit-address', { asset: 'USDT', network: 'eth' })
    expect(r).toEqual({
      status: 200,
      body: {
        asset: 'USDT',
        network: 'eth',
        chainId: 1,
        contract: TOKEN,
        address: watchOnlyKey(ethXpub).address(0),
        confirmations: 12,
      },
    })
  })
})

describe('GET /sapi/v1/capital/deposit/hisrec', () => {
  beforeAll(async () => {
    const address = watchOnlyKey(ethXpub).address(0)
    const from = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8'
    const row = (tx: string, ordinal: number, asset: string, amount: string, block: number, state: string) =>
      sql`insert into deposits (wallet_id, chain_id, tx_hash, log_ordinal, asset, user_id, address, from_address,
                                amount, block_number, block_hash, log_index, state, credited_amount, credited_at)
          values ('eth', 1, ${tx}, ${ordinal}, ${asset}, ${alice}, ${address}, ${from}, ${amount}, ${block},
                  ${`0x${'b'.repeat(64)}`}, ${ordinal < 0 ? null : 0}, ${state},
                  ${state === 'credited' ? amount : null}, ${state === 'credited' ? new Date().toISOString() : null})`
    await tdb.db.execute(row(`0x${'1'.repeat(64)}`, -1, 'ETH', '1.5', 110, 'credited'))
    await tdb.db.execute(row(`0x${'2'.repeat(64)}`, 0, 'USDT', '250.123456', 118, 'confirming'))
    await tdb.db.execute(row(`0x${'3'.repeat(64)}`, -1, 'ETH', '0.123456789123456789', 119, 'orphaned'))
    await tdb.db.execute(sql`update chain_wallets set scanned_block = 121 where id = 'eth'`)
  })

  it("lists the user's deposits newest first in Binance's shape, with confirmations so far", async () => {
    const r = await signed('/sapi/v1/capital/deposit/hisrec', { includeSource: 'true' })
    expect(r.status).toBe(200)
    expect(r.body.map((d: Answer) => [d.coin, d.amount, d.status, d.confirmTimes])).toEqual([
      ['ETH', '0.12345678', 2, '0/12'],
      ['USDT', '250.123456', 0, '4/12'],
      ['ETH', '1.5', 1, '12/12'],
    ])
    const credited = r.body[2]
    expect(credited).toEqual({
      id: expect.stringMatching(/^\d+$/),
      amount: '1.5',
      coin: 'ETH',
      network: 'ETH',
      status: 1,
      address: watchOnlyKey(ethXpub).address(0),
      addressTag: '',
      txId: `0x${'1'.repeat(64)}`,
      insertTime: expect.any(Number),
      completeTime: expect.any(Number),
      transferType: 0,
      confirmTimes: '12/12',
      unlockConfirm: 12,
      walletType: 0,
      sourceAddress: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    })
    expect(r.body[1].completeTime).toBeUndefined()
  })

  it('filters by coin, status, txId, offset and limit; other users see none of it', async () => {
    const list = async (params: Record<string, string>, creds = aliceKey) =>
      ((await signed('/sapi/v1/capital/deposit/hisrec', params, creds)).body as Answer[]).map((d) => d.txId)
    expect(await list({ coin: 'USDT' })).toEqual([`0x${'2'.repeat(64)}`])
    expect(await list({ status: '1' })).toEqual([`0x${'1'.repeat(64)}`])
    expect(await list({ txId: `0x${'3'.repeat(64)}` })).toEqual([`0x${'3'.repeat(64)}`])
    expect(await list({ offset: '1', limit: '1' })).toEqual([`0x${'2'.repeat(64)}`])
    expect(await list({ startTime: String(Date.now() + 60_000) })).toEqual([])
    expect(await list({}, bobKey)).toEqual([])
    expect((await signed('/sapi/v1/capital/deposit/hisrec', { status: '9' })).body).toEqual({
      code: -1130,
      msg: "Data sent for parameter 'status' is not valid.",
    })
    expect(
      (await signed('/sapi/v1/capital/deposit/hisrec', { startTime: '0', endTime: String(Date.now()) })).body
        .code,
    ).toBe(-1127)
  })
})
