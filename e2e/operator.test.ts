/**
 * The operator against the real control plane of scripts/cluster (`make e2e`): run in this process (as
 * the kwok notes advise: pods on kwok nodes run no containers, so the operator's own pod could not), it
 * turns an Exchange and a Market into the engine's Deployment, Service and ConfigMap, owned by the Market;
 * reports Ready with observedGeneration once the Deployment is Available (kwok marks the pod Ready); puts
 * back a hand-edited Deployment; rolls the engine when a fee changes; lets only the Lease's holder
 * reconcile; and on delete halts the market and cancels its open orders before the garbage collector
 * removes the children.
 *
 * The one stand-in: the engine's HTTP API (fixture.ts startEngineStandIn). No engine container runs on kwok,
 * so the operator's real HTTP engine client talks to a small server in this process; the list of users with
 * open orders (read from Postgres in production) is given by the test.
 */
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { httpEngineClient } from '../operator/engine-client.ts'
import type { Market } from '../operator/market.ts'
import type { Operator } from '../operator/operator.ts'
import { CONFIG_HASH } from '../operator/shared.ts'
import {
  createNamespace,
  createStoreSecrets,
  deleteNamespace,
  type EngineStandIn,
  exchange,
  image as exchangeImage,
  group,
  installCrds,
  kc,
  market,
  notFound,
  startEngineStandIn,
  startTestOperator,
  until,
  version,
} from './fixture.ts'

const core = kc.makeApiClient(CoreV1Api)
const apps = kc.makeApiClient(AppsV1Api)
const custom = kc.makeApiClient(CustomObjectsApi)
const eventsApi = kc.makeApiClient(EventsV1Api)
let namespace = ''
let engine: EngineStandIn

const operators: Operator[] = []
async function operator(identity: string): Promise<Operator> {
  const o = await startTestOperator({
    namespace,
    identity,
    engine: httpEngineClient({ baseUrl: () => engine.url, openOrderUsers: async () => [7n, 9n] }),
    httpPort: 0,
  })
  operators.push(o)
  return o
}

const getMarket = (name: string) =>
  custom.getNamespacedCustomObject({ group, version, namespace, plural: 'markets', name }) as Promise<Market>

let a: Operator

beforeAll(async () => {
  engine = await startEngineStandIn()
  await installCrds()
  namespace = await createNamespace('bourse-e2e-operator')
  await createStoreSecrets(namespace)
  await custom.createNamespacedCustomObject({
    group,
    version,
    namespace,
    plural: 'exchanges',
    body: exchange(namespace),
  })
  a = await operator('operator-a')
  await until('operator a to lead', async () => a.isLeader)
})

afterAll(async () => {
  for (const o of operators) await o.stop().catch(() => {})
  engine?.close()
  await deleteNamespace(namespace)
})

describe('the Market controller', () => {
  test('creates the engine Deployment, Service and ConfigMap, owned by the Market', async () => {
    await custom.createNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'markets',
      body: market(namespace, 'btc-usdt'),
    })
    const m = await getMarket('btc-usdt')
    const d = await until('the engine Deployment', () =>
      apps.readNamespacedDeployment({ name: 'engine-btc-usdt', namespace }),
    )
    const svc = await until('the Service', () =>
      core.readNamespacedService({ name: 'engine-btc-usdt', namespace }),
    )
    const cm = await until('the ConfigMap', () =>
      core.readNamespacedConfigMap({ name: 'engine-btc-usdt', namespace }),
    )
    for (const child of [d, svc, cm])
      expect(child.metadata!.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'Market', name: 'btc-usdt', uid: m.metadata!.uid, controller: true }),
      ])
    expect(d.spec!.replicas).toBe(1)
    expect(d.spec!.strategy!.type).toBe('Recreate')
    const c = d.spec!.template.spec!.containers[0]!
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true })
    expect(c.resources!.limits).toBeDefined()
    expect(c.env!.find((e) => e.name === 'BOURSE_DATABASE_URL')!.valueFrom!.secretKeyRef!.name).toBe(
      'bourse-postgres',
    )
    // One field manager owns what the operator applied.
    expect(d.metadata!.managedFields!.filter((f) => f.operation === 'Apply').map((f) => f.manager)).toEqual([
      'bourse-operator',
    ])
    expect(JSON.parse(cm.data!['market.json']!)).toMatchObject({ symbol: 'BTCUSDT', takerFee: '0.001' })
    expect((await getMarket('btc-usdt')).metadata!.finalizers).toContain('bourse.dev/market-cleanup')
  })

  test('reports Ready and Trading with observedGeneration once the engine is Available', async () => {
    const m = await until('Market Ready', async () => {
      const m = await getMarket('btc-usdt')
      const ready = m.status?.conditions?.find((c) => c.type === 'Ready')
      return ready?.status === 'True' && m
    })
    expect(m.status).toMatchObject({
      phase: 'Trading',
      observedGeneration: m.metadata!.generation,
      lastPrice: '64000.5',
    })
    expect(m.status!.engineEpoch).toBe(3)
    for (const c of m.status!.conditions!) expect(c.observedGeneration).toBe(m.metadata!.generation)
    expect(m.status!.conditions!.map((c) => `${c.type}=${c.status}`).sort()).toEqual([
      'Degraded=False',
      'Progressing=False',
      'Ready=True',
    ])
    const events = await eventsApi.listNamespacedEvent({
      namespace,
      fieldSelector: `regarding.name=btc-usdt`,
    })
    expect(events.items.map((e) => e.reason)).toContain('EngineCreated')
    expect(events.items[0]!.reportingController).toBe('bourse.dev/operator')
  })

  test('puts back a hand-edited Deployment', async () => {
    await apps.patchNamespacedDeployment(
      {
        name: 'engine-btc-usdt',
        namespace,
        fieldManager: 'kubectl-edit',
        body: {
          spec: {
            replicas: 3,
            template: { spec: { containers: [{ name: 'engine', image: 'evil/engine:latest' }] } },
          },
        },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    )
    const d = await until('the Deployment put back', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'engine-btc-usdt', namespace })
      const image = d.spec!.template.spec!.containers[0]!.image
      return d.spec!.replicas === 1 && image === exchangeImage && d
    })
    expect(d.spec!.replicas).toBe(1)
  })

  test('a fee change rolls the engine (new template hash, new ReplicaSet)', async () => {
    const before = await apps.readNamespacedDeployment({ name: 'engine-btc-usdt', namespace })
    const hash = before.spec!.template.metadata!.annotations![CONFIG_HASH]
    await custom.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace,
        plural: 'markets',
        name: 'btc-usdt',
        body: { spec: { takerFee: '0.002' } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    const after = await until('a new template hash', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'engine-btc-usdt', namespace })
      return d.spec!.template.metadata!.annotations![CONFIG_HASH] !== hash && d
    })
    expect(after.spec!.strategy!.type).toBe('Recreate')
    const cm = await core.readNamespacedConfigMap({ name: 'engine-btc-usdt', namespace })
    expect(JSON.parse(cm.data!['market.json']!).takerFee).toBe('0.002')
    const hashes = await until('a second ReplicaSet', async () => {
      const rs = await apps.listNamespacedReplicaSet({
        namespace,
        labelSelector: 'bourse.dev/market=btc-usdt',
      })
      const h = new Set(rs.items.map((r) => r.metadata!.labels!['pod-template-hash']))
      return h.size >= 2 && h
    })
    expect(hashes.size).toBeGreaterThanOrEqual(2)
    const m = await until('observedGeneration 2 and Ready', async () => {
      const m = await getMarket('btc-usdt')
      const ready = m.status?.conditions?.find((c) => c.type === 'Ready')
      return m.status?.observedGeneration === m.metadata!.generation && ready?.status === 'True' && m
    })
    expect(m.metadata!.generation).toBe(2)
  })

  test('serves /healthz, /readyz and controller-runtime metrics', async () => {
    const url = a.http!.url
    expect((await fetch(`${url}/healthz`)).status).toBe(200)
    expect((await fetch(`${url}/readyz`)).status).toBe(200)
    const text = await (await fetch(`${url}/metrics`)).text()
    expect(text).toMatch(
      /controller_runtime_reconcile_total\{controller="market",result="requeue_after"\} [1-9]/,
    )
    expect(text).toContain('controller_runtime_reconcile_errors_total{controller="market"}')
    expect(text).toContain('controller_runtime_reconcile_time_seconds_bucket')
    expect(text).toContain('workqueue_adds_total{name="market"}')
    expect(text).toContain('leader_election_master_status{name="bourse-operator"} 1')
  })

  test('a second operator waits; only the Lease holder reconciles; it takes over when the leader stops', async () => {
    const b = await operator('operator-b')
    await new Promise((r) => setTimeout(r, 3000))
    expect(b.isLeader).toBe(false)
    const lease = await kc
      .makeApiClient(CoordinationV1Api)
      .readNamespacedLease({ name: 'bourse-operator', namespace })
    expect(lease.spec!.holderIdentity).toBe('operator-a')
    // A change reconciled by a alone.
    const aBefore = a.reconciles
    await custom.patchNamespacedCustomObject(
      {
        group,
        version,
        namespace,
        plural: 'markets',
        name: 'btc-usdt',
        body: { metadata: { labels: { poke: '1' } } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    await until('a reconciles', async () => a.reconciles > aBefore)
    expect(b.reconciles).toBe(0)

    await a.stop()
    await until('b to lead', async () => b.isLeader, 20_000)
    await until('b reconciles', async () => b.reconciles > 0)
    a = b
  })

  test('delete halts the market and releases its open orders, then the children are garbage-collected', async () => {
    engine.calls.length = 0
    await custom.deleteNamespacedCustomObject({
      group,
      version,
      namespace,
      plural: 'markets',
      name: 'btc-usdt',
    })
    await until('the Market gone', () => notFound(getMarket('btc-usdt')))
    expect(engine.calls).toContain('POST /halt')
    expect(engine.calls).toContain('DELETE /open-orders?userId=7')
    expect(engine.calls).toContain('DELETE /open-orders?userId=9')
    expect(engine.calls.indexOf('POST /halt')).toBeLessThan(
      engine.calls.indexOf('DELETE /open-orders?userId=7'),
    )
    await until('children garbage-collected', async () => {
      const gone = await Promise.all([
        notFound(apps.readNamespacedDeployment({ name: 'engine-btc-usdt', namespace })),
        notFound(core.readNamespacedService({ name: 'engine-btc-usdt', namespace })),
        notFound(core.readNamespacedConfigMap({ name: 'engine-btc-usdt', namespace })),
      ])
      return gone.every(Boolean)
    })
  })
  test('a pass over a Market that was replaced meanwhile ends quietly, and the new Market is reconciled', async () => {
    // The leader's cleanup of a deleted Market waits in the engine; meanwhile an administrator removes the
    // finalizer by hand and a new Market of the same name is created. The waiting pass then holds a stale
    // copy: its finalizer removal must neither fail the reconcile nor touch the new Market.
    for (const o of operators) await o.stop().catch(() => {})
    engine.halted = false // the test before halted it; the stand-in does not resume
    const entered = Promise.withResolvers<void>()
    const release = Promise.withResolvers<void>()
    const http = httpEngineClient({ baseUrl: () => engine.url, openOrderUsers: async () => [] })
    const c = await startTestOperator({
      namespace,
      identity: 'operator-stale',
      httpPort: 0,
      engine: {
        ...http,
        async haltAndRelease() {
          entered.resolve()
          await release.promise
          return { cancelledUsers: 0 }
        },
      },
    })
    operators.push(c)
    await until('operator-stale to lead', async () => c.isLeader, 20_000)
    const marketsApi = { group, version, namespace, plural: 'markets' }
    await custom.createNamespacedCustomObject({ ...marketsApi, body: market(namespace, 'sol-usdt') })
    await until(
      'the finalizer set',
      async () => ((await getMarket('sol-usdt')).metadata!.finalizers ?? []).length > 0,
    )
    const errors = async () => {
      const text = await (await fetch(`${c.http!.url}/metrics`)).text()
      return Number(/controller_runtime_reconcile_errors_total\{controller="market"\} (\d+)/.exec(text)![1])
    }
    const errorsBefore = await errors()
    const old = await getMarket('sol-usdt')
    await custom.deleteNamespacedCustomObject({ ...marketsApi, name: 'sol-usdt' })
    await entered.promise
    await custom.patchNamespacedCustomObject(
      { ...marketsApi, name: 'sol-usdt', body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )
    await until('the old Market gone', () => notFound(getMarket('sol-usdt')))
    await custom.createNamespacedCustomObject({ ...marketsApi, body: market(namespace, 'sol-usdt') })
    release.resolve()
    await until('the new Market has its finalizer', async () => {
      const m = await getMarket('sol-usdt')
      return m.metadata!.uid !== old.metadata!.uid && (m.metadata!.finalizers ?? []).length > 0
    })
    await new Promise((r) => setTimeout(r, 1000))
    expect(await errors()).toBe(errorsBefore)
    expect((await getMarket('sol-usdt')).metadata!.deletionTimestamp).toBeUndefined()
  })
})
