/**
 * `bourse syncer --analytics`: the analytics syncer of one Exchange. Every BOURSE_ANALYTICS_COPY_INTERVAL it
 * copies orders, trades and ledger entries from Postgres (BOURSE_DATABASE_URL) to ClickHouse
 * (BOURSE_CLICKHOUSE_URL, BOURSE_CLICKHOUSE_USERNAME, BOURSE_CLICKHOUSE_PASSWORD, BOURSE_CLICKHOUSE_DATABASE)
 * by watermark (BOURSE_ANALYTICS_LAG, BOURSE_ANALYTICS_OVERLAP, BOURSE_ANALYTICS_BATCH_SIZE: see copier.ts);
 * every BOURSE_ANALYTICS_ARCHIVE_INTERVAL, right after a copy, it archives closed orders older than
 * BOURSE_ANALYTICS_RETENTION out of Postgres once ClickHouse holds them (BOURSE_ANALYTICS_RETENTION=0 turns
 * archiving off). One port (BOURSE_ANALYTICS_PORT) serves /metrics, /healthz and /readyz (ready once the
 * ClickHouse tables exist and while the last pass succeeded).
 *
 * Two replicas would do no harm (copies are idempotent, the archive's delete re-checks each row), only
 * double work: the Exchange runs one.
 */

import { z } from 'zod'
import { type Analytics, clickhouseEnv, openClickhouseFromEnv } from '../../adapters/analytics/analytics.ts'
import { type Executor, openDatabase } from '../../adapters/db/database.ts'
import { durationMs, fromEnv, port, positiveInt, url } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger, type Logger } from '../../lib/log.ts'
import { Counter, Gauge, metricsRegistry, type Registry, startHttpServer } from '../../lib/metrics.ts'
import { archiveOrders } from './archiver.ts'
import { COPIED_TABLES, copyAll } from './copier.ts'
import { migrateHistory } from './tables.ts'

/** How often and how much the analytics syncer copies and archives (also read by `bourse dev`). */
export const AnalyticsSettingsEnv = z.object({
  BOURSE_ANALYTICS_COPY_INTERVAL: durationMs().default(10_000),
  BOURSE_ANALYTICS_ARCHIVE_INTERVAL: durationMs().default(600_000),
  BOURSE_ANALYTICS_RETENTION: durationMs().default(30 * 86_400_000),
  BOURSE_ANALYTICS_LAG: durationMs().default(5000),
  BOURSE_ANALYTICS_OVERLAP: durationMs().default(60_000),
  BOURSE_ANALYTICS_BATCH_SIZE: positiveInt().default(5000),
  BOURSE_ANALYTICS_ARCHIVE_CHUNK: positiveInt().default(1000),
})

export const AnalyticsEnv = AnalyticsSettingsEnv.extend({
  BOURSE_DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
  ...clickhouseEnv,
  BOURSE_ANALYTICS_PORT: port({ allowZero: true }).default(9090),
  BOURSE_HTTP_HOST: z.string().default('127.0.0.1'),
})

export type AnalyticsSyncerConfig = z.output<typeof AnalyticsEnv>

export interface RunningAnalyticsSyncer {
  /** Runs one pass now (copy, and archive when due); resolves when it is done. */
  pass(): Promise<void>
  ready(): boolean
  stop(): Promise<void>
}

type Settings = z.output<typeof AnalyticsSettingsEnv>

/** Creates the ClickHouse tables, then copies (and archives) on the configured intervals until stopped. */
export async function startAnalyticsSyncer(o: {
  db: Executor
  analytics: Analytics
  config: Settings
  registry?: Registry
  log?: Logger
  /** Epoch milliseconds (tests). */
  now?: () => number
}): Promise<RunningAnalyticsSyncer> {
  const c = o.config
  const now = o.now ?? Date.now
  const registers = o.registry === undefined ? [] : [o.registry]
  const copied = new Counter({
    name: 'bourse_analytics_rows_copied_total',
    help: 'Rows inserted into ClickHouse by the analytics syncer (re-copies of the overlap included)',
    labelNames: ['table'],
    registers,
  })
  const watermarkAge = new Gauge({
    name: 'bourse_analytics_watermark_age_seconds',
    help: 'How far behind now each table has been copied (the lag setting is the floor)',
    labelNames: ['table'],
    registers,
  })
  const archived = new Counter({
    name: 'bourse_analytics_orders_archived_total',
    help: 'Closed orders deleted from Postgres once verified in ClickHouse',
    registers,
  })
  const unverified = new Gauge({
    name: 'bourse_analytics_orders_unverified',
    help: 'Old closed orders the last archive pass left in Postgres because ClickHouse did not hold them as they are',
    registers,
  })
  const failures = new Counter({
    name: 'bourse_analytics_pass_failures_total',
    help: 'Failed analytics syncer passes',
    labelNames: ['stage'],
    registers,
  })
  const lastSuccess = new Gauge({
    name: 'bourse_analytics_last_success_timestamp_seconds',
    help: 'When the last copy pass succeeded',
    registers,
  })

  await migrateHistory(o.analytics)
  let healthy = true
  let lastArchive = Number.NEGATIVE_INFINITY
  let running: Promise<void> | undefined

  async function runPass(): Promise<void> {
    try {
      const results = await copyAll({
        db: o.db,
        analytics: o.analytics,
        lagMs: c.BOURSE_ANALYTICS_LAG,
        overlapMs: c.BOURSE_ANALYTICS_OVERLAP,
        batchSize: c.BOURSE_ANALYTICS_BATCH_SIZE,
        onBatch: (table, rows) => copied.inc({ table }, rows),
      })
      for (const r of results) {
        const at = Date.parse(`${r.watermark.replace(' ', 'T')}Z`)
        watermarkAge.set({ table: r.table }, Math.max(0, (now() - at) / 1000))
      }
      lastSuccess.set(now() / 1000)
      healthy = true
    } catch (err) {
      healthy = false
      failures.inc({ stage: 'copy' })
      o.log?.error({ err }, 'analytics copy failed')
      return
    }
    if (c.BOURSE_ANALYTICS_RETENTION > 0 && now() - lastArchive >= c.BOURSE_ANALYTICS_ARCHIVE_INTERVAL) {
      lastArchive = now()
      try {
        const r = await archiveOrders({
          db: o.db,
          analytics: o.analytics,
          retentionMs: c.BOURSE_ANALYTICS_RETENTION,
          chunkSize: c.BOURSE_ANALYTICS_ARCHIVE_CHUNK,
        })
        archived.inc(r.archived)
        unverified.set(r.unverified)
        if (r.archived > 0 || r.unverified > 0) o.log?.info(r, 'closed orders archived')
      } catch (err) {
        failures.inc({ stage: 'archive' })
        o.log?.error({ err }, 'order archive failed')
      }
    }
  }

  const pass = () => {
    running ??= runPass().finally(() => {
      running = undefined
    })
    return running
  }
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  const schedule = () => {
    if (stopped) return
    timer = setTimeout(() => void pass().then(schedule), c.BOURSE_ANALYTICS_COPY_INTERVAL)
  }
  void pass().then(schedule)
  o.log?.info({ tables: COPIED_TABLES }, 'analytics syncer started')
  return {
    pass,
    ready: () => healthy,
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running
    },
  }
}

export async function main(_args: string[]): Promise<void> {
  const config = fromEnv(AnalyticsEnv, { component: 'analytics syncer' })
  const log = createLogger('analytics')
  const registry = metricsRegistry()
  const database = await openDatabase({
    kind: 'postgres',
    url: config.BOURSE_DATABASE_URL,
    maxConnections: 2,
  })
  const analytics = openClickhouseFromEnv(config)
  let syncer: RunningAnalyticsSyncer | undefined
  const server = await startHttpServer({
    port: config.BOURSE_ANALYTICS_PORT,
    host: config.BOURSE_HTTP_HOST,
    registry,
    ready: () => syncer?.ready() ?? false,
  })
  syncer = await startAnalyticsSyncer({ db: database.db, analytics, config, registry, log })
  log.info({ url: server.url }, 'analytics syncer running')
  await untilStopped()
  await syncer.stop()
  await server.close()
  await analytics.close()
  await database.close()
}
