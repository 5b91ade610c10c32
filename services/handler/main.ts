/**
 * `bourse handler`: the market-data handler (handler.ts) as a process. It consumes the `trades` topic from
 * NSQ (BOURSE_NSQ), commits k-lines, tickers and recent trades to the Redis Cluster (BOURSE_REDIS_NODES) with
 * one atomic script per commit, and stores trades in ClickHouse (BOURSE_CLICKHOUSE_URL and the rest of
 * clickhouseEnv). Replicas share the NSQ channel and are safe in any number.
 *
 * `bourse handler --user-events`: the user-events consumer (services/ws/user-events.ts), which turns the
 * engines' events into Binance's user data stream payloads on each user's pub/sub channel. It orders each
 * market's events in memory, so the Exchange runs ONE replica; it needs no ClickHouse.
 *
 * Both serve /metrics, /healthz and /readyz on BOURSE_HANDLER_PORT (ready once subscribed, not ready again
 * once asked to stop) and, on SIGTERM, stop taking messages, finish those in hand and exit.
 */
import { parseArgs } from 'node:util'
import { z } from 'zod'
import { type Analytics, clickhouseEnv, openClickhouseFromEnv } from '../../adapters/analytics/analytics.ts'
import { nsqEnv } from '../../adapters/bus/env.ts'
import { createBus } from '../../adapters/bus/index.ts'
import { createPubSubCache } from '../../adapters/pubsub/index.ts'
import { fromEnv, list, port } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger } from '../../lib/log.ts'
import { metricsRegistry, startHttpServer } from '../../lib/metrics.ts'
import { createUserEventsConsumer } from '../ws/user-events.ts'
import { createMarketDataHandler } from './handler.ts'
import { redisMarketStore } from './store.ts'

export const HandlerEnv = z.object({
  ...nsqEnv,
  BOURSE_REDIS_NODES: list(z.string(), { min: 1 }),
  BOURSE_HTTP_HOST: z.string().default('127.0.0.1'),
  BOURSE_HANDLER_PORT: port().default(9090),
})

/** The market-data mode also writes to ClickHouse. */
export const MarketDataEnv = HandlerEnv.extend(clickhouseEnv)

export type HandlerConfig = z.output<typeof HandlerEnv>

export type HandlerRun =
  | { mode: 'market-data'; config: HandlerConfig; analytics: Analytics }
  | { mode: 'user-events'; config: HandlerConfig }

/** Runs one mode until SIGTERM or SIGINT, then stops it and closes every connection. */
export async function serveHandler(run: HandlerRun): Promise<void> {
  const stopped = untilStopped()
  const { config } = run
  const log = createLogger(run.mode === 'market-data' ? 'handler' : 'user-events')
  const bus = createBus({ kind: 'nsq', ...config.BOURSE_NSQ, logger: log })
  const cache = createPubSubCache({ kind: 'redis', nodes: config.BOURSE_REDIS_NODES, logger: log })
  const marketData =
    run.mode === 'market-data'
      ? { store: redisMarketStore({ nodes: config.BOURSE_REDIS_NODES }), analytics: run.analytics }
      : undefined
  const component = marketData
    ? createMarketDataHandler({ bus, cache, log, registry: metricsRegistry(), ...marketData })
    : createUserEventsConsumer({ bus, cache, log })
  let ready = false
  const http = await startHttpServer({
    port: config.BOURSE_HANDLER_PORT,
    host: config.BOURSE_HTTP_HOST,
    ready: () => ready,
  })
  await component.start()
  ready = true
  log.info({ url: http.url, mode: run.mode }, 'handler running')

  log.info({ signal: await stopped }, 'stopping')
  ready = false
  await component.stop()
  await bus.close()
  await marketData?.store.close()
  await cache.close()
  await marketData?.analytics.close()
  await http.close()
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { 'user-events': { type: 'boolean', default: false } } })
  if (values['user-events']) {
    await serveHandler({
      mode: 'user-events',
      config: fromEnv(HandlerEnv, { component: 'handler --user-events' }),
    })
    return
  }
  const config = fromEnv(MarketDataEnv, { component: 'handler' })
  await serveHandler({ mode: 'market-data', config, analytics: openClickhouseFromEnv(config) })
}
