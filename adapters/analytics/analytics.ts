/**
 * The analytics adapter: one @clickhouse/client for history and analytics. In production it speaks HTTP to a
 * ClickHouse server; in the embedded mode and in tests the same client runs the same SQL in-process on chDB.
 */
import { type ClickHouseClient, type ClickHouseSettings, createClient } from '@clickhouse/client'
import { createChdbConnection } from 'chdb/connection'
import { z } from 'zod'
import { url } from '../../lib/config.ts'

export type AnalyticsConfig =
  | { kind: 'clickhouse'; url: string; username?: string; password?: string; database?: string }
  /** path: a folder for persistent chDB data; omitted, it lives in memory. One chDB path per process. */
  | { kind: 'chdb'; path?: string }

export type Analytics = ClickHouseClient

/** A ClickHouse server quotes 64-bit integers in JSON by default and chDB does not: both are told to, so
 * UInt64/Int64 always arrive as exact strings. */
const clickhouse_settings: ClickHouseSettings = { output_format_json_quote_64bit_integers: 1 }

type ChdbConnection = NonNullable<Parameters<typeof createClient>[0]>['connection']

export function openAnalytics(config: AnalyticsConfig): Analytics {
  if (config.kind === 'chdb') {
    // chdb types its connection against @clickhouse/client-common, which the client now bundles under its
    // own name: the shapes are the same, the declarations are not.
    const connection = createChdbConnection({ path: config.path ?? ':memory:' }) as unknown as ChdbConnection
    return createClient({ connection, clickhouse_settings })
  }
  return createClient({
    url: config.url,
    username: config.username ?? 'default',
    password: config.password ?? '',
    database: config.database ?? 'default',
    clickhouse_settings,
  })
}

/** The environment that names a ClickHouse server: every component reading ClickHouse shares it. */
export const clickhouseEnv = {
  BOURSE_CLICKHOUSE_URL: url({ protocols: ['http', 'https'] }),
  BOURSE_CLICKHOUSE_USERNAME: z.string().default('default'),
  BOURSE_CLICKHOUSE_PASSWORD: z.string().default(''),
  BOURSE_CLICKHOUSE_DATABASE: z.string().default('default'),
}

export function openClickhouseFromEnv(env: {
  BOURSE_CLICKHOUSE_URL: string
  BOURSE_CLICKHOUSE_USERNAME: string
  BOURSE_CLICKHOUSE_PASSWORD: string
  BOURSE_CLICKHOUSE_DATABASE: string
}): Analytics {
  return openAnalytics({
    kind: 'clickhouse',
    url: env.BOURSE_CLICKHOUSE_URL,
    username: env.BOURSE_CLICKHOUSE_USERNAME,
    password: env.BOURSE_CLICKHOUSE_PASSWORD,
    database: env.BOURSE_CLICKHOUSE_DATABASE,
  })
}
