/**
 * `bourse syncer --wallet <id>`: the deposit syncer of one Wallet as a process. It registers the wallet
 * (chain id, xpub, confirmations, assets; the scan cursor of a known wallet is kept), then runs the
 * syncer: woken by a WebSocket `newHeads` subscription when a ws(s) URL is given, polling every
 * BOURSE_SYNCER_POLL_INTERVAL in any case (the fallback when the subscription drops). One port serves
 * /metrics, /healthz, /readyz (ready once a pass has read the head and the last pass did not fail) and
 * /status (head, scanned block, lag, and the gas keeper's balance, as JSON).
 *
 * The wallet definition comes from a JSON file (BOURSE_WALLET_FILE: the Wallet resource's spec, as the
 * operator mounts it — `chain.id`, `confirmations`, `assets[{symbol, native | contract, decimals}]`,
 * `depositKey.xpub`, optional `finality` and `startBlock`) and/or from variables, which win over the file:
 * BOURSE_WALLET_CHAIN_ID, BOURSE_WALLET_XPUB (from the depositKey Secret), BOURSE_WALLET_CONFIRMATIONS,
 * BOURSE_WALLET_ASSETS (the assets as JSON), BOURSE_WALLET_FINALITY, BOURSE_WALLET_START_BLOCK (default:
 * the head when the wallet is first registered; no address exists before that). The gas keeper's address
 * (`gasKeeper.address` or BOURSE_WALLET_GAS_KEEPER_ADDRESS, the one cron's sweeps use) is optional: with it,
 * /status reads its native balance from the chain (a decimal string in the coin's units), which the Wallet
 * resource's status shows.
 *
 * With a hot wallet key — BOURSE_WALLET_HOT_KEY (hex) or BOURSE_WALLET_HOT_KEY_FILE (a file holding it, as the
 * operator mounts the Wallet's hotWallet.keySecretRef) — the process also runs the wallet's withdrawal processor
 * every BOURSE_WITHDRAWAL_INTERVAL: approved withdrawals are signed, broadcast, followed to the wallet's
 * confirmations and settled in the ledger; /status gains their counts and /metrics the bourse_withdrawals_*
 * series. Without a key it runs deposits only and says so at start. The key is never logged or shown.
 *
 * BOURSE_CHAIN_RPC_URL takes one or more URLs (comma- or newline-separated, as the Wallet's RPC Secret
 * holds them): http(s) ones are used in order with fallback, a ws(s) one follows heads unless
 * BOURSE_CHAIN_WS_URL is set. RPC URLs often carry API keys, so only their scheme and host are ever
 * logged or shown; credentials in a URL's user-info go out as an Authorization header.
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import pino from 'pino'
import {
  type Address,
  createPublicClient,
  fallback,
  getAddress,
  type Hex,
  http,
  isAddress,
  type PublicClient,
  type Transport,
} from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { z } from 'zod'
import { openDatabase } from '../../adapters/db/database.ts'
import { ConfigError, type ConfigIssue, durationMs, fromEnv, port, url } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger, type Logger } from '../../lib/log.ts'
import { startHttpServer } from '../../lib/metrics.ts'
import { formatDecimal } from '../../lib/money.ts'
import { type ProcessorStatus, WithdrawalProcessor } from '../withdrawals/processor.ts'
import { createSyncer, DeepReorgError, followHeads, type Syncer, type SyncerStatus } from './syncer.ts'
import { registerWallet, type WalletConfig } from './wallet.ts'

const SyncerEnv = z.object({
  BOURSE_DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
  BOURSE_CHAIN_RPC_URL: z.string({ error: 'expected one or more http(s) or ws(s) URLs' }),
  BOURSE_CHAIN_WS_URL: url({ protocols: ['ws', 'wss'] }).optional(),
  BOURSE_WALLET_FILE: z.string().optional(),
  BOURSE_WALLET_CHAIN_ID: z.string().optional(),
  BOURSE_WALLET_XPUB: z.string().optional(),
  BOURSE_WALLET_CONFIRMATIONS: z.string().optional(),
  BOURSE_WALLET_ASSETS: z.string().optional(),
  BOURSE_WALLET_FINALITY: z.string().optional(),
  BOURSE_WALLET_START_BLOCK: z.string().optional(),
  BOURSE_WALLET_GAS_KEEPER_ADDRESS: z.string().optional(),
  BOURSE_SYNCER_PORT: port({ allowZero: true }).default(9090),
  BOURSE_HTTP_HOST: z.string().default('127.0.0.1'),
  BOURSE_SYNCER_POLL_INTERVAL: durationMs().default(2000),
  BOURSE_WALLET_HOT_KEY: z.string().optional(),
  BOURSE_WALLET_HOT_KEY_FILE: z.string().optional(),
  BOURSE_WITHDRAWAL_INTERVAL: durationMs().default(2000),
})

const addressSchema = z
  .string()
  .refine((a) => isAddress(a, { strict: false }), 'expected a 0x address of 40 hex digits')

const assetSchema = z
  .object({
    symbol: z.string().regex(/^[A-Z0-9]{2,12}$/, 'expected an asset symbol like USDT'),
    native: z.boolean().optional(),
    contract: addressSchema.optional(),
    decimals: z.number().int().min(0).max(36),
  })
  .refine((a) => (a.native === true) !== (a.contract !== undefined), {
    message: 'each asset is either native: true or has a contract, not both',
  })

const walletSchema = z.object({
  chain: z.object({ id: z.number().int().positive() }),
  confirmations: z.number().int().min(1).max(10_000).default(12),
  finality: z.enum(['depth', 'finalized']).default('depth'),
  startBlock: z.union([z.number().int().min(0), z.string().regex(/^\d{1,19}$/)]).optional(),
  assets: z.array(assetSchema).min(1),
  depositKey: z.object(
    { xpub: z.string({ error: 'missing: set depositKey.xpub or BOURSE_WALLET_XPUB' }).min(1) },
    { error: 'missing: set depositKey.xpub or BOURSE_WALLET_XPUB' },
  ),
  gasKeeper: z.object({ address: addressSchema.optional() }).optional(),
})

export type WalletDefinition = Omit<WalletConfig, 'startBlock' | 'id'> & {
  startBlock?: bigint
  /** The gas keeper whose balance /status reports, and the decimals of the chain's native coin. */
  gasKeeper?: GasKeeper
}

export interface GasKeeper {
  address: Address
  decimals: number
}

/** The wallet definition from the file and the variables (variables win); a ConfigError says what is wrong. */
export function walletDefinition(env: z.output<typeof SyncerEnv>): WalletDefinition {
  const issues: ConfigIssue[] = []
  let doc: Record<string, unknown> = {}
  if (env.BOURSE_WALLET_FILE !== undefined) {
    try {
      doc = JSON.parse(readFileSync(env.BOURSE_WALLET_FILE, 'utf8')) as Record<string, unknown>
      // The Wallet resource itself (with its spec) or only its spec.
      if (typeof doc.spec === 'object' && doc.spec !== null) doc = doc.spec as Record<string, unknown>
    } catch (err) {
      issues.push({
        variable: 'BOURSE_WALLET_FILE',
        problem: `cannot read it as JSON: ${(err as Error).message}`,
      })
    }
  }
  const number = (variable: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined
    if (!/^\d{1,15}$/.test(text)) {
      issues.push({ variable, problem: `expected an integer, got ${JSON.stringify(text)}` })
      return undefined
    }
    return Number(text)
  }
  const chainId = number('BOURSE_WALLET_CHAIN_ID', env.BOURSE_WALLET_CHAIN_ID)
  if (chainId !== undefined) doc.chain = { ...(doc.chain as object), id: chainId }
  const confirmations = number('BOURSE_WALLET_CONFIRMATIONS', env.BOURSE_WALLET_CONFIRMATIONS)
  if (confirmations !== undefined) doc.confirmations = confirmations
  if (env.BOURSE_WALLET_XPUB !== undefined) doc.depositKey = { xpub: env.BOURSE_WALLET_XPUB.trim() }
  if (env.BOURSE_WALLET_FINALITY !== undefined) doc.finality = env.BOURSE_WALLET_FINALITY
  if (env.BOURSE_WALLET_START_BLOCK !== undefined) doc.startBlock = env.BOURSE_WALLET_START_BLOCK
  if (env.BOURSE_WALLET_GAS_KEEPER_ADDRESS !== undefined)
    doc.gasKeeper = { address: env.BOURSE_WALLET_GAS_KEEPER_ADDRESS.trim() }
  if (env.BOURSE_WALLET_ASSETS !== undefined) {
    try {
      doc.assets = JSON.parse(env.BOURSE_WALLET_ASSETS)
    } catch {
      issues.push({
        variable: 'BOURSE_WALLET_ASSETS',
        problem: 'expected JSON like [{"symbol":"ETH","native":true,"decimals":18}]',
      })
    }
  }
  const parsed = walletSchema.safeParse(doc)
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const path = issue.path.map(String).join('.')
      issues.push({ variable: `wallet ${path || '(definition)'}`, problem: issue.message })
    }
  }
  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues)
  const w = parsed.data
  const keeper = w.gasKeeper?.address
  return {
    ...(keeper !== undefined && {
      gasKeeper: {
        address: getAddress(keeper as Address),
        decimals: w.assets.find((a) => a.native === true)?.decimals ?? 18,
      },
    }),
    chainId: w.chain.id,
    xpub: w.depositKey.xpub,
    confirmations: w.confirmations,
    finality: w.finality,
    ...(w.startBlock !== undefined && { startBlock: BigInt(w.startBlock) }),
    assets: w.assets.map((a) => ({
      asset: a.symbol,
      contract: a.contract === undefined ? null : getAddress(a.contract as Address),
      decimals: a.decimals,
    })),
  }
}

/**
 * The hot wallet's private key from BOURSE_WALLET_HOT_KEY or the file BOURSE_WALLET_HOT_KEY_FILE names
 * (hex, 0x optional, surrounding whitespace ignored); undefined when neither is set. A ConfigError never
 * quotes the key.
 */
export function hotWalletKey(env: {
  BOURSE_WALLET_HOT_KEY?: string | undefined
  BOURSE_WALLET_HOT_KEY_FILE?: string | undefined
}): Hex | undefined {
  const { BOURSE_WALLET_HOT_KEY: inline, BOURSE_WALLET_HOT_KEY_FILE: file } = env
  if (inline !== undefined && file !== undefined) {
    throw new ConfigError([
      { variable: 'BOURSE_WALLET_HOT_KEY_FILE', problem: 'set either it or BOURSE_WALLET_HOT_KEY, not both' },
    ])
  }
  let text: string
  let variable: string
  if (file !== undefined) {
    variable = 'BOURSE_WALLET_HOT_KEY_FILE'
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unreadable'
      throw new ConfigError([{ variable, problem: `cannot read ${file} (${code})` }])
    }
  } else if (inline !== undefined) {
    variable = 'BOURSE_WALLET_HOT_KEY'
    text = inline
  } else return undefined
  const hex = text.trim().replace(/^0x/i, '')
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new ConfigError([
      {
        variable,
        problem: `expected a private key of 64 hex digits (0x optional), got ${text.length} characters`,
      },
    ])
  }
  const key = `0x${hex.toLowerCase()}` as Hex
  try {
    privateKeyToAccount(key)
  } catch {
    throw new ConfigError([{ variable, problem: 'not a valid secp256k1 private key' }])
  }
  return key
}

export interface RpcEndpoint {
  /** The URL to call, without user-info. */
  readonly url: string
  /** Scheme and host only: what logs and /status may show. */
  readonly shown: string
  readonly headers: Record<string, string>
}

/** Parses BOURSE_CHAIN_RPC_URL's list; user-info becomes a Basic Authorization header. */
function rpcEndpoints(text: string): RpcEndpoint[] {
  const out: RpcEndpoint[] = []
  for (const item of text.split(/[\s,]+/).filter((s) => s !== '')) {
    if (!URL.canParse(item))
      throw new ConfigError([{ variable: 'BOURSE_CHAIN_RPC_URL', problem: 'expected http(s) or ws(s) URLs' }])
    const u = new URL(item)
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) {
      throw new ConfigError([
        {
          variable: 'BOURSE_CHAIN_RPC_URL',
          problem: `expected http(s) or ws(s) URLs, got a ${u.protocol} URL`,
        },
      ])
    }
    const headers: Record<string, string> = {}
    if (u.username !== '' || u.password !== '') {
      const user = decodeURIComponent(u.username)
      const pass = decodeURIComponent(u.password)
      headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
      u.username = ''
      u.password = ''
    }
    out.push({ url: u.toString(), shown: shownUrl(u), headers })
  }
  if (!out.some((e) => e.url.startsWith('http'))) {
    throw new ConfigError([
      { variable: 'BOURSE_CHAIN_RPC_URL', problem: 'expected at least one http(s) URL' },
    ])
  }
  return out
}

function shownUrl(u: URL): string {
  return `${u.protocol}//${u.host}${u.pathname !== '/' || u.search !== '' ? '/…' : ''}`
}

/** Replaces every RPC URL (and its parts that may be secret) in a text by its shown form. */
function scrubber(endpoints: readonly RpcEndpoint[], raw: readonly string[]): (text: string) => string {
  const pairs: [string, string][] = []
  for (const e of endpoints) {
    pairs.push([e.url, e.shown], [e.url.replace(/\/$/, ''), e.shown])
  }
  for (const r of raw) {
    if (!URL.canParse(r)) continue
    const u = new URL(r)
    pairs.push([r, shownUrl(u)])
    if (u.password !== '') pairs.push([u.password, '***'], [decodeURIComponent(u.password), '***'])
    if (u.pathname.length > 1) pairs.push([u.pathname, '/…'])
    if (u.search !== '') pairs.push([u.search, ''])
  }
  // Longest first, so a whole URL goes before the parts of it.
  pairs.sort((a, b) => b[0].length - a[0].length)
  return (text) => {
    let out = text
    for (const [secret, shown] of pairs) if (secret !== '') out = out.replaceAll(secret, shown)
    return out.replace(/(\/\/[^/@:\s]*:)[^/@\s]*@/g, '$1***@')
  }
}

/** A chain's RPC as BOURSE_CHAIN_RPC_URL and BOURSE_CHAIN_WS_URL name it, for the syncer and the DEX indexer. */
export interface ChainConnection {
  readonly endpoints: readonly RpcEndpoint[]
  /** Where new heads are followed: BOURSE_CHAIN_WS_URL, else the first ws(s) endpoint; none: polling only. */
  readonly wsUrl: string | undefined
  /** Takes every RPC URL and its secret parts out of a text (logs, /status). */
  readonly scrub: (text: string) => string
  /** Reads through the http(s) endpoints, falling back from one to the next. */
  readonly client: PublicClient
}

/** Throws a ConfigError naming BOURSE_CHAIN_RPC_URL when it holds no usable http(s) URL. */
export function chainConnection(env: {
  BOURSE_CHAIN_RPC_URL: string
  BOURSE_CHAIN_WS_URL?: string | undefined
}): ChainConnection {
  const endpoints = rpcEndpoints(env.BOURSE_CHAIN_RPC_URL)
  const rawUrls = [
    ...env.BOURSE_CHAIN_RPC_URL.split(/[\s,]+/),
    ...(env.BOURSE_CHAIN_WS_URL ? [env.BOURSE_CHAIN_WS_URL] : []),
  ]
  const transports: Transport[] = endpoints
    .filter((e) => e.url.startsWith('http'))
    .map((e) => http(e.url, { fetchOptions: { headers: e.headers }, retryCount: 2 }))
  return {
    endpoints,
    wsUrl: env.BOURSE_CHAIN_WS_URL ?? endpoints.find((e) => e.url.startsWith('ws'))?.url,
    scrub: scrubber(endpoints, rawUrls),
    client: createPublicClient({
      transport: transports.length === 1 ? transports[0]! : fallback(transports),
      cacheTime: 0,
    }),
  }
}

function scrubbedLogger(log: Logger, scrub: (text: string) => string): Logger {
  const deep = (value: unknown): unknown => {
    if (typeof value === 'string') return scrub(value)
    if (Array.isArray(value)) return value.map(deep)
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, deep(v)]))
    }
    return value
  }
  return log.child({}, { serializers: { err: (err: Error) => deep(pino.stdSerializers.err(err)) } })
}

/** The gas keeper's native balance, a decimal string in the coin's units; null when the node does not answer. */
export async function gasKeeperStatus(
  client: { getBalance(args: { address: Address }): Promise<bigint> },
  keeper: GasKeeper,
): Promise<GasKeeperStatus> {
  const wei = await client.getBalance({ address: keeper.address }).catch(() => null)
  return {
    address: keeper.address,
    balance: wei === null ? null : formatDecimal(wei, keeper.decimals, { trimZeros: true }),
  }
}

export interface GasKeeperStatus {
  address: Address
  balance: string | null
}

export function statusJson(
  status: SyncerStatus,
  scrub: (text: string) => string,
  withdrawals?: ProcessorStatus,
  gasKeeper?: GasKeeperStatus,
) {
  return {
    wallet: status.walletId,
    chainId: Number(status.chainId),
    head: Number(status.head),
    scanned: Number(status.scanned),
    lag: Number(status.lag),
    finalized: status.finalized === null ? null : Number(status.finalized),
    lastError: status.lastError === null ? null : scrub(status.lastError),
    /** null: no hot wallet key, deposits only. */
    withdrawals:
      withdrawals === undefined
        ? null
        : {
            hotAddress: withdrawals.hotAddress,
            pendingApproval: withdrawals.pendingApproval,
            pending: withdrawals.pending,
            processing: withdrawals.processing,
            paused: withdrawals.paused,
            lastError: withdrawals.lastError === null ? null : scrub(withdrawals.lastError),
          },
    /** null: no gas keeper address configured. */
    gasKeeper: gasKeeper ?? null,
  }
}

export async function main(args: string[]): Promise<void> {
  // One per Exchange: Postgres history into ClickHouse, and the archive of old closed orders.
  if (args.includes('--analytics')) return (await import('../analytics/main.ts')).main(args)
  const { values } = parseArgs({ args, options: { wallet: { type: 'string' } } })
  const walletId = values.wallet
  if (walletId === undefined || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(walletId)) {
    process.stderr.write('usage: bourse syncer --wallet <id> | --analytics  (the Wallet resource name)\n')
    process.exit(2)
  }
  const env = fromEnv(SyncerEnv, { component: 'syncer' })
  let definition: WalletDefinition
  let chain: ChainConnection
  let hotKey: Hex | undefined
  try {
    definition = walletDefinition(env)
    chain = chainConnection(env)
    hotKey = hotWalletKey(env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`bourse syncer: ${err.message}\n`)
    process.exit(2)
  }
  const { endpoints, wsUrl, scrub, client } = chain
  const log = scrubbedLogger(createLogger('syncer').child({ wallet: walletId }), scrub)
  const database = await openDatabase({ kind: 'postgres', url: env.BOURSE_DATABASE_URL, maxConnections: 4 })
  let startBlock = definition.startBlock
  if (startBlock === undefined) startBlock = await client.getBlockNumber({ cacheTime: 0 })
  const { gasKeeper, ...registered } = definition
  await registerWallet(database.db, { ...registered, id: walletId, startBlock })
  // biome-ignore lint/suspicious/noExplicitAny: the chain is not known at build time; the syncer reads it from the RPC.
  const syncer: Syncer = await createSyncer({ db: database.db, client: client as any, walletId, log })
  // The first http(s) endpoint sends withdrawals: one node sees our nonces in order.
  const sendVia = endpoints.find((e) => e.url.startsWith('http'))!
  const processor =
    hotKey === undefined
      ? undefined
      : new WithdrawalProcessor({
          db: database.db,
          walletId,
          chainId: definition.chainId,
          rpcUrl: sendVia.url,
          rpcHeaders: sendVia.headers,
          hotKey,
          confirmations: definition.confirmations,
          log: log.child({ part: 'withdrawals' }),
        })
  hotKey = undefined

  const status = async () => {
    const keeper = gasKeeper === undefined ? undefined : await gasKeeperStatus(client, gasKeeper)
    return statusJson(syncer.status(), scrub, processor?.status(), keeper)
  }
  const http_ = await startHttpServer({
    port: env.BOURSE_SYNCER_PORT,
    host: env.BOURSE_HTTP_HOST,
    ready: () => {
      const s = syncer.status()
      return s.head >= 0n && s.lastError === null
    },
    app: (req, res) => {
      const path = (req.url ?? '/').split('?', 1)[0]
      if (path === '/status' && (req.method === 'GET' || req.method === 'HEAD')) {
        void status().then((body) => {
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
          res.end(req.method === 'HEAD' ? undefined : JSON.stringify(body))
        })
        return
      }
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      res.end('not found\n')
    },
  })
  const stop = new AbortController()
  const unwatch = wsUrl === undefined ? undefined : followHeads(syncer, wsUrl, log)
  log.info(
    {
      url: http_.url,
      chainId: definition.chainId,
      rpc: endpoints.map((e) => e.shown),
      heads: wsUrl === undefined ? 'polling only' : scrub(wsUrl),
      confirmations: definition.confirmations,
      assets: definition.assets.map((a) => a.asset),
    },
    'syncer running',
  )
  if (processor === undefined) {
    log.info(
      'no hot wallet key (BOURSE_WALLET_HOT_KEY or BOURSE_WALLET_HOT_KEY_FILE): running deposits only, no withdrawals are sent',
    )
  } else {
    await processor.refreshStatus().catch(() => undefined)
    processor.start(env.BOURSE_WITHDRAWAL_INTERVAL)
    log.info(
      { hotAddress: processor.hotAddress, intervalMs: env.BOURSE_WITHDRAWAL_INTERVAL },
      'withdrawals running from the hot wallet',
    )
  }
  const running = syncer.run({ signal: stop.signal, pollIntervalMs: env.BOURSE_SYNCER_POLL_INTERVAL })
  let exitCode = 0
  const failed = running.catch((err: unknown) => {
    log.fatal({ err }, err instanceof DeepReorgError ? 'reorg deeper than the blocks kept' : 'syncer stopped')
    exitCode = 1
  })
  await Promise.race([untilStopped(), failed])
  stop.abort()
  unwatch?.()
  await processor?.stop()
  await failed
  await http_.close()
  await database.close()
  if (exitCode !== 0) process.exit(exitCode)
}
