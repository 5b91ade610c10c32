/**
 * One market's rules as stored in Postgres, and the conversions between the wire's decimal strings and the
 * book's integer ticks and lots. The book prices in ticks and sizes in lots; a tick×lot unit of quote is
 * tickSize × lotSize, so every amount the ledger books is exact.
 */
import { eq } from 'drizzle-orm'
import type { Executor } from '../../adapters/db/database.ts'
import { markets } from '../../adapters/db/schema.ts'
import { BourseError, invalidInput } from '../../lib/errors.ts'
import { divRound, formatDecimal, parseDecimal, toSteps } from '../../lib/money.ts'
import type { MarketConfig } from './book/types.ts'

export interface MarketRow {
  symbol: string
  base: string
  quote: string
  tickSize: string
  lotSize: string
  minNotional: string
  makerFee: string
  takerFee: string
  status: 'trading' | 'halted'
}

const decimalsOf = (text: string) => (text.includes('.') ? text.split('.')[1]!.replace(/0+$/, '').length : 0)

export class MarketUnits {
  readonly row: MarketRow
  private readonly tickScale: number
  private readonly lotScale: number
  private readonly tick: bigint
  private readonly lot: bigint
  private readonly feeScale: number
  private readonly makerRate: bigint
  private readonly takerRate: bigint

  constructor(row: MarketRow) {
    this.row = row
    this.tickScale = decimalsOf(row.tickSize)
    this.lotScale = decimalsOf(row.lotSize)
    this.tick = parseDecimal(row.tickSize, this.tickScale, { field: 'tickSize' })
    this.lot = parseDecimal(row.lotSize, this.lotScale, { field: 'lotSize' })
    this.feeScale = Math.max(decimalsOf(row.makerFee), decimalsOf(row.takerFee))
    this.makerRate = parseDecimal(row.makerFee, this.feeScale, { field: 'makerFee', allowZero: true })
    this.takerRate = parseDecimal(row.takerFee, this.feeScale, { field: 'takerFee', allowZero: true })
  }

  get symbol(): string {
    return this.row.symbol
  }

  /** Decimal places of one tick×lot unit of quote. */
  private get notionalScale(): number {
    return this.tickScale + this.lotScale
  }

  bookConfig(): MarketConfig {
    const minNotionalUnits = parseDecimal(this.row.minNotional, this.notionalScale, {
      field: 'minNotional',
      allowZero: true,
      rounding: 'ceil',
    })
    return {
      symbol: this.row.symbol,
      tickSize: this.row.tickSize,
      lotSize: this.row.lotSize,
      minNotional: safe(divRound(minNotionalUnits, this.tick * this.lot, 'ceil'), 'minNotional'),
      makerFeeRate: this.row.makerFee,
      takerFeeRate: this.row.takerFee,
      defaultStpMode: 'EXPIRE_MAKER',
    }
  }

  priceToTicks(price: string, field = 'price'): number {
    return safe(toSteps(price, this.tick, this.tickScale, { field }), field)
  }

  quantityToLots(quantity: string, field = 'quantity'): number {
    return safe(toSteps(quantity, this.lot, this.lotScale, { field }), field)
  }

  /** A quote amount in tick×lot units, rounded down: a market order never spends more than it was given. */
  quoteToUnits(amount: string, field = 'quoteOrderQty'): number {
    const units = parseDecimal(amount, this.notionalScale, { field, rounding: 'down' })
    return safe(divRound(units, this.tick * this.lot, 'down'), field)
  }

  /** Lots of a stored quantity (zero allowed), exact. */
  lotsOf(quantity: string): number {
    return safe(
      toSteps(quantity, this.lot, this.lotScale, { field: 'quantity', allowZero: true }),
      'quantity',
    )
  }

  /** Tick×lot units of a stored quote amount (zero allowed), exact. */
  quoteUnitsOf(amount: string): number {
    const units = parseDecimal(amount, this.notionalScale, { field: 'quote', allowZero: true })
    return safe(divRound(units, this.tick * this.lot, 'down'), 'quote')
  }

  /** Quote units (bigint count of tick×lot) of an available balance, rounded down. */
  balanceToQuoteUnits(balance: string): bigint {
    return divRound(
      parseDecimal(balance, this.notionalScale, { allowZero: true, rounding: 'down' }),
      this.tick * this.lot,
      'down',
    )
  }

  balanceToLots(balance: string): bigint {
    return divRound(
      parseDecimal(balance, this.lotScale, { allowZero: true, rounding: 'down' }),
      this.lot,
      'down',
    )
  }

  price(ticks: number): string {
    return formatDecimal(BigInt(ticks) * this.tick, this.tickScale)
  }

  quantity(lots: number | bigint): string {
    return formatDecimal(BigInt(lots) * this.lot, this.lotScale)
  }

  quote(units: number | bigint): string {
    return formatDecimal(BigInt(units) * this.tick * this.lot, this.notionalScale)
  }

  /** The fee on `lots` of base received, exact: the ledger keeps every decimal place it has. */
  baseFee(lots: number, role: 'maker' | 'taker'): string {
    const scale = this.lotScale + this.feeScale
    return formatDecimal(BigInt(lots) * this.lot * this.rate(role), scale, { trimZeros: true })
  }

  /** The fee on `units` of quote received. */
  quoteFee(units: number, role: 'maker' | 'taker'): string {
    const scale = this.notionalScale + this.feeScale
    return formatDecimal(BigInt(units) * this.tick * this.lot * this.rate(role), scale, { trimZeros: true })
  }

  private rate(role: 'maker' | 'taker'): bigint {
    return role === 'maker' ? this.makerRate : this.takerRate
  }
}

function safe(value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidInput(field, 'is too large')
  return Number(value)
}

export async function loadMarket(db: Executor, symbol: string): Promise<MarketUnits> {
  const [row] = await db.select().from(markets).where(eq(markets.symbol, symbol))
  if (row === undefined)
    throw new BourseError('not_found', `market ${symbol} does not exist`, { field: 'market' })
  return new MarketUnits(row)
}
