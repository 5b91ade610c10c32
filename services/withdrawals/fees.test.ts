import { describe, expect, it } from 'vitest'
import { bumpFees, isValidReplacement } from './fees.ts'

const gwei = (n: bigint) => n * 1_000_000_000n

describe('bumpFees', () => {
  it('raises both fee fields by at least 10 % (15 % by default)', () => {
    const old = { maxFeePerGas: gwei(30n), maxPriorityFeePerGas: gwei(2n) }
    const next = bumpFees(old, { maxFeePerGas: 1n, maxPriorityFeePerGas: 1n })
    expect(next).toEqual({
      maxFeePerGas: (gwei(30n) * 115n) / 100n,
      maxPriorityFeePerGas: (gwei(2n) * 115n) / 100n,
    })
    expect(isValidReplacement(old, next, 10n)).toBe(true)
    expect(isValidReplacement(old, bumpFees(old, old, 10n), 10n)).toBe(true)
  })

  it('rounds up, so tiny fees still rise by the full percentage and never stay equal', () => {
    for (const [fee, tip] of [
      [0n, 0n],
      [1n, 1n],
      [7n, 3n],
      [9n, 9n],
      [101n, 11n],
      [gwei(1n) + 1n, 1n],
    ] as const) {
      const old = { maxFeePerGas: fee, maxPriorityFeePerGas: tip }
      const next = bumpFees(old, { maxFeePerGas: 0n, maxPriorityFeePerGas: 0n }, 10n)
      expect(next.maxFeePerGas).toBeGreaterThan(fee)
      expect(next.maxPriorityFeePerGas).toBeGreaterThan(tip)
      expect(next.maxFeePerGas * 100n).toBeGreaterThanOrEqual(fee * 110n)
      expect(next.maxPriorityFeePerGas * 100n).toBeGreaterThanOrEqual(tip * 110n)
    }
  })

  it('never goes below the network suggestion', () => {
    const old = { maxFeePerGas: gwei(10n), maxPriorityFeePerGas: gwei(1n) }
    const suggested = { maxFeePerGas: gwei(50n), maxPriorityFeePerGas: gwei(3n) }
    expect(bumpFees(old, suggested)).toEqual(suggested)
    // Suggestion above on one field only: that field follows the network, the other the bump.
    const mixed = bumpFees(old, { maxFeePerGas: gwei(5n), maxPriorityFeePerGas: gwei(4n) })
    expect(mixed).toEqual({ maxFeePerGas: gwei(115n) / 10n, maxPriorityFeePerGas: gwei(4n) })
  })

  it('keeps maxFeePerGas at or above the tip', () => {
    const next = bumpFees(
      { maxFeePerGas: gwei(2n), maxPriorityFeePerGas: gwei(2n) },
      { maxFeePerGas: gwei(1n), maxPriorityFeePerGas: gwei(9n) },
    )
    expect(next.maxFeePerGas).toBeGreaterThanOrEqual(next.maxPriorityFeePerGas)
  })

  it('holds for many random fee pairs', () => {
    let seed = 12345n
    const rand = () => {
      seed = (seed * 6364136223846793005n + 1442695040888963407n) % 2n ** 64n
      return seed % gwei(500n)
    }
    for (let i = 0; i < 2000; i++) {
      const old = { maxFeePerGas: rand(), maxPriorityFeePerGas: rand() }
      const suggested = { maxFeePerGas: rand(), maxPriorityFeePerGas: rand() }
      const next = bumpFees(old, suggested, 10n)
      expect(next.maxFeePerGas * 100n >= old.maxFeePerGas * 110n).toBe(true)
      expect(next.maxPriorityFeePerGas * 100n >= old.maxPriorityFeePerGas * 110n).toBe(true)
      expect(next.maxFeePerGas >= suggested.maxFeePerGas).toBe(true)
      expect(next.maxPriorityFeePerGas >= suggested.maxPriorityFeePerGas).toBe(true)
      expect(next.maxFeePerGas >= next.maxPriorityFeePerGas).toBe(true)
    }
  })

  it('refuses a bump under 10 %', () => {
    expect(() =>
      bumpFees(
        { maxFeePerGas: 1n, maxPriorityFeePerGas: 1n },
        { maxFeePerGas: 1n, maxPriorityFeePerGas: 1n },
        5n,
      ),
    ).toThrow(RangeError)
  })
})
