/**
 * The markets and assets the gateway serves, read from Postgres and kept for a couple of seconds (a halt or a
 * new market shows up within that), with the decimal places Binance-style answers are formatted at.
 */
import type { Executor } from '../../adapters/db/database.ts'
import { assets, markets } from '../../adapters/db/schema.ts'
import { formatDecimal, parseDecimal } from '../../lib/money.ts'
import { type MarketRow, MarketUnits } from '../engine/market.ts'

export interface MarketInfo extends MarketRow {
  units: MarketUnits
  priceScale: number
  qtyScale: number
  /** Decimal places of a quote amount (price × quantity). */
  quoteScale: number
  baseAssetScale: number
  quoteAssetScale: number
}

export interface Directory {
  markets: Map<string, MarketInfo>
  assets: Map<string, number>
}

export const decimalsOf = (text: string): number =>
  text.includes('.') ? text.split('.')[1]!.replace(/0+$/, '').length : 0

/** A stored decimal at exactly `scale` places ("0.5" at 8 is "0.50000000"); extra digits are cut. */
export function fixed(value: string, scale: number): string {
  return formatDecimal(
    parseDecimal(value, scale, { allowZero: true, allowNegative: true, rounding: 'down' }),
    scale,
  )
}

export class MarketDirectory {
  private readonly db: Executor
  private readonly ttlMs: number
  private cached: { directory: Directory; expiresAt: number } | undefined
  private loading: Promise<Directory> | undefined

  constructor(db: Executor, ttlMs = 2000) {
    this.db = db
    this.ttlMs = ttlMs
  }

  async directory(): Promise<Directory> {
    if (this.cached !== undefined && this.cached.expiresAt > Date.now()) return this.cached.directory
    this.loading ??= this.load().finally(() => {
      this.loading = undefined
    })
    return this.loading
  }

  async get(symbol: string): Promise<MarketInfo | undefined> {
    return (await this.directory()).markets.get(symbol)
  }

  private async load(): Promise<Directory> {
    const assetRows = await this.db.select().from(assets)
    const scales = new Map(assetRows.map((a) => [a.symbol, a.scale]))
    const rows = await this.db.select().from(markets).orderBy(markets.symbol)
    const map = new Map<string, MarketInfo>()
    for (const row of rows) {
      const priceScale = decimalsOf(row.tickSize)
      const qtyScale = decimalsOf(row.lotSize)
      map.set(row.symbol, {
        symbol: row.symbol,
        base: row.base,
        quote: row.quote,
        tickSize: row.tickSize,
        lotSize: row.lotSize,
        minNotional: row.minNotional,
        makerFee: row.makerFee,
        takerFee: row.takerFee,
        status: row.status,
        units: new MarketUnits(row),
        priceScale,
        qtyScale,
        quoteScale: priceScale + qtyScale,
        baseAssetScale: scales.get(row.base) ?? 8,
        quoteAssetScale: scales.get(row.quote) ?? 8,
      })
    }
    const directory = { markets: map, assets: scales }
    this.cached = { directory, expiresAt: Date.now() + this.ttlMs }
    return directory
  }
}
