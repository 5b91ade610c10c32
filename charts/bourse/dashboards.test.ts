/**
 * Every query of the chart's Grafana dashboards and PrometheusRules names only metrics the code exports:
 * the names defined in services/, operator/, lib/, adapters/, ledger/ and chain/ (`name: '...'`, or the
 * first name argument of a gauge()/counter()/histogram() helper), prom-client's default process metrics,
 * and Prometheus's own `up`. Runs without helm: the rules are read from the template's `expr:` lines.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '..', '..')
const chart = import.meta.dirname

function sources(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...sources(p))
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

function exportedMetrics(): Set<string> {
  const names = new Set<string>(['up'])
  const def =
    /(?:\bname:\s*|\b(?:gauge|counter|histogram|summary)\(\s*(?:[\w.]+,\s*)?)['"]([a-zA-Z_:][a-zA-Z0-9_:]*)['"]/g
  for (const dir of ['services', 'operator', 'lib', 'adapters', 'ledger', 'chain']) {
    let files: string[] = []
    try {
      files = sources(join(root, dir))
    } catch {
      continue
    }
    for (const f of files) for (const m of readFileSync(f, 'utf8').matchAll(def)) names.add(m[1]!)
  }
  const r = new Registry()
  collectDefaultMetrics({ register: r })
  for (const m of r.getMetricsAsArray()) names.add(m.name)
  return names
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'inf',
  'nan',
])

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or durations. */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/\{\{.*?\}\}/g, '0') // helm templating
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\$\w+/g, '5m')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
  const out: string[] = []
  for (const m of s.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?/g)) {
    const [, name, call] = m
    if (call || KEYWORDS.has(name!.toLowerCase())) continue
    out.push(name!)
  }
  return out
}

function isExported(name: string, exported: Set<string>): boolean {
  if (exported.has(name)) return true
  const base = name.replace(/_(bucket|sum|count)$/, '')
  return base !== name && exported.has(base)
}

type Panel = { type: string; title: string; targets?: { expr: string }[]; panels?: Panel[] }

const dashboards = readdirSync(join(chart, 'dashboards')).filter((f) => f.endsWith('.json'))
const exported = exportedMetrics()

describe('metric names', () => {
  it('finds the metrics the code defines', () => {
    for (const n of [
      'bourse_engine_ack_seconds',
      'bourse_ledger_imbalances',
      'bourse_gas_keeper_low',
      'bourse_syncer_lag_blocks',
      'controller_runtime_reconcile_total',
      'process_cpu_seconds_total',
    ])
      expect(exported).toContain(n)
    expect(exported).toContain('bourse_gateway_requests_total')
    expect(exported).not.toContain('bourse_made_up_total')
  })

  it('parses PromQL', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, market) (rate(a_bucket{x="y"}[$__rate_interval]))) > 0.5',
      ),
    ).toEqual(['a_bucket'])
    expect(
      metricNames('sum(rate(a_sum[5m])) / sum(rate(b_count[5m])) and on (job) up{job=~"e.*"} == 0'),
    ).toEqual(['a_sum', 'b_count', 'up'])
    expect(metricNames('max by (wallet) (x) > {{ $r.chainLagBlocks }}')).toEqual(['x'])
  })
})

describe.each(dashboards)('dashboard %s', (file) => {
  const d = JSON.parse(readFileSync(join(chart, 'dashboards', file), 'utf8')) as {
    uid: string
    panels: Panel[]
  }
  const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row')

  it('has a uid and panels with unique titles', () => {
    expect(d.uid).toMatch(/^bourse-/)
    expect(panels.length).toBeGreaterThan(0)
    expect(new Set(panels.map((p) => p.title)).size).toBe(panels.length)
  })

  it.each(panels.map((p) => [p.title, p] as const))('panel %s queries only exported metrics', (_title, p) => {
    expect(p.targets?.length ?? 0).toBeGreaterThan(0)
    for (const t of p.targets!) {
      const names = metricNames(t.expr)
      expect(names.length, t.expr).toBeGreaterThan(0)
      for (const n of names) expect(isExported(n, exported), `${n} in ${t.expr}`).toBe(true)
    }
  })
})

describe('PrometheusRules', () => {
  const template = readFileSync(join(chart, 'templates', 'prometheusrules.yaml'), 'utf8')
  const exprs = [...template.matchAll(/^\s+expr:\s*(.+)$/gm)].map((m) => m[1]!)
  const alerts = [...template.matchAll(/alert:\s*(\w+)/g)].map((m) => m[1]!)

  it('covers the alerts an operator must not miss', () => {
    for (const a of [
      'BourseEngineDown',
      'BourseAckLatencyHigh',
      'BourseLedgerImbalance',
      'BourseChainLag',
      'BourseGasKeeperLow',
    ])
      expect(alerts).toContain(a)
    expect(exprs.length).toBe(alerts.length)
  })

  it.each(exprs)('%s names only exported metrics', (expr) => {
    const names = metricNames(expr)
    expect(names.length).toBeGreaterThan(0)
    for (const n of names) expect(isExported(n, exported), `${n} in ${expr}`).toBe(true)
  })
})

describe('CRDs', () => {
  it('the chart holds the top-level crds/ files, one source', () => {
    const top = readdirSync(join(root, 'crds'))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
    const mine = readdirSync(join(chart, 'crds')).sort()
    expect(mine).toEqual(top)
    for (const f of top)
      expect(readFileSync(join(chart, 'crds', f), 'utf8'), relative(root, join(chart, 'crds', f))).toBe(
        readFileSync(join(root, 'crds', f), 'utf8'),
      )
  })
})
