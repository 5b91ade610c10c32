/**
 * `bourse engine --market BTCUSDT`: one market's matching engine, its internal API and its outbox relay.
 * Answers only after a batch is committed to Postgres; the relay publishes the committed events to NSQ.
 */
import { parseArgs } from 'node:util'
import { getRequestListener } from '@hono/node-server'
import { z } from 'zod'
import { nsqEnv } from '../../adapters/bus/env.ts'
import { createBus } from '../../adapters/bus/index.ts'
import { openDatabase } from '../../adapters/db/database.ts'
import { createPubSubCache } from '../../adapters/pubsub/index.ts'
import { durationMs, fromEnv, list, port, positiveInt, url } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger } from '../../lib/log.ts'
import { startHttpServer } from '../../lib/metrics.ts'
import { createOutboxRelay } from '../relay/relay.ts'
import { depthPublisher } from '../ws/depth-source.ts'
import { engineApi } from './api.ts'
import { MatchingEngine } from './engine.ts'
import { applyMarketConfig, readMarketConfig } from './market-config.ts'

const EngineConfig = z.object({
  BOURSE_DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
  BOURSE_MARKET: z
    .string()
    .regex(/^[A-Z0-9]{2,20}$/, 'expected a market symbol like BTCUSDT')
    .optional(),
  /** The market's spec as the operator mounts it (market.json): written into the market's row at start. */
  BOURSE_MARKET_CONFIG: z.string().optional(),
  BOURSE_ENGINE_PORT: port().default(7000),
  BOURSE_HTTP_HOST: z.string().default('127.0.0.1'),
  BOURSE_BATCH_MAX: positiveInt().default(500),
  BOURSE_BATCH_WINDOW: durationMs().default(2),
  /** The NSQ servers (adapters/bus/env.ts); without them events wait in the outbox for a relay elsewhere. */
  BOURSE_NSQ: nsqEnv.BOURSE_NSQ.optional(),
  /** The Redis Cluster: with it, each commit's book changes go to the ws depth and bookTicker streams. */
  BOURSE_REDIS_NODES: list(z.string(), { min: 1 }).optional(),
})

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { market: { type: 'string' } } })
  const config = fromEnv(EngineConfig, { component: 'engine' })
  const symbol = values.market ?? config.BOURSE_MARKET
  if (symbol === undefined) {
    console.error('bourse engine: name the market with --market BTCUSDT or BOURSE_MARKET')
    process.exit(2)
  }
  const log = createLogger('engine').child({ market: symbol })
  const database = await openDatabase({
    kind: 'postgres',
    url: config.BOURSE_DATABASE_URL,
    maxConnections: 4,
  })
  if (config.BOURSE_MARKET_CONFIG !== undefined) {
    const marketConfig = await readMarketConfig(config.BOURSE_MARKET_CONFIG)
    if (marketConfig.symbol !== symbol) {
      console.error(`bourse engine: BOURSE_MARKET_CONFIG is for ${marketConfig.symbol}, not ${symbol}`)
      process.exit(2)
    }
    await applyMarketConfig(database.db, marketConfig, log)
  }
  const bus = config.BOURSE_NSQ ? createBus({ kind: 'nsq', ...config.BOURSE_NSQ, logger: log }) : null
  const relay =
    bus &&
    createOutboxRelay({ db: database.db, bus, market: symbol, batchSize: 1000, pollIntervalMs: 500, log })
  if (relay === null) log.warn('no BOURSE_NSQ: events wait in the outbox')
  const cache = config.BOURSE_REDIS_NODES
    ? createPubSubCache({ kind: 'redis', nodes: config.BOURSE_REDIS_NODES, logger: log })
    : null
  if (cache === null) log.warn('no BOURSE_REDIS_NODES: no depth or bookTicker streams for this market')
  const engine = await MatchingEngine.start({
    database,
    symbol,
    batchMaxCommands: config.BOURSE_BATCH_MAX,
    batchWindowMs: config.BOURSE_BATCH_WINDOW,
    log,
    ...(relay && { onCommit: () => relay.wake() }),
    ...(cache && { onDepth: depthPublisher(cache, log) }),
  })
  relay?.start()
  const http = await startHttpServer({
    port: config.BOURSE_ENGINE_PORT,
    host: config.BOURSE_HTTP_HOST,
    ready: () => !engine.status().fenced,
    app: getRequestListener(engineApi(engine).fetch),
  })
  log.info({ url: http.url }, 'engine serving')

  await untilStopped()
  await http.close()
  await engine.stop()
  await relay?.stop()
  await bus?.close()
  await cache?.close()
  await database.close()
}
