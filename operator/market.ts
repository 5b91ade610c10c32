/**
 * The Market's desired children and its status, as pure functions of the Market, its Exchange and what
 * was observed (the engine Deployment, the engine's /status when reachable). No I/O here: the controller
 * applies these with server-side apply and the unit tests check them without a cluster.
 *
 * The engine runs one replica with the Recreate strategy: the old engine is gone before the new one claims
 * the market (and the engine's fencing epoch makes a stale one unable to commit), and the book is rebuilt
 * from the open orders in Postgres on start, so a rollout for a fee change or a halt loses no orders.
 */
import { createHash } from 'node:crypto'
import type { KubernetesObject, V1ConfigMap, V1Deployment, V1Service } from '@kubernetes/client-node'
import {
  AS_EXPECTED,
  CONFIG_HASH,
  type Cond,
  type Condition,
  containerSecurityContext,
  DEFAULT_IMAGE,
  FIELD_MANAGER,
  failedConditions,
  mergeResources,
  ownerReference,
  podSecurityContext,
  progressingConditions,
  prometheusAnnotations,
  type Quantities,
  rolledOutConditions,
  type SecretRef,
  secretEnv,
  setCondition,
  standardProbes,
  tmpMount,
  tmpVolume,
} from './shared.ts'

export const FINALIZER = 'bourse.dev/market-cleanup'
export const ENGINE_PORT = 7000

export interface ExchangeSpec {
  image: string
  imagePullPolicy?: string
  imagePullSecrets?: { name: string }[]
  postgres: { secretRef: SecretRef }
  redis: { secretRef: SecretRef }
  nsq: { secretRef: SecretRef }
  clickhouse: {
    secretRef: SecretRef
    credentialsSecretRef?: { name: string; usernameKey?: string; passwordKey?: string }
    database?: string
  }
  assets: { symbol: string; name?: string; precision: number }[]
  /** Clients reach gateway and ws through a proxy that appends their address to X-Forwarded-For. */
  trustForwardedFor?: boolean
  gateway?: ComponentSpec
  ws?: ComponentSpec
  handler?: ComponentSpec
  cron?: ComponentSpec
  monitoring?: { serviceMonitors?: boolean; grafanaDashboard?: boolean; podDisruptionBudgets?: boolean }
}

/** Replicas and resources of one of the Exchange's shared components. */
export interface ComponentSpec {
  replicas?: number
  resources?: Quantities
}

export interface ExchangeStatus {
  observedGeneration?: number
  phase?: 'Pending' | 'Migrating' | 'Progressing' | 'Ready' | 'Degraded'
  markets?: number
  migratedVersion?: string
  conditions?: Condition[]
}

export interface MarketSpec {
  exchangeRef: { name: string }
  base: string
  quote: string
  tickSize: string
  lotSize: string
  minNotional: string
  makerFee: string
  takerFee: string
  trading?: 'Enabled' | 'Halted'
  priceBand?: { percent?: number; minPrice?: string; maxPrice?: string }
  engine?: { resources?: Quantities }
}

export interface MarketStatus {
  observedGeneration?: number
  phase?: 'Pending' | 'Progressing' | 'Trading' | 'Halted' | 'Degraded' | 'Deleting'
  lastPrice?: string
  engineEpoch?: number
  conditions?: Condition[]
}

export type Exchange = KubernetesObject & { spec: ExchangeSpec; status?: ExchangeStatus }
export type Market = KubernetesObject & { spec: MarketSpec; status?: MarketStatus }

/** What the engine's GET /status answers (services/engine/engine.ts status()). */
export interface EngineStatus {
  symbol?: string
  status: 'trading' | 'halted'
  epoch: string
  fenced: boolean
  openOrders: number
  lastPrice: string | null
}

/** The engine's market symbol, e.g. BTCUSDT. */
export const symbolOf = (m: Market) => `${m.spec.base}${m.spec.quote}`

/** Name of the Deployment, Service and ConfigMap: engine-<market name>. */
export const engineName = (m: Market) => `engine-${m.metadata!.name}`

export function labels(m: Market): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'bourse-engine',
    'app.kubernetes.io/instance': m.metadata!.name!,
    'app.kubernetes.io/component': 'engine',
    'app.kubernetes.io/part-of': 'bourse',
    'app.kubernetes.io/managed-by': FIELD_MANAGER,
    'bourse.dev/market': m.metadata!.name!,
  }
}

const selector = (m: Market) => ({
  'app.kubernetes.io/name': 'bourse-engine',
  'app.kubernetes.io/instance': m.metadata!.name!,
})

/** The market's configuration as the engine gets it (market.json in the ConfigMap). */
export function engineConfig(m: Market): Record<string, unknown> {
  const s = m.spec
  return {
    symbol: symbolOf(m),
    base: s.base,
    quote: s.quote,
    tickSize: s.tickSize,
    lotSize: s.lotSize,
    minNotional: s.minNotional,
    makerFee: s.makerFee,
    takerFee: s.takerFee,
    trading: s.trading ?? 'Enabled',
    ...(s.priceBand && { priceBand: s.priceBand }),
  }
}

export function desiredConfigMap(m: Market): V1ConfigMap & KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: engineName(m),
      namespace: m.metadata!.namespace!,
      labels: labels(m),
      ownerReferences: [ownerReference(m)],
    },
    data: { 'market.json': `${JSON.stringify(engineConfig(m), null, 2)}\n` },
  }
}

/** A hash of everything the engine reads at start-up, on the pod template: a change rolls the engine. */
export function configHash(m: Market, x: Exchange): string {
  const input = JSON.stringify({ config: engineConfig(m), image: x.spec.image })
  return createHash('sha256').update(input).digest('hex').slice(0, 16)
}

export const DEFAULT_RESOURCES = {
  requests: { cpu: '250m', memory: '256Mi' },
  limits: { cpu: '1', memory: '512Mi' },
}

/** Requests and limits: the Market's, each side filled from the defaults where it says nothing. */
export function engineResources(m: Market) {
  return mergeResources(m.spec.engine?.resources, DEFAULT_RESOURCES)
}

export function desiredDeployment(m: Market, x: Exchange): V1Deployment & KubernetesObject {
  const xs = x.spec
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: engineName(m),
      namespace: m.metadata!.namespace!,
      labels: labels(m),
      ownerReferences: [ownerReference(m)],
    },
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector(m) },
      template: {
        metadata: {
          labels: labels(m),
          annotations: {
            [CONFIG_HASH]: configHash(m, x),
            ...prometheusAnnotations(ENGINE_PORT),
          },
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          ...(xs.imagePullSecrets && { imagePullSecrets: xs.imagePullSecrets }),
          securityContext: podSecurityContext(),
          containers: [
            {
              name: 'engine',
              image: xs.image || DEFAULT_IMAGE,
              imagePullPolicy: xs.imagePullPolicy ?? 'IfNotPresent',
              args: ['engine', '--market', symbolOf(m)],
              ports: [{ name: 'http', containerPort: ENGINE_PORT, protocol: 'TCP' }],
              env: [
                { name: 'BOURSE_MARKET', value: symbolOf(m) },
                { name: 'BOURSE_ENGINE_PORT', value: String(ENGINE_PORT) },
                { name: 'BOURSE_HTTP_HOST', value: '0.0.0.0' },
                { name: 'BOURSE_MARKET_CONFIG', value: '/etc/bourse/market.json' },
                secretEnv('BOURSE_DATABASE_URL', xs.postgres.secretRef),
                secretEnv('BOURSE_REDIS_NODES', xs.redis.secretRef),
                secretEnv('BOURSE_NSQ', xs.nsq.secretRef),
              ],
              resources: engineResources(m),
              ...standardProbes(),
              securityContext: containerSecurityContext(),
              volumeMounts: [{ name: 'config', mountPath: '/etc/bourse', readOnly: true }, tmpMount()],
            },
          ],
          volumes: [{ name: 'config', configMap: { name: engineName(m) } }, tmpVolume()],
        },
      },
    },
  }
}

export function desiredService(m: Market): V1Service & KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: engineName(m),
      namespace: m.metadata!.namespace!,
      labels: labels(m),
      annotations: {
        ...prometheusAnnotations(ENGINE_PORT),
      },
      ownerReferences: [ownerReference(m)],
    },
    spec: {
      type: 'ClusterIP',
      selector: selector(m),
      ports: [{ name: 'http', port: ENGINE_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  }
}

/** What the controller observed, for computeStatus. */
export interface Observed {
  exchangeFound: boolean
  deployment?: V1Deployment
  /** The engine's /status; undefined when it could not be reached (always so on kwok). */
  engine?: EngineStatus
  deleting?: boolean
  /** An error of this pass, reported in Degraded. */
  error?: string
}

export function computeStatus(m: Market, o: Observed, now = new Date().toISOString()): MarketStatus {
  const generation = m.metadata!.generation ?? 0
  const halted = (m.spec.trading ?? 'Enabled') === 'Halted'
  const d = o.deployment
  const cond = (type: string) => d?.status?.conditions?.find((c) => c.type === type)
  const rolledOut =
    d !== undefined &&
    (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
    (d.status?.updatedReplicas ?? 0) >= 1 &&
    (d.status?.replicas ?? 0) <= 1
  const available = cond('Available')?.status === 'True'
  const stuck = cond('Progressing')?.status === 'False' || cond('ReplicaFailure')?.status === 'True'

  let phase: MarketStatus['phase']
  let conds: Cond[]
  if (o.deleting) {
    phase = 'Deleting'
    conds = [
      {
        type: 'Ready',
        status: 'False',
        reason: 'Deleting',
        message: 'halting the market and releasing open orders',
      },
      { type: 'Progressing', status: 'True', reason: 'Deleting', message: 'cleanup before removal' },
      o.error ? { type: 'Degraded', status: 'True', reason: 'CleanupFailed', message: o.error } : AS_EXPECTED,
    ]
  } else if (!o.exchangeFound) {
    phase = 'Pending'
    conds = failedConditions('ExchangeNotFound', `Exchange ${m.spec.exchangeRef.name} not found`)
  } else if (o.error) {
    phase = 'Degraded'
    conds = failedConditions('ReconcileFailed', o.error)
  } else if (stuck || o.engine?.fenced) {
    phase = 'Degraded'
    const message = o.engine?.fenced
      ? 'the engine was fenced out by a newer engine'
      : (cond('ReplicaFailure')?.message ?? cond('Progressing')?.message ?? 'engine rollout failed')
    conds = failedConditions('EngineDegraded', message)
  } else if (!available || !rolledOut) {
    phase = 'Progressing'
    const message = d ? 'waiting for the engine Deployment to become Available' : 'creating the engine'
    conds = progressingConditions('EngineNotAvailable', 'RollingOut', message)
  } else {
    const engineState = o.engine?.status
    phase = halted ? 'Halted' : 'Trading'
    const seen = o.engine === undefined ? ' (engine /status not reachable: Deployment Available only)' : ''
    if (engineState !== undefined && (engineState === 'halted') !== halted) {
      const message = `engine reports ${engineState}, spec.trading is ${m.spec.trading ?? 'Enabled'}`
      conds = progressingConditions('EngineStateMismatch', 'Switching', message)
    } else if (halted) {
      const message = `engine Available, market halted${seen}`
      conds = rolledOutConditions({ status: 'False', reason: 'MarketHalted', message }, 'engine rolled out')
    } else {
      const message = `engine Available and trading${seen}`
      conds = rolledOutConditions({ status: 'True', reason: 'Trading', message }, 'engine rolled out')
    }
  }
  const status: MarketStatus = {
    phase,
    conditions: conds.map((c) => setCondition(m.status?.conditions, c, generation, now)),
  }
  // observedGeneration only after a full successful pass over this generation.
  if (!o.deleting && o.exchangeFound && !o.error) status.observedGeneration = generation
  else if (m.status?.observedGeneration !== undefined) status.observedGeneration = m.status.observedGeneration
  const lastPrice = o.engine?.lastPrice ?? m.status?.lastPrice
  if (lastPrice) status.lastPrice = lastPrice
  const epoch = o.engine ? Number(o.engine.epoch) : m.status?.engineEpoch
  if (epoch !== undefined && Number.isSafeInteger(epoch)) status.engineEpoch = epoch
  return status
}
