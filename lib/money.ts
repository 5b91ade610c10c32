/**
 * Money as bigint fixed-point decimals, never a float.
 *
 * A value is a bigint count of units at a scale (the number of decimal places): 1.25 at scale 8 is
 * 125000000n. The scale travels beside the value (in the asset or market definition), not inside it.
 * Every operation that can lose digits takes an explicit rounding mode; nothing rounds silently.
 */
import { invalidInput } from './errors.ts'

/**
 * - `down`: toward zero (truncate)        - `up`: away from zero
 * - `floor`: toward -infinity             - `ceil`: toward +infinity
 * - `half-even`: nearest, ties to even    - `half-up`: nearest, ties away from zero
 */
export type RoundingMode = 'down' | 'up' | 'floor' | 'ceil' | 'half-even' | 'half-up'

export const ROUNDING_MODES: readonly RoundingMode[] = ['down', 'up', 'floor', 'ceil', 'half-even', 'half-up']

/** Largest scale accepted anywhere here: room for an 18-decimal price times an 18-decimal quantity. */
export const MAX_SCALE = 36

/** Longest decimal string parseDecimal reads; longer input is refused before any work is done. */
export const MAX_DECIMAL_LENGTH = 80

export interface ParseOptions {
  /** Names the input in error messages (default `value`). */
  field?: string
  /** Accept a leading '-' (default false). */
  allowNegative?: boolean
  /** Accept zero (default false: amounts, prices and quantities must be positive). */
  allowZero?: boolean
  /** Round digits beyond the scale with this mode; without it such input is refused. */
  rounding?: RoundingMode
}

const pow10Cache: bigint[] = []

function checkScale(scale: number, name = 'scale'): void {
  if (!Number.isInteger(scale) || scale < 0 || scale > MAX_SCALE) {
    throw new RangeError(`${name} must be an integer 0-${MAX_SCALE}, got ${scale}`)
  }
}

/** 10^n as a bigint, for n in 0..2*MAX_SCALE. */
export function pow10(n: number): bigint {
  if (!Number.isInteger(n) || n < 0 || n > 2 * MAX_SCALE) {
    throw new RangeError(`pow10 exponent must be an integer 0-${2 * MAX_SCALE}, got ${n}`)
  }
  let p = pow10Cache[n]
  if (p === undefined) {
    p = 10n ** BigInt(n)
    pow10Cache[n] = p
  }
  return p
}

/** n / d rounded with `mode`. Throws RangeError when d is zero. */
export function divRound(n: bigint, d: bigint, mode: RoundingMode): bigint {
  if (d === 0n) throw new RangeError('division by zero')
  const q = n / d // truncated toward zero
  const r = n % d // sign of n
  if (r === 0n) return q
  const negative = n < 0n !== d < 0n
  const away = negative ? q - 1n : q + 1n
  switch (mode) {
    case 'down':
      return q
    case 'up':
      return away
    case 'floor':
      return negative ? away : q
    case 'ceil':
      return negative ? q : away
    case 'half-up':
    case 'half-even': {
      const twiceR = 2n * (r < 0n ? -r : r)
      const absD = d < 0n ? -d : d
      if (twiceR > absD) return away
      if (twiceR < absD) return q
      if (mode === 'half-up') return away
      return q % 2n === 0n ? q : away
    }
    default:
      throw new RangeError(`unknown rounding mode ${String(mode)}`)
  }
}

/** a * b / c rounded with `mode`: price × quantity, fee = amount * feeRate / 10^feeScale, pro rata. */
export function mulDiv(a: bigint, b: bigint, c: bigint, mode: RoundingMode): bigint {
  return divRound(a * b, c, mode)
}

/** Re-express units at `fromScale` as units at `toScale`; exact when growing, rounded with `mode` when shrinking. */
export function rescale(units: bigint, fromScale: number, toScale: number, mode: RoundingMode): bigint {
  checkScale(fromScale, 'fromScale')
  checkScale(toScale, 'toScale')
  if (toScale >= fromScale) return units * pow10(toScale - fromScale)
  return divRound(units, pow10(fromScale - toScale), mode)
}

/** (a at aScale) × (b at bScale), as units at resultScale. */
export function mul(
  a: bigint,
  aScale: number,
  b: bigint,
  bScale: number,
  resultScale: number,
  mode: RoundingMode,
): bigint {
  checkScale(aScale, 'aScale')
  checkScale(bScale, 'bScale')
  checkScale(resultScale, 'resultScale')
  const productScale = aScale + bScale
  if (resultScale >= productScale) return a * b * pow10(resultScale - productScale)
  return divRound(a * b, pow10(productScale - resultScale), mode)
}

/** (a at aScale) ÷ (b at bScale), as units at resultScale (e.g. average price = quote / base). Throws RangeError when b is zero. */
export function div(
  a: bigint,
  aScale: number,
  b: bigint,
  bScale: number,
  resultScale: number,
  mode: RoundingMode,
): bigint {
  checkScale(aScale, 'aScale')
  checkScale(bScale, 'bScale')
  checkScale(resultScale, 'resultScale')
  // a/10^aS ÷ b/10^bS × 10^rS = a × 10^(bS+rS) / (b × 10^aS)
  const up = bScale + resultScale
  const shift = up - aScale
  return shift >= 0 ? divRound(a * pow10(shift), b, mode) : divRound(a, b * pow10(-shift), mode)
}

function quote(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)
}

const MINUS = 45
const DOT = 46
const ZERO = 48
const NINE = 57

/**
 * Where the '.' of `-?\d+(\.\d+)?` is (the length when there is none), or -1 when the text is not of that form.
 * A character scan: this runs for every amount of every order and trade, and a RegExp match costs twice as much.
 */
function decimalPoint(text: string, from: number): number {
  let dot = text.length
  for (let i = from; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === DOT && dot === text.length && i > from && i < text.length - 1) dot = i
    else if (c < ZERO || c > NINE) return -1
  }
  return text.length > from ? dot : -1
}

/** The exact value of a decimal string: units at `digits` decimal places (digits = the fraction's length). */
function parseExact(text: unknown, field: string): { units: bigint; digits: number; negative: boolean } {
  if (typeof text !== 'string') {
    throw invalidInput(field, `must be a decimal string, got ${text === null ? 'null' : typeof text}`)
  }
  if (text.length > MAX_DECIMAL_LENGTH) {
    throw invalidInput(field, `is too long (more than ${MAX_DECIMAL_LENGTH} characters)`)
  }
  const negative = text.charCodeAt(0) === MINUS
  const dot = decimalPoint(text, negative ? 1 : 0)
  if (dot === -1) {
    throw invalidInput(field, `must be a decimal number like 1.25, got ${quote(text)}`)
  }
  // BigInt reads the sign and the digits of "-12.5" as "-125".
  const units = BigInt(dot === text.length ? text : text.slice(0, dot) + text.slice(dot + 1))
  return { units, digits: Math.max(0, text.length - dot - 1), negative }
}

function checkSign(
  units: bigint,
  negative: boolean,
  nonzeroInput: boolean,
  roundedTo: string,
  field: string,
  opts: ParseOptions,
): void {
  if (negative && !opts.allowNegative) throw invalidInput(field, 'must not be negative')
  if (units === 0n && !opts.allowZero) {
    if (nonzeroInput) throw invalidInput(field, `rounds to zero ${roundedTo}`)
    throw invalidInput(field, opts.allowNegative ? 'must not be zero' : 'must be greater than zero')
  }
}

/**
 * Parse a decimal string exactly into units at `scale`: "1", "0.5", "-2.75", "123.456000".
 * Refused, with a BourseError naming the field: exponents, '+', whitespace, hex, "", ".", ".5", "5.",
 * input over 80 characters, negatives (unless allowNegative), zero (unless allowZero), and digits
 * beyond `scale` that are not zeros (unless a rounding mode is given).
 */
export function parseDecimal(text: string, scale: number, opts: ParseOptions = {}): bigint {
  checkScale(scale)
  const field = opts.field ?? 'value'
  const { units, digits, negative } = parseExact(text, field)
  let result: bigint
  if (digits <= scale) {
    result = units * pow10(scale - digits)
  } else {
    const divisor = pow10(digits - scale)
    if (units % divisor === 0n) result = units / divisor
    else if (opts.rounding === undefined) throw invalidInput(field, `has more than ${scale} decimal places`)
    else result = divRound(units, divisor, opts.rounding)
  }
  checkSign(result, negative, units !== 0n, `at ${scale} decimal places`, field, opts)
  return result
}

/**
 * Format units at `scale` exactly. By default keeps `scale` decimal places, as Binance sends them
 * ("0.10000000"); trimZeros drops trailing zeros and a bare '.' ("0.1", "5").
 */
export function formatDecimal(units: bigint, scale: number, opts: { trimZeros?: boolean } = {}): string {
  checkScale(scale)
  const negative = units < 0n
  const digits = (negative ? -units : units).toString()
  const sign = negative ? '-' : ''
  if (scale === 0) return sign + digits
  const wholeLength = digits.length - scale
  const whole = wholeLength > 0 ? digits.slice(0, wholeLength) : '0'
  let frac = wholeLength >= 0 ? digits.slice(wholeLength) : '0'.repeat(-wholeLength) + digits
  if (opts.trimZeros) frac = frac.slice(0, lastNonZero(frac) + 1)
  return frac === '' ? sign + whole : `${sign}${whole}.${frac}`
}

/** The index of the last character of `digits` that is not '0' (-1 when all are). */
function lastNonZero(digits: string): number {
  let i = digits.length - 1
  while (i >= 0 && digits.charCodeAt(i) === ZERO) i--
  return i
}

/**
 * Parse a decimal string into a whole number of steps (ticks for prices, lots for quantities):
 * price "101.25" with tick "0.05" is 2025 ticks. `step` is the step size, either as units at `scale`
 * or as a decimal string. A value that is not a multiple of the step is refused naming the field,
 * unless a rounding mode is given, in which case it is rounded once, to the nearest step in that mode.
 */
export function toSteps(text: string, step: bigint | string, scale: number, opts: ParseOptions = {}): bigint {
  checkScale(scale)
  const field = opts.field ?? 'value'
  const stepUnits = typeof step === 'string' ? parseDecimal(step, scale, { field: 'step' }) : step
  if (stepUnits <= 0n) throw new RangeError(`step must be positive, got ${stepUnits}`)
  const { units, digits, negative } = parseExact(text, field)
  // Compare at the finer of the two scales so a value is rounded only once.
  const fine = Math.max(digits, scale)
  const value = units * pow10(fine - digits)
  const stepFine = stepUnits * pow10(fine - scale)
  let steps: bigint
  if (value % stepFine === 0n) steps = value / stepFine
  else if (opts.rounding === undefined) {
    if (digits > scale && value % pow10(fine - scale) !== 0n) {
      throw invalidInput(field, `has more than ${scale} decimal places`)
    }
    throw invalidInput(field, `must be a multiple of ${formatDecimal(stepUnits, scale, { trimZeros: true })}`)
  } else steps = divRound(value, stepFine, opts.rounding)
  checkSign(steps, negative, units !== 0n, 'steps', field, opts)
  return steps
}

/** Units at the step's scale for a count of steps: the inverse of toSteps. */
export function fromSteps(steps: bigint, step: bigint): bigint {
  return steps * step
}
