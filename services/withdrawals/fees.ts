/**
 * EIP-1559 fees for a replacement transaction. Nodes accept a replacement (same sender and nonce) only if
 * it pays more on BOTH fee fields: geth and erigon by 10 %, Parity/OpenEthereum by 12.5 %. The rule here
 * raises each field by `bumpPercent` (at least 10; default 15, the margin berachain's sender uses), never
 * below what the network suggests now, and keeps maxFeePerGas ≥ maxPriorityFeePerGas.
 */
export interface Fees {
  readonly maxFeePerGas: bigint
  readonly maxPriorityFeePerGas: bigint
}

export const MIN_BUMP_PERCENT = 10n
export const DEFAULT_BUMP_PERCENT = 15n

/** `value` raised by `percent`, rounded up, and strictly above `value` (a zero fee becomes 1). */
function raised(value: bigint, percent: bigint): bigint {
  const up = (value * (100n + percent) + 99n) / 100n
  return up > value ? up : value + 1n
}

export function bumpFees(old: Fees, suggested: Fees, bumpPercent: bigint = DEFAULT_BUMP_PERCENT): Fees {
  if (bumpPercent < MIN_BUMP_PERCENT)
    throw new RangeError(`a fee bump must be at least ${MIN_BUMP_PERCENT} %`)
  const tip = max(raised(old.maxPriorityFeePerGas, bumpPercent), suggested.maxPriorityFeePerGas)
  const fee = max(raised(old.maxFeePerGas, bumpPercent), suggested.maxFeePerGas, tip)
  return { maxFeePerGas: fee, maxPriorityFeePerGas: tip }
}

/** Whether `next` may replace `old` under a node's `percent` rule (both fields at least `percent` higher). */
export function isValidReplacement(old: Fees, next: Fees, percent: bigint = MIN_BUMP_PERCENT): boolean {
  return (
    next.maxFeePerGas * 100n >= old.maxFeePerGas * (100n + percent) &&
    next.maxPriorityFeePerGas * 100n >= old.maxPriorityFeePerGas * (100n + percent) &&
    next.maxFeePerGas >= next.maxPriorityFeePerGas
  )
}

function max(...values: bigint[]): bigint {
  let top = values[0]!
  for (const v of values) if (v > top) top = v
  return top
}
