/** A market on a throwaway database, funded traders, and engines started on it: the engine tests' fixture. */
import { assets, markets, users } from '../../adapters/db/schema.ts'
import { createTestDatabase, type TestDatabase, testMarket } from '../../adapters/db/testing.ts'
import { balancesOf } from '../../ledger/ledger.ts'
import { creditDeposit } from '../../ledger/operations.ts'
import { createLogger } from '../../lib/log.ts'
import { type EngineOptions, MatchingEngine } from './engine.ts'

export interface MarketFixture {
  database: TestDatabase
  trader(name: string, funds: { BTC?: string; USDT?: string }): Promise<bigint>
  balances(userId: bigint): Promise<Record<string, [string, string]>>
  engine(options?: Partial<EngineOptions>): Promise<MatchingEngine>
  close(): Promise<void>
}

export async function marketFixture(
  kind: 'postgres' | 'pglite',
  maxConnections?: number,
): Promise<MarketFixture> {
  const database = await createTestDatabase(kind, maxConnections)
  await database.db.insert(assets).values([
    { symbol: 'BTC', scale: 8 },
    { symbol: 'USDT', scale: 8 },
  ])
  await database.db.insert(markets).values(testMarket)
  const engines: MatchingEngine[] = []
  return {
    database,
    async trader(name, funds) {
      const [user] = await database.db.insert(users).values({ name }).returning()
      for (const [asset, amount] of Object.entries(funds)) {
        await creditDeposit(database.db, {
          userId: user!.id,
          asset,
          amount,
          depositRef: `seed:${name}:${asset}`,
        })
      }
      return user!.id
    },
    async balances(userId) {
      return Object.fromEntries(
        (await balancesOf(database.db, userId)).map((b) => [b.asset, [b.available, b.frozen]]),
      )
    },
    async engine(options = {}) {
      const engine = await MatchingEngine.start({
        database,
        symbol: testMarket.symbol,
        batchMaxCommands: 200,
        batchWindowMs: 2,
        log: createLogger('engine-test', { level: 'silent' }),
        ...options,
      })
      engines.push(engine)
      return engine
    },
    async close() {
      await Promise.all(engines.map((e) => e.stop()))
      await database.close()
    },
  }
}
