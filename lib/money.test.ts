import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { BourseError } from './errors.ts'
import {
  div,
  divRound,
  formatDecimal,
  fromSteps,
  MAX_DECIMAL_LENGTH,
  mul,
  mulDiv,
  parseDecimal,
  pow10,
  ROUNDING_MODES,
  type RoundingMode,
  rescale,
  toSteps,
} from './money.ts'

// Reference rounding, written independently of divRound: normalise to a positive divisor, take the
// floor quotient and a remainder 0 <= r < d, and decide from the exact rational n/d = f + r/d.
function floorDiv(n: bigint, d: bigint): bigint {
  const q = n / d
  return n % d !== 0n && n < 0n !== d < 0n ? q - 1n : q
}
function reference(n: bigint, d: bigint, mode: RoundingMode): bigint {
  if (d < 0n) {
    n = -n
    d = -d
  }
  const f = floorDiv(n, d)
  const r = n - f * d
  if (r === 0n) return f
  const ceil = f + 1n
  switch (mode) {
    case 'floor':
      return f
    case 'ceil':
      return ceil
    case 'down':
      return n >= 0n ? f : ceil
    case 'up':
      return n >= 0n ? ceil : f
    case 'half-up':
      if (2n * r !== d) return 2n * r > d ? ceil : f
      return n >= 0n ? ceil : f
    case 'half-even':
      if (2n * r !== d) return 2n * r > d ? ceil : f
      return f % 2n === 0n ? f : ceil
  }
}

const abs = (x: bigint) => (x < 0n ? -x : x)
const scaleArb = fc.integer({ min: 0, max: 18 })
const bigArb = fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n })
const nonzeroArb = bigArb.filter((x) => x !== 0n)
const modeArb = fc.constantFrom(...ROUNDING_MODES)
const any = { allowNegative: true, allowZero: true } as const

function refusal(fn: () => unknown): BourseError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BourseError)
    return err as BourseError
  }
  throw new Error('expected a refusal')
}

describe('parseDecimal', () => {
  it('parses exact decimals at a scale', () => {
    expect(parseDecimal('1', 8)).toBe(100_000_000n)
    expect(parseDecimal('0.5', 2)).toBe(50n)
    expect(parseDecimal('123.456000', 3)).toBe(123_456n)
    expect(parseDecimal('1.5000', 2)).toBe(150n) // zeros beyond the scale are fine
    expect(parseDecimal('-2.75', 2, { allowNegative: true })).toBe(-275n)
    expect(parseDecimal('0', 0, { allowZero: true })).toBe(0n)
    expect(parseDecimal('007.10', 2)).toBe(710n)
    expect(parseDecimal('115792089237316195423570985008687907853269984665640564039457', 18)).toBe(
      115792089237316195423570985008687907853269984665640564039457n * 10n ** 18n,
    )
  })

  it('refuses digits beyond the scale unless a rounding mode is given', () => {
    const err = refusal(() => parseDecimal('1.234', 2, { field: 'price' }))
    expect(err.message).toBe('price: has more than 2 decimal places')
    expect(err.field).toBe('price')
    expect(err.status).toBe(400)
    expect(parseDecimal('1.235', 2, { rounding: 'half-even' })).toBe(124n)
    expect(parseDecimal('1.245', 2, { rounding: 'half-even' })).toBe(124n)
    expect(parseDecimal('1.245', 2, { rounding: 'half-up' })).toBe(125n)
    expect(parseDecimal('1.231', 2, { rounding: 'up' })).toBe(124n)
    expect(parseDecimal('-1.239', 2, { rounding: 'down', allowNegative: true })).toBe(-123n)
    expect(parseDecimal('-1.231', 2, { rounding: 'floor', allowNegative: true })).toBe(-124n)
    expect(refusal(() => parseDecimal('0.5', 0, { field: 'qty' })).message).toBe(
      'qty: has more than 0 decimal places',
    )
  })

  it('refuses malformed input, naming the field', () => {
    for (const bad of [
      '',
      '.',
      '.5',
      '5.',
      '+1',
      ' 1',
      '1 ',
      '1e5',
      '1E-2',
      '0x10',
      'abc',
      '1.2.3',
      '--1',
      '-',
      '-.5',
      '1..2',
      '1,5',
      'NaN',
      'Infinity',
      '١',
    ]) {
      const err = refusal(() => parseDecimal(bad, 8, { field: 'quantity' }))
      expect(err.field).toBe('quantity')
      expect(err.message).toMatch(/^quantity: must be a decimal number like 1\.25, got /)
      expect(err.message).toContain(JSON.stringify(bad))
    }
    const notString = refusal(() => parseDecimal(1.5 as unknown as string, 8, { field: 'price' }))
    expect(notString.message).toBe('price: must be a decimal string, got number')
  })

  it('refuses absurdly long input before parsing it', () => {
    const long = `1${'0'.repeat(MAX_DECIMAL_LENGTH)}`
    expect(refusal(() => parseDecimal(long, 2, { field: 'amount' })).message).toBe(
      `amount: is too long (more than ${MAX_DECIMAL_LENGTH} characters)`,
    )
    expect(parseDecimal('1'.repeat(MAX_DECIMAL_LENGTH), 0)).toBe(BigInt('1'.repeat(MAX_DECIMAL_LENGTH)))
  })

  it('refuses negatives and zero unless allowed', () => {
    expect(refusal(() => parseDecimal('-1', 2, { field: 'amount' })).message).toBe(
      'amount: must not be negative',
    )
    expect(refusal(() => parseDecimal('-0', 2, { field: 'amount', allowZero: true })).message).toBe(
      'amount: must not be negative',
    )
    expect(refusal(() => parseDecimal('0.00', 2, { field: 'amount' })).message).toBe(
      'amount: must be greater than zero',
    )
    expect(refusal(() => parseDecimal('0', 2, { field: 'delta', allowNegative: true })).message).toBe(
      'delta: must not be zero',
    )
    expect(refusal(() => parseDecimal('0.001', 2, { field: 'amount', rounding: 'down' })).message).toBe(
      'amount: rounds to zero at 2 decimal places',
    )
    expect(parseDecimal('-0', 2, any)).toBe(0n)
    expect(parseDecimal('0.001', 2, { rounding: 'down', allowZero: true })).toBe(0n)
  })

  it('defaults the field name to "value"', () => {
    expect(refusal(() => parseDecimal('x', 2)).message).toMatch(/^value: /)
  })

  it('throws RangeError for a bad scale (a programming error, not bad input)', () => {
    expect(() => parseDecimal('1', -1)).toThrow(RangeError)
    expect(() => parseDecimal('1', 1.5)).toThrow(RangeError)
    expect(() => parseDecimal('1', 37)).toThrow(RangeError)
  })
})

describe('formatDecimal', () => {
  it('keeps the scale by default, like Binance', () => {
    expect(formatDecimal(10_000_000n, 8)).toBe('0.10000000')
    expect(formatDecimal(-5n, 3)).toBe('-0.005')
    expect(formatDecimal(0n, 2)).toBe('0.00')
    expect(formatDecimal(42n, 0)).toBe('42')
    expect(formatDecimal(-42n, 0)).toBe('-42')
    expect(formatDecimal(123_456_789n, 4)).toBe('12345.6789')
  })

  it('trims zeros on request', () => {
    expect(formatDecimal(10_000_000n, 8, { trimZeros: true })).toBe('0.1')
    expect(formatDecimal(500n, 2, { trimZeros: true })).toBe('5')
    expect(formatDecimal(0n, 8, { trimZeros: true })).toBe('0')
    expect(formatDecimal(-1_050n, 3, { trimZeros: true })).toBe('-1.05')
    expect(formatDecimal(1000n, 0, { trimZeros: true })).toBe('1000') // whole-number zeros stay
  })

  it('round-trips through parseDecimal at every scale 0..18, negatives included', () => {
    fc.assert(
      fc.property(bigArb, scaleArb, fc.boolean(), (units, scale, trimZeros) => {
        const text = formatDecimal(units, scale, { trimZeros })
        expect(parseDecimal(text, scale, any)).toBe(units)
      }),
      { numRuns: 2000 },
    )
  })

  it('renders any parsed decimal string canonically', () => {
    const textArb = fc
      .tuple(fc.boolean(), fc.stringMatching(/^[0-9]{1,25}$/), fc.stringMatching(/^[0-9]{0,18}$/), scaleArb)
      .map(([neg, whole, frac, scale]) => ({ neg, whole, frac: frac.slice(0, scale), scale }))
    fc.assert(
      fc.property(textArb, ({ neg, whole, frac, scale }) => {
        const text = `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`
        const units = parseDecimal(text, scale, any)
        const formatted = formatDecimal(units, scale)
        const isZero = /^0*$/.test(whole + frac)
        const canonicalWhole = whole.replace(/^0+(?=\d)/, '')
        const expected = `${neg && !isZero ? '-' : ''}${canonicalWhole}${scale ? `.${frac.padEnd(scale, '0')}` : ''}`
        expect(formatted).toBe(expected)
      }),
      { numRuns: 2000 },
    )
  })
})

describe('divRound and mulDiv', () => {
  it('rounds in each mode', () => {
    const cases: [bigint, bigint, Record<RoundingMode, bigint>][] = [
      [7n, 2n, { down: 3n, up: 4n, floor: 3n, ceil: 4n, 'half-even': 4n, 'half-up': 4n }],
      [5n, 2n, { down: 2n, up: 3n, floor: 2n, ceil: 3n, 'half-even': 2n, 'half-up': 3n }],
      [-5n, 2n, { down: -2n, up: -3n, floor: -3n, ceil: -2n, 'half-even': -2n, 'half-up': -3n }],
      [-7n, 2n, { down: -3n, up: -4n, floor: -4n, ceil: -3n, 'half-even': -4n, 'half-up': -4n }],
      [7n, -3n, { down: -2n, up: -3n, floor: -3n, ceil: -2n, 'half-even': -2n, 'half-up': -2n }],
      [8n, -3n, { down: -2n, up: -3n, floor: -3n, ceil: -2n, 'half-even': -3n, 'half-up': -3n }],
      [6n, 3n, { down: 2n, up: 2n, floor: 2n, ceil: 2n, 'half-even': 2n, 'half-up': 2n }],
    ]
    for (const [n, d, want] of cases) {
      for (const mode of ROUNDING_MODES)
        expect([n, d, mode, divRound(n, d, mode)]).toEqual([n, d, mode, want[mode]])
    }
    expect(() => divRound(1n, 0n, 'down')).toThrow(RangeError)
  })

  it('matches an exact rational reference for every mode and sign', () => {
    fc.assert(
      fc.property(bigArb, bigArb, nonzeroArb, modeArb, (a, b, c, mode) => {
        expect(mulDiv(a, b, c, mode)).toBe(reference(a * b, c, mode))
      }),
      { numRuns: 5000 },
    )
    // Small operands hit exact divisions and ties far more often.
    const small = fc.bigInt({ min: -40n, max: 40n })
    fc.assert(
      fc.property(
        small,
        small,
        small.filter((x) => x !== 0n),
        modeArb,
        (a, b, c, mode) => {
          expect(mulDiv(a, b, c, mode)).toBe(reference(a * b, c, mode))
        },
      ),
      { numRuns: 5000 },
    )
  })

  it('obeys the rounding laws', () => {
    const positive = fc.bigInt({ min: 1n, max: 10n ** 20n })
    fc.assert(
      fc.property(bigArb, bigArb, positive, (a, b, c) => {
        const n = a * b
        const r = (mode: RoundingMode) => mulDiv(a, b, c, mode)
        // down <= exact <= up in magnitude; floor <= exact <= ceil
        expect(abs(r('down') * c) <= abs(n)).toBe(true)
        expect(abs(r('up') * c) >= abs(n)).toBe(true)
        expect(r('floor') * c <= n).toBe(true)
        expect(r('ceil') * c >= n).toBe(true)
        // every mode is within one unit of the exact value, and exact results never move
        for (const mode of ROUNDING_MODES) {
          expect(abs(r(mode) * c - n) < c).toBe(true)
          if (n % c === 0n) expect(r(mode)).toBe(n / c)
        }
        // half modes pick a nearest value
        for (const mode of ['half-up', 'half-even'] as const)
          expect(2n * abs(r(mode) * c - n) <= c).toBe(true)
      }),
      { numRuns: 3000 },
    )
  })

  it('breaks half-even ties to the even neighbour and half-up ties away from zero', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }),
        fc.bigInt({ min: 1n, max: 10n ** 9n }),
        (k, half) => {
          const d = 2n * half
          const n = (2n * k + 1n) * half // exactly k + 1/2 times d
          const even = divRound(n, d, 'half-even')
          expect(even % 2n).toBe(0n)
          expect(even === k || even === k + 1n).toBe(true)
          expect(divRound(n, d, 'half-up')).toBe(n > 0n ? k + 1n : k)
        },
      ),
    )
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5].map((x) => divRound(BigInt(x * 2), 2n, 'half-even'))).toEqual([
      0n,
      2n,
      2n,
      0n,
      -2n,
      -2n,
    ])
  })

  it('computes a fee as amount * feeRate / 10^feeScale', () => {
    // 0.1% fee (rate 10 at scale 4) on 123.45678901 at scale 8
    const amount = parseDecimal('123.45678901', 8)
    const fee = mulDiv(amount, 10n, pow10(4), 'up')
    expect(formatDecimal(fee, 8)).toBe('0.12345679')
  })
})

describe('rescale, mul, div', () => {
  it('grows exactly and shrinks with the given mode', () => {
    expect(rescale(125n, 2, 8, 'down')).toBe(125_000_000n)
    expect(rescale(125_000_001n, 8, 2, 'down')).toBe(125n)
    expect(rescale(125_000_001n, 8, 2, 'up')).toBe(126n)
    expect(rescale(-125_500_000n, 8, 2, 'half-even')).toBe(-126n)
    expect(rescale(7n, 3, 3, 'down')).toBe(7n)
    expect(() => rescale(1n, 0, 37, 'down')).toThrow(RangeError)
  })

  it('rescale up then back is the identity; down then back is within one step, in the mode direction', () => {
    fc.assert(
      fc.property(bigArb, scaleArb, scaleArb, modeArb, (units, s1, s2, mode) => {
        const [lo, hi] = s1 <= s2 ? [s1, s2] : [s2, s1]
        expect(rescale(rescale(units, lo, hi, mode), hi, lo, mode)).toBe(units)
        const back = rescale(rescale(units, hi, lo, mode), lo, hi, mode)
        const step = pow10(hi - lo)
        expect(abs(back - units) < step).toBe(true)
        expect(rescale(units, hi, lo, mode)).toBe(reference(units, step, mode))
      }),
      { numRuns: 3000 },
    )
  })

  it('multiplies price by quantity into a result scale', () => {
    const price = parseDecimal('27123.45', 2)
    const qty = parseDecimal('0.00123', 8)
    expect(formatDecimal(mul(price, 2, qty, 8, 8, 'down'), 8)).toBe('33.36184350')
    expect(formatDecimal(mul(price, 2, qty, 8, 2, 'down'), 2)).toBe('33.36')
    expect(formatDecimal(mul(price, 2, qty, 8, 2, 'up'), 2)).toBe('33.37')
    expect(mul(3n, 0, 4n, 0, 2, 'down')).toBe(1200n)
    fc.assert(
      fc.property(bigArb, scaleArb, bigArb, scaleArb, scaleArb, modeArb, (a, as, b, bs, rs, mode) => {
        const exactScale = as + bs
        const got = mul(a, as, b, bs, rs, mode)
        if (rs >= exactScale) expect(got).toBe(a * b * pow10(rs - exactScale))
        else expect(got).toBe(reference(a * b, pow10(exactScale - rs), mode))
      }),
    )
  })

  it('divides with an explicit mode', () => {
    // average price: 100.00 quote / 3.000 base at price scale 2
    expect(div(10_000n, 2, 3_000n, 3, 2, 'down')).toBe(3333n)
    expect(div(10_000n, 2, 3_000n, 3, 2, 'up')).toBe(3334n)
    expect(div(1n, 10, 1n, 0, 0, 'up')).toBe(1n)
    expect(() => div(1n, 0, 0n, 0, 0, 'down')).toThrow(RangeError)
    fc.assert(
      fc.property(bigArb, scaleArb, nonzeroArb, scaleArb, scaleArb, modeArb, (a, as, b, bs, rs, mode) => {
        // a/10^as / (b/10^bs) * 10^rs as an exact rational
        const num = a * pow10(bs + rs)
        const den = b * pow10(as)
        expect(div(a, as, b, bs, rs, mode)).toBe(reference(num, den, mode))
      }),
    )
  })
})

describe('toSteps', () => {
  it('counts ticks and lots', () => {
    expect(toSteps('101.25', '0.05', 2)).toBe(2025n)
    expect(toSteps('101.25', 5n, 2)).toBe(2025n)
    expect(toSteps('0.00300000', '0.00100000', 8)).toBe(3n)
    expect(toSteps('3', '1', 0)).toBe(3n)
    expect(fromSteps(2025n, 5n)).toBe(10_125n)
  })

  it('refuses values off the step grid, naming the field', () => {
    const err = refusal(() => toSteps('101.23', '0.05', 2, { field: 'price' }))
    expect(err.message).toBe('price: must be a multiple of 0.05')
    expect(err.field).toBe('price')
    expect(refusal(() => toSteps('1.001', '0.01', 2, { field: 'quantity' })).message).toBe(
      'quantity: has more than 2 decimal places',
    )
    expect(refusal(() => toSteps('0', '0.01', 2, { field: 'quantity' })).message).toBe(
      'quantity: must be greater than zero',
    )
    expect(refusal(() => toSteps('-1', '0.01', 2, { field: 'quantity' })).message).toBe(
      'quantity: must not be negative',
    )
    expect(refusal(() => toSteps('1e3', '0.01', 2, { field: 'quantity' })).field).toBe('quantity')
    expect(() => toSteps('1', 0n, 2)).toThrow(RangeError)
  })

  it('rounds once to the step grid when a mode is given', () => {
    expect(toSteps('101.23', '0.05', 2, { rounding: 'down' })).toBe(2024n)
    expect(toSteps('101.23', '0.05', 2, { rounding: 'up' })).toBe(2025n)
    // 0.0249999 is below half a 0.05 tick even though rounding to 2 places first would give 0.03
    expect(toSteps('1.0249999', '0.05', 2, { rounding: 'half-up' })).toBe(20n)
    expect(refusal(() => toSteps('0.01', '0.05', 2, { rounding: 'down', field: 'qty' })).message).toBe(
      'qty: rounds to zero steps',
    )
  })

  it('agrees with parse-then-divide on the grid', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 1n, max: 10n ** 20n }),
        fc.bigInt({ min: 1n, max: 10n ** 6n }),
        scaleArb,
        (k, step, scale) => {
          const text = formatDecimal(k * step, scale)
          expect(toSteps(text, step, scale)).toBe(k)
        },
      ),
    )
  })
})
