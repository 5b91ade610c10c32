/**
 * `bourse ws`: a WebSocket replica. Serves Binance's market streams from the Redis Cluster's sharded pub/sub
 * (any replica serves any client: no stickiness), with /metrics, /healthz and /readyz on the same port.
 * On SIGTERM it sends `serverShutdown` to its clients and closes them, so they reconnect elsewhere.
 */
import { z } from 'zod'
import { createPubSubCache } from '../../adapters/pubsub/index.ts'
import { durationMs, fromEnv, list, port, positiveInt } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger } from '../../lib/log.ts'
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
})

export async function main(_args: string[]): Promise<void> {
  const config = fromEnv(WsEnv, { component: 'ws' })
  const log = createLogger('ws')
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
  })
  log.info({ url: ws.url }, 'ws serving')
  await untilStopped()
  await ws.close()
  await cache.close()
}
