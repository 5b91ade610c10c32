/**
 * What every benchmark prints as its last line: one JSON object the runner (and CI) can parse.
 * Machines are shared and noisy, so each result carries a baseline measured in the same run.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'

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

/**
 * CPU time used so far, in microseconds: this process's threads summed by name (`MainThread`, `WorkerThread`,
 * V8's GC and compiler helpers as `V8Worker`, …) and every Postgres server process of the machine as `postgres`.
 * Read from /proc, so Linux only (empty elsewhere); ticks are USER_HZ, which Linux fixes at 100 per second.
 */
export function cpuMicros(): Map<string, number> {
  const totals = new Map<string, number>()
  const add = (name: string, stat: string) => {
    // Fields after the ")" that closes the name: state is 3rd, utime 14th and stime 15th of the whole line.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    totals.set(name, (totals.get(name) ?? 0) + (Number(fields[11]) + Number(fields[12])) * 10_000)
  }
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8')
    } catch {
      return undefined // the thread or process ended meanwhile
    }
  }
  if (!existsSync('/proc/self/task')) return totals
  for (const task of readdirSync('/proc/self/task')) {
    const stat = read(`/proc/self/task/${task}/stat`)
    if (stat !== undefined) add(stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')), stat)
  }
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    const stat = read(`/proc/${pid}/stat`)
    if (stat?.includes('(postgres)')) add('postgres', stat)
  }
  return totals
}

/** What each name of `cpuMicros` spent between two readings, per operation (µs, names that spent nothing left out). */
export function cpuPerOperation(
  before: Map<string, number>,
  after: Map<string, number>,
  operations: number,
): Record<string, number> {
  const per: Record<string, number> = {}
  for (const [name, micros] of after) {
    const spent = micros - (before.get(name) ?? 0)
    if (spent > 0) per[name] = Math.round(spent / operations)
  }
  return per
}
