/**
 * What every benchmark prints as its last line: one JSON object the runner (and CI) can parse.
 * Machines are shared and noisy, so each result carries a baseline measured in the same run.
 */
export interface BenchResult {
  bench: string
  value: number
  unit: string
  baseline: number
  [extra: string]: unknown
}

/** Prints the result with ratio = value / baseline. Call it last. */
export function report(result: BenchResult): void {
  const ratio = result.baseline === 0 ? null : round(result.value / result.baseline)
  console.log(JSON.stringify({ ...result, ratio }))
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/** Runs `run` (which returns how many operations it did) `warmups` times untimed, then `repeats` times: median ops/s. */
export function opsPerSecond(run: () => number, { warmups = 2, repeats = 7 } = {}): number {
  for (let i = 0; i < warmups; i++) run()
  const rates: number[] = []
  for (let i = 0; i < repeats; i++) {
    const start = process.hrtime.bigint()
    const operations = run()
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    rates.push(operations / seconds)
  }
  return Math.round(median(rates))
}

export function round(value: number, digits = 2): number {
  const scale = 10 ** digits
  return Math.round(value * scale) / scale
}

/** A deterministic PRNG (mulberry32) in [0, 1): benches replay the very same workload on both sides. */
export function seededRandom(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
