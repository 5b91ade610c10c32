/**
 * The demo exchange `bourse dev` starts with: three assets, two markets, a funded demo trader with an API key,
 * and two bot accounts that keep the books alive. Everything is created once and found again on restart.
 */
import { randomBytes } from 'node:crypto'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { eq } from 'drizzle-orm'
import type { Database } from '../../adapters/db/database.ts'
import { apiKeys, assets, markets, users } from '../../adapters/db/schema.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { createApiKey, parseEncryptionKey } from '../gateway/api-keys.ts'

export const demoAssets = [
  { symbol: 'BTC', scale: 8 },
  { symbol: 'ETH', scale: 8 },
  { symbol: 'USDT', scale: 8 },
]

export const demoMarkets = [
  {
    symbol: 'BTCUSDT',
    base: 'BTC',
    quote: 'USDT',
    tickSize: '0.01',
    lotSize: '0.00001',
    minNotional: '5',
    makerFee: '0.001',
    takerFee: '0.001',
  },
  {
    symbol: 'ETHUSDT',
    base: 'ETH',
    quote: 'USDT',
    tickSize: '0.01',
    lotSize: '0.0001',
    minNotional: '5',
    makerFee: '0.001',
    takerFee: '0.001',
  },
]

const demoFunds: Record<string, string> = { BTC: '10', ETH: '100', USDT: '100000' }
const botFunds: Record<string, string> = { BTC: '1000', ETH: '10000', USDT: '100000000' }

export async function seedDemo(db: Database): Promise<void> {
  await db.insert(assets).values(demoAssets).onConflictDoNothing()
  await db.insert(markets).values(demoMarkets).onConflictDoNothing()
}

/** A user with these funds credited once (as if deposited), whatever the number of restarts. */
export async function fundedUser(db: Database, name: string, funds: Record<string, string>): Promise<bigint> {
  await db.insert(users).values({ name }).onConflictDoNothing()
  const [user] = await db.select().from(users).where(eq(users.name, name))
  for (const [asset, amount] of Object.entries(funds)) {
    await creditDeposit(db, { userId: user!.id, asset, amount, depositRef: `demo:${name}:${asset}` })
  }
  return user!.id
}

export const demoBots = (db: Database) =>
  Promise.all([fundedUser(db, 'market-maker', botFunds), fundedUser(db, 'taker-bot', botFunds)])

/** A random secret kept in the data folder: made on the first run, the same on every later one. */
async function dataDirSecret(dataDir: string, name: string): Promise<string> {
  const file = join(dataDir, name)
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch {
    const secret = randomBytes(32).toString('hex')
    await writeFile(file, secret, { mode: 0o600 })
    return secret
  }
}

/** The key that encrypts API secrets at rest. */
export async function devEncryptionKey(dataDir: string): Promise<Buffer> {
  return parseEncryptionKey(await dataDirSecret(dataDir, 'key-encryption.secret'))
}

/** The bearer token of the /v1 admin API in dev. */
export function devAdminToken(dataDir: string): Promise<string> {
  return dataDirSecret(dataDir, 'admin-token.secret')
}

export interface Credentials {
  apiKey: string
  apiSecret: string
}

/**
 * The demo trader, funded, and its HMAC API key that may trade and withdraw (made on the first run and kept
 * in the data folder; a key kept from before withdrawals existed gets the permission).
 */
export async function demoTrader(db: Database, dataDir: string, encryptionKey: Buffer): Promise<Credentials> {
  const userId = await fundedUser(db, 'demo', demoFunds)
  const file = join(dataDir, 'demo-credentials.json')
  const kept = await readFile(file, 'utf8')
    .then((text) => JSON.parse(text) as Credentials)
    .catch(() => undefined)
  if (kept !== undefined) {
    await db.update(apiKeys).set({ canWithdraw: true }).where(eq(apiKeys.apiKey, kept.apiKey))
    return kept
  }
  const key = await createApiKey(db, encryptionKey, {
    userId,
    kind: 'HMAC',
    canTrade: true,
    canWithdraw: true,
    label: 'demo',
  })
  const credentials = { apiKey: key.apiKey, apiSecret: key.secretKey! }
  await writeFile(file, JSON.stringify(credentials), { mode: 0o600 })
  await chmod(file, 0o600)
  return credentials
}
