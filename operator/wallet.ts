/**
 * The Wallet's desired children and its status, as pure functions of the Wallet, its Exchange and what was
 * observed (the syncer Deployment, the syncer's /status when reachable: head, scanned block, lag and the gas
 * keeper's balance). The syncer (`bourse syncer --wallet
 * <name>`) runs as one replica with the Recreate strategy (one scanner per wallet); the Wallet's spec, without
 * any Secret reference, is rendered into a ConfigMap mounted as BOURSE_WALLET_FILE; the RPC URLs come from
 * their Secret as BOURSE_CHAIN_RPC_URL (secretKeyRef), the deposit xpub likewise when kept in a Secret; the hot
 * wallet's private key is mounted as a file (BOURSE_WALLET_HOT_KEY_FILE), never put into env text: the operator
 * never reads it. The gas keeper key is not mounted: the syncer does not use it (cron's sweeps do).
 */
import { createHash } from 'node:crypto'
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1EnvVar,
  V1Service,
} from '@kubernetes/client-node'
import { deploymentReady, deploymentStuck, imageOf, type Obj } from './exchange.ts'
import type { Exchange } from './market.ts'
import {
  CONFIG_HASH,
  type Cond,
  type Condition,
  containerSecurityContext,
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

export const SYNCER_PORT = 9090
export const WALLET_FILE = '/etc/bourse/wallet.json'
export const HOT_KEY_DIR = '/var/run/secrets/bourse/hot-wallet'
export const HOT_KEY_FILE = `${HOT_KEY_DIR}/privateKey`

export interface WalletSpec {
  exchangeRef: { name: string }
  chain: { id: number; name?: string }
  rpc: { secretRef: SecretRef }
  confirmations?: number
  assets: {
    symbol: string
    native?: boolean
    contract?: string
    decimals: number
    minDeposit?: string
    sweepThreshold?: string
  }[]
  depositKey: { xpub?: string; secretRef?: SecretRef }
  hotWallet: { keySecretRef: SecretRef }
  coldWallet: { address: string }
  gasKeeper?: { keySecretRef: SecretRef; address?: string; minBalance?: string }
  sweep?: { schedule?: string; enabled?: boolean }
  syncer?: { resources?: Quantities }
}

export interface WalletStatus {
  observedGeneration?: number
  phase?: 'Pending' | 'Progressing' | 'CatchingUp' | 'Following' | 'Degraded'
  headBlock?: number
  processedBlock?: number
  lag?: number
  gasKeeperBalance?: string
  conditions?: Condition[]
}

export type Wallet = KubernetesObject & { spec: WalletSpec; status?: WalletStatus }

/** What the syncer's GET /status answers (services/syncer/main.ts statusJson). */
export interface SyncerStatus {
  head: number
  scanned: number
  lag: number
  lastError?: string | null
  /** The gas keeper's balance in the native coin (decimal string), when the syncer could read it. */
  gasKeeperBalance?: string
}

/** The syncer's /status body as the Wallet's status needs it; undefined when it is not one. */
export function syncerStatusOf(body: unknown): SyncerStatus | undefined {
  const b = body as {
    head?: unknown
    scanned?: unknown
    lag?: unknown
    lastError?: unknown
    gasKeeper?: { balance?: unknown } | null
  }
  if (typeof b?.head !== 'number' || typeof b.scanned !== 'number') return undefined
  const balance = b.gasKeeper?.balance
  return {
    head: b.head,
    scanned: b.scanned,
    lag: typeof b.lag === 'number' ? b.lag : Math.max(0, b.head - b.scanned),
    lastError: typeof b.lastError === 'string' ? b.lastError : null,
    ...(typeof balance === 'string' && { gasKeeperBalance: balance }),
  }
}

export const syncerName = (w: Wallet) => `syncer-${w.metadata!.name}`

export function walletLabels(w: Wallet): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'bourse-syncer',
    'app.kubernetes.io/instance': w.metadata!.name!,
    'app.kubernetes.io/component': 'syncer',
    'app.kubernetes.io/part-of': 'bourse',
    'app.kubernetes.io/managed-by': FIELD_MANAGER,
    'bourse.dev/wallet': w.metadata!.name!,
    'bourse.dev/exchange': w.spec.exchangeRef.name,
  }
}

const selector = (w: Wallet) => ({
  'app.kubernetes.io/name': 'bourse-syncer',
  'app.kubernetes.io/instance': w.metadata!.name!,
})

const meta = (w: Wallet) => ({
  name: syncerName(w),
  namespace: w.metadata!.namespace!,
  labels: walletLabels(w),
  ownerReferences: [ownerReference(w)],
})

/** The wallet as the syncer reads it (BOURSE_WALLET_FILE): the spec without Secret references. */
export function walletFile(w: Wallet): Record<string, unknown> {
  const s = w.spec
  return {
    exchange: s.exchangeRef.name,
    chain: s.chain,
    confirmations: s.confirmations ?? 12,
    assets: s.assets,
    ...(s.depositKey.xpub && { depositKey: { xpub: s.depositKey.xpub } }),
    coldWallet: s.coldWallet,
    ...(s.gasKeeper && {
      gasKeeper: {
        ...(s.gasKeeper.address && { address: s.gasKeeper.address }),
        ...(s.gasKeeper.minBalance && { minBalance: s.gasKeeper.minBalance }),
      },
    }),
    sweep: { schedule: s.sweep?.schedule ?? '*/10 * * * *', enabled: s.sweep?.enabled ?? true },
  }
}

export function desiredWalletConfigMap(w: Wallet): Obj<V1ConfigMap> {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: meta(w),
    data: { 'wallet.json': `${JSON.stringify(walletFile(w), null, 2)}\n` },
  }
}

/** A hash of what the syncer reads at start-up (its file, the image, the Secret names), on the pod template. */
export function walletConfigHash(w: Wallet, x: Exchange): string {
  const input = JSON.stringify({
    file: walletFile(w),
    image: imageOf(x),
    rpc: w.spec.rpc.secretRef,
    hot: w.spec.hotWallet.keySecretRef,
    xpub: w.spec.depositKey.secretRef,
  })
  return createHash('sha256').update(input).digest('hex').slice(0, 16)
}

export const SYNCER_RESOURCES = {
  requests: { cpu: '100m', memory: '128Mi' },
  limits: { cpu: '1', memory: '512Mi' },
}

export function desiredSyncerDeployment(w: Wallet, x: Exchange): Obj<V1Deployment> {
  const s = w.spec
  const hot = s.hotWallet.keySecretRef
  const env: V1EnvVar[] = [
    { name: 'BOURSE_HTTP_HOST', value: '0.0.0.0' },
    { name: 'BOURSE_SYNCER_PORT', value: String(SYNCER_PORT) },
    { name: 'BOURSE_WALLET_FILE', value: WALLET_FILE },
    { name: 'BOURSE_WALLET_HOT_KEY_FILE', value: HOT_KEY_FILE },
    secretEnv('BOURSE_DATABASE_URL', x.spec.postgres.secretRef),
    secretEnv('BOURSE_CHAIN_RPC_URL', s.rpc.secretRef, 'urls'),
    ...(s.depositKey.secretRef ? [secretEnv('BOURSE_WALLET_XPUB', s.depositKey.secretRef, 'xpub')] : []),
  ]
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(w),
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      revisionHistoryLimit: 5,
      selector: { matchLabels: selector(w) },
      template: {
        metadata: {
          labels: walletLabels(w),
          annotations: { [CONFIG_HASH]: walletConfigHash(w, x), ...prometheusAnnotations(SYNCER_PORT) },
        },
        spec: {
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: 30,
          ...(x.spec.imagePullSecrets && { imagePullSecrets: x.spec.imagePullSecrets }),
          securityContext: podSecurityContext(),
          containers: [
            {
              name: 'syncer',
              image: imageOf(x),
              imagePullPolicy: x.spec.imagePullPolicy ?? 'IfNotPresent',
              args: ['syncer', '--wallet', w.metadata!.name!],
              ports: [{ name: 'http', containerPort: SYNCER_PORT, protocol: 'TCP' }],
              env,
              resources: mergeResources(s.syncer?.resources, SYNCER_RESOURCES),
              ...standardProbes(),
              securityContext: containerSecurityContext(),
              volumeMounts: [
                { name: 'config', mountPath: '/etc/bourse', readOnly: true },
                { name: 'hot-wallet', mountPath: HOT_KEY_DIR, readOnly: true },
                tmpMount(),
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name: syncerName(w) } },
            {
              name: 'hot-wallet',
              secret: {
                secretName: hot.name,
                items: [{ key: hot.key ?? 'privateKey', path: 'privateKey' }],
                // Owner and group (fsGroup) read only.
                defaultMode: 0o440,
              },
            },
            tmpVolume(),
          ],
        },
      },
    },
  }
}

export function desiredSyncerService(w: Wallet): Obj<V1Service> {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { ...meta(w), annotations: prometheusAnnotations(SYNCER_PORT) },
    spec: {
      type: 'ClusterIP',
      selector: selector(w),
      ports: [{ name: 'http', port: SYNCER_PORT, targetPort: 'http', protocol: 'TCP' }],
    },
  }
}

export interface WalletObserved {
  exchangeFound: boolean
  deployment?: V1Deployment
  /** The syncer's /status; undefined when it could not be reached (always so on kwok). */
  syncer?: SyncerStatus
  error?: string
}

export function computeWalletStatus(
  w: Wallet,
  o: WalletObserved,
  now = new Date().toISOString(),
): WalletStatus {
  const generation = w.metadata!.generation ?? 0
  const confirmations = w.spec.confirmations ?? 12
  const d = o.deployment
  const stuck = d ? deploymentStuck(d) : undefined
  let phase: WalletStatus['phase']
  let conds: Cond[]
  if (!o.exchangeFound) {
    phase = 'Pending'
    conds = failedConditions('ExchangeNotFound', `Exchange ${w.spec.exchangeRef.name} not found`)
  } else if (o.error) {
    phase = 'Degraded'
    conds = failedConditions('ReconcileFailed', o.error)
  } else if (stuck) {
    phase = 'Degraded'
    conds = failedConditions('SyncerDegraded', stuck)
  } else if (!d || !deploymentReady(d)) {
    phase = 'Progressing'
    const message = d ? 'waiting for the syncer Deployment to become Available' : 'creating the syncer'
    conds = progressingConditions('SyncerNotAvailable', 'RollingOut', message)
  } else if (o.syncer?.lastError) {
    phase = 'Degraded'
    conds = failedConditions('SyncerError', `syncer reports: ${o.syncer.lastError}`)
  } else if (o.syncer && o.syncer.lag > confirmations) {
    phase = 'CatchingUp'
    const message = `head ${o.syncer.head}, scanned ${o.syncer.scanned}: ${o.syncer.lag} blocks behind`
    conds = progressingConditions('CatchingUp', 'CatchingUp', message)
  } else {
    phase = 'Following'
    const message = o.syncer
      ? `head ${o.syncer.head}, scanned ${o.syncer.scanned}, lag ${o.syncer.lag} blocks`
      : 'syncer Available (its /status not reachable: Deployment Available only)'
    conds = rolledOutConditions({ status: 'True', reason: 'Following', message }, 'syncer rolled out')
  }
  const status: WalletStatus = {
    phase,
    conditions: conds.map((c) => setCondition(w.status?.conditions, c, generation, now)),
  }
  const head = o.syncer?.head ?? w.status?.headBlock
  const scanned = o.syncer?.scanned ?? w.status?.processedBlock
  const lag = o.syncer?.lag ?? w.status?.lag
  const balance = o.syncer?.gasKeeperBalance ?? w.status?.gasKeeperBalance
  if (head !== undefined) status.headBlock = head
  if (scanned !== undefined) status.processedBlock = scanned
  if (lag !== undefined) status.lag = lag
  if (balance !== undefined && w.spec.gasKeeper?.address) status.gasKeeperBalance = balance
  if (o.exchangeFound && !o.error) status.observedGeneration = generation
  else if (w.status?.observedGeneration !== undefined) status.observedGeneration = w.status.observedGeneration
  return status
}
