/**
 * The market's filters (Binance's PRICE_FILTER, LOT_SIZE, NOTIONAL) checked on commands before they
 * touch the book, and the validation of the config itself.
 */
import { BourseError, invalidInput } from '../../../lib/errors.ts'
import type { CommandRejected, LimitOrderCommand, MarketConfig, MarketOrderCommand } from './types.ts'

/** The config with its optional bounds filled in. */
export interface MarketRules extends Required<MarketConfig> {}

const positiveDecimal = /^(?:0|[1-9]\d*)(?:\.\d+)?$/
const stpModes = new Set(['NONE', 'EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'])

export function marketRules(config: MarketConfig): MarketRules {
  const rules: MarketRules = {
    minPrice: 1,
    maxPrice: Number.MAX_SAFE_INTEGER,
    minQuantity: 1,
    maxQuantity: Number.MAX_SAFE_INTEGER,
    ...config,
  }
  for (const field of ['tickSize', 'lotSize', 'makerFeeRate', 'takerFeeRate'] as const) {
    if (!positiveDecimal.test(rules[field])) throw invalidInput(field, 'expected a decimal string')
  }
  for (const field of ['tickSize', 'lotSize'] as const) {
    if (!/[1-9]/.test(rules[field])) throw invalidInput(field, 'must be greater than zero')
  }
  for (const field of ['minNotional', 'minPrice', 'maxPrice', 'minQuantity', 'maxQuantity'] as const) {
    if (!isCount(rules[field]) && !(field === 'minNotional' && rules[field] === 0)) {
      throw invalidInput(field, 'expected a positive safe integer')
    }
  }
  if (rules.minPrice > rules.maxPrice) throw invalidInput('minPrice', 'must not exceed maxPrice')
  if (rules.minQuantity > rules.maxQuantity) throw invalidInput('minQuantity', 'must not exceed maxQuantity')
  if (!stpModes.has(rules.defaultStpMode)) throw invalidInput('defaultStpMode', 'unknown STP mode')
  return rules
}

export type Rejection = Pick<CommandRejected, 'code' | 'reason' | 'field'>

export const priceFilter: Rejection = {
  code: 'invalid_input',
  reason: 'Filter failure: PRICE_FILTER',
  field: 'price',
}
export const lotSize: Rejection = {
  code: 'invalid_input',
  reason: 'Filter failure: LOT_SIZE',
  field: 'quantity',
}
export const notional: Rejection = {
  code: 'invalid_input',
  reason: 'Filter failure: NOTIONAL',
  field: 'quantity',
}
const quoteNotional: Rejection = { ...notional, field: 'quoteAmount' }
const eitherQuantity: Rejection = {
  code: 'invalid_input',
  reason: "Exactly one of 'quantity' or 'quoteAmount' must be sent.",
  field: 'quantity',
}
const postOnlyTimeInForce: Rejection = {
  code: 'invalid_input',
  reason: 'Post-only orders must be GTC.',
  field: 'timeInForce',
}
const unknownStpMode: Rejection = { code: 'invalid_input', reason: 'Unknown STP mode.', field: 'stpMode' }

export function checkLimitOrder(rules: MarketRules, command: LimitOrderCommand): Rejection | null {
  const { price, quantity } = command
  if (!isCount(price) || price < rules.minPrice || price > rules.maxPrice) return priceFilter
  const sizeRejection = checkQuantity(rules, quantity)
  if (sizeRejection !== null) return sizeRejection
  const value = price * quantity
  if (!Number.isSafeInteger(value) || value < rules.minNotional) return notional
  if (command.postOnly === true && (command.timeInForce ?? 'GTC') !== 'GTC') return postOnlyTimeInForce
  return checkStpMode(command.stpMode)
}

/** `bestPrice` is the best opposite price, the value a market order by quantity is judged at. */
export function checkMarketOrder(
  rules: MarketRules,
  command: MarketOrderCommand,
  bestPrice: number | null,
): Rejection | null {
  const { quantity, quoteAmount } = command
  if ((quantity === undefined) === (quoteAmount === undefined)) return eitherQuantity
  if (quantity !== undefined) {
    const sizeRejection = checkQuantity(rules, quantity)
    if (sizeRejection !== null) return sizeRejection
    if (bestPrice !== null && bestPrice * quantity < rules.minNotional) return notional
  } else if (!isCount(quoteAmount) || quoteAmount < rules.minNotional) {
    return quoteNotional
  }
  return checkStpMode(command.stpMode)
}

function checkQuantity(rules: MarketRules, quantity: number): Rejection | null {
  return isCount(quantity) && quantity >= rules.minQuantity && quantity <= rules.maxQuantity ? null : lotSize
}

function checkStpMode(mode: string | undefined): Rejection | null {
  return mode === undefined || stpModes.has(mode) ? null : unknownStpMode
}

/** A positive safe integer: a valid count of ticks or lots. */
export function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0
}

/** The error the HTTP edge returns for a rejected command. */
export function rejectionError(rejected: CommandRejected): BourseError {
  return rejected.field === null
    ? new BourseError(rejected.code, rejected.reason)
    : new BourseError(rejected.code, rejected.reason, { field: rejected.field })
}
