import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { markets } from '../../adapters/db/schema.ts'
import { testMarket } from '../../adapters/db/testing.ts'
import { createLogger } from '../../lib/log.ts'
import { applyMarketConfig, MarketConfigFile } from './market-config.ts'
import { type MarketFixture, marketFixture } from './testing.ts'

describe('the operator-mounted market config', () => {
  let market: MarketFixture
  const log = createLogger('test', { level: 'silent' })
  const config = (over: Partial<MarketConfigFile> = {}): MarketConfigFile => ({
    ...MarketConfigFile.parse({ ...testMarket, trading: 'Enabled' }),
    ...over,
  })
  const row = async (symbol = 'BTCUSDT') =>
    (await market.database.db.select().from(markets).where(eq(markets.symbol, symbol)))[0]!

  beforeAll(async () => {
    market = await marketFixture('pglite')
  })
  afterAll(async () => market?.close())

  it('creates a market, with its assets, that did not exist', async () => {
    await applyMarketConfig(market.database.db, config({ symbol: 'ETHBTC', base: 'ETH', quote: 'BTC' }), log)
    expect(await row('ETHBTC')).toMatchObject({
      base: 'ETH',
      quote: 'BTC',
      status: 'trading',
      takerFee: '0.002',
    })
  })

  it('applies new fees and a halt at the next start, and the engine starts halted', async () => {
    await applyMarketConfig(market.database.db, config({ takerFee: '0.0025', trading: 'Halted' }), log)
    expect(await row()).toMatchObject({ takerFee: '0.0025', status: 'halted' })
    const engine = await market.engine()
    expect(engine.status()).toMatchObject({ status: 'halted' })
    await engine.stop()
    await applyMarketConfig(market.database.db, config(), log)
    expect(await row()).toMatchObject({ takerFee: '0.002', status: 'trading' })
  })

  it('changes tick and lot sizes only while no order is open', async () => {
    const engine = await market.engine()
    const trader = await market.trader('resting', { USDT: '1000' })
    const placed = await engine.submit({
      kind: 'place',
      order: { userId: trader, side: 'BUY', type: 'LIMIT', price: '10.00', quantity: '1' },
    })
    await applyMarketConfig(market.database.db, config({ tickSize: '0.1' }), log)
    expect(await row()).toMatchObject({ tickSize: '0.01' })
    const orderId = BigInt(placed.kind === 'order' ? placed.order.orderId : 0)
    await engine.submit({ kind: 'cancel', userId: trader, orderId })
    await engine.stop()
    await applyMarketConfig(market.database.db, config({ tickSize: '0.1' }), log)
    expect(await row()).toMatchObject({ tickSize: '0.1' })
  })
})
