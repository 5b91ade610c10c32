/**
 * The operator at scale on the local control plane of scripts/cluster (`make bench B=operator-scale` starts
 * it): seconds from applying N Markets to every one of their engine Deployments Available, for N = 1 and
 * N = 100 (targets 5 s and 60 s), with the operator running in this process on its production timings.
 *
 * Baseline, measured in the same run: the same N engine Deployments (the operator's own desiredDeployment)
 * created directly through the API, timed to all Available. That is the control plane's floor (controller-
 * manager, scheduler and kwok turning Deployments into Ready pods); the ratio is what the operator adds:
 * informers, the work queue, finalizers, three applies per Market, status and the Exchange's reconciles.
 * Each N runs in fresh namespaces, the baseline first, both creating with the same concurrency; a phase
 * starts once the previous one's namespace is gone.
 */
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node'
import {
  createNamespace,
  createStoreSecrets,
  deleteNamespace,
  exchange,
  group,
  installCrds,
  kc,
  market,
  notFound,
  until,
  version,
} from '../e2e/fixture.ts'
import { createLogger } from '../lib/log.ts'
import { createRegistry } from '../lib/metrics.ts'
import { httpEngineClient } from '../operator/engine-client.ts'
import { desiredDeployment, type Exchange, type Market } from '../operator/market.ts'
import { startOperator } from '../operator/operator.ts'
import { report, round } from './report.ts'

const SIZES = [1, 100]
const TARGETS: Record<number, number> = { 1: 5, 100: 60 }
const CONCURRENCY = 8
const TIMEOUT_MS = 300_000
const core = kc.makeApiClient(CoreV1Api)
const apps = kc.makeApiClient(AppsV1Api)
const custom = kc.makeApiClient(CustomObjectsApi)
const log = createLogger('operator-scale', { level: 'warn' })

const names = (n: number) => Array.from({ length: n }, (_, i) => `s${String(i).padStart(3, '0')}-usdt`)

/** Runs `fn` over `items`, CONCURRENCY at a time. */
async function pool<T>(items: T[], fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
}

/** Seconds from now until `n` Deployments of the namespace's engines are Available. */
async function untilAvailable(namespace: string, n: number, since: number): Promise<number> {
  await until(
    `${n} engine Deployments Available in ${namespace}`,
    async () => {
      const list = await apps.listNamespacedDeployment({ namespace, labelSelector: 'bourse.dev/market' })
      const up = list.items.filter((d) =>
        d.status?.conditions?.some((c) => c.type === 'Available' && c.status === 'True'),
      )
      return up.length === n
    },
    TIMEOUT_MS,
    100,
  )
  return (performance.now() - since) / 1000
}

/** Deletes the namespace and waits until it is gone, so its pods' removal does not slow the next phase. */
async function removeNamespace(namespace: string): Promise<void> {
  await deleteNamespace(namespace)
  await until(
    `namespace ${namespace} gone`,
    () => notFound(core.readNamespace({ name: namespace })),
    TIMEOUT_MS,
  )
}

/** The operator's engine Deployments for n Markets, created directly (no owner: nothing to collect them). */
async function direct(n: number): Promise<number> {
  const namespace = await createNamespace('bourse-bench-direct')
  try {
    const x = exchange(namespace) as unknown as Exchange
    const deployments = names(n).map((name) => {
      const m = market(namespace, name) as unknown as Market
      m.metadata!.uid = 'none'
      const d = desiredDeployment(m, x)
      delete d.metadata!.ownerReferences
      return d
    })
    const start = performance.now()
    await pool(deployments, (body) => apps.createNamespacedDeployment({ namespace, body }))
    return await untilAvailable(namespace, n, start)
  } finally {
    await removeNamespace(namespace)
  }
}

/** n Markets applied to a running operator (its Exchange already reconciled). */
async function throughOperator(n: number): Promise<number> {
  const namespace = await createNamespace('bourse-bench-operator')
  const operator = await startOperator({
    kc,
    log,
    registry: createRegistry({ defaultMetrics: false }),
    // Nothing listens: the engines' /status is refused at once, as when an engine is not up yet.
    engine: httpEngineClient({ baseUrl: () => 'http://127.0.0.1:9', openOrderUsers: async () => [] }),
    watchNamespace: namespace,
    leaseNamespace: namespace,
  })
  try {
    await createStoreSecrets(namespace)
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'exchanges',
      body: exchange(namespace),
    })
    await until(
      'the Exchange Ready',
      async () => {
        const x = (await custom.getNamespacedCustomObject({
          group,
          version,
          namespace,
          plural: 'exchanges',
          name: 'bourse',
        })) as Exchange
        return x.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
      },
      TIMEOUT_MS,
    )
    const start = performance.now()
    await pool(names(n), (name) =>
      custom.createNamespacedCustomObject({
        group,
        version,
        namespace,
        plural: 'markets',
        body: market(namespace, name),
      }),
    )
    return await untilAvailable(namespace, n, start)
  } finally {
    await operator.stop()
    await removeNamespace(namespace)
  }
}

async function main(): Promise<void> {
  // The local control plane only: its fake nodes are kwok's. Never a real cluster KUBECONFIG points at.
  const nodes = await core.listNode({ labelSelector: 'type=kwok' })
  if (nodes.items.length === 0)
    throw new Error('no kwok nodes: run this against scripts/cluster (make bench B=operator-scale)')
  await installCrds()
  const results: Record<number, { seconds: number; directSeconds: number }> = {}
  for (const n of SIZES) {
    const directSeconds = round(await direct(n))
    const seconds = round(await throughOperator(n))
    results[n] = { seconds, directSeconds }
    console.log(
      `N=${n}: through the operator ${seconds} s (target ≤ ${TARGETS[n]} s); Deployments created directly ${directSeconds} s`,
    )
  }
  const big = results[100]!
  report({
    bench: 'operator-scale',
    value: big.seconds,
    unit: 's from applying 100 Markets to all engine Deployments Available',
    baseline: big.directSeconds,
    baselineUnit: 's for the same 100 Deployments created directly through the API to be Available',
    n1Seconds: results[1]!.seconds,
    n1DirectSeconds: results[1]!.directSeconds,
    targetSeconds: TARGETS,
    nodes: nodes.items.length,
    concurrency: CONCURRENCY,
  })
}

await main()
