/**
 * What the e2e suites share, against the control plane of scripts/cluster (`make e2e` exports KUBECONFIG
 * and the matching kubectl as BOURSE_KUBECTL): an admin KubeConfig, kubectl, polling, the CRDs, a namespace
 * per suite, the Secrets an Exchange names, Exchange and Market manifests, the operator run in this process
 * (kwok pods run no containers) and a stand-in for the engine's HTTP API (no engine runs on kwok either).
 *
 *   const ns = await createNamespace('bourse-e2e-x')
 *   const op = await startTestOperator({ namespace: ns })
 *   ...
 *   await op.stop(); await deleteNamespace(ns)
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node'
import { createLogger } from '../lib/log.ts'
import { createRegistry } from '../lib/metrics.ts'
import { httpEngineClient } from '../operator/engine-client.ts'
import { type Operator, type OperatorOptions, startOperator } from '../operator/operator.ts'

export const root = join(import.meta.dirname, '..')
const kubeconfigFromEnv = process.env.KUBECONFIG
if (!kubeconfigFromEnv) throw new Error('KUBECONFIG is not set: run the e2e suites with `make e2e`')
export const kubeconfigPath: string = kubeconfigFromEnv
// The kubectl built with the cluster (Debian's is two minors behind the 1.34 server).
export const kubectlBin = process.env.BOURSE_KUBECTL ?? 'kubectl'

export const kc = new KubeConfig()
kc.loadFromFile(kubeconfigPath)
const core = kc.makeApiClient(CoreV1Api)
const custom = kc.makeApiClient(CustomObjectsApi)

export const group = 'bourse.dev'
export const version = 'v1alpha1'
export const apiVersion = `${group}/${version}`

const run = promisify(execFile)

export async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(kubectlBin, ['--kubeconfig', kubeconfigPath, ...args], {
    maxBuffer: 16 * 1024 * 1024,
  })
  return stdout
}

/** Polls `fn` every `everyMs` until it returns something other than undefined or false. */
export async function until<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  ms = 45_000,
  everyMs = 250,
): Promise<T> {
  const deadline = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined && v !== false) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Whether the read fails with 404. */
export const notFound = (p: Promise<unknown>) =>
  p.then(
    () => false,
    (e: unknown) => e instanceof ApiException && e.code === 404,
  )

export const CRDS = ['exchanges', 'markets', 'wallets'].map((plural) => `crd/${plural}.${group}`)

/** Applies crds/ (server-side: idempotent, whoever installed them before) and waits until they are served. */
export async function installCrds(): Promise<void> {
  await kubectl('apply', '--server-side', '--field-manager=bourse-e2e', '-f', join(root, 'crds'))
  await kubectl('wait', '--for=condition=Established', '--timeout=60s', ...CRDS)
}

/** A fresh namespace `<prefix>-<random>`, once its default ServiceAccount exists (pods need it). */
export async function createNamespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(4).toString('hex')}`
  await core.createNamespace({ body: { metadata: { name } } })
  await until('the default ServiceAccount', () =>
    core.readNamespacedServiceAccount({ name: 'default', namespace: name }),
  )
  return name
}

/**
 * Deletes a suite's namespace once its operators have stopped. Markets left in it keep the operator's
 * finalizer, which no operator will now remove: it is dropped here, or the namespace stays Terminating.
 */
export async function deleteNamespace(namespace: string): Promise<void> {
  const markets = (await custom
    .listNamespacedCustomObject({ group, version, namespace, plural: 'markets' })
    .catch(() => ({ items: [] }))) as { items: KubernetesObject[] }
  for (const m of markets.items)
    await custom
      .patchNamespacedCustomObject(
        {
          group,
          version,
          namespace,
          plural: 'markets',
          name: m.metadata!.name!,
          body: { metadata: { finalizers: null } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )
      .catch(() => {})
  await core.deleteNamespace({ name: namespace }).catch(() => {})
}

/**
 * The Secrets exchange() names, holding the stores' settings (BOURSE_NSQ is JSON: adapters/bus/env.ts).
 * On kwok nothing connects to them; on kind (e2e/kind/run) pods really run, so they are copied from the
 * chart's evaluation servers' Secrets in BOURSE_E2E_STORES_NAMESPACE.
 */
export async function createStoreSecrets(namespace: string): Promise<void> {
  const secrets: Record<string, Record<string, string>> = {
    'bourse-postgres': { url: 'postgres://bourse@postgres:5432/bourse' },
    'bourse-redis': { nodes: 'redis-0:6379,redis-1:6379,redis-2:6379' },
    'bourse-nsq': { url: JSON.stringify({ nsqd: 'nsqd:4150', nsqdHttp: 'http://nsqd:4151' }) },
    'bourse-clickhouse': { url: 'http://bourse:bourse@clickhouse:8123/bourse' },
  }
  const stores = process.env.BOURSE_E2E_STORES_NAMESPACE
  for (const [name, stringData] of Object.entries(secrets)) {
    const data = stores ? (await core.readNamespacedSecret({ name, namespace: stores })).data : undefined
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name }, ...(data ? { data } : { stringData }) },
    })
  }
}

/** The image Exchanges run: on kind, the one e2e/kind/run built and loaded. */
export const image = process.env.BOURSE_E2E_IMAGE ?? 'ghcr.io/bourse/bourse:0.1.0'

/** An Exchange named `bourse` listing BTC, ETH and USDT, with `spec` merged over the defaults. */
export function exchange(namespace: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion,
    kind: 'Exchange',
    metadata: { name: 'bourse', namespace },
    spec: {
      image,
      postgres: { secretRef: { name: 'bourse-postgres' } },
      redis: { secretRef: { name: 'bourse-redis', key: 'nodes' } },
      nsq: { secretRef: { name: 'bourse-nsq' } },
      clickhouse: { secretRef: { name: 'bourse-clickhouse' } },
      assets: [
        { symbol: 'BTC', precision: 8 },
        { symbol: 'ETH', precision: 8 },
        { symbol: 'USDT', precision: 2 },
      ],
      ...spec,
    },
  }
}

/** A Market of the Exchange `bourse`; base and quote come from the name (`btc-usdt`: BTC/USDT). */
export function market(namespace: string, name: string, spec: Record<string, unknown> = {}) {
  const [base, quote] = name.toUpperCase().split('-')
  return {
    apiVersion,
    kind: 'Market',
    metadata: { name, namespace },
    spec: {
      exchangeRef: { name: 'bourse' },
      base,
      quote,
      tickSize: '0.01',
      lotSize: '0.00001',
      minNotional: '5',
      makerFee: '0.001',
      takerFee: '0.001',
      ...spec,
    },
  }
}

/**
 * The operator in this process, watching one namespace with its Lease there, on short timings (a 4 s lease,
 * a 2 s resync). Without `engine`, engines are unreachable (their status is then read from the Deployment).
 */
export function startTestOperator(
  o: { namespace: string; identity?: string } & Partial<OperatorOptions>,
): Promise<Operator> {
  const { namespace, identity = 'operator-e2e', ...overrides } = o
  return startOperator({
    kc,
    log: createLogger(`e2e-${identity}`, { level: 'warn' }),
    registry: createRegistry({ defaultMetrics: false }),
    engine: httpEngineClient({ baseUrl: () => 'http://127.0.0.1:9', openOrderUsers: async () => [] }),
    watchNamespace: namespace,
    leaseNamespace: namespace,
    identity,
    leaseDurationMs: 4000,
    renewDeadlineMs: 3000,
    retryPeriodMs: 500,
    resyncMs: 2000,
    ...overrides,
  })
}

export interface EngineStandIn {
  readonly url: string
  /** Every request, as `METHOD /path?query`. */
  readonly calls: string[]
  halted: boolean
  openOrders: number
  close(): void
}

/**
 * The engine's HTTP API as services/engine/api.ts serves it (GET /status, POST /halt, DELETE
 * /open-orders: each cancels two orders), for one market, in this process: no engine runs on kwok.
 */
export async function startEngineStandIn(symbol = 'BTCUSDT'): Promise<EngineStandIn> {
  const engine = { calls: [] as string[], halted: false, openOrders: 3 }
  const server = createServer((req, res) => {
    engine.calls.push(`${req.method} ${req.url}`)
    const json = (body: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (req.method === 'GET' && req.url === '/status')
      return json({
        symbol,
        status: engine.halted ? 'halted' : 'trading',
        epoch: '3',
        fenced: false,
        openOrders: engine.openOrders,
        lastPrice: '64000.5',
      })
    if (req.method === 'POST' && req.url === '/halt') {
      engine.halted = true
      return json({ ok: true })
    }
    if (req.method === 'DELETE' && req.url?.startsWith('/open-orders')) {
      engine.openOrders = Math.max(0, engine.openOrders - 2)
      return json({ cancelled: true })
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return Object.assign(engine, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => server.close(),
  })
}
