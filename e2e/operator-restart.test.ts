/**
 * The operator as real processes (`node cli/bourse.ts operator`, as the chart's Deployment runs it, with
 * its own defaults: a 15 s Lease) against the control plane of scripts/cluster (`make e2e`), killed with
 * SIGKILL, so nothing is released or finished:
 *
 * - killed in the middle of reconciling a batch of Markets, a new process converges with no duplicate work:
 *   every engine Deployment exists once, none rolled a second time, one migration Job, every Market Ready
 *   at its generation, and the new process created only the engines the old one had not;
 * - with two replicas only the Lease holder reconciles, and when the leader dies (no release) the standby
 *   takes the Lease once it expires and reconciles.
 *
 * Engines are unreachable from here (their Services' DNS names), so Markets report from their Deployments.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { join } from 'node:path'
import {
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CustomObjectsApi,
  EventsV1Api,
  type V1Deployment,
} from '@kubernetes/client-node'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Market } from '../operator/market.ts'
import {
  createNamespace,
  createStoreSecrets,
  deleteNamespace,
  exchange,
  group,
  installCrds,
  kc,
  kubeconfigPath,
  market,
  root,
  until,
  version,
} from './fixture.ts'

const apps = kc.makeApiClient(AppsV1Api)
const batch = kc.makeApiClient(BatchV1Api)
const custom = kc.makeApiClient(CustomObjectsApi)
const eventsApi = kc.makeApiClient(EventsV1Api)
const coordination = kc.makeApiClient(CoordinationV1Api)
const MARKETS = 40
const names = Array.from({ length: MARKETS }, (_, i) => `m${String(i).padStart(2, '0')}-usdt`)
let namespace = ''

interface OperatorProcess {
  identity: string
  url: string
  child: ChildProcess
  output: string[]
}
const processes: OperatorProcess[] = []

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

async function startProcess(identity: string): Promise<OperatorProcess> {
  const port = await freePort()
  const child = spawn(process.execPath, [join(root, 'cli/bourse.ts'), 'operator'], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath,
      POD_NAME: identity,
      BOURSE_OPERATOR_NAMESPACE: namespace,
      BOURSE_WATCH_NAMESPACE: namespace,
      BOURSE_OPERATOR_PORT: String(port),
      BOURSE_HTTP_HOST: '127.0.0.1',
      BOURSE_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const p = { identity, url: `http://127.0.0.1:${port}`, child, output: [] as string[] }
  child.stdout!.on('data', (b: Buffer) => p.output.push(b.toString()))
  child.stderr!.on('data', (b: Buffer) => p.output.push(b.toString()))
  processes.push(p)
  // Not left running if this test process dies first.
  process.once('exit', () => child.kill('SIGKILL'))
  await until(`${identity} to serve /healthz`, async () => (await fetch(`${p.url}/healthz`)).ok, 30_000)
  return p
}

const running = (p: OperatorProcess) => p.child.exitCode === null && p.child.signalCode === null

function kill(p: OperatorProcess): Promise<void> {
  if (!running(p)) return Promise.resolve()
  const exited = new Promise<void>((r) => p.child.once('exit', () => r()))
  p.child.kill('SIGKILL')
  return exited
}

/** The process's /metrics lines that start with `prefix`. */
const metric = async (p: OperatorProcess, prefix: string) => {
  const text = await (await fetch(`${p.url}/metrics`)).text()
  return text.split('\n').filter((l) => l.startsWith(prefix))
}
const leaderOf = async () =>
  (await coordination.readNamespacedLease({ name: 'bourse-operator', namespace })).spec!
const engines = async () =>
  (await apps.listNamespacedDeployment({ namespace, labelSelector: 'bourse.dev/market' })).items
const engineCreatedBy = async (identity: string) =>
  (await eventsApi.listNamespacedEvent({ namespace })).items.filter(
    (e) => e.reason === 'EngineCreated' && e.reportingInstance === identity,
  )
const createMarket = (name: string) =>
  custom.createNamespacedCustomObject({
    group,
    version,
    namespace,
    plural: 'markets',
    body: market(namespace, name),
  })

beforeAll(async () => {
  await installCrds()
  namespace = await createNamespace('bourse-e2e-restart')
  await createStoreSecrets(namespace)
  await custom.createNamespacedCustomObject({
    group,
    version,
    namespace,
    plural: 'exchanges',
    body: exchange(namespace, {
      assets: ['USDT', ...[...names, 'late-usdt'].map((n) => n.split('-')[0]!.toUpperCase())].map(
        (symbol) => ({
          symbol,
          precision: 8,
        }),
      ),
    }),
  })
  for (const name of names) await createMarket(name)
})

afterAll(async () => {
  for (const p of processes) await kill(p)
  await deleteNamespace(namespace)
})

describe('the operator process', () => {
  let before: Set<string>
  let second: OperatorProcess

  test(`killed while reconciling ${MARKETS} Markets, a new process converges with no duplicate work`, async () => {
    const first = await startProcess('operator-1')
    const made = await until(
      'the first process to have made some engines',
      async () => {
        const n = (await engines()).length
        return n >= 5 && n
      },
      30_000,
    )
    await kill(first)
    expect(made, 'the first process finished before it was killed: nothing was tested').toBeLessThan(MARKETS)
    // Requests already sent may still land: let them, then take stock.
    await new Promise((r) => setTimeout(r, 1000))
    before = new Set((await engines()).map((d) => d.metadata!.name!))
    expect(before.size).toBeLessThan(MARKETS)

    second = await startProcess('operator-2')
    await until(
      'operator-2 to take the Lease of the killed one',
      async () => {
        const lease = await leaderOf()
        return lease.holderIdentity === 'operator-2' && lease
      },
      30_000,
    )
    const all = await until(
      'every Market Ready at its generation',
      async () => {
        const list = (await custom.listNamespacedCustomObject({
          group,
          version,
          namespace,
          plural: 'markets',
        })) as {
          items: Market[]
        }
        const settled = list.items.filter(
          (m) =>
            m.status?.observedGeneration === m.metadata!.generation &&
            m.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True',
        )
        return settled.length === MARKETS && list.items
      },
      90_000,
    )
    for (const m of all) expect(m.metadata!.finalizers).toEqual(['bourse.dev/market-cleanup'])

    const deployments: V1Deployment[] = await engines()
    expect(deployments.map((d) => d.metadata!.name).sort()).toEqual(names.map((n) => `engine-${n}`))
    // Not rolled again: the first template is still the only one.
    for (const d of deployments) expect(d.metadata!.generation, d.metadata!.name).toBe(1)
    const sets = await apps.listNamespacedReplicaSet({ namespace, labelSelector: 'bourse.dev/market' })
    expect(sets.items).toHaveLength(MARKETS)
    const jobs = await batch.listNamespacedJob({ namespace })
    expect(jobs.items.map((j) => j.metadata!.name)).toHaveLength(1)

    // The new process created exactly the engines the killed one had not.
    const created = (await engineCreatedBy('operator-2')).map((e) => e.regarding!.name!)
    expect(created.sort()).toEqual(names.filter((n) => !before.has(`engine-${n}`)).sort())
    const events = await eventsApi.listNamespacedEvent({ namespace })
    const perMarket = new Map<string, number>()
    for (const e of events.items.filter((e) => e.reason === 'EngineCreated'))
      perMarket.set(e.regarding!.name!, (perMarket.get(e.regarding!.name!) ?? 0) + 1)
    expect(Math.max(...perMarket.values())).toBe(1)
  }, 180_000)

  test('with two replicas one leads; when the leader dies the standby takes over', async () => {
    const standby = await startProcess('operator-3')
    await new Promise((r) => setTimeout(r, 3000))
    expect((await leaderOf()).holderIdentity).toBe('operator-2')
    expect(await metric(standby, 'leader_election_master_status{')).toEqual([expect.stringMatching(/ 0$/)])
    expect(await metric(second, 'leader_election_master_status{')).toEqual([expect.stringMatching(/ 1$/)])
    const idle = await metric(standby, 'controller_runtime_reconcile_total{')
    expect(idle.length).toBeGreaterThan(0)
    for (const line of idle) expect(line).toMatch(/ 0$/)

    const transitions = (await leaderOf()).leaseTransitions ?? 0
    await kill(second)
    const lease = await until(
      'operator-3 to take the Lease',
      async () => {
        const lease = await leaderOf()
        return lease.holderIdentity === 'operator-3' && lease
      },
      40_000,
    )
    expect(lease.leaseTransitions).toBe(transitions + 1)
    await createMarket('late-usdt').catch(() => {})
    await until('the new leader to make the new engine', () =>
      apps.readNamespacedDeployment({ name: 'engine-late-usdt', namespace }),
    )
    expect((await engineCreatedBy('operator-3')).map((e) => e.regarding!.name)).toEqual(['late-usdt'])
    expect(await metric(standby, 'leader_election_master_status{')).toEqual([expect.stringMatching(/ 1$/)])
  }, 120_000)
})
