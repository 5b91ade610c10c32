/**
 * Benchmark runner: `node bench/run.ts` runs every bench/*.ts, `node bench/run.ts engine-inmem` one.
 * Each bench runs alone in its own node process; its last stdout line is its JSON result.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const benchDir = dirname(fileURLToPath(import.meta.url))
const notBenches = new Set(['run', 'report'])
// Benches that need the local Kubernetes control plane (scripts/cluster). `make bench` starts it and sets
// BOURSE_BENCH_CLUSTER only when the cluster's binaries are already built, since a cold build takes tens of
// minutes; without it the default run leaves them out (ask for one by name: `make bench B=operator-scale`).
const needCluster = new Set(['operator-scale'])

function availableBenches(): string[] {
  return readdirSync(benchDir)
    .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
    .map((file) => basename(file, '.ts'))
    .filter((name) => !notBenches.has(name))
    .sort()
}

/** Runs one bench, passing its output through; returns its parsed result line, or null when it failed. */
function runBench(name: string): Record<string, unknown> | null {
  console.log(`# ${name}`)
  const child = spawnSync(process.execPath, [join(benchDir, `${name}.ts`)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  process.stdout.write(child.stdout ?? '')
  const lastLine = (child.stdout ?? '').trim().split('\n').at(-1) ?? ''
  if (child.status !== 0) return null
  try {
    return JSON.parse(lastLine) as Record<string, unknown>
  } catch {
    console.error(`${name}: last line is not a JSON result: ${lastLine}`)
    return null
  }
}

function main(): void {
  const available = availableBenches()
  const requested = process.argv.slice(2)
  const unknown = requested.filter((name) => !available.includes(name))
  if (unknown.length > 0) {
    console.error(`unknown bench ${unknown.join(', ')}; available: ${available.join(', ')}`)
    process.exit(2)
  }
  const skipped =
    requested.length > 0 || process.env.BOURSE_BENCH_CLUSTER
      ? []
      : available.filter((n) => needCluster.has(n))
  if (skipped.length > 0) console.log(`# skipped ${skipped.join(', ')}: no local cluster (scripts/cluster)`)
  const chosen = requested.length > 0 ? requested : available.filter((name) => !skipped.includes(name))
  const failed = chosen.filter((name) => runBench(name) === null)
  if (failed.length > 0) {
    console.error(`failed: ${failed.join(', ')}`)
    process.exit(1)
  }
}

main()
