/** The demo exchange `bourse dev` starts with: three assets and two markets, created once. */
import type { Database } from '../../adapters/db/database.ts'
import { assets, markets } from '../../adapters/db/schema.ts'

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

export async function seedDemo(db: Database): Promise<void> {
  await db.insert(assets).values(demoAssets).onConflictDoNothing()
  await db.insert(markets).values(demoMarkets).onConflictDoNothing()
}
