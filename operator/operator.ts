/**
 * The operator: informers on Markets, Exchanges, Wallets and the Deployments it manages (all namespaces, or
 * one), Market, Exchange and Wallet controllers, leader election on a Lease (only the leader's workers
 * reconcile; the others keep warm caches), /healthz, /readyz (caches synced) and /metrics.
 */
import { hostname } from 'node:os'
import {
  ApiException,
  ApisApi,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1Job,
} from '@kubernetes/client-node'
import type { Logger } from '../lib/log.ts'
import { type HttpServer, type Registry, startHttpServer } from '../lib/metrics.ts'
import { Controller, type ReconcileResult } from './controller.ts'
import type { EngineClient } from './engine-client.ts'
import { EventRecorder, type Regarding } from './events.ts'
import {
  computeExchangeStatus,
  desiredComponents,
  desiredKeySecret,
  desiredMigrationJob,
  type ExchangeObserved,
  marketsOf,
  migrationState,
} from './exchange.ts'
import { type Informer, startInformer } from './informer.ts'
import { LeaderElector } from './leader.ts'
import {
  computeStatus,
  desiredConfigMap,
  desiredDeployment,
  desiredService,
  type EngineStatus,
  type Exchange,
  type ExchangeStatus,
  FINALIZER,
  type Market,
  type MarketStatus,
} from './market.ts'
import { operatorMetrics } from './metrics.ts'
import { API_VERSION, FIELD_MANAGER, GROUP, VERSION } from './shared.ts'
import {
  computeWalletStatus,
  desiredSyncerDeployment,
  desiredSyncerService,
  desiredWalletConfigMap,
  SYNCER_PORT,
  type SyncerStatus,
  syncerName,
  syncerStatusOf,
  type Wallet,
  type WalletObserved,
} from './wallet.ts'

export interface OperatorOptions {
  kc: KubeConfig
  log: Logger
  registry: Registry
  engine: EngineClient
  /** Watch one namespace only; default all. */
  watchNamespace?: string
  /** Namespace and name of the leader-election Lease. */
  leaseNamespace: string
  leaseName?: string
  identity?: string
  leaseDurationMs?: number
  renewDeadlineMs?: number
  retryPeriodMs?: number
  /** Status refresh (last price, engine state) interval. */
  resyncMs?: number
  workers?: number
  /** Serve /metrics /healthz /readyz on this port (0: any); none when undefined. */
  httpPort?: number
  httpHost?: string
  /**
   * A Wallet's syncer /status (head, scanned, lag); undefined when unreachable. Default: GET
   * http://syncer-<wallet>.<namespace>.svc:9090/status with a 2 s timeout (unreachable outside the cluster
   * and on kwok, where the Wallet is then reported from its Deployment alone).
   */
  syncerStatus?: (w: Wallet) => Promise<SyncerStatus | undefined>
  /** Called when leadership is lost (main exits, as controller-runtime does). */
  onLostLeadership?: () => void
}

export interface Operator {
  readonly identity: string
  readonly isLeader: boolean
  readonly http?: HttpServer
  /** Number of Market reconciles this instance ran. */
  readonly reconciles: number
  /** Number of Exchange reconciles this instance ran. */
  readonly exchangeReconciles: number
  /** Number of Wallet reconciles this instance ran. */
  readonly walletReconciles: number
  stop(): Promise<void>
}

type Deployment = V1Deployment & KubernetesObject

const plural = 'markets'
const keyOf = (namespace: string, name: string) => `${namespace}/${name}`
/** A 422 that refuses an apply's metadata.uid: the object of that name is another one now. */
const uidRefused = (err: ApiException<unknown>) => String(err.body).includes('metadata.uid')

export async function startOperator(o: OperatorOptions): Promise<Operator> {
  const { kc, log } = o
  const identity = o.identity ?? `${hostname()}_${process.pid}`
  const metrics = operatorMetrics(o.registry)
  const objects = KubernetesObjectApi.makeApiClient(kc)
  const custom = kc.makeApiClient(CustomObjectsApi)
  const apps = kc.makeApiClient(AppsV1Api)
  const events = new EventRecorder(kc.makeApiClient(EventsV1Api), identity, log)
  const ns = o.watchNamespace
  const resync = o.resyncMs ?? 30_000
  let reconciles = 0
  let exchangeReconciles = 0
  let walletReconciles = 0
  const syncerStatus = o.syncerStatus ?? httpSyncerStatus
  const core = kc.makeApiClient(CoreV1Api)
  const apis = kc.makeApiClient(ApisApi)
  let stopping = false

  const controller = new Controller('market', (key) => reconcile(key), {
    log,
    metrics,
    ...(o.workers !== undefined && { workers: o.workers }),
  })
  const queue = controller.queue
  const exchangeController = new Controller('exchange', (key) => reconcileExchange(key), {
    log,
    metrics,
    ...(o.workers !== undefined && { workers: o.workers }),
  })
  const exchangeQueue = exchangeController.queue
  const walletController = new Controller('wallet', (key) => reconcileWallet(key), {
    log,
    metrics,
    ...(o.workers !== undefined && { workers: o.workers }),
  })
  const walletQueue = walletController.queue
  const controllers = [controller, exchangeController, walletController]

  const crdPath = (p: string) => `/apis/${GROUP}/${VERSION}${ns ? `/namespaces/${ns}` : ''}/${p}`
  const listCustom = (p: string) => async () =>
    (ns
      ? await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: p })
      : await custom.listClusterCustomObject({
          group: GROUP,
          version: VERSION,
          plural: p,
        })) as KubernetesListObject<
      // biome-ignore lint/suspicious/noExplicitAny: custom objects are untyped on the wire
      any
    >

  const markets: Informer<Market> = await startInformer<Market>({
    kc,
    path: crdPath('markets'),
    list: listCustom('markets'),
    log,
    onChange: (m) => {
      queue.add(keyOf(m.metadata!.namespace!, m.metadata!.name!))
      // The Exchange counts its Markets and gives the gateway their engines.
      exchangeQueue.add(keyOf(m.metadata!.namespace!, m.spec.exchangeRef.name))
    },
  })
  const wallets: Informer<Wallet> = await startInformer<Wallet>({
    kc,
    path: crdPath('wallets'),
    list: listCustom('wallets'),
    log,
    onChange: (w) => walletQueue.add(keyOf(w.metadata!.namespace!, w.metadata!.name!)),
  })
  const exchanges: Informer<Exchange> = await startInformer<Exchange>({
    kc,
    path: crdPath('exchanges'),
    list: listCustom('exchanges'),
    log,
    onChange: (x) => {
      exchangeQueue.add(keyOf(x.metadata!.namespace!, x.metadata!.name!))
      for (const w of wallets.list(x.metadata!.namespace))
        if (w.spec.exchangeRef.name === x.metadata!.name)
          walletQueue.add(keyOf(w.metadata!.namespace!, w.metadata!.name!))
      for (const m of markets.list(x.metadata!.namespace))
        if (m.spec.exchangeRef.name === x.metadata!.name)
          queue.add(keyOf(m.metadata!.namespace!, m.metadata!.name!))
    },
  })
  const selector = `app.kubernetes.io/managed-by=${FIELD_MANAGER}`
  const deployments: Informer<Deployment> = await startInformer<Deployment>({
    kc,
    path: ns ? `/apis/apps/v1/namespaces/${ns}/deployments` : '/apis/apps/v1/deployments',
    list: async () =>
      (ns
        ? await apps.listNamespacedDeployment({ namespace: ns, labelSelector: selector })
        : await apps.listDeploymentForAllNamespaces({
            labelSelector: selector,
          })) as KubernetesListObject<Deployment>,
    labelSelector: selector,
    log,
    // A change to a child (its status, or a hand edit to put back) reconciles its controller owner.
    onChange: (d) => {
      const owner = d.metadata?.ownerReferences?.find((r) => r.controller)
      if (!owner?.apiVersion.startsWith(`${GROUP}/`)) return
      const q = { Market: queue, Exchange: exchangeQueue, Wallet: walletQueue }[owner.kind]
      q?.add(keyOf(d.metadata!.namespace!, owner.name))
    },
  })

  const regarding = (m: Market): Regarding => ({
    apiVersion: API_VERSION,
    kind: 'Market',
    name: m.metadata!.name!,
    namespace: m.metadata!.namespace!,
    uid: m.metadata!.uid!,
    ...(m.metadata!.resourceVersion && { resourceVersion: m.metadata!.resourceVersion }),
  })

  async function apply<T extends KubernetesObject>(obj: T): Promise<T> {
    return objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply)
  }

  async function applyStatus(m: Market, status: MarketStatus): Promise<void> {
    await applyStatusOf(m, plural, 'Market', status)
  }

  async function applyStatusOf(o: KubernetesObject, resource: string, kind: string, status: unknown) {
    try {
      await custom.patchNamespacedCustomObjectStatus(
        {
          group: GROUP,
          version: VERSION,
          namespace: o.metadata!.namespace!,
          plural: resource,
          name: o.metadata!.name!,
          body: { apiVersion: API_VERSION, kind, metadata: { name: o.metadata!.name }, status },
          fieldManager: FIELD_MANAGER,
          force: true,
        },
        setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
      )
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return
      throw err
    }
  }

  /**
   * False when `m` is a stale copy: the Market it was is gone (409), or replaced by a new one of the same name
   * (422, the uid is immutable). Nothing is changed then, and the watch brings the news and another pass.
   */
  async function setFinalizer(m: Market, present: boolean): Promise<boolean> {
    try {
      await apply({
        apiVersion: API_VERSION,
        kind: 'Market',
        metadata: {
          name: m.metadata!.name,
          namespace: m.metadata!.namespace,
          // A precondition: a late pass over a stale cached Market must neither create a Market that is gone
          // nor drop the finalizer of a new Market of the same name.
          uid: m.metadata!.uid,
          finalizers: present ? [FINALIZER] : [],
        },
      })
      return true
    } catch (err) {
      if (err instanceof ApiException && (err.code === 409 || (err.code === 422 && uidRefused(err))))
        return false
      throw err
    }
  }

  async function reconcile(key: string): Promise<ReconcileResult | undefined> {
    reconciles++
    const [namespace, name] = key.split('/') as [string, string]
    const m = markets.get(namespace, name)
    if (!m) return undefined // gone: the garbage collector removes the children
    const finalizers = m.metadata!.finalizers ?? []

    if (m.metadata!.deletionTimestamp) {
      if (!finalizers.includes(FINALIZER)) return undefined
      if (m.status?.phase !== 'Deleting')
        await applyStatus(m, computeStatus(m, { exchangeFound: true, deleting: true }))
      try {
        const { cancelledUsers } = await o.engine.haltAndRelease(m)
        await events.record(
          regarding(m),
          'Normal',
          'MarketReleased',
          'Cleanup',
          `market halted and the open orders of ${cancelledUsers} users cancelled (frozen funds released)`,
        )
      } catch (err) {
        const message = `could not halt the market and release its open orders: ${(err as Error).message}`
        await events.record(regarding(m), 'Warning', 'CleanupFailed', 'Cleanup', message)
        await applyStatus(m, computeStatus(m, { exchangeFound: true, deleting: true, error: message }))
        throw err
      }
      await setFinalizer(m, false)
      return undefined
    }

    if (!finalizers.includes(FINALIZER) && !(await setFinalizer(m, true))) return undefined

    const x = exchanges.get(namespace, m.spec.exchangeRef.name)
    if (!x) {
      await events.record(
        regarding(m),
        'Warning',
        'ExchangeNotFound',
        'Reconcile',
        `Exchange ${m.spec.exchangeRef.name} not found`,
      )
      await applyStatus(m, computeStatus(m, { exchangeFound: false }))
      return { requeueAfterMs: resync }
    }

    let deployment: Deployment
    try {
      const before = deployments.get(namespace, desiredDeployment(m, x).metadata!.name!)
      await apply(desiredConfigMap(m))
      await apply(desiredService(m))
      deployment = await apply(desiredDeployment(m, x))
      if (!before) {
        await events.record(
          regarding(m),
          'Normal',
          'EngineCreated',
          'Apply',
          `created Deployment ${deployment.metadata!.name}`,
        )
      } else if (before.metadata?.generation !== deployment.metadata?.generation) {
        await events.record(
          regarding(m),
          'Normal',
          'EngineUpdated',
          'Apply',
          `Deployment ${deployment.metadata!.name} updated to generation ${deployment.metadata?.generation}`,
        )
      }
    } catch (err) {
      const message =
        err instanceof ApiException ? `HTTP ${err.code}: ${String(err.body).slice(0, 300)}` : String(err)
      await events.record(regarding(m), 'Warning', 'ApplyFailed', 'Apply', message)
      await applyStatus(m, computeStatus(m, { exchangeFound: true, error: message }))
      throw err
    }

    let engine: EngineStatus | undefined = await o.engine.status(m)
    // spec.trading is also in the config (a rollout); a running engine is switched at once through its API.
    const want = (m.spec.trading ?? 'Enabled') === 'Halted' ? 'halted' : 'trading'
    if (engine && !engine.fenced && engine.status !== want) {
      await o.engine.setTrading(m, want === 'trading')
      await events.record(
        regarding(m),
        'Normal',
        want === 'halted' ? 'Halted' : 'Resumed',
        'Switch',
        `engine ${want}`,
      )
      engine = (await o.engine.status(m)) ?? engine
    }
    const status = computeStatus(m, { exchangeFound: true, deployment, ...(engine && { engine }) })
    const previous = m.status
    await applyStatus(m, status)
    if (previous?.phase !== status.phase)
      await events.record(
        regarding(m),
        'Normal',
        `Phase${status.phase}`,
        'Reconcile',
        `market is ${status.phase}`,
      )
    return { requeueAfterMs: resync }
  }

  const regardingOf = (obj: KubernetesObject, kind: string): Regarding => ({
    apiVersion: API_VERSION,
    kind,
    name: obj.metadata!.name!,
    namespace: obj.metadata!.namespace!,
    uid: obj.metadata!.uid!,
    ...(obj.metadata!.resourceVersion && { resourceVersion: obj.metadata!.resourceVersion }),
  })

  const describe = (err: unknown) =>
    err instanceof ApiException ? `HTTP ${err.code}: ${String(err.body).slice(0, 300)}` : String(err)

  /** Deletes a child that is not wanted now; absent already is fine. */
  async function remove(namespace: string, r: { apiVersion: string; kind: string; name: string }) {
    try {
      await objects.delete({ apiVersion: r.apiVersion, kind: r.kind, metadata: { name: r.name, namespace } })
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return
      throw err
    }
  }

  /** Whether the prometheus-operator CRDs (ServiceMonitor, PrometheusRule) are served. */
  async function monitoringCrds(): Promise<boolean> {
    const groups = await apis.getAPIVersions()
    return groups.groups.some((g) => g.name === 'monitoring.coreos.com')
  }

  /** Creates the gateway's key-encryption Secret once (a random key); an existing one is never touched. */
  async function ensureKeySecret(x: Exchange): Promise<void> {
    const secret = desiredKeySecret(x)
    try {
      await core.createNamespacedSecret({
        namespace: x.metadata!.namespace!,
        body: secret,
        fieldManager: FIELD_MANAGER,
      })
    } catch (err) {
      if (err instanceof ApiException && err.code === 409) return
      throw err
    }
  }

  async function reconcileExchange(key: string): Promise<ReconcileResult | undefined> {
    exchangeReconciles++
    const [namespace, name] = key.split('/') as [string, string]
    const x = exchanges.get(namespace, name)
    if (!x || x.metadata!.deletionTimestamp) return undefined // the garbage collector removes the children
    const mine = marketsOf(x, markets.list(namespace))
    const writeStatus = async (observed: ExchangeObserved) => {
      const status: ExchangeStatus = computeExchangeStatus(x, observed)
      await applyStatusOf(x, 'exchanges', 'Exchange', status)
      if (x.status?.phase !== status.phase)
        await events.record(
          regardingOf(x, 'Exchange'),
          'Normal',
          `Phase${status.phase}`,
          'Reconcile',
          `exchange is ${status.phase}`,
        )
    }
    try {
      // Migrations first: the components of a new image start only once its migration Job has succeeded.
      const job = (await apply(desiredMigrationJob(x))) as V1Job
      const migration = migrationState(job)
      if (migration !== 'Succeeded') {
        if (migration === 'Failed' && x.status?.phase !== 'Degraded')
          await events.record(
            regardingOf(x, 'Exchange'),
            'Warning',
            'MigrationFailed',
            'Migrate',
            `migration Job ${job.metadata!.name} failed`,
          )
        await writeStatus({ markets: mine.length, migration })
        return { requeueAfterMs: migration === 'Running' ? Math.min(2000, resync) : resync }
      }
      await ensureKeySecret(x)
      const desired = desiredComponents(x, mine, await monitoringCrds())
      const applied: Deployment[] = []
      for (const obj of desired.apply) {
        const out = await apply(obj)
        if (obj.kind === 'Deployment') applied.push(out as Deployment)
      }
      for (const r of desired.remove) await remove(namespace, r)
      await writeStatus({ markets: mine.length, migration, deployments: applied })
    } catch (err) {
      const message = describe(err)
      await events.record(regardingOf(x, 'Exchange'), 'Warning', 'ApplyFailed', 'Apply', message)
      await applyStatusOf(
        x,
        'exchanges',
        'Exchange',
        computeExchangeStatus(x, { markets: mine.length, migration: 'Running', error: message }),
      )
      throw err
    }
    return { requeueAfterMs: resync }
  }

  async function reconcileWallet(key: string): Promise<ReconcileResult | undefined> {
    walletReconciles++
    const [namespace, name] = key.split('/') as [string, string]
    const w = wallets.get(namespace, name)
    if (!w || w.metadata!.deletionTimestamp) return undefined // the garbage collector removes the children
    const writeStatus = async (observed: WalletObserved) => {
      const status = computeWalletStatus(w, observed)
      await applyStatusOf(w, 'wallets', 'Wallet', status)
      if (w.status?.phase !== status.phase)
        await events.record(
          regardingOf(w, 'Wallet'),
          status.phase === 'Degraded' || status.phase === 'Pending' ? 'Warning' : 'Normal',
          `Phase${status.phase}`,
          'Reconcile',
          `wallet is ${status.phase}`,
        )
    }
    const x = exchanges.get(namespace, w.spec.exchangeRef.name)
    if (!x) {
      await writeStatus({ exchangeFound: false })
      return { requeueAfterMs: resync }
    }
    let deployment: Deployment
    try {
      await apply(desiredWalletConfigMap(w))
      await apply(desiredSyncerService(w))
      deployment = await apply(desiredSyncerDeployment(w, x))
    } catch (err) {
      const message = describe(err)
      await events.record(regardingOf(w, 'Wallet'), 'Warning', 'ApplyFailed', 'Apply', message)
      await writeStatus({ exchangeFound: true, error: message })
      throw err
    }
    const syncer = await syncerStatus(w).catch(() => undefined)
    await writeStatus({ exchangeFound: true, deployment, ...(syncer && { syncer }) })
    return { requeueAfterMs: resync }
  }

  const elector = new LeaderElector({
    coordination: kc.makeApiClient(CoordinationV1Api),
    namespace: o.leaseNamespace,
    name: o.leaseName ?? 'bourse-operator',
    identity,
    ...(o.leaseDurationMs !== undefined && { leaseDurationMs: o.leaseDurationMs }),
    ...(o.renewDeadlineMs !== undefined && { renewDeadlineMs: o.renewDeadlineMs }),
    ...(o.retryPeriodMs !== undefined && { retryPeriodMs: o.retryPeriodMs }),
    log,
    metrics,
    onStartedLeading: () => {
      for (const c of controllers) c.start()
    },
    onStoppedLeading: () => {
      for (const c of controllers) void c.stop()
      if (!stopping) o.onLostLeadership?.()
    },
  })
  elector.start()

  const http =
    o.httpPort === undefined
      ? undefined
      : await startHttpServer({
          port: o.httpPort,
          ...(o.httpHost && { host: o.httpHost }),
          registry: o.registry,
          ready: () => markets.synced && exchanges.synced && wallets.synced && deployments.synced,
        })

  return {
    identity,
    get isLeader() {
      return elector.isLeader
    },
    ...(http && { http }),
    get reconciles() {
      return reconciles
    },
    get exchangeReconciles() {
      return exchangeReconciles
    },
    get walletReconciles() {
      return walletReconciles
    },
    async stop() {
      stopping = true
      await elector.stop()
      await Promise.all(controllers.map((c) => c.stop()))
      await Promise.all([markets.stop(), exchanges.stop(), wallets.stop(), deployments.stop()])
      await http?.close()
    },
  }
}

/** GET the syncer's /status through its Service; undefined when it does not answer within 2 s. */
export async function httpSyncerStatus(w: Wallet): Promise<SyncerStatus | undefined> {
  const url = `http://${syncerName(w)}.${w.metadata!.namespace}.svc:${SYNCER_PORT}/status`
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
    if (!res.ok) return undefined
    return syncerStatusOf(await res.json())
  } catch {
    return undefined
  }
}
