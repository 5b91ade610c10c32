import type { V1Deployment } from '@kubernetes/client-node'
import { describe, expect, test } from 'vitest'
import {
  computeStatus,
  desiredConfigMap,
  desiredDeployment,
  desiredService,
  type Exchange,
  type Market,
} from './market.ts'
import { CONFIG_HASH } from './shared.ts'

const exchange: Exchange = {
  apiVersion: 'bourse.dev/v1alpha1',
  kind: 'Exchange',
  metadata: { name: 'bourse', namespace: 'ns' },
  spec: {
    image: 'ghcr.io/bourse/bourse:0.1.0',
    postgres: { secretRef: { name: 'pg' } },
    redis: { secretRef: { name: 'redis', key: 'nodes' } },
    nsq: { secretRef: { name: 'nsq' } },
    clickhouse: { secretRef: { name: 'ch' } },
    assets: [],
  },
}

function market(patch: Partial<Market['spec']> = {}, generation = 1): Market {
  return {
    apiVersion: 'bourse.dev/v1alpha1',
    kind: 'Market',
    metadata: { name: 'btc-usdt', namespace: 'ns', uid: 'u-1', generation },
    spec: {
      exchangeRef: { name: 'bourse' },
      base: 'BTC',
      quote: 'USDT',
      tickSize: '0.01',
      lotSize: '0.00001',
      minNotional: '5',
      makerFee: '0.001',
      takerFee: '0.001',
      ...patch,
    },
  }
}

describe('desired children of a Market', () => {
  test('engine Deployment: one replica, Recreate, owned, hardened, probed, scraped', () => {
    const d = desiredDeployment(market({ engine: { resources: { requests: { cpu: '500m' } } } }), exchange)
    expect(d.metadata!.name).toBe('engine-btc-usdt')
    expect(d.metadata!.ownerReferences).toEqual([
      {
        apiVersion: 'bourse.dev/v1alpha1',
        kind: 'Market',
        name: 'btc-usdt',
        uid: 'u-1',
        controller: true,
        blockOwnerDeletion: true,
      },
    ])
    expect(d.spec!.replicas).toBe(1)
    expect(d.spec!.strategy).toEqual({ type: 'Recreate' })
    const pod = d.spec!.template.spec!
    const c = pod.containers[0]!
    expect(c.image).toBe('ghcr.io/bourse/bourse:0.1.0')
    expect(c.args).toEqual(['engine', '--market', 'BTCUSDT'])
    expect(c.resources).toEqual({
      requests: { cpu: '500m', memory: '256Mi' },
      limits: { cpu: '1', memory: '512Mi' },
    })
    expect(c.livenessProbe!.httpGet!.path).toBe('/healthz')
    expect(c.readinessProbe!.httpGet!.path).toBe('/readyz')
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true })
    expect(pod.securityContext!.runAsNonRoot).toBe(true)
    expect(d.spec!.template.metadata!.annotations!['prometheus.io/scrape']).toBe('true')
    const env = Object.fromEntries(c.env!.map((e) => [e.name, e]))
    expect(env.BOURSE_MARKET!.value).toBe('BTCUSDT')
    expect(env.BOURSE_DATABASE_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'pg', key: 'url' })
    expect(env.BOURSE_REDIS_NODES!.valueFrom!.secretKeyRef).toEqual({ name: 'redis', key: 'nodes' })
    // The selector is a subset of the template's labels, and stable (it is immutable on a Deployment).
    for (const [k, v] of Object.entries(d.spec!.selector.matchLabels!))
      expect(d.spec!.template.metadata!.labels![k]).toBe(v)
  })

  test('a fee change or a halt changes the template hash; nothing else does', () => {
    const hash = (m: Market) =>
      desiredDeployment(m, exchange).spec!.template.metadata!.annotations![CONFIG_HASH]
    const base = hash(market())
    expect(hash(market())).toBe(base)
    expect(hash(market({ takerFee: '0.002' }))).not.toBe(base)
    expect(hash(market({ trading: 'Halted' }))).not.toBe(base)
    expect(hash(market({}, 7))).toBe(base)
  })

  test('Service and ConfigMap', () => {
    const s = desiredService(market())
    expect(s.spec!.ports![0]).toMatchObject({ port: 7000, targetPort: 'http' })
    expect(s.metadata!.ownerReferences![0]!.controller).toBe(true)
    const cm = desiredConfigMap(market({ makerFee: '0.0005' }))
    expect(JSON.parse(cm.data!['market.json']!)).toMatchObject({ symbol: 'BTCUSDT', makerFee: '0.0005' })
  })
})

describe('Market status', () => {
  const deployment = (available: boolean, extra: Partial<V1Deployment['status']> = {}): V1Deployment => ({
    metadata: { generation: 2 },
    status: {
      observedGeneration: 2,
      replicas: 1,
      updatedReplicas: 1,
      conditions: [{ type: 'Available', status: available ? 'True' : 'False' }],
      ...extra,
    } as V1Deployment['status'],
  })
  const cond = (s: ReturnType<typeof computeStatus>, type: string) =>
    s.conditions!.find((c) => c.type === type)!

  test('Available and no engine status (kwok): Trading, Ready, observedGeneration', () => {
    const s = computeStatus(market({}, 3), { exchangeFound: true, deployment: deployment(true) })
    expect(s.phase).toBe('Trading')
    expect(s.observedGeneration).toBe(3)
    expect(cond(s, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 3 })
    expect(cond(s, 'Ready').message).toContain('not reachable')
    expect(cond(s, 'Degraded').status).toBe('False')
  })

  test('engine status fills the last price and epoch; a halted spec is phase Halted', () => {
    const engine = { status: 'halted' as const, epoch: '4', fenced: false, openOrders: 2, lastPrice: '101.5' }
    const s = computeStatus(market({ trading: 'Halted' }), {
      exchangeFound: true,
      deployment: deployment(true),
      engine,
    })
    expect(s).toMatchObject({ phase: 'Halted', lastPrice: '101.5', engineEpoch: 4 })
    expect(cond(s, 'Ready')).toMatchObject({ status: 'False', reason: 'MarketHalted' })
  })

  test('rolling out, degraded, missing exchange', () => {
    expect(computeStatus(market(), { exchangeFound: true, deployment: deployment(false) }).phase).toBe(
      'Progressing',
    )
    const stuck = deployment(false)
    stuck.status!.conditions!.push({ type: 'Progressing', status: 'False', message: 'deadline exceeded' })
    const s = computeStatus(market(), { exchangeFound: true, deployment: stuck })
    expect(s.phase).toBe('Degraded')
    expect(cond(s, 'Degraded').message).toBe('deadline exceeded')
    const p = computeStatus(market(), { exchangeFound: false })
    expect(p.phase).toBe('Pending')
    expect(p.observedGeneration).toBeUndefined()
  })

  test('lastTransitionTime changes only when the status does', () => {
    const m = market()
    const first = computeStatus(
      m,
      { exchangeFound: true, deployment: deployment(true) },
      '2025-01-01T00:00:00Z',
    )
    m.status = first
    const again = computeStatus(
      m,
      { exchangeFound: true, deployment: deployment(true) },
      '2025-01-02T00:00:00Z',
    )
    expect(cond(again, 'Ready').lastTransitionTime).toBe('2025-01-01T00:00:00Z')
    const down = computeStatus(
      m,
      { exchangeFound: true, deployment: deployment(false) },
      '2025-01-03T00:00:00Z',
    )
    expect(cond(down, 'Ready').lastTransitionTime).toBe('2025-01-03T00:00:00Z')
  })
})
