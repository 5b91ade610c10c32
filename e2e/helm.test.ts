/**
 * The Helm chart on the real control plane of scripts/cluster (`make e2e`, which builds helm as `make chart`
 * does and passes it as BOURSE_HELM): `helm install` into a fresh namespace with values that switch on the
 * evaluation servers and create an Exchange, two Markets and a Wallet; the chart's CRDs are what the API
 * server serves; the operator Deployment and the evaluation servers become Available (kwok makes pods
 * Ready); then the operator, run in this process as the chart's ServiceAccount (a TokenRequest token, so its
 * RBAC is exactly the chart's Role: a missing verb is a 403 and a reconcile error), makes every child and
 * reports every resource Ready with no reconcile error; then the resources are deleted as the chart's NOTES
 * say (Markets first, while the operator runs, so it halts them and releases their orders) and
 * `helm uninstall` leaves nothing of the release behind.
 */
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  ApiextensionsV1Api,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  loadYaml,
  RbacAuthorizationV1Api,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { httpEngineClient } from '../operator/engine-client.ts'
import { REPORTING_CONTROLLER } from '../operator/events.ts'
import type { Exchange, Market } from '../operator/market.ts'
import type { Operator } from '../operator/operator.ts'
import type { Wallet } from '../operator/wallet.ts'
import {
  CRDS,
  createNamespace,
  deleteNamespace,
  type EngineStandIn,
  group,
  kc,
  kubeconfigPath,
  kubectl,
  root,
  startEngineStandIn,
  startTestOperator,
  until,
  version,
} from './fixture.ts'

const helmBin = process.env.BOURSE_HELM ?? join(homedir(), '.cache/bourse/helm-v3.21.4/helm')
const release = 'bourse'
const instance = `app.kubernetes.io/instance=${release}`
const core = kc.makeApiClient(CoreV1Api)
const apps = kc.makeApiClient(AppsV1Api)
const batch = kc.makeApiClient(BatchV1Api)
const rbac = kc.makeApiClient(RbacAuthorizationV1Api)
const custom = kc.makeApiClient(CustomObjectsApi)
const extensions = kc.makeApiClient(ApiextensionsV1Api)
const eventsApi = kc.makeApiClient(EventsV1Api)
const run = promisify(execFile)

async function helm(...args: string[]): Promise<string> {
  const { stdout } = await run(helmBin, ['--kubeconfig', kubeconfigPath, '--namespace', namespace, ...args])
  return stdout
}

const XPUB =
  'xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8'
const marketSpec = (base: string, lotSize: string) => ({
  base,
  quote: 'USDT',
  tickSize: '0.01',
  lotSize,
  minNotional: '5',
  makerFee: '0.001',
  takerFee: '0.001',
})
const values = (watchNamespace: string) => ({
  operator: { watchNamespace },
  evaluation: {
    postgres: { enabled: true },
    redis: { enabled: true },
    nsq: { enabled: true },
    clickhouse: { enabled: true },
  },
  exchange: {
    enabled: true,
    spec: {
      assets: [
        { symbol: 'BTC', precision: 8 },
        { symbol: 'ETH', precision: 8 },
        { symbol: 'USDT', precision: 2 },
      ],
    },
  },
  markets: [
    { name: 'btc-usdt', spec: marketSpec('BTC', '0.00001') },
    { name: 'eth-usdt', spec: marketSpec('ETH', '0.0001') },
  ],
  wallets: [
    {
      name: 'ethereum',
      spec: {
        chain: { id: 1, name: 'ethereum' },
        rpc: { secretRef: { name: 'ethereum-rpc' } },
        confirmations: 12,
        assets: [{ symbol: 'ETH', native: true, decimals: 18 }],
        depositKey: { xpub: XPUB },
        hotWallet: { keySecretRef: { name: 'ethereum-hot-wallet' } },
        coldWallet: { address: '0x00000000219ab540356cBB839Cbe05303d7705Fa' },
        gasKeeper: { keySecretRef: { name: 'ethereum-gas-keeper' }, minBalance: '0.5' },
      },
    },
  ],
})

let namespace = ''
let engine: EngineStandIn
let op: Operator | undefined
/** Whether this run removed unused CRDs so that `helm install` had to create them. */
let crdsFresh = false

/** Whether any Exchange, Market or Wallet exists in any namespace (another suite is using the CRDs). */
async function bourseObjectsExist(): Promise<boolean> {
  for (const plural of ['exchanges', 'markets', 'wallets']) {
    const list = (await custom
      .listClusterCustomObject({ group, version, plural, limit: 1 })
      .catch(() => ({ items: [] }))) as { items: unknown[] }
    if (list.items.length > 0) return true
  }
  return false
}

const available = (d: { status?: { conditions?: { type: string; status: string }[] } }) =>
  d.status?.conditions?.find((c) => c.type === 'Available')?.status === 'True'
const ready = (o: { status?: { conditions?: { type: string; status: string }[] } }) =>
  o.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'
const get = <T>(plural: string, name: string) =>
  custom.getNamespacedCustomObject({ group, version, namespace, plural, name }) as Promise<T>

beforeAll(async () => {
  engine = await startEngineStandIn()
  namespace = await createNamespace('bourse-e2e-helm')
  // The CRDs are cluster-wide and shared with the other suites: only when nothing uses them are they
  // removed, so that the chart's crds/ really installs them.
  if (!(await bourseObjectsExist())) {
    await kubectl('delete', '--ignore-not-found', '--wait', '--timeout=60s', ...CRDS)
    crdsFresh = true
  }
})

afterAll(async () => {
  await op?.stop().catch(() => {})
  engine?.close()
  await helm('uninstall', release).catch(() => {})
  await deleteNamespace(namespace)
})

describe('the chart', () => {
  test('installs with an Exchange, two Markets and a Wallet; the operator and evaluation servers become Available', async () => {
    const file = join(tmpdir(), `${namespace}-values.json`)
    writeFileSync(file, JSON.stringify(values(namespace)))
    await helm('install', release, join(root, 'charts/bourse'), '-f', file, '--wait', '--timeout=2m')
    expect(JSON.parse(await helm('status', release, '-o', 'json')).info.status).toBe('deployed')

    const operator = await apps.readNamespacedDeployment({ name: `${release}-operator`, namespace })
    expect(available(operator)).toBe(true)
    const pod = operator.spec!.template.spec!
    expect(pod.serviceAccountName).toBe(release)
    expect(pod.containers[0]!.args).toEqual(['operator'])
    const env = Object.fromEntries(pod.containers[0]!.env!.map((e) => [e.name, e.value]))
    expect(env.BOURSE_WATCH_NAMESPACE).toBe(namespace)

    for (const name of ['postgres', 'redis', 'clickhouse']) {
      const s = await apps.readNamespacedStatefulSet({ name: `${release}-${name}`, namespace })
      expect(s.status!.readyReplicas).toBe(s.spec!.replicas)
    }
    expect(available(await apps.readNamespacedDeployment({ name: `${release}-nsq`, namespace }))).toBe(true)
    await until('the Redis cluster Job to complete', async () => {
      const j = await batch.readNamespacedJob({ name: `${release}-redis-create-cluster`, namespace })
      return (j.status?.succeeded ?? 0) > 0
    })
    const nsq = await core.readNamespacedSecret({ name: `${release}-nsq`, namespace })
    expect(JSON.parse(Buffer.from(nsq.data!.url!, 'base64').toString())).toEqual({
      nsqd: `${release}-nsq.${namespace}.svc:4150`,
      nsqdHttp: `http://${release}-nsq.${namespace}.svc:4151`,
    })

    const x = await get<Exchange>('exchanges', 'bourse')
    expect(x.spec.postgres.secretRef.name).toBe(`${release}-postgres`)
    expect(x.spec.image).toBe('ghcr.io/bourse/bourse:0.1.0')
    const m = await get<Market>('markets', 'eth-usdt')
    expect(m.spec.exchangeRef.name).toBe('bourse')
    expect((await get<Wallet>('wallets', 'ethereum')).spec.exchangeRef.name).toBe('bourse')
  })

  test('the served CRDs are the chart’s', async () => {
    for (const file of ['exchange', 'market', 'wallet']) {
      const chart = loadYaml<V1CustomResourceDefinition>(
        readFileSync(join(root, 'charts/bourse/crds', `${file}.yaml`), 'utf8'),
      )
      const served = await extensions.readCustomResourceDefinition({ name: chart.metadata!.name! })
      expect(served.status!.conditions!.find((c) => c.type === 'Established')!.status).toBe('True')
      expect(served.spec.versions.map((v) => v.schema)).toEqual(chart.spec.versions.map((v) => v.schema))
      // Created by `helm install` when this run could remove them first (see beforeAll).
      if (crdsFresh) expect(served.metadata!.managedFields!.map((f) => f.manager)).toContain('helm')
    }
  })

  test('with only the chart’s RBAC, the operator makes every child and reports everything Ready', async () => {
    const token = await core.createNamespacedServiceAccountToken({
      name: release,
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 3600 } },
    })
    const cluster = kc.getCurrentCluster()!
    const asOperator = new KubeConfig()
    asOperator.loadFromOptions({
      clusters: [cluster],
      users: [{ name: 'operator', token: token.status!.token }],
      contexts: [{ name: 'operator', cluster: cluster.name, user: 'operator' }],
      currentContext: 'operator',
    })
    op = await startTestOperator({
      namespace,
      kc: asOperator,
      identity: `${release}-operator-0`,
      engine: httpEngineClient({ baseUrl: () => engine.url, openOrderUsers: async () => [7n, 9n] }),
      httpPort: 0,
    })
    await until('the operator to lead', async () => op!.isLeader)

    const x = await until(
      'the Exchange Ready',
      async () => {
        const x = await get<Exchange>('exchanges', 'bourse')
        return ready(x) && x.status?.markets === 2 && x
      },
      90_000,
    )
    expect(x.status!.observedGeneration).toBe(x.metadata!.generation)
    for (const name of ['btc-usdt', 'eth-usdt']) {
      const m = await until(`Market ${name} Ready`, async () => {
        const m = await get<Market>('markets', name)
        return ready(m) && m
      })
      expect(m.status).toMatchObject({ phase: 'Trading', lastPrice: '64000.5' })
    }
    const w = await until('the Wallet Ready', async () => {
      const w = await get<Wallet>('wallets', 'ethereum')
      return ready(w) && w
    })
    expect(w.status!.phase).toBe('Following')

    const children = ['engine-btc-usdt', 'engine-eth-usdt', 'syncer-ethereum']
    for (const c of ['gateway', 'ws', 'cron', 'analytics']) children.push(`bourse-${c}`)
    for (const name of children)
      await until(`Deployment ${name} Available`, async () =>
        available(await apps.readNamespacedDeployment({ name, namespace })),
      )

    const metrics = await (await fetch(`${op.http!.url}/metrics`)).text()
    for (const c of ['market', 'exchange', 'wallet']) {
      expect(metrics).toMatch(
        new RegExp(`controller_runtime_reconcile_total\\{controller="${c}",result="requeue_after"\\} [1-9]`),
      )
      expect(metrics).toContain(`controller_runtime_reconcile_errors_total{controller="${c}"} 0`)
    }
    // The operator's own: the API server's repair loops may warn too (a Service IP allocated as it was
    // created: "ClusterIPNotAllocated … repairing"), which says nothing about the operator or the chart.
    const warnings = await eventsApi.listNamespacedEvent({ namespace, fieldSelector: 'type=Warning' })
    const operatorWarnings = warnings.items.filter((e) => e.reportingController === REPORTING_CONTROLLER)
    expect(operatorWarnings.map((e) => `${e.reason}: ${e.note}`)).toEqual([])
  }, 120_000)

  test('deleting the resources, then helm uninstall, leaves nothing of the release', async () => {
    engine.calls.length = 0
    await kubectl(
      'delete',
      '-n',
      namespace,
      '-l',
      instance,
      'markets,wallets,exchanges',
      '--wait',
      '--timeout=60s',
    )
    expect(engine.calls).toContain('DELETE /open-orders?userId=7')
    // Uninstalling removes the operator's pod: the operator stops first here, releasing its Lease.
    await op!.stop()
    op = undefined
    await helm('uninstall', release, '--wait', '--timeout=2m')

    await until(
      'everything of the release and its resources gone',
      async () => {
        const left = await Promise.all([
          apps.listNamespacedDeployment({ namespace }),
          apps.listNamespacedStatefulSet({ namespace }),
          batch.listNamespacedJob({ namespace }),
          core.listNamespacedService({ namespace }),
          core.listNamespacedSecret({ namespace }),
          core.listNamespacedConfigMap({ namespace }),
          core.listNamespacedServiceAccount({ namespace, fieldSelector: 'metadata.name!=default' }),
          rbac.listNamespacedRole({ namespace }),
          rbac.listNamespacedRoleBinding({ namespace }),
        ])
        const names = left.flatMap((l) => l.items.map((i) => i.metadata!.name!))
        return names.every((n) => n === 'kube-root-ca.crt')
      },
      60_000,
    )
    expect(JSON.parse(await helm('list', '-o', 'json'))).toEqual([])
    // Helm never deletes CRDs (they hold every namespace's resources): they stay served.
    for (const crd of CRDS) expect(await kubectl('get', crd, '-o', 'name')).toContain(crd.slice(4))
  })
})
