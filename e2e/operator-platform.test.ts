/**
 * The Exchange and Wallet controllers against the real control plane of scripts/cluster (`make e2e`), the
 * operator run in this process as in operator.test.ts. An Exchange yields its migration Job first (kwok
 * completes Job pods), then the gateway, ws, handler, user-events, cron and analytics-syncer Deployments and
 * Services, PDBs, HPAs for gateway and ws, the Grafana dashboard ConfigMap, all owned by the Exchange, and
 * reports Ready once kwok has made the pods Ready. No prometheus-operator CRDs are installed here, so no ServiceMonitors.
 * A Wallet yields its syncer Deployment, ConfigMap and Service; its head, scanned block and lag come from a
 * stand-in for the syncer's /status (none runs on kwok).
 */
import {
  AppsV1Api,
  AutoscalingV2Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PolicyV1Api,
} from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Exchange } from '../operator/market.ts'
import type { Operator } from '../operator/operator.ts'
import type { Wallet } from '../operator/wallet.ts'
import {
  createNamespace,
  createStoreSecrets,
  deleteNamespace,
  exchange,
  group,
  image,
  installCrds,
  kc,
  market,
  startTestOperator,
  until,
  version,
} from './fixture.ts'

const core = kc.makeApiClient(CoreV1Api)
const apps = kc.makeApiClient(AppsV1Api)
const batch = kc.makeApiClient(BatchV1Api)
const policy = kc.makeApiClient(PolicyV1Api)
const autoscaling = kc.makeApiClient(AutoscalingV2Api)
const custom = kc.makeApiClient(CustomObjectsApi)
let namespace = ''

const getExchange = () =>
  custom.getNamespacedCustomObject({
    group,
    version,
    namespace,
    plural: 'exchanges',
    name: 'bourse',
  }) as Promise<Exchange>

let op: Operator
// The syncer stand-in: no syncer runs on kwok, so its /status is answered here (undefined: unreachable).
let syncer: { head: number; scanned: number; lag: number } | undefined

beforeAll(async () => {
  await installCrds()
  namespace = await createNamespace('bourse-e2e-platform')
  await createStoreSecrets(namespace)
  const spec = {
    gateway: { replicas: 2 },
    ws: { replicas: 2 },
    cron: { replicas: 2 },
    monitoring: { serviceMonitors: true, grafanaDashboard: true },
  }
  await custom.createNamespacedCustomObject({
    group,
    version,
    namespace,
    plural: 'exchanges',
    body: exchange(namespace, spec),
  })
  await custom.createNamespacedCustomObject({
    group,
    version,
    namespace,
    plural: 'markets',
    body: market(namespace, 'btc-usdt'),
  })
  op = await startTestOperator({ namespace, identity: 'operator-platform', syncerStatus: async () => syncer })
  await until('the operator to lead', async () => op.isLeader)
})

afterAll(async () => {
  await op?.stop().catch(() => {})
  await deleteNamespace(namespace)
})

describe('the Exchange controller', () => {
  test('runs the migration Job before any component Deployment', async () => {
    const x = await getExchange()
    const jobs = await until('the migration Job', async () => {
      const l = await batch.listNamespacedJob({ namespace })
      return l.items.length > 0 && l.items
    })
    expect(jobs).toHaveLength(1)
    const job = jobs[0]!
    expect(job.metadata!.name).toMatch(/^bourse-migrate-/)
    expect(job.spec!.template.spec!.containers[0]!.args).toEqual(['migrate'])
    expect(job.metadata!.ownerReferences).toEqual([
      expect.objectContaining({ kind: 'Exchange', name: 'bourse', uid: x.metadata!.uid, controller: true }),
    ])
    const done = await until('the migration Job to succeed', async () => {
      const j = await batch.readNamespacedJob({ name: job.metadata!.name!, namespace })
      return (j.status?.succeeded ?? 0) > 0 && j
    })
    const gw = await until('the gateway Deployment', () =>
      apps.readNamespacedDeployment({ name: 'bourse-gateway', namespace }),
    )
    // The Deployments came after the Job had completed.
    expect(new Date(gw.metadata!.creationTimestamp!).getTime()).toBeGreaterThanOrEqual(
      new Date(done.status!.completionTime!).getTime() - 1000,
    )
  })

  test('creates the component Deployments, Services, PDBs, HPAs and dashboard, owned by the Exchange', async () => {
    const x = await getExchange()
    const owned = expect.arrayContaining([
      expect.objectContaining({ kind: 'Exchange', name: 'bourse', uid: x.metadata!.uid, controller: true }),
    ])
    for (const c of ['gateway', 'ws', 'handler', 'user-events', 'cron', 'analytics']) {
      const d = await until(`the ${c} Deployment`, () =>
        apps.readNamespacedDeployment({ name: `bourse-${c}`, namespace }),
      )
      const svc = await until(`the ${c} Service`, () =>
        core.readNamespacedService({ name: `bourse-${c}`, namespace }),
      )
      expect(d.metadata!.ownerReferences).toEqual(owned)
      expect(svc.metadata!.ownerReferences).toEqual(owned)
      const k = d.spec!.template.spec!.containers[0]!
      expect(k.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true })
      expect(k.resources!.limits).toBeDefined()
      expect(k.readinessProbe!.httpGet!.path).toBe('/readyz')
      expect(d.spec!.template.metadata!.annotations!['prometheus.io/scrape']).toBe('true')
      expect(d.metadata!.managedFields!.filter((f) => f.operation === 'Apply').map((f) => f.manager)).toEqual(
        ['bourse-operator'],
      )
    }
    const gw = await apps.readNamespacedDeployment({ name: 'bourse-gateway', namespace })
    const env = Object.fromEntries(gw.spec!.template.spec!.containers[0]!.env!.map((e) => [e.name, e]))
    expect(env.BOURSE_DATABASE_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'bourse-postgres', key: 'url' })
    expect(env.BOURSE_ENGINES!.value).toBe('BTCUSDT=http://engine-btc-usdt:7000')
    const keys = await core.readNamespacedSecret({ name: 'bourse-gateway-keys', namespace })
    expect(Buffer.from(keys.data!.keyEncryptionSecret!, 'base64').toString()).toMatch(/^[0-9a-f]{64}$/)

    for (const c of ['gateway', 'ws', 'cron'])
      expect(
        (await policy.readNamespacedPodDisruptionBudget({ name: `bourse-${c}`, namespace })).spec,
      ).toMatchObject({ maxUnavailable: 1 })
    const pdbs = await policy.listNamespacedPodDisruptionBudget({ namespace })
    expect(pdbs.items.map((p) => p.metadata!.name).sort()).toEqual([
      'bourse-cron',
      'bourse-gateway',
      'bourse-handler',
      'bourse-ws',
    ])
    const hpas = await autoscaling.listNamespacedHorizontalPodAutoscaler({ namespace })
    expect(hpas.items.map((h) => h.metadata!.name).sort()).toEqual(['bourse-gateway', 'bourse-ws'])
    expect(hpas.items[0]!.spec!.minReplicas).toBe(2)
    const cm = await core.readNamespacedConfigMap({ name: 'bourse-grafana-dashboard', namespace })
    expect(cm.metadata!.labels!.grafana_dashboard).toBe('1')
    expect(JSON.parse(cm.data!['bourse.json']!).panels.length).toBeGreaterThan(0)
  })

  test('reports Ready with the migrated image, the market count and observedGeneration', async () => {
    const x = await until(
      'Exchange Ready',
      async () => {
        const x = await getExchange()
        return x.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' && x
      },
      60_000,
    )
    expect(x.status).toMatchObject({
      phase: 'Ready',
      markets: 1,
      migratedVersion: image,
      observedGeneration: x.metadata!.generation,
    })
  })

  test('switching the dashboard off removes it; a new Market reaches the gateway', async () => {
    await custom.patchNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'exchanges',
      name: 'bourse',
      body: [{ op: 'replace', path: '/spec/monitoring/grafanaDashboard', value: false }],
    })
    await until('the dashboard gone', async () => {
      const l = await core.listNamespacedConfigMap({ namespace, labelSelector: 'grafana_dashboard=1' })
      return l.items.length === 0
    })
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'markets',
      body: market(namespace, 'eth-usdt'),
    })
    await until('the gateway to know both engines', async () => {
      const gw = await apps.readNamespacedDeployment({ name: 'bourse-gateway', namespace })
      const v = gw.spec!.template.spec!.containers[0]!.env!.find((e) => e.name === 'BOURSE_ENGINES')?.value
      return v === 'BTCUSDT=http://engine-btc-usdt:7000,ETHUSDT=http://engine-eth-usdt:7000'
    })
    await until('markets: 2', async () => (await getExchange()).status?.markets === 2)
  })
})

const XPUB =
  'xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8'
const wallet = (name: string, exchangeName = 'bourse') => ({
  apiVersion: `${group}/${version}`,
  kind: 'Wallet',
  metadata: { name, namespace },
  spec: {
    exchangeRef: { name: exchangeName },
    chain: { id: 1, name: 'ethereum' },
    rpc: { secretRef: { name: 'ethereum-rpc' } },
    confirmations: 12,
    assets: [{ symbol: 'ETH', native: true, decimals: 18 }],
    depositKey: { xpub: XPUB },
    hotWallet: { keySecretRef: { name: 'ethereum-hot-wallet' } },
    coldWallet: { address: '0x00000000219ab540356cBB839Cbe05303d7705Fa' },
    gasKeeper: { keySecretRef: { name: 'ethereum-gas-keeper' }, minBalance: '0.5' },
  },
})
const getWallet = (name: string) =>
  custom.getNamespacedCustomObject({ group, version, namespace, plural: 'wallets', name }) as Promise<Wallet>

describe('the Wallet controller', () => {
  test('creates the syncer Deployment, ConfigMap and Service, owned by the Wallet', async () => {
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'wallets',
      body: wallet('ethereum'),
    })
    const w = await getWallet('ethereum')
    const d = await until('the syncer Deployment', () =>
      apps.readNamespacedDeployment({ name: 'syncer-ethereum', namespace }),
    )
    const cm = await until('the ConfigMap', () =>
      core.readNamespacedConfigMap({ name: 'syncer-ethereum', namespace }),
    )
    const svc = await until('the Service', () =>
      core.readNamespacedService({ name: 'syncer-ethereum', namespace }),
    )
    for (const child of [d, cm, svc])
      expect(child.metadata!.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'Wallet', name: 'ethereum', uid: w.metadata!.uid, controller: true }),
      ])
    expect(d.spec!.replicas).toBe(1)
    expect(d.spec!.strategy!.type).toBe('Recreate')
    const pod = d.spec!.template.spec!
    const c = pod.containers[0]!
    expect(c.args).toEqual(['syncer', '--wallet', 'ethereum'])
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true })
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e]))
    expect(env.BOURSE_CHAIN_RPC_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'ethereum-rpc', key: 'urls' })
    expect(env.BOURSE_WALLET_FILE!.value).toBe('/etc/bourse/wallet.json')
    expect(env.BOURSE_WALLET_HOT_KEY_FILE!.value).toBe('/var/run/secrets/bourse/hot-wallet/privateKey')
    expect(pod.volumes!.find((v) => v.name === 'hot-wallet')!.secret!.secretName).toBe('ethereum-hot-wallet')
    expect(JSON.stringify(c.env)).not.toContain('ethereum-hot-wallet')
    expect(JSON.parse(cm.data!['wallet.json']!)).toMatchObject({
      chain: { id: 1 },
      depositKey: { xpub: XPUB },
    })
  })

  test('reports Following from the Deployment alone, then head, scanned and lag from the syncer', async () => {
    const w = await until('Wallet Ready', async () => {
      const w = await getWallet('ethereum')
      return w.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True' && w
    })
    expect(w.status).toMatchObject({ phase: 'Following', observedGeneration: w.metadata!.generation })
    syncer = { head: 21_000_000, scanned: 20_999_000, lag: 1000 }
    const behind = await until('CatchingUp', async () => {
      const w = await getWallet('ethereum')
      return w.status?.phase === 'CatchingUp' && w
    })
    expect(behind.status).toMatchObject({ headBlock: 21_000_000, processedBlock: 20_999_000 })
    expect(behind.status!.conditions!.find((c) => c.type === 'Ready')!.message).toContain(
      '1000 blocks behind',
    )
    syncer = { head: 21_000_010, scanned: 21_000_008, lag: 2 }
    const following = await until('Following again', async () => {
      const w = await getWallet('ethereum')
      return w.status?.phase === 'Following' && w.status.headBlock === 21_000_010 && w
    })
    expect(following.status!.processedBlock).toBe(21_000_008)
  })

  test('a Wallet of a missing Exchange is Pending and gets no syncer', async () => {
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'wallets',
      body: wallet('orphan', 'nope'),
    })
    const w = await until('Pending', async () => {
      const w = await getWallet('orphan')
      return w.status?.phase === 'Pending' && w
    })
    expect(w.status!.conditions!.find((c) => c.type === 'Ready')!.reason).toBe('ExchangeNotFound')
    expect(
      (await apps.listNamespacedDeployment({ namespace, labelSelector: 'bourse.dev/wallet=orphan' })).items,
    ).toEqual([])
  })
})
