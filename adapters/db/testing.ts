/**
 * Throwaway databases for tests: a fresh Postgres database on the test server (so suites running in
 * parallel never share tables), or an in-memory PGlite. Both come migrated.
 */
import postgres from 'postgres'
import { postgresUrl, uniqueName } from '../testing/servers.ts'
import { type DatabaseConfig, type DatabaseHandle, openDatabase } from './database.ts'

/** The markets row tests trade on: BTC against USDT, 0.1 % maker and 0.2 % taker fees. */
export const testMarket = {
  symbol: 'BTCUSDT',
  base: 'BTC',
  quote: 'USDT',
  tickSize: '0.01',
  lotSize: '0.001',
  minNotional: '1',
  makerFee: '0.001',
  takerFee: '0.002',
}

export type TestDatabase = DatabaseHandle & { readonly config: DatabaseConfig }

export async function createTestDatabase(
  kind: DatabaseConfig['kind'],
  maxConnections = 10,
): Promise<TestDatabase> {
  if (kind === 'pglite') return withConfig(await openDatabase({ kind }), { kind })
  const adminUrl = postgresUrl()
  const name = uniqueName('bourse_test_')
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
  try {
    await admin.unsafe(`create database ${name}`)
  } finally {
    await admin.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  const config: DatabaseConfig = { kind: 'postgres', url: url.toString(), maxConnections }
  const handle = await openDatabase(config)
  const dropAfterClose = async () => {
    await handle.close()
    const dropper = postgres(adminUrl, { max: 1, onnotice: () => {} })
    try {
      await dropper.unsafe(`drop database if exists ${name} with (force)`)
    } finally {
      await dropper.end()
    }
  }
  return withConfig({ ...handle, close: dropAfterClose }, config)
}

async function withConfig(handle: DatabaseHandle, config: DatabaseConfig): Promise<TestDatabase> {
  await handle.migrate()
  return { ...handle, config }
}
