/**
 * `bourse dex`: the DEX order indexer and its API as one process (the seeds' Linkora order system: event
 * processor + order API). It registers the order contract (a known one keeps its cursor), follows the
 * chain — woken by a WebSocket `newHeads` subscription when a ws(s) URL is given, polling every
 * BOURSE_DEX_POLL_INTERVAL in any case — and serves the order API, /status, /metrics, /healthz and /readyz
 * on BOURSE_DEX_PORT (8080, the seed's order API port).
 *
 * Variables: BOURSE_DATABASE_URL, BOURSE_CHAIN_RPC_URL (one or more URLs, as for the syncer: credentials
 * never logged), BOURSE_CHAIN_WS_URL, BOURSE_DEX_CONTRACT (the order contract), BOURSE_DEX_START_BLOCK
 * (its deployment block; default: the head when first registered), BOURSE_DEX_ID (default `dex`),
 * BOURSE_DEX_MAX_RANGE (500), BOURSE_DEX_RECOVERY_CONCURRENCY (4).
 */
import { getRequestListener } from '@hono/node-server'
import { getAddress, isAddress } from 'viem'
import { z } from 'zod'
import { openDatabase } from '../../adapters/db/database.ts'
import { ConfigError, durationMs, fromEnv, int, port, url } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger } from '../../lib/log.ts'
import { startHttpServer } from '../../lib/metrics.ts'
import { type ChainConnection, chainConnection } from '../syncer/main.ts'
import { followHeads } from '../syncer/syncer.ts'
import { createDexApp } from './api.ts'
import { createDexIndexer, DeepReorgError, registerDexIndexer } from './indexer.ts'

const DexEnv = z.object({
  BOURSE_DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
  BOURSE_CHAIN_RPC_URL: z.string({ error: 'expected one or more http(s) or ws(s) URLs' }),
  BOURSE_CHAIN_WS_URL: url({ protocols: ['ws', 'wss'] }).optional(),
  BOURSE_DEX_CONTRACT: z
    .string({ error: 'expected the order contract address' })
    .refine((a) => isAddress(a, { strict: false }), 'expected a 0x address of 40 hex digits'),
  BOURSE_DEX_START_BLOCK: z
    .string()
    .regex(/^\d{1,19}$/, 'expected a block number')
    .optional(),
  BOURSE_DEX_ID: z
    .string()
    .regex(/^[a-z0-9][-a-z0-9.]{0,62}$/, 'expected a lower-case name')
    .default('dex'),
  BOURSE_DEX_PORT: port({ allowZero: true }).default(8080),
  BOURSE_HTTP_HOST: z.string().default('127.0.0.1'),
  BOURSE_DEX_POLL_INTERVAL: durationMs().default(2000),
  BOURSE_DEX_MAX_RANGE: int({ min: 1, max: 100_000 }).default(500),
  BOURSE_DEX_RECOVERY_CONCURRENCY: int({ min: 1, max: 64 }).default(4),
})

export async function main(_args: string[]): Promise<void> {
  const env = fromEnv(DexEnv, { component: 'dex' })
  let chain: ChainConnection
  try {
    chain = chainConnection(env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`bourse dex: ${err.message}\n`)
    process.exit(2)
  }
  const { endpoints, wsUrl, scrub, client } = chain
  const log = createLogger('dex').child({ indexer: env.BOURSE_DEX_ID })
  const database = await openDatabase({ kind: 'postgres', url: env.BOURSE_DATABASE_URL, maxConnections: 6 })
  const startBlock =
    env.BOURSE_DEX_START_BLOCK === undefined
      ? await client.getBlockNumber({ cacheTime: 0 })
      : BigInt(env.BOURSE_DEX_START_BLOCK)
  await registerDexIndexer(database.db, {
    id: env.BOURSE_DEX_ID,
    chainId: await client.getChainId(),
    contract: getAddress(env.BOURSE_DEX_CONTRACT),
    startBlock,
  })
  const indexer = await createDexIndexer({
    db: database.db,
    // biome-ignore lint/suspicious/noExplicitAny: the chain is not known at build time; the indexer reads it from the RPC.
    client: client as any,
    indexerId: env.BOURSE_DEX_ID,
    log,
    maxRange: env.BOURSE_DEX_MAX_RANGE,
    recoveryConcurrency: env.BOURSE_DEX_RECOVERY_CONCURRENCY,
  })
  const app = createDexApp({ db: database.db, indexerId: env.BOURSE_DEX_ID })
  app.get('/status', (c) => {
    const s = indexer.status()
    return c.json({
      indexer: s.indexerId,
      chainId: Number(s.chainId),
      contract: s.contract,
      head: Number(s.head),
      scanned: Number(s.scanned),
      lag: Number(s.lag),
      recovering: s.recovering,
      lastError: s.lastError === null ? null : scrub(s.lastError),
    })
  })
  const server = await startHttpServer({
    port: env.BOURSE_DEX_PORT,
    host: env.BOURSE_HTTP_HOST,
    ready: () => {
      const s = indexer.status()
      return s.head >= 0n && s.lastError === null
    },
    app: getRequestListener(app.fetch),
  })
  const stop = new AbortController()
  const unwatch = wsUrl === undefined ? undefined : followHeads(indexer, wsUrl, log)
  log.info(
    { url: server.url, contract: env.BOURSE_DEX_CONTRACT, rpc: endpoints.map((e) => e.shown) },
    'dex order indexer running',
  )
  const running = indexer.run({ signal: stop.signal, pollIntervalMs: env.BOURSE_DEX_POLL_INTERVAL })
  const fatal = running.then(
    () => undefined,
    (err: unknown) => err,
  )
  const signal = await Promise.race([untilStopped(), fatal])
  stop.abort()
  unwatch?.()
  const err = await fatal
  await server.close()
  await database.close()
  if (err !== undefined) {
    log.fatal({ err: scrub(String(err)) }, err instanceof DeepReorgError ? 'deep reorg: stopped' : 'stopped')
    process.exit(1)
  }
  log.info({ signal }, 'stopped')
}
