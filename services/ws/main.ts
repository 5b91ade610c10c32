/**
 * `bourse ws`: a WebSocket replica. Serves Binance's market streams from the Redis Cluster's sharded pub/sub
 * (any replica serves any client: no stickiness), with /metrics, /healthz and /readyz on the same port; with
 * Postgres and the gateway's key-encryption secret also the WebSocket API's user data streams (`/ws-api/v3`),
 * whose requests are signed with the traders' API keys. On SIGTERM it sends `serverShutdown` to its clients
 * and closes them, so they reconnect elsewhere.
 */
import { z } from 'zod'
import { type DatabaseHandle, openDatabase } from '../../adapters/db/database.ts'
import { createPubSubCache } from '../../adapters/pubsub/index.ts'
import { boolean, durationMs, fromEnv, list, port, positiveInt, url } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger } from '../../lib/log.ts'
import { ApiKeyStore, keyEncryptionKeyEnv } from '../gateway/api-keys.ts'
import { startWsServer } from './server.ts'

export const WsEnv = z.object({
  BOURSE_REDIS_NODES: list(z.string(), { min: 1 }),
  BOURSE_WS_PORT: port().default(8090),
  BOURSE_HTTP_HOST: z.string().default('127.0.0.1'),
  /** Bytes a client may have queued and unsent before it is cut as a slow consumer. */
  BOURSE_WS_MAX_BUFFER_BYTES: positiveInt().default(1 << 20),
  BOURSE_WS_PING_INTERVAL: durationMs().default(20_000),
  BOURSE_WS_PONG_TIMEOUT: durationMs().default(60_000),
  BOURSE_WS_MAX_INCOMING_PER_SECOND: positiveInt().default(5),
  /** Behind a trusted ingress: the client's address is the last of X-Forwarded-For. */
  BOURSE_TRUST_PROXY: boolean().default(false),
  /** The gateway's Postgres and key-encryption secret, both or neither: the API keys of `/ws-api/v3`. */
  BOURSE_DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }).optional(),
  BOURSE_KEY_ENCRYPTION_SECRET: keyEncryptionKeyEnv.optional(),
})

export async function main(_args: string[]): Promise<void> {
  const config = fromEnv(WsEnv, { component: 'ws' })
  const log = createLogger('ws')
  const apiKeys = await apiKeyStore(config)
  if (apiKeys === undefined) log.warn('no BOURSE_DATABASE_URL: the WebSocket API (/ws-api/v3) is off')
  const cache = createPubSubCache({ kind: 'redis', nodes: config.BOURSE_REDIS_NODES, logger: log })
  const ws = await startWsServer({
    port: config.BOURSE_WS_PORT,
    host: config.BOURSE_HTTP_HOST,
    cache,
    log,
    maxBufferBytes: config.BOURSE_WS_MAX_BUFFER_BYTES,
    pingIntervalMs: config.BOURSE_WS_PING_INTERVAL,
    pongTimeoutMs: config.BOURSE_WS_PONG_TIMEOUT,
    maxIncomingPerSecond: config.BOURSE_WS_MAX_INCOMING_PER_SECOND,
    trustProxy: config.BOURSE_TRUST_PROXY,
    ...(apiKeys && { keys: apiKeys.keys }),
  })
  log.info({ url: ws.url }, 'ws serving')
  await untilStopped()
  await ws.close()
  await cache.close()
  await apiKeys?.database.close()
}

/** The API keys of `/ws-api/v3`, read from the gateway's Postgres: both settings, or neither and no WebSocket API. */
async function apiKeyStore(
  config: z.output<typeof WsEnv>,
): Promise<{ database: DatabaseHandle; keys: ApiKeyStore } | undefined> {
  const url = config.BOURSE_DATABASE_URL
  const secret = config.BOURSE_KEY_ENCRYPTION_SECRET
  if (url === undefined && secret === undefined) return undefined
  if (url === undefined || secret === undefined) {
    const missing = url === undefined ? 'BOURSE_DATABASE_URL' : 'BOURSE_KEY_ENCRYPTION_SECRET'
    console.error(
      `bourse ws: the WebSocket API needs BOURSE_DATABASE_URL and BOURSE_KEY_ENCRYPTION_SECRET; ${missing} is not set`,
    )
    process.exit(2)
  }
  const database = await openDatabase({ kind: 'postgres', url, maxConnections: 4 })
  return { database, keys: new ApiKeyStore(database.db, secret) }
}
