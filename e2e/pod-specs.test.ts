/**
 * The configuration the operator generates really boots the platform. On the control plane of
 * scripts/cluster, with the operator in this process: an Exchange (whose Secrets point at the real test
 * servers of scripts/testenv, a fresh Postgres database, an anvil this test starts and ClickHouse's HTTP
 * interface served here by chDB), two Markets and a Wallet. Then every pod template of every Job and
 * Deployment the operator made is run as a local process of this checkout: the image's ENTRYPOINT (read
 * from the Dockerfile) with the container's args, its env resolved from the Secrets and ConfigMaps it names,
 * its mounted ConfigMaps and Secrets written to a temp dir (paths rewritten), its port and the Services'
 * host:port references rewritten to free local ports. The migration Job runs first and must exit 0; each
 * Deployment's process must pass its readinessProbe. The gateway is booted once before any Market exists
 * (no engines) too. The engines' and the syncer's status endpoints then feed the Market and Wallet status.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { Readable } from 'node:stream'
import { promisify } from 'node:util'
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  type V1Container,
  type V1EnvVar,
  type V1PodTemplateSpec,
} from '@kubernetes/client-node'
import { createChdbConnection } from 'chdb/connection'
import postgres from 'postgres'
import { toHex } from 'viem'
import { mnemonicToAccount } from 'viem/accounts'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type Anvil, startAnvil } from '../chain/anvil.ts'
import { ANVIL_MNEMONIC, chainClients } from '../chain/testing.ts'
import { freePort } from '../lib/net.ts'
import { httpEngineClient } from '../operator/engine-client.ts'
import type { Market } from '../operator/market.ts'
import type { Operator } from '../operator/operator.ts'
import { syncerStatusOf, type Wallet } from '../operator/wallet.ts'
import {
  createNamespace,
  deleteNamespace,
  exchange,
  group,
  installCrds,
  kc,
  market,
  root,
  startTestOperator,
  until,
  version,
} from './fixture.ts'

const core = kc.makeApiClient(CoreV1Api)
const apps = kc.makeApiClient(AppsV1Api)
const batch = kc.makeApiClient(BatchV1Api)
const custom = kc.makeApiClient(CustomObjectsApi)
const MANAGED = 'app.kubernetes.io/managed-by=bourse-operator'

let namespace = ''
let op: Operator | undefined
let anvil: Anvil | undefined
let clickhouse: ClickhouseHttp | undefined
let dropDatabase: (() => Promise<void>) | undefined
let work = ''
const running: Local[] = []
/** Local base URL of each running Deployment, by its Service's name. */
const local = new Map<string, string>()

// ---- The test servers of scripts/testenv (as `scripts/testenv env` prints them).

async function testenv(): Promise<Record<string, string>> {
  const { stdout } = await promisify(execFile)(join(root, 'scripts/testenv'), ['env'])
  const env: Record<string, string> = {}
  for (const m of stdout.matchAll(/^export (\w+)='([^']*)'$/gm)) env[m[1]!] = m[2]!
  if (!env.BOURSE_TEST_POSTGRES_URL)
    throw new Error('scripts/testenv env printed no servers: scripts/testenv up')
  return env
}

/** A fresh, empty database on the test Postgres (the migration Job creates the tables). */
async function createDatabase(adminUrl: string): Promise<string> {
  const name = `bourse_podspecs_${randomBytes(4).toString('hex')}`
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} })
  await admin.unsafe(`create database ${name}`)
  await admin.end()
  dropDatabase = async () => {
    const dropper = postgres(adminUrl, { max: 1, onnotice: () => {} })
    await dropper.unsafe(`drop database if exists ${name} with (force)`)
    await dropper.end()
  }
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

// ---- ClickHouse's HTTP interface, answered by chDB in this process (no ClickHouse server on this machine).

interface ClickhouseHttp {
  url: string
  /** Requests answered, and refused for their credentials. */
  served: number
  refused: number
  close(): Promise<void>
}

const body = async (req: IncomingMessage) => {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString('utf8')
}

/** The query, its settings and its parameters as the HTTP interface takes them (?query=, ?param_x=, ?k=v). */
function clickhouseRequest(url: URL, text: string) {
  const settings: Record<string, string | number> = {}
  const params: Record<string, string> = {}
  for (const [k, v] of url.searchParams) {
    if (k.startsWith('param_')) params[k.slice(6)] = v
    else if (!['query', 'query_id', 'database', 'session_id'].includes(k))
      settings[k] = /^\d+$/.test(v) ? Number(v) : v
  }
  const inUrl = url.searchParams.get('query')
  return inUrl === null ? { query: text, settings, params } : { query: inUrl, values: text, settings, params }
}

async function startClickhouseHttp(user: string, password: string): Promise<ClickhouseHttp> {
  const connection = createChdbConnection({ path: ':memory:' })
  const expected = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
  const state = { served: 0, refused: 0 }
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://clickhouse')
    if (url.pathname === '/ping') return res.end('Ok.\n')
    if (req.headers.authorization !== expected) {
      state.refused++
      res
        .writeHead(516)
        .end(`Code: 516. DB::Exception: ${user}: Authentication failed. (AUTHENTICATION_FAILED)`)
      return
    }
    try {
      const r = clickhouseRequest(url, await body(req))
      const out = await connection.exec({
        query: r.query,
        ...(r.values !== undefined && { values: Readable.from([r.values]) }),
        clickhouse_settings: r.settings,
        query_params: r.params,
      })
      state.served++
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' })
      out.stream.pipe(res)
    } catch (err) {
      res.writeHead(500).end(`Code: 1000. DB::Exception: ${(err as Error).message}`)
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get served() {
      return state.served
    },
    get refused() {
      return state.refused
    },
    async close() {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
      await connection.close()
    },
  }
}

// ---- A pod template as a local process.

/** The image's ENTRYPOINT from the Dockerfile: `node cli/bourse.ts` runs this checkout with this Node. */
async function entrypoint(): Promise<string[]> {
  const dockerfile = await readFile(join(root, 'Dockerfile'), 'utf8')
  const line = dockerfile.match(/^ENTRYPOINT\s+(\[.*\])\s*$/m)
  if (!line) throw new Error('the Dockerfile has no ENTRYPOINT in exec form')
  const argv = JSON.parse(line[1]!) as string[]
  return argv[0] === 'node' ? [process.execPath, ...argv.slice(1)] : argv
}

async function secretValue(name: string, key: string): Promise<string> {
  const s = await core.readNamespacedSecret({ name, namespace })
  const data = s.data?.[key]
  if (data === undefined) throw new Error(`Secret ${name} has no key ${key}`)
  return Buffer.from(data, 'base64').toString('utf8')
}

async function configMapValue(name: string, key: string): Promise<string> {
  const cm = await core.readNamespacedConfigMap({ name, namespace })
  const value = cm.data?.[key]
  if (value === undefined) throw new Error(`ConfigMap ${name} has no key ${key}`)
  return value
}

async function envValue(e: V1EnvVar): Promise<string> {
  const from = e.valueFrom
  if (!from) return e.value ?? ''
  if (from.secretKeyRef) return secretValue(from.secretKeyRef.name!, from.secretKeyRef.key)
  if (from.configMapKeyRef) return configMapValue(from.configMapKeyRef.name!, from.configMapKeyRef.key)
  throw new Error(`env ${e.name}: a source this test does not resolve (${Object.keys(from).join(', ')})`)
}

/** Writes each mounted ConfigMap or Secret (its items, or all keys) to a folder; mount path → folder. */
async function mountVolumes(
  pod: V1PodTemplateSpec,
  c: V1Container,
  dir: string,
): Promise<Map<string, string>> {
  const paths = new Map<string, string>()
  for (const m of c.volumeMounts ?? []) {
    const v = pod.spec!.volumes!.find((x) => x.name === m.name)!
    const folder = join(dir, m.name)
    await mkdir(folder, { recursive: true })
    paths.set(m.mountPath, folder)
    let data: Record<string, string> = {}
    let items = v.configMap?.items ?? v.secret?.items
    if (v.configMap)
      data = (await core.readNamespacedConfigMap({ name: v.configMap.name!, namespace })).data ?? {}
    if (v.secret) {
      const s = await core.readNamespacedSecret({ name: v.secret.secretName!, namespace })
      data = Object.fromEntries(
        Object.entries(s.data ?? {}).map(([k, b]) => [k, Buffer.from(b, 'base64').toString('utf8')]),
      )
    }
    items ??= Object.keys(data).map((key) => ({ key, path: key }))
    for (const item of items) {
      if (data[item.key] === undefined) throw new Error(`volume ${m.name} has no key ${item.key}`)
      const file = join(folder, item.path)
      await mkdir(dirname(file), { recursive: true })
      await writeFile(file, data[item.key]!, { mode: v.secret?.defaultMode ?? 0o644 })
    }
  }
  return paths
}

interface Local {
  name: string
  child: ChildProcess
  output(): string
  exited: Promise<number | null>
  /** Base URL of the container's port (undefined for a Job). */
  url?: string
  readyPath?: string
}

/** Rewrites in-cluster names: the Services' host:port to the local processes, mount paths to folders. */
function rewrite(value: string, mounts: Map<string, string>): string {
  const mount = [...mounts.keys()]
    .sort((x, y) => y.length - x.length)
    .find((m) => value === m || value.startsWith(`${m}/`))
  const out = mount === undefined ? value : mounts.get(mount)! + value.slice(mount.length)
  return out.replace(/http:\/\/([a-z0-9-]+)(?:\.[a-z0-9-]+\.svc)?:(\d+)/g, (whole, host: string) => {
    return local.get(host) ?? whole
  })
}

/** Starts the pod template's one container as a local process on free ports. */
async function runPod(name: string, pod: V1PodTemplateSpec): Promise<Local> {
  const c = pod.spec!.containers[0]!
  expect(pod.spec!.containers).toHaveLength(1)
  const dir = join(work, name)
  const mounts = await mountVolumes(pod, c, dir)
  const containerPort = c.ports?.[0]?.containerPort
  const port = containerPort === undefined ? undefined : await freePort()
  const env: Record<string, string> = {}
  for (const e of c.env ?? []) {
    const value = rewrite(await envValue(e), mounts)
    // The container's own port and listen address, made local.
    if (port !== undefined && /_PORT$/.test(e.name) && value === String(containerPort))
      env[e.name] = String(port)
    else if (e.name === 'BOURSE_HTTP_HOST') env[e.name] = '127.0.0.1'
    else env[e.name] = value
  }
  const argv = [...(c.command ?? (await entrypoint())), ...(c.args ?? [])]
  const chunks: string[] = []
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: dir, TMPDIR: mounts.get('/tmp') ?? dir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout!.on('data', (d: Buffer) => chunks.push(d.toString()))
  child.stderr!.on('data', (d: Buffer) => chunks.push(d.toString()))
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)))
  const probe = c.readinessProbe?.httpGet
  const p: Local = { name, child, exited, output: () => chunks.join('') }
  if (port !== undefined) p.url = `http://127.0.0.1:${port}`
  if (probe?.path) p.readyPath = probe.path
  // The probe names the container's port (by name or number): the one this process listens on.
  if (probe) expect([c.ports?.[0]?.name, containerPort]).toContain(probe.port)
  running.push(p)
  return p
}

async function waitReady(p: Local): Promise<void> {
  let last = ''
  const deadline = Date.now() + 60_000
  for (;;) {
    const code = await Promise.race([p.exited, new Promise((r) => setTimeout(r, 0, 'running'))])
    if (code !== 'running') throw new Error(`${p.name} exited with ${code}:\n${p.output()}`)
    const res = await fetch(`${p.url}${p.readyPath}`).catch((e: Error) => e)
    if (!(res instanceof Error) && res.status === 200) return
    last = res instanceof Error ? res.message : `HTTP ${res.status} ${await res.text()}`
    if (Date.now() > deadline) throw new Error(`${p.name} not ready (${last}):\n${p.output().slice(-4000)}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

async function stop(p: Local): Promise<void> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGTERM')
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 10_000)
  await p.exited
  clearTimeout(timer)
  running.splice(running.indexOf(p), 1)
}

// ---- What the operator generated.

const deployments = async () =>
  (await apps.listNamespacedDeployment({ namespace, labelSelector: MANAGED })).items
const serviceOf = (d: { metadata?: { name?: string } }) => d.metadata!.name!

async function applyResource(plural: string, body: KubernetesObject) {
  await custom.createNamespacedCustomObject({ group, version, namespace, plural, body })
}

async function createSecrets(env: Record<string, string>, dbUrl: string, password: string) {
  const lookupd = env.BOURSE_TEST_NSQLOOKUPD_HTTP
  const keyOf = (i: number) =>
    toHex(mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: i }).getHdKey().privateKey!)
  const secrets: Record<string, { type?: string; stringData: Record<string, string> }> = {
    'bourse-postgres': { stringData: { url: dbUrl } },
    'bourse-redis': { stringData: { nodes: env.BOURSE_TEST_REDIS_NODES! } },
    'bourse-nsq': {
      stringData: {
        url: JSON.stringify({
          nsqd: env.BOURSE_TEST_NSQD_TCP,
          nsqdHttp: env.BOURSE_TEST_NSQD_HTTP,
          ...(lookupd && { lookupd: [lookupd] }),
        }),
      },
    },
    'bourse-clickhouse': { stringData: { url: clickhouse!.url } },
    'bourse-clickhouse-auth': {
      type: 'kubernetes.io/basic-auth',
      stringData: { username: 'bourse', password },
    },
    'anvil-rpc': { stringData: { urls: `${anvil!.rpcUrl},${anvil!.wsUrl}` } },
    'anvil-hot-wallet': { stringData: { privateKey: keyOf(3) } },
    'anvil-gas-keeper': { stringData: { privateKey: keyOf(4) } },
  }
  for (const [name, s] of Object.entries(secrets))
    await core.createNamespacedSecret({ namespace, body: { metadata: { name }, ...s } })
}

const XPUB =
  'xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8'

function wallet(): KubernetesObject & { spec: unknown } {
  return {
    apiVersion: `${group}/${version}`,
    kind: 'Wallet',
    metadata: { name: 'anvil', namespace },
    spec: {
      exchangeRef: { name: 'bourse' },
      chain: { id: anvil!.chainId, name: 'anvil' },
      rpc: { secretRef: { name: 'anvil-rpc' } },
      confirmations: 2,
      assets: [{ symbol: 'ETH', native: true, decimals: 18 }],
      depositKey: { xpub: XPUB },
      hotWallet: { keySecretRef: { name: 'anvil-hot-wallet' } },
      coldWallet: { address: chainClients(anvil!).account(5).address },
      gasKeeper: {
        keySecretRef: { name: 'anvil-gas-keeper' },
        address: chainClients(anvil!).account(4).address,
        minBalance: '0.5',
      },
    },
  }
}

const getCustom = (plural: string, name: string) =>
  custom.getNamespacedCustomObject({ group, version, namespace, plural, name }) as Promise<{
    status?: Record<string, unknown>
  }>

beforeAll(async () => {
  const env = await testenv()
  await installCrds()
  namespace = await createNamespace('bourse-e2e-podspecs')
  work = await mkdtemp(join(tmpdir(), 'bourse-podspecs-'))
  const password = randomBytes(12).toString('hex')
  ;[anvil, clickhouse] = await Promise.all([startAnvil(), startClickhouseHttp('bourse', password)])
  await createSecrets(env, await createDatabase(env.BOURSE_TEST_POSTGRES_URL!), password)
  const at = (name: string, path: string) => async () => {
    const base = local.get(name)
    if (!base) return undefined
    return fetch(`${base}${path}`, { signal: AbortSignal.timeout(2000) })
  }
  op = await startTestOperator({
    namespace,
    // The engines and the syncer run here, not behind their Services: reach them where they listen.
    engine: httpEngineClient({
      baseUrl: (m: Market) => local.get(`engine-${m.metadata!.name}`) ?? 'http://127.0.0.1:9',
      openOrderUsers: async () => [],
    }),
    syncerStatus: async (w: Wallet) => {
      const res = await at(`syncer-${w.metadata!.name}`, '/status')()
      return res?.ok ? syncerStatusOf(await res.json()) : undefined
    },
  })
}, 180_000)

afterAll(async () => {
  for (const p of [...running]) await stop(p)
  await op?.stop()
  await deleteNamespace(namespace)
  await Promise.all([anvil?.stop(), clickhouse?.close(), dropDatabase?.()])
  if (work) await rm(work, { recursive: true, force: true })
}, 120_000)

describe('the generated configuration boots the platform', () => {
  test('the migration Job runs first and exits 0', async () => {
    await applyResource(
      'exchanges',
      exchange(namespace, {
        clickhouse: {
          secretRef: { name: 'bourse-clickhouse' },
          credentialsSecretRef: { name: 'bourse-clickhouse-auth' },
        },
        gateway: { replicas: 1 },
        ws: { replicas: 1 },
        handler: { replicas: 1 },
        cron: { replicas: 1 },
      }),
    )
    const job = await until('the migration Job', async () => {
      const jobs = (await batch.listNamespacedJob({ namespace, labelSelector: MANAGED })).items
      return jobs[0]
    })
    const p = await runPod(job.metadata!.name!, job.spec!.template)
    expect(await p.exited, p.output()).toBe(0)
    await stop(p)
  })

  test('with no Market yet, the gateway starts and serves no symbols', async () => {
    const gateway = await until('the gateway Deployment', async () =>
      (await deployments()).find((d) => serviceOf(d) === 'bourse-gateway'),
    )
    const engines = gateway.spec!.template.spec!.containers[0]!.env!.find((e) => e.name === 'BOURSE_ENGINES')
    expect(engines?.value ?? '').toBe('')
    const p = await runPod('gateway-no-markets', gateway.spec!.template)
    await waitReady(p)
    const info = (await (await fetch(`${p.url}/api/v3/exchangeInfo`)).json()) as { symbols: unknown[] }
    expect(info.symbols).toEqual([])
    const depth = await fetch(`${p.url}/api/v3/depth?symbol=BTCUSDT`)
    expect(depth.status).toBe(400)
    expect(await depth.json()).toEqual({ code: -1121, msg: 'Invalid symbol.' })
    await stop(p)
  })

  test('every Deployment of an Exchange, two Markets and a Wallet passes its readiness probe', async () => {
    await applyResource('markets', market(namespace, 'btc-usdt'))
    await applyResource('markets', market(namespace, 'eth-usdt', { makerFee: '0.0008' }))
    await applyResource('wallets', wallet())
    const all = await until(
      'the engine and syncer Deployments, and the gateway with both engines',
      async () => {
        const ds = await deployments()
        const names = ds.map(serviceOf)
        const gw = ds.find((d) => serviceOf(d) === 'bourse-gateway')
        const engines = gw?.spec?.template.spec?.containers[0]?.env?.find((e) => e.name === 'BOURSE_ENGINES')
        return (
          ['engine-btc-usdt', 'engine-eth-usdt', 'syncer-anvil'].every((n) => names.includes(n)) &&
          engines?.value?.split(',').length === 2 &&
          ds
        )
      },
    )
    expect(all.map(serviceOf).sort()).toEqual([
      'bourse-analytics',
      'bourse-cron',
      'bourse-gateway',
      'bourse-handler',
      'bourse-user-events',
      'bourse-ws',
      'engine-btc-usdt',
      'engine-eth-usdt',
      'syncer-anvil',
    ])
    // Engines first: the gateway's BOURSE_ENGINES names their Services, rewritten to where they listen.
    const order = [...all].sort(
      (a, b) => Number(!serviceOf(a).startsWith('engine-')) - Number(!serviceOf(b).startsWith('engine-')),
    )
    const procs: Local[] = []
    for (const d of order) {
      const p = await runPod(serviceOf(d), d.spec!.template)
      local.set(serviceOf(d), p.url!)
      procs.push(p)
    }
    await Promise.all(procs.map(waitReady))
    // The handler and the analytics syncer created their tables with the credentials from the Secret.
    expect(clickhouse!.refused).toBe(0)
    expect(clickhouse!.served).toBeGreaterThan(0)

    // The real engines and syncer feed the statuses.
    await until('both Markets Trading from their engines', async () => {
      const ms = await Promise.all(['btc-usdt', 'eth-usdt'].map((n) => getCustom('markets', n)))
      return ms.every((m) => m.status?.phase === 'Trading' && m.status?.engineEpoch !== undefined)
    })
    const w = await until('the Wallet with lag and the gas keeper balance', async () => {
      const s = (await getCustom('wallets', 'anvil')).status
      return s?.gasKeeperBalance !== undefined && s?.lag !== undefined && s
    })
    expect(w).toMatchObject({ phase: 'Following', gasKeeperBalance: '10000' })
    const gw = local.get('bourse-gateway')!
    const info = (await (await fetch(`${gw}/api/v3/exchangeInfo`)).json()) as {
      symbols: { symbol: string }[]
    }
    expect(info.symbols.map((s) => s.symbol).sort()).toEqual(['BTCUSDT', 'ETHUSDT'])
  }, 240_000)
})
