/**
 * The market's configuration as the operator mounts it (`market.json` from the Market resource), written into
 * the market's Postgres row before the engine claims it: the row is what the engine, the gateway and the ledger
 * read. A changed spec rolls the engine, so a fee change or a halt takes effect at its next start. Tick and lot
 * sizes change only while the market has no open order: resting orders are priced in ticks and lots.
 */
import { readFile } from 'node:fs/promises'
import { sql } from 'drizzle-orm'
import { z } from 'zod'
import { type Database, queryRows } from '../../adapters/db/database.ts'
import { assets, markets } from '../../adapters/db/schema.ts'
import { invalidInput } from '../../lib/errors.ts'
import type { Logger } from '../../lib/log.ts'

const decimal = z.string().regex(/^\d{1,30}(\.\d{1,30})?$/, 'expected a decimal string')

export const MarketConfigFile = z.object({
  symbol: z.string().regex(/^[A-Z0-9]{2,20}$/),
  base: z.string().regex(/^[A-Z0-9]{1,10}$/),
  quote: z.string().regex(/^[A-Z0-9]{1,10}$/),
  tickSize: decimal,
  lotSize: decimal,
  minNotional: decimal,
  makerFee: decimal,
  takerFee: decimal,
  trading: z.enum(['Enabled', 'Halted']).default('Enabled'),
})

export type MarketConfigFile = z.output<typeof MarketConfigFile>

/** Ledger precision given to an asset the Exchange has not declared yet. */
const DEFAULT_ASSET_SCALE = 8

export async function readMarketConfig(path: string): Promise<MarketConfigFile> {
  const parsed = MarketConfigFile.safeParse(JSON.parse(await readFile(path, 'utf8')))
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]!
  throw invalidInput(`BOURSE_MARKET_CONFIG ${issue.path.join('.')}`, issue.message)
}

export async function applyMarketConfig(db: Database, c: MarketConfigFile, log: Logger): Promise<void> {
  await db.transaction(async (tx) => {
    await tx
      .insert(assets)
      .values([c.base, c.quote].map((symbol) => ({ symbol, scale: DEFAULT_ASSET_SCALE })))
      .onConflictDoNothing()
    const status = c.trading === 'Halted' ? 'halted' : 'trading'
    const rules = { minNotional: c.minNotional, makerFee: c.makerFee, takerFee: c.takerFee, status } as const
    await tx
      .insert(markets)
      .values({
        symbol: c.symbol,
        base: c.base,
        quote: c.quote,
        tickSize: c.tickSize,
        lotSize: c.lotSize,
        ...rules,
      })
      .onConflictDoUpdate({ target: markets.symbol, set: rules })
    const [state] = await queryRows<{ open: bigint; differs: boolean }>(
      tx,
      sql`select (select count(*) from orders where market = ${c.symbol} and status in ('NEW', 'PARTIALLY_FILLED'))::int8 as open,
                 (tick_size <> ${c.tickSize}::numeric or lot_size <> ${c.lotSize}::numeric) as differs
          from markets where symbol = ${c.symbol}`,
    )
    if (!state!.differs) return
    if (state!.open > 0n) {
      log.error(
        { openOrders: String(state!.open) },
        'tick or lot size changed while orders are open: kept the stored sizes; cancel the open orders to apply them',
      )
      return
    }
    await tx
      .update(markets)
      .set({ tickSize: c.tickSize, lotSize: c.lotSize })
      .where(sql`${markets.symbol} = ${c.symbol}`)
  })
}
