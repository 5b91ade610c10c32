/** The analytics syncer as `bourse syncer --analytics` runs it: config, passes on a timer, /metrics and /readyz. */
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Analytics, openAnalytics } from '../../adapters/analytics/analytics.ts'
import { queryRows } from '../../adapters/db/database.ts'
import { ConfigError, loadConfig } from '../../lib/config.ts'
import { createRegistry, type HttpServer, startHttpServer } from '../../lib/metrics.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { AnalyticsEnv, type RunningAnalyticsSyncer, startAnalyticsSyncer } from './main.ts'
import { ORDER_HISTORY } from './tables.ts'

let fx: MarketFixture
let ch: Analytics

beforeAll(async () => {
  fx = await marketFixture('pglite')
  ch = openAnalytics({ kind: 'chdb' })
})

afterAll(async () => {
  await ch?.close()
  await fx?.close()
})

describe('analytics syncer main', () => {
  it('reads its configuration from the environment, with defaults, and names what is wrong', () => {
    const config = loadConfig(AnalyticsEnv, {
      BOURSE_DATABASE_URL: 'postgres://bourse@db/bourse',
      BOURSE_CLICKHOUSE_URL: 'http://clickhouse:8123',
      BOURSE_ANALYTICS_RETENTION: '7d',
    })
    expect(config).toMatchObject({
      BOURSE_CLICKHOUSE_USERNAME: 'default',
      BOURSE_ANALYTICS_RETENTION: 7 * 86_400_000,
      BOURSE_ANALYTICS_COPY_INTERVAL: 10_000,
      BOURSE_ANALYTICS_LAG: 5000,
      BOURSE_ANALYTICS_OVERLAP: 60_000,
    })
    expect(() => loadConfig(AnalyticsEnv, { BOURSE_DATABASE_URL: 'postgres://x/y' })).toThrow(ConfigError)
  })

  it('copies and archives on its timer and reports it on /metrics and /readyz', async () => {
    const db = fx.database.db
    const carol = await fx.trader('carol', { USDT: '10' })
    await db.execute(
      sql`insert into orders (market, id, user_id, client_order_id, side, type, time_in_force, self_trade_prevention,
            price, quantity, status, created_at, updated_at)
          values ('BTCUSDT', 1, ${carol}, 'a', 'BUY', 'LIMIT', 'GTC', 'NONE', '1', '1', 'CANCELED',
                  now() - interval '3 days', now() - interval '2 days'),
                 ('BTCUSDT', 2, ${carol}, 'b', 'BUY', 'LIMIT', 'GTC', 'NONE', '1', '1', 'NEW', now(), now())`,
    )
    const registry = createRegistry({ defaultMetrics: false })
    let syncer: RunningAnalyticsSyncer | undefined
    const server: HttpServer = await startHttpServer({
      port: 0,
      registry,
      ready: () => syncer?.ready() ?? false,
    })
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(503)
      syncer = await startAnalyticsSyncer({
        db,
        analytics: ch,
        registry,
        config: {
          BOURSE_ANALYTICS_COPY_INTERVAL: 50,
          BOURSE_ANALYTICS_ARCHIVE_INTERVAL: 0,
          BOURSE_ANALYTICS_RETENTION: 86_400_000,
          BOURSE_ANALYTICS_LAG: 0,
          BOURSE_ANALYTICS_OVERLAP: 60_000,
          BOURSE_ANALYTICS_BATCH_SIZE: 100,
          BOURSE_ANALYTICS_ARCHIVE_CHUNK: 100,
        },
      })
      // The first pass copied both orders; then the old closed one left Postgres.
      await expect
        .poll(
          async () => (await queryRows<{ id: bigint }>(db, sql`select id from orders`)).map((r) => r.id),
          {
            timeout: 10_000,
          },
        )
        .toEqual([2n])
      await syncer.pass()
      const inCh = await (
        await ch.query({ query: `SELECT id FROM ${ORDER_HISTORY} FINAL ORDER BY id`, format: 'JSONEachRow' })
      ).json()
      expect(inCh).toEqual([{ id: '1' }, { id: '2' }])
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200)
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
      const metrics = await (await fetch(`${server.url}/metrics`)).text()
      expect(metrics).toContain('bourse_analytics_orders_archived_total 1')
      expect(metrics).toMatch(/bourse_analytics_rows_copied_total\{table="orders"\} [1-9]/)
      expect(metrics).toMatch(/bourse_analytics_rows_copied_total\{table="ledger_entries"\} [1-9]/)
      expect(metrics).toContain('bourse_analytics_orders_unverified 0')
      expect(metrics).toMatch(/bourse_analytics_watermark_age_seconds\{table="trades"\} /)
    } finally {
      await syncer?.stop()
      await server.close()
    }
  })
})
