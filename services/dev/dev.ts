/**
 * `bourse dev`: the exchange in one process on embedded stores — PGlite for Postgres, the in-process bus,
 * chDB for ClickHouse — so a newcomer sees it run with one command and no servers. Each component joins
 * here as it lands; what runs is printed at start.
 */
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import { z } from 'zod'
import { openAnalytics } from '../../adapters/analytics/analytics.ts'
import { createBus } from '../../adapters/bus/index.ts'
import { type DatabaseHandle, openDatabase } from '../../adapters/db/database.ts'
import { markets } from '../../adapters/db/schema.ts'
import { fromEnv, port } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger } from '../../lib/log.ts'
import { startHttpServer } from '../../lib/metrics.ts'
import { engineApi } from '../engine/api.ts'
import { MatchingEngine } from '../engine/engine.ts'
import { createOutboxRelay } from '../relay/relay.ts'
import { demoMarkets, seedDemo } from './demo.ts'

const DevConfig = z.object({
  BOURSE_PORT: port().default(8080),
  /** Where the embedded stores keep their data between runs; delete it to start afresh. */
  BOURSE_DATA_DIR: z.string().default('.bourse/dev'),
})

/** An engine for every market in the database, each committing to the embedded Postgres. */
async function startEngines(database: DatabaseHandle, onCommit: () => void): Promise<MatchingEngine[]> {
  const symbols = (await database.db.select({ symbol: markets.symbol }).from(markets)).map((m) => m.symbol)
  return Promise.all(
    symbols.map((symbol) =>
      MatchingEngine.start({
        database,
        symbol,
        batchMaxCommands: 500,
        batchWindowMs: 2,
        log: createLogger('engine').child({ market: symbol }),
        onCommit,
      }),
    ),
  )
}

export async function main(): Promise<void> {
  const config = fromEnv(DevConfig, { component: 'dev' })
  const log = createLogger('dev')
  const dataDir = resolve(config.BOURSE_DATA_DIR)
  await mkdir(dataDir, { recursive: true })

  const database = await openDatabase({ kind: 'pglite', dataDir: join(dataDir, 'postgres') })
  await database.migrate()
  await seedDemo(database.db)
  const bus = createBus({ kind: 'memory' })
  const analytics = openAnalytics({ kind: 'chdb', path: join(dataDir, 'chdb') })
  await analytics.ping()
  const relay = createOutboxRelay({ db: database.db, bus, batchSize: 1000, pollIntervalMs: 200, log })
  const engines = await startEngines(database, () => relay.wake())
  relay.start()
  const app = new Hono()
  for (const engine of engines) app.route(`/internal/engines/${engine.symbol}`, engineApi(engine))
  const http = await startHttpServer({
    port: config.BOURSE_PORT,
    host: '127.0.0.1',
    app: getRequestListener(app.fetch),
  })

  console.log(
    [
      'Bourse is running in embedded mode:',
      `  postgres   PGlite in ${join(dataDir, 'postgres')} (migrated; markets ${demoMarkets.map((m) => m.symbol).join(', ')})`,
      ...engines.map((e) => `  engine     ${e.symbol}: ${http.url}/internal/engines/${e.symbol}/status`),
      '  relay      outbox → in-process bus, at-least-once',
      `  analytics  chDB in ${join(dataDir, 'chdb')}`,
      `  http       ${http.url}  (/healthz, /readyz, /metrics)`,
      'Press Ctrl-C to stop.',
    ].join('\n'),
  )

  await untilStopped()
  log.info('stopping')
  await http.close()
  await Promise.all(engines.map((e) => e.stop()))
  await relay.stop()
  await bus.close()
  await analytics.close()
  await database.close()
}
