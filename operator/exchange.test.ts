import type { V1Deployment, V1Job } from '@kubernetes/client-node'
import { describe, expect, test } from 'vitest'
import {
  COMPONENTS,
  computeExchangeStatus,
  desiredComponentDeployment,
  desiredComponents,
  desiredDashboard,
  desiredHpa,
  desiredKeySecret,
  desiredMigrationJob,
  desiredPdb,
  migrationJobName,
  migrationState,
} from './exchange.ts'
import type { Exchange, ExchangeSpec, Market } from './market.ts'

function exchange(patch: Partial<ExchangeSpec> = {}, generation = 1): Exchange {
  return {
    apiVersion: 'bourse.dev/v1alpha1',
    kind: 'Exchange',
    metadata: { name: 'bourse', namespace: 'ns', uid: 'x-1', generation },
    spec: {
      image: 'ghcr.io/bourse/bourse:0.1.0',
      postgres: { secretRef: { name: 'pg' } },
      redis: { secretRef: { name: 'redis', key: 'nodes' } },
      nsq: { secretRef: { name: 'nsq' } },
      clickhouse: { secretRef: { name: 'ch' } },
      assets: [{ symbol: 'BTC', precision: 8 }],
      ...patch,
    },
  }
}

const market = (name: string, base: string, exchangeName = 'bourse'): Market => ({
  apiVersion: 'bourse.dev/v1alpha1',
  kind: 'Market',
  metadata: { name, namespace: 'ns' },
  spec: {
    exchangeRef: { name: exchangeName },
    base,
    quote: 'USDT',
    tickSize: '0.01',
    lotSize: '0.001',
    minNotional: '5',
    makerFee: '0.001',
    takerFee: '0.001',
  },
})

const owner = {
  apiVersion: 'bourse.dev/v1alpha1',
  kind: 'Exchange',
  name: 'bourse',
  uid: 'x-1',
  controller: true,
  blockOwnerDeletion: true,
}
const envOf = (d: V1Deployment) =>
  Object.fromEntries(d.spec!.template.spec!.containers[0]!.env!.map((e) => [e.name, e]))

describe('desired children of an Exchange', () => {
  test('the migration Job: bourse migrate, one per image, owned, hardened, database from the Secret', () => {
    const j = desiredMigrationJob(exchange())
    expect(j.metadata!.name).toMatch(/^bourse-migrate-[0-9a-f]{10}$/)
    expect(j.metadata!.ownerReferences).toEqual([owner])
    const pod = j.spec!.template.spec!
    const c = pod.containers[0]!
    expect(c.args).toEqual(['migrate'])
    expect(pod.restartPolicy).toBe('Never')
    expect(c.env).toEqual([
      { name: 'BOURSE_DATABASE_URL', valueFrom: { secretKeyRef: { name: 'pg', key: 'url' } } },
    ])
    expect(c.resources!.limits).toBeDefined()
    expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true })
    expect(pod.securityContext!.runAsNonRoot).toBe(true)
    expect(migrationJobName(exchange({ image: 'ghcr.io/bourse/bourse:0.2.0' }))).not.toBe(j.metadata!.name)
  })

  test('migration state from the Job status', () => {
    expect(migrationState({ status: {} } as V1Job)).toBe('Running')
    expect(migrationState({ status: { succeeded: 1 } } as V1Job)).toBe('Succeeded')
    expect(
      migrationState({ status: { failed: 5, conditions: [{ type: 'Failed', status: 'True' }] } } as V1Job),
    ).toBe('Failed')
  })

  test('every component Deployment: args, port, probes, resources, non-root, read-only root, scraped', () => {
    const x = exchange({ gateway: { replicas: 3, resources: { requests: { cpu: '500m' } } } })
    const args = {
      gateway: ['gateway'],
      ws: ['ws'],
      handler: ['handler'],
      'user-events': ['handler', '--user-events'],
      cron: ['cron'],
      analytics: ['syncer', '--analytics'],
    }
    for (const c of COMPONENTS) {
      const d = desiredComponentDeployment(x, c, [])
      expect(d.metadata!.name).toBe(`bourse-${c}`)
      expect(d.metadata!.ownerReferences).toEqual([owner])
      const pod = d.spec!.template.spec!
      const k = pod.containers[0]!
      expect(k.args).toEqual(args[c])
      expect(k.livenessProbe!.httpGet!.path).toBe('/healthz')
      expect(k.readinessProbe!.httpGet!.path).toBe('/readyz')
      expect(k.startupProbe).toBeDefined()
      expect(k.resources!.requests!.memory).toBeDefined()
      expect(k.resources!.limits!.cpu).toBeDefined()
      expect(k.securityContext).toMatchObject({
        runAsNonRoot: true,
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
      })
      expect(pod.securityContext!.runAsNonRoot).toBe(true)
      expect(pod.automountServiceAccountToken).toBe(false)
      const ann = d.spec!.template.metadata!.annotations!
      expect(ann['prometheus.io/scrape']).toBe('true')
      expect(ann['prometheus.io/port']).toBe(String(k.ports![0]!.containerPort))
      expect(envOf(d).BOURSE_HTTP_HOST!.value).toBe('0.0.0.0')
      for (const [key, v] of Object.entries(d.spec!.selector.matchLabels!))
        expect(d.spec!.template.metadata!.labels![key]).toBe(v)
      // No connection string is ever inline: each comes from a Secret.
      for (const e of k.env!)
        if (/URL|NODES|SECRET|NSQ|USERNAME|PASSWORD/.test(e.name))
          expect(e.valueFrom?.secretKeyRef).toBeDefined()
    }
    const gw = desiredComponentDeployment(x, 'gateway', [])
    expect(gw.spec!.template.spec!.containers[0]!.resources!.requests!.cpu).toBe('500m')
    // Autoscaled: the HPA owns replicas.
    expect(gw.spec!.replicas).toBeUndefined()
    expect(desiredComponentDeployment(x, 'cron', []).spec!.replicas).toBe(2)
    expect(desiredComponentDeployment(x, 'analytics', []).spec!.strategy).toEqual({ type: 'Recreate' })
    expect(desiredComponentDeployment(x, 'analytics', []).spec!.replicas).toBe(1)
  })

  test('the handler scales with spec.handler; the user-events consumer is one pod, replaced with Recreate', () => {
    const x = exchange({ handler: { replicas: 3, resources: { limits: { memory: '1Gi' } } } })
    const h = desiredComponentDeployment(x, 'handler', [])
    expect(h.spec!.replicas).toBe(3)
    expect(h.spec!.strategy!.type).toBe('RollingUpdate')
    const u = desiredComponentDeployment(x, 'user-events', [])
    expect(u.metadata!.name).toBe('bourse-user-events')
    expect(u.spec!.replicas).toBe(1)
    expect(u.spec!.strategy).toEqual({ type: 'Recreate' })
    expect(u.spec!.template.spec!.containers[0]!.resources!.limits!.memory).toBe('1Gi')
    expect(desiredPdb(x, 'user-events')).toBeUndefined()
    expect(desiredPdb(x, 'handler')).toBeDefined()
    expect(desiredHpa(x, 'handler')).toBeUndefined()
    const he = envOf(h)
    expect(he.BOURSE_NSQ!.valueFrom!.secretKeyRef).toEqual({ name: 'nsq', key: 'url' })
    expect(he.BOURSE_REDIS_NODES!.valueFrom!.secretKeyRef).toEqual({ name: 'redis', key: 'nodes' })
    expect(he.BOURSE_CLICKHOUSE_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'ch', key: 'url' })
    expect(he.BOURSE_HANDLER_PORT!.value).toBe('9090')
    const ue = envOf(u)
    expect(ue.BOURSE_NSQ).toBeDefined()
    // The user data streams need no ClickHouse.
    expect(Object.keys(ue).filter((k) => k.startsWith('BOURSE_CLICKHOUSE'))).toEqual([])
    expect(
      desiredComponentDeployment(exchange({ handler: { replicas: 0 } }), 'user-events', []).spec!.replicas,
    ).toBe(1)
    // cron relays the ledger's balance updates to the bus.
    expect(envOf(desiredComponentDeployment(x, 'cron', [])).BOURSE_NSQ!.valueFrom!.secretKeyRef).toEqual({
      name: 'nsq',
      key: 'url',
    })
  })

  test("ClickHouse's user and password from the credentials Secret, its database by name", () => {
    const x = exchange({
      clickhouse: {
        secretRef: { name: 'ch' },
        credentialsSecretRef: { name: 'ch-auth', passwordKey: 'pw' },
        database: 'bourse',
      },
    })
    for (const c of ['gateway', 'handler', 'analytics'] as const) {
      const e = envOf(desiredComponentDeployment(x, c, []))
      expect(e.BOURSE_CLICKHOUSE_USERNAME!.valueFrom!.secretKeyRef).toEqual({
        name: 'ch-auth',
        key: 'username',
      })
      expect(e.BOURSE_CLICKHOUSE_PASSWORD!.valueFrom!.secretKeyRef).toEqual({ name: 'ch-auth', key: 'pw' })
      expect(e.BOURSE_CLICKHOUSE_DATABASE!.value).toBe('bourse')
    }
    const plain = envOf(desiredComponentDeployment(exchange(), 'analytics', []))
    expect(plain.BOURSE_CLICKHOUSE_USERNAME).toBeUndefined()
    expect(plain.BOURSE_CLICKHOUSE_DATABASE).toBeUndefined()
  })

  test('env from the connection Secrets; the gateway gets the engines of its Markets', () => {
    const x = exchange()
    const markets = [market('eth-usdt', 'ETH'), market('btc-usdt', 'BTC')]
    const gw = envOf(desiredComponentDeployment(x, 'gateway', markets))
    expect(gw.BOURSE_DATABASE_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'pg', key: 'url' })
    expect(gw.BOURSE_REDIS_NODES!.valueFrom!.secretKeyRef).toEqual({ name: 'redis', key: 'nodes' })
    expect(gw.BOURSE_CLICKHOUSE_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'ch', key: 'url' })
    expect(gw.BOURSE_KEY_ENCRYPTION_SECRET!.valueFrom!.secretKeyRef).toEqual({
      name: 'bourse-gateway-keys',
      key: 'keyEncryptionSecret',
    })
    expect(gw.BOURSE_ENGINES!.value).toBe(
      'ETHUSDT=http://engine-eth-usdt:7000,BTCUSDT=http://engine-btc-usdt:7000',
    )
    // ws verifies the WebSocket API's signed requests against the gateway's API keys.
    const ws = envOf(desiredComponentDeployment(x, 'ws', []))
    expect(ws.BOURSE_REDIS_NODES!.valueFrom!.secretKeyRef).toEqual({ name: 'redis', key: 'nodes' })
    expect(ws.BOURSE_DATABASE_URL!.valueFrom!.secretKeyRef).toEqual({ name: 'pg', key: 'url' })
    expect(ws.BOURSE_KEY_ENCRYPTION_SECRET).toEqual(gw.BOURSE_KEY_ENCRYPTION_SECRET)
    expect([gw.BOURSE_TRUST_PROXY!.value, ws.BOURSE_TRUST_PROXY!.value]).toEqual(['false', 'false'])
    const proxied = exchange({ trustForwardedFor: true })
    for (const c of ['gateway', 'ws'] as const)
      expect(envOf(desiredComponentDeployment(proxied, c, [])).BOURSE_TRUST_PROXY!.value).toBe('true')
    const an = envOf(desiredComponentDeployment(x, 'analytics', []))
    expect(an.BOURSE_CLICKHOUSE_URL!.valueFrom!.secretKeyRef!.name).toBe('ch')
    expect(an.BOURSE_ANALYTICS_PORT!.value).toBe('9090')
  })

  test('the key Secret is random and owned', () => {
    const s = desiredKeySecret(exchange(), () => 'k'.repeat(64))
    expect(s.stringData).toEqual({ keyEncryptionSecret: 'k'.repeat(64) })
    expect(s.metadata!.ownerReferences).toEqual([owner])
    expect(desiredKeySecret(exchange()).stringData!.keyEncryptionSecret).toMatch(/^[0-9a-f]{64}$/)
  })

  test('PDBs for components with more than one replica; HPAs for gateway and ws only', () => {
    const x = exchange({ gateway: { replicas: 4 }, cron: { replicas: 1 } })
    expect(desiredPdb(x, 'gateway')!.spec).toEqual({
      maxUnavailable: 1,
      selector: {
        matchLabels: { 'app.kubernetes.io/name': 'bourse-gateway', 'app.kubernetes.io/instance': 'bourse' },
      },
    })
    expect(desiredPdb(x, 'cron')).toBeUndefined()
    expect(desiredPdb(x, 'analytics')).toBeUndefined()
    expect(desiredPdb(exchange({ monitoring: { podDisruptionBudgets: false } }), 'gateway')).toBeUndefined()
    const hpa = desiredHpa(x, 'gateway')!
    expect(hpa.spec!.minReplicas).toBe(4)
    expect(hpa.spec!.maxReplicas).toBeGreaterThanOrEqual(4)
    expect(hpa.spec!.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: 'bourse-gateway',
    })
    expect(desiredHpa(x, 'ws')).toBeDefined()
    expect(desiredHpa(x, 'cron')).toBeUndefined()
    expect(desiredHpa(exchange({ ws: { replicas: 0 } }), 'ws')).toBeUndefined()
    expect(desiredComponentDeployment(exchange({ ws: { replicas: 0 } }), 'ws', []).spec!.replicas).toBe(0)
  })

  test('monitoring objects only when switched on and, for prometheus-operator kinds, when its CRDs exist', () => {
    const kinds = (d: { apply: { kind?: string }[] }) => d.apply.map((o) => o.kind)
    const on = exchange({ monitoring: { serviceMonitors: true, grafanaDashboard: true } })
    const withCrds = desiredComponents(on, [], true)
    expect(kinds(withCrds).filter((k) => k === 'ServiceMonitor')).toHaveLength(COMPONENTS.length)
    expect(kinds(withCrds)).toContain('PrometheusRule')
    expect(kinds(withCrds)).toContain('ConfigMap')
    const noCrds = desiredComponents(on, [], false)
    expect(kinds(noCrds)).not.toContain('ServiceMonitor')
    expect(kinds(noCrds)).not.toContain('PrometheusRule')
    expect(noCrds.remove.some((r) => r.kind === 'ServiceMonitor')).toBe(false)
    const off = desiredComponents(exchange(), [], true)
    expect(kinds(off)).not.toContain('ServiceMonitor')
    expect(off.remove).toContainEqual({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      name: 'bourse-gateway',
    })
    expect(off.remove).toContainEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      name: 'bourse-grafana-dashboard',
    })
    const cm = desiredDashboard(on)
    expect(cm.metadata!.labels!.grafana_dashboard).toBe('1')
    expect(JSON.parse(cm.data!['bourse.json']!).panels.length).toBeGreaterThan(0)
    // Services before Deployments, and one of each per component.
    expect(kinds(off).filter((k) => k === 'Deployment')).toHaveLength(6)
    expect(kinds(off).filter((k) => k === 'Service')).toHaveLength(6)
  })
})

describe('Exchange status', () => {
  const available = (name: string, generation = 1): V1Deployment => ({
    metadata: { name, generation },
    spec: { replicas: 2, selector: {}, template: {} },
    status: {
      observedGeneration: generation,
      replicas: 2,
      updatedReplicas: 2,
      availableReplicas: 2,
      conditions: [{ type: 'Available', status: 'True' }],
    } as V1Deployment['status'],
  })
  const cond = (s: { conditions?: { type: string; status: string; reason: string }[] }, t: string) =>
    s.conditions!.find((c) => c.type === t)!

  test('Migrating until the Job succeeds; no observedGeneration yet', () => {
    const s = computeExchangeStatus(exchange(), { markets: 2, migration: 'Running' }, 'T')
    expect(s.phase).toBe('Migrating')
    expect(s.markets).toBe(2)
    expect(cond(s, 'Ready').status).toBe('False')
    expect(cond(s, 'Progressing').reason).toBe('Migrating')
    expect(s.observedGeneration).toBeUndefined()
  })

  test('Degraded when the migration failed', () => {
    const s = computeExchangeStatus(exchange(), { markets: 0, migration: 'Failed' }, 'T')
    expect(s.phase).toBe('Degraded')
    expect(cond(s, 'Degraded').reason).toBe('MigrationFailed')
  })

  test('Progressing, then Ready with migratedVersion and observedGeneration', () => {
    const x = exchange({}, 3)
    const rolling = available('bourse-ws')
    rolling.status!.availableReplicas = 1
    const p = computeExchangeStatus(
      x,
      { markets: 1, migration: 'Succeeded', deployments: [available('bourse-gateway'), rolling] },
      'T1',
    )
    expect(p.phase).toBe('Progressing')
    expect(cond(p, 'Ready').status).toBe('False')
    const r = computeExchangeStatus(
      { ...x, status: p },
      {
        markets: 1,
        migration: 'Succeeded',
        deployments: [available('bourse-gateway'), available('bourse-ws')],
      },
      'T2',
    )
    expect(r.phase).toBe('Ready')
    expect(cond(r, 'Ready').status).toBe('True')
    expect(r.migratedVersion).toBe('ghcr.io/bourse/bourse:0.1.0')
    expect(r.observedGeneration).toBe(3)
    // Degraded kept its transition time (status unchanged); Ready moved.
    expect(r.conditions!.find((c) => c.type === 'Degraded')!.lastTransitionTime).toBe('T1')
    expect(r.conditions!.find((c) => c.type === 'Ready')!.lastTransitionTime).toBe('T2')
  })

  test('an error is Degraded and keeps the last migratedVersion', () => {
    const x = { ...exchange(), status: { migratedVersion: 'old', observedGeneration: 1 } }
    const s = computeExchangeStatus(x, { markets: 0, migration: 'Running', error: 'HTTP 422' }, 'T')
    expect(s.phase).toBe('Degraded')
    expect(s.migratedVersion).toBe('old')
    expect(s.observedGeneration).toBe(1)
  })
})
