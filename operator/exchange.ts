/**
 * The Exchange's desired children and its status, as pure functions of the Exchange, its Markets and what
 * was observed: the migration Job (`bourse migrate`, one per image: a Job's template is immutable), applied
 * first; once it has succeeded, the gateway, ws, market-data handler, user-events consumer, cron and
 * analytics-syncer Deployments and their Services, PodDisruptionBudgets for components with more than one
 * replica, HPAs for gateway and ws, and when switched on, ServiceMonitors and a PrometheusRule (only when the
 * prometheus-operator CRDs are served) and the Grafana dashboard ConfigMap.
 */
import { createHash, randomBytes } from 'node:crypto'
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1EnvVar,
  V1Job,
  V1PodDisruptionBudget,
  V1Secret,
  V1Service,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node'
import {
  type ComponentSpec,
  ENGINE_PORT,
  type Exchange,
  type ExchangeStatus,
  engineName,
  type Market,
  symbolOf,
} from './market.ts'
import {
  type Cond,
  containerSecurityContext,
  DEFAULT_IMAGE,
  FIELD_MANAGER,
  failedConditions,
  mergeResources,
  ownerReference,
  podSecurityContext,
  progressingConditions,
  prometheusAnnotations,
  rolledOutConditions,
  secretEnv,
  setCondition,
  standardProbes,
  tmpMount,
  tmpVolume,
} from './shared.ts'

export type Obj<T> = T & KubernetesObject

export type ComponentName = 'gateway' | 'ws' | 'handler' | 'user-events' | 'cron' | 'analytics'
export const COMPONENTS: readonly ComponentName[] = [
  'gateway',
  'ws',
  'handler',
  'user-events',
  'cron',
  'analytics',
]
/**
 * Components that must run as exactly one pod, replaced with the Recreate strategy: the analytics syncer (two
 * would copy the same watermark window twice) and the user-events consumer (it orders each market's events in
 * memory).
 */
export const SINGLETONS: readonly ComponentName[] = ['user-events', 'analytics']
/** The components an HPA scales (stateless request servers). */
export const AUTOSCALED: readonly ComponentName[] = ['gateway', 'ws']

const PORTS: Record<ComponentName, { port: number; env: string }> = {
  gateway: { port: 8080, env: 'BOURSE_GATEWAY_PORT' },
  ws: { port: 8090, env: 'BOURSE_WS_PORT' },
  handler: { port: 9090, env: 'BOURSE_HANDLER_PORT' },
  'user-events': { port: 9090, env: 'BOURSE_HANDLER_PORT' },
  cron: { port: 9090, env: 'BOURSE_CRON_PORT' },
  analytics: { port: 9090, env: 'BOURSE_ANALYTICS_PORT' },
}
const ARGS: Record<ComponentName, string[]> = {
  gateway: ['gateway'],
  ws: ['ws'],
  handler: ['handler'],
  'user-events': ['handler', '--user-events'],
  cron: ['cron'],
  analytics: ['syncer', '--analytics'],
}
const DEFAULT_REPLICAS: Record<ComponentName, number> = {
  gateway: 2,
  ws: 2,
  handler: 2,
  'user-events': 1,
  cron: 2,
  analytics: 1,
}
export const COMPONENT_RESOURCES = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '1', memory: '512Mi' },
}
const MIGRATE_RESOURCES = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '1', memory: '256Mi' },
}

/** The Secret key the gateway's API-secret encryption key is kept under (a Secret the operator creates once). */
export const KEY_ENCRYPTION_KEY = 'keyEncryptionSecret'

export const componentName = (x: Exchange, c: ComponentName) => `${x.metadata!.name}-${c}`
export const keySecretName = (x: Exchange) => `${x.metadata!.name}-gateway-keys`
export const imageOf = (x: Exchange) => x.spec.image || DEFAULT_IMAGE
export const migrationJobName = (x: Exchange) =>
  `${x.metadata!.name}-migrate-${createHash('sha256').update(imageOf(x)).digest('hex').slice(0, 10)}`
export const dashboardName = (x: Exchange) => `${x.metadata!.name}-grafana-dashboard`
export const ruleName = (x: Exchange) => `${x.metadata!.name}-bourse`

export function exchangeLabels(x: Exchange, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': `bourse-${component}`,
    'app.kubernetes.io/instance': x.metadata!.name!,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'bourse',
    'app.kubernetes.io/managed-by': FIELD_MANAGER,
    'bourse.dev/exchange': x.metadata!.name!,
  }
}

export const exchangeSelector = (x: Exchange, component: string) => ({
  'app.kubernetes.io/name': `bourse-${component}`,
  'app.kubernetes.io/instance': x.metadata!.name!,
})

const meta = (x: Exchange, name: string, component: string) => ({
  name,
  namespace: x.metadata!.namespace!,
  labels: exchangeLabels(x, component),
  ownerReferences: [ownerReference(x)],
})

/** The Exchange's settings of a component; the user-events consumer runs in the handler's resources. */
const spec = (x: Exchange, c: ComponentName): ComponentSpec | undefined =>
  c === 'analytics' ? undefined : c === 'user-events' ? x.spec.handler : x.spec[c]

export const replicasOf = (x: Exchange, c: ComponentName) =>
  SINGLETONS.includes(c) ? 1 : (spec(x, c)?.replicas ?? DEFAULT_REPLICAS[c])
export const autoscaled = (x: Exchange, c: ComponentName) => AUTOSCALED.includes(c) && replicasOf(x, c) > 0

/** The Markets of this Exchange (same namespace, exchangeRef), by name. */
export const marketsOf = (x: Exchange, markets: Market[]) =>
  markets
    .filter(
      (m) => m.metadata!.namespace === x.metadata!.namespace && m.spec.exchangeRef.name === x.metadata!.name,
    )
    .sort((a, b) => a.metadata!.name!.localeCompare(b.metadata!.name!))

/** BOURSE_ENGINES of the gateway: SYMBOL=http://engine-<market>:7000 for each Market. */
export const enginesEnv = (markets: Market[]) =>
  markets.map((m) => `${symbolOf(m)}=http://${engineName(m)}:${ENGINE_PORT}`).join(',')

/** ClickHouse's URL, and its user, password and database when the Exchange names them (clickhouseEnv). */
export function clickhouseEnvVars(x: Exchange): V1EnvVar[] {
  const ch = x.spec.clickhouse
  const credentials = ch.credentialsSecretRef
  return [
    secretEnv('BOURSE_CLICKHOUSE_URL', ch.secretRef),
    ...(credentials
      ? [
          secretEnv(
            'BOURSE_CLICKHOUSE_USERNAME',
            { name: credentials.name },
            credentials.usernameKey ?? 'username',
          ),
          secretEnv(
            'BOURSE_CLICKHOUSE_PASSWORD',
            { name: credentials.name },
            credentials.passwordKey ?? 'password',
          ),
        ]
      : []),
    ...(ch.database ? [{ name: 'BOURSE_CLICKHOUSE_DATABASE', value: ch.database }] : []),
  ]
}

export function componentEnv(x: Exchange, c: ComponentName, markets: Market[]): V1EnvVar[] {
  const s = x.spec
  const db = secretEnv('BOURSE_DATABASE_URL', s.postgres.secretRef)
  const redis = secretEnv('BOURSE_REDIS_NODES', s.redis.secretRef)
  const nsq = secretEnv('BOURSE_NSQ', s.nsq.secretRef)
  const clickhouse = clickhouseEnvVars(x)
  const keyEncryption = {
    name: 'BOURSE_KEY_ENCRYPTION_SECRET',
    valueFrom: { secretKeyRef: { name: keySecretName(x), key: KEY_ENCRYPTION_KEY } },
  }
  const common = [
    { name: 'BOURSE_HTTP_HOST', value: '0.0.0.0' },
    { name: PORTS[c].env, value: String(PORTS[c].port) },
  ]
  // Behind the operator's ingress the socket's address is the proxy's: rate limits, bans and API-key
  // allow-lists need the client's, from X-Forwarded-For.
  const trustProxy = { name: 'BOURSE_TRUST_PROXY', value: String(s.trustForwardedFor ?? false) }
  switch (c) {
    case 'gateway':
      return [
        ...common,
        db,
        redis,
        ...clickhouse,
        { name: 'BOURSE_ENGINES', value: enginesEnv(markets) },
        keyEncryption,
        trustProxy,
      ]
    case 'ws':
      // Postgres and the key-encryption secret: the WebSocket API verifies the traders' API keys.
      return [...common, redis, db, keyEncryption, trustProxy]
    case 'handler':
      return [...common, nsq, redis, ...clickhouse]
    case 'user-events':
      return [...common, nsq, redis]
    case 'cron':
      // cron also relays the ledger's event stream (balance updates) to NSQ.
      return [...common, db, nsq]
    case 'analytics':
      return [...common, db, ...clickhouse]
  }
}

function podSpecBase(x: Exchange) {
  return {
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    ...(x.spec.imagePullSecrets && { imagePullSecrets: x.spec.imagePullSecrets }),
    securityContext: podSecurityContext(),
  }
}

export function desiredMigrationJob(x: Exchange): Obj<V1Job> {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { ...meta(x, migrationJobName(x), 'migrate'), annotations: { 'bourse.dev/image': imageOf(x) } },
    spec: {
      backoffLimit: 4,
      activeDeadlineSeconds: 900,
      template: {
        metadata: { labels: exchangeLabels(x, 'migrate') },
        spec: {
          ...podSpecBase(x),
          restartPolicy: 'Never',
          containers: [
            {
              name: 'migrate',
              image: imageOf(x),
              imagePullPolicy: x.spec.imagePullPolicy ?? 'IfNotPresent',
              args: ['migrate'],
              env: [secretEnv('BOURSE_DATABASE_URL', x.spec.postgres.secretRef)],
              resources: MIGRATE_RESOURCES,
              securityContext: containerSecurityContext(),
              volumeMounts: [tmpMount()],
            },
          ],
          volumes: [tmpVolume()],
        },
      },
    },
  }
}

/** The Secret holding the gateway's key-encryption key: created once with a random key, never rewritten. */
export function desiredKeySecret(x: Exchange, random = () => randomBytes(32).toString('hex')): Obj<V1Secret> {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: meta(x, keySecretName(x), 'gateway'),
    type: 'Opaque',
    stringData: { [KEY_ENCRYPTION_KEY]: random() },
  }
}

export function desiredComponentDeployment(
  x: Exchange,
  c: ComponentName,
  markets: Market[],
): Obj<V1Deployment> {
  const { port } = PORTS[c]
  const replicas = replicasOf(x, c)
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(x, componentName(x, c), c),
    spec: {
      // An HPA owns the replica count of an autoscaled component (its minReplicas is the Exchange's count).
      ...(!autoscaled(x, c) && { replicas }),
      strategy: SINGLETONS.includes(c)
        ? { type: 'Recreate' }
        : { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      revisionHistoryLimit: 5,
      selector: { matchLabels: exchangeSelector(x, c) },
      template: {
        metadata: { labels: exchangeLabels(x, c), annotations: prometheusAnnotations(port) },
        spec: {
          ...podSpecBase(x),
          terminationGracePeriodSeconds: 30,
          containers: [
            {
              name: c,
              image: imageOf(x),
              imagePullPolicy: x.spec.imagePullPolicy ?? 'IfNotPresent',
              args: ARGS[c],
              ports: [{ name: 'http', containerPort: port, protocol: 'TCP' }],
              env: componentEnv(x, c, markets),
              resources: mergeResources(spec(x, c)?.resources, COMPONENT_RESOURCES),
              ...standardProbes(),
              securityContext: containerSecurityContext(),
              volumeMounts: [tmpMount()],
            },
          ],
          volumes: [tmpVolume()],
        },
      },
    },
  }
}

export function desiredComponentService(x: Exchange, c: ComponentName): Obj<V1Service> {
  const { port } = PORTS[c]
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { ...meta(x, componentName(x, c), c), annotations: prometheusAnnotations(port) },
    spec: {
      type: 'ClusterIP',
      selector: exchangeSelector(x, c),
      ports: [{ name: 'http', port, targetPort: 'http', protocol: 'TCP' }],
    },
  }
}

/** A PDB (at most one pod down) for a component with more than one replica, unless switched off. */
export function desiredPdb(x: Exchange, c: ComponentName): Obj<V1PodDisruptionBudget> | undefined {
  if (x.spec.monitoring?.podDisruptionBudgets === false || replicasOf(x, c) <= 1) return undefined
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: meta(x, componentName(x, c), c),
    spec: { maxUnavailable: 1, selector: { matchLabels: exchangeSelector(x, c) } },
  }
}

export function desiredHpa(x: Exchange, c: ComponentName): Obj<V2HorizontalPodAutoscaler> | undefined {
  if (!autoscaled(x, c)) return undefined
  const min = replicasOf(x, c)
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: meta(x, componentName(x, c), c),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: componentName(x, c) },
      minReplicas: min,
      maxReplicas: Math.min(100, Math.max(10, min * 3)),
      metrics: [
        {
          type: 'Resource',
          resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
        },
      ],
    },
  }
}

export function desiredServiceMonitor(
  x: Exchange,
  c: ComponentName,
): KubernetesObject & Record<string, unknown> {
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'ServiceMonitor',
    metadata: meta(x, componentName(x, c), c),
    spec: {
      selector: { matchLabels: exchangeSelector(x, c) },
      endpoints: [{ port: 'http', path: '/metrics', interval: '30s' }],
    },
  }
}

export function desiredPrometheusRule(x: Exchange): KubernetesObject & Record<string, unknown> {
  const ns = x.metadata!.namespace!
  const instance = x.metadata!.name!
  return {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: meta(x, ruleName(x), 'monitoring'),
    spec: {
      groups: [
        {
          name: `bourse-${instance}`,
          rules: [
            {
              alert: 'BourseComponentDown',
              expr: `up{namespace="${ns}",service=~"${instance}-.*|engine-.*|syncer-.*"} == 0`,
              for: '5m',
              labels: { severity: 'critical' },
              annotations: { summary: '{{ $labels.service }} in {{ $labels.namespace }} is down' },
            },
            {
              alert: 'BourseSyncerLagging',
              expr: `bourse_syncer_lag_blocks{namespace="${ns}"} > 100`,
              for: '10m',
              labels: { severity: 'warning' },
              annotations: { summary: 'wallet syncer {{ $labels.service }} is {{ $value }} blocks behind' },
            },
          ],
        },
      ],
    },
  }
}

/** A small dashboard: targets up, memory, event-loop lag, ws connections, syncer lag. */
export function dashboardJson(x: Exchange): string {
  const ns = x.metadata!.namespace!
  const panel = (id: number, title: string, expr: string) => ({
    id,
    title,
    type: 'timeseries',
    gridPos: { h: 8, w: 12, x: ((id - 1) % 2) * 12, y: Math.floor((id - 1) / 2) * 8 },
    // Grafana's own variable syntax, not a template literal.
    datasource: { type: 'prometheus', uid: ['$', '{datasource}'].join('') },
    targets: [{ expr, legendFormat: '{{pod}}' }],
  })
  return `${JSON.stringify(
    {
      title: `Bourse ${x.metadata!.name}`,
      uid: `bourse-${createHash('sha256').update(`${ns}/${x.metadata!.name}`).digest('hex').slice(0, 12)}`,
      schemaVersion: 39,
      tags: ['bourse'],
      templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus' }] },
      panels: [
        panel(1, 'Targets up', `up{namespace="${ns}"}`),
        panel(2, 'Resident memory', `process_resident_memory_bytes{namespace="${ns}"}`),
        panel(3, 'Event-loop lag p99', `nodejs_eventloop_lag_p99_seconds{namespace="${ns}"}`),
        panel(4, 'WebSocket connections', `bourse_ws_connections{namespace="${ns}"}`),
        panel(5, 'Wallet syncer lag (blocks)', `bourse_syncer_lag_blocks{namespace="${ns}"}`),
      ],
    },
    null,
    2,
  )}\n`
}

export function desiredDashboard(x: Exchange): Obj<V1ConfigMap> {
  const m = meta(x, dashboardName(x), 'monitoring')
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { ...m, labels: { ...m.labels, grafana_dashboard: '1' } },
    data: { 'bourse.json': dashboardJson(x) },
  }
}

export interface Desired {
  apply: KubernetesObject[]
  /** Optional children not wanted now (switched off, one replica): deleted if they exist. */
  remove: { apiVersion: string; kind: string; name: string }[]
}

/** Everything after the migration, in apply order; `monitoringCrds`: the prometheus-operator CRDs are served. */
export function desiredComponents(x: Exchange, markets: Market[], monitoringCrds: boolean): Desired {
  const apply: KubernetesObject[] = []
  const remove: Desired['remove'] = []
  const optional = (o: KubernetesObject | undefined, apiVersion: string, kind: string, name: string) => {
    if (o) apply.push(o)
    else remove.push({ apiVersion, kind, name })
  }
  const sm = x.spec.monitoring?.serviceMonitors === true && monitoringCrds
  for (const c of COMPONENTS) {
    const name = componentName(x, c)
    apply.push(desiredComponentService(x, c), desiredComponentDeployment(x, c, markets))
    optional(desiredPdb(x, c), 'policy/v1', 'PodDisruptionBudget', name)
    if (AUTOSCALED.includes(c)) optional(desiredHpa(x, c), 'autoscaling/v2', 'HorizontalPodAutoscaler', name)
    if (monitoringCrds)
      optional(
        sm ? desiredServiceMonitor(x, c) : undefined,
        'monitoring.coreos.com/v1',
        'ServiceMonitor',
        name,
      )
  }
  if (monitoringCrds)
    optional(
      sm ? desiredPrometheusRule(x) : undefined,
      'monitoring.coreos.com/v1',
      'PrometheusRule',
      ruleName(x),
    )
  optional(
    x.spec.monitoring?.grafanaDashboard ? desiredDashboard(x) : undefined,
    'v1',
    'ConfigMap',
    dashboardName(x),
  )
  return { apply, remove }
}

export type MigrationState = 'Succeeded' | 'Running' | 'Failed'

export function migrationState(job: V1Job | undefined): MigrationState {
  if ((job?.status?.succeeded ?? 0) > 0) return 'Succeeded'
  if (job?.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True')) return 'Failed'
  return 'Running'
}

/** A Deployment that has rolled out its current generation and is Available. */
export function deploymentReady(d: V1Deployment): boolean {
  const st = d.status
  const want = d.spec?.replicas ?? 1
  return (
    (st?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
    (st?.updatedReplicas ?? 0) >= want &&
    (st?.availableReplicas ?? 0) >= want &&
    st?.conditions?.find((c) => c.type === 'Available')?.status === 'True'
  )
}

export function deploymentStuck(d: V1Deployment): string | undefined {
  const c = d.status?.conditions
  const failed =
    c?.find((x) => x.type === 'ReplicaFailure' && x.status === 'True') ??
    c?.find((x) => x.type === 'Progressing' && x.status === 'False')
  return failed ? `${d.metadata?.name}: ${failed.message ?? failed.reason}` : undefined
}

export interface ExchangeObserved {
  markets: number
  /** The migration Job of the current image; `migrated`: its image was migrated before (Job may be gone). */
  migration: MigrationState
  deployments?: V1Deployment[]
  error?: string
}

export function computeExchangeStatus(
  x: Exchange,
  o: ExchangeObserved,
  now = new Date().toISOString(),
): ExchangeStatus {
  const generation = x.metadata!.generation ?? 0
  let phase: ExchangeStatus['phase']
  let conds: Cond[]
  const ds = o.deployments ?? []
  const stuck = ds.map(deploymentStuck).filter((s) => s !== undefined)
  const waiting = ds.filter((d) => !deploymentReady(d)).map((d) => d.metadata!.name!)
  if (o.error) {
    phase = 'Degraded'
    conds = failedConditions('ReconcileFailed', o.error)
  } else if (o.migration === 'Failed') {
    phase = 'Degraded'
    conds = failedConditions('MigrationFailed', `migration Job ${migrationJobName(x)} failed`)
  } else if (o.migration === 'Running') {
    phase = 'Migrating'
    const message = `waiting for migration Job ${migrationJobName(x)} (${imageOf(x)})`
    conds = progressingConditions('Migrating', 'Migrating', message)
  } else if (stuck.length > 0) {
    phase = 'Degraded'
    conds = failedConditions('ComponentDegraded', stuck.join('; '))
  } else if (waiting.length > 0 || ds.length === 0) {
    phase = 'Progressing'
    const message = `waiting for ${waiting.join(', ') || 'the Deployments'} to become Available`
    conds = progressingConditions('ComponentsNotAvailable', 'RollingOut', message)
  } else {
    phase = 'Ready'
    conds = rolledOutConditions(
      { status: 'True', reason: 'ComponentsAvailable', message: 'every component is Available' },
      'every component rolled out',
    )
  }
  const status: ExchangeStatus = {
    phase,
    markets: o.markets,
    conditions: conds.map((c) => setCondition(x.status?.conditions, c, generation, now)),
  }
  if (o.migration === 'Succeeded') status.migratedVersion = imageOf(x)
  else if (x.status?.migratedVersion) status.migratedVersion = x.status.migratedVersion
  if (!o.error && o.migration === 'Succeeded') status.observedGeneration = generation
  else if (x.status?.observedGeneration !== undefined) status.observedGeneration = x.status.observedGeneration
  return status
}
