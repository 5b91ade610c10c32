/**
 * The analytics syncer's ClickHouse tables: private copies of Postgres' orders, trades and ledger entries
 * (the handler's `trades` table is public market data and is not touched here).
 *
 * Each is a ReplacingMergeTree keyed by the Postgres primary key, so copying a row again (the overlap every
 * pass re-reads, a retried batch, a second syncer) leaves one row of it: reads use FINAL. `order_history` is
 * versioned by updated_at, so an order copied while open and again once closed keeps its latest state
 * whatever the order of the inserts. Money is Decimal(38, 18); times are DateTime64(6) like Postgres'.
 */
import type { Analytics } from '../../adapters/analytics/analytics.ts'

export const ORDER_HISTORY = 'order_history'
export const USER_TRADES = 'user_trades'
export const LEDGER_HISTORY = 'ledger_history'

const D = 'Decimal(38, 18)'
const T = "DateTime64(6, 'UTC')"

/** Creates the tables if they are missing; safe to run on every start. */
export async function migrateHistory(client: Analytics): Promise<void> {
  const statements = [
    `CREATE TABLE IF NOT EXISTS ${ORDER_HISTORY} (
      market LowCardinality(String),
      id UInt64,
      user_id UInt64,
      client_order_id String,
      side LowCardinality(String),
      type LowCardinality(String),
      time_in_force LowCardinality(String),
      self_trade_prevention LowCardinality(String),
      price Nullable(${D}),
      quantity Nullable(${D}),
      quote_quantity Nullable(${D}),
      executed_quantity ${D},
      cumulative_quote_quantity ${D},
      frozen_remaining ${D},
      status LowCardinality(String),
      created_at ${T},
      updated_at ${T}
    ) ENGINE = ReplacingMergeTree(updated_at)
    PARTITION BY toYYYYMM(created_at)
    ORDER BY (user_id, market, id)`,
    `CREATE TABLE IF NOT EXISTS ${USER_TRADES} (
      market LowCardinality(String),
      id UInt64,
      taker_order_id UInt64,
      maker_order_id UInt64,
      buyer_user_id UInt64,
      seller_user_id UInt64,
      buyer_is_maker Bool,
      price ${D},
      quantity ${D},
      quote_quantity ${D},
      buyer_fee ${D},
      seller_fee ${D},
      created_at ${T},
      INDEX buyer buyer_user_id TYPE bloom_filter GRANULARITY 4,
      INDEX seller seller_user_id TYPE bloom_filter GRANULARITY 4
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(created_at)
    ORDER BY (market, id)`,
    `CREATE TABLE IF NOT EXISTS ${LEDGER_HISTORY} (
      id UInt64,
      journal_id UInt64,
      account_id UInt64,
      user_id UInt64,
      system String,
      asset LowCardinality(String),
      bucket LowCardinality(String),
      amount ${D},
      reason LowCardinality(String),
      ref_type LowCardinality(String),
      ref_id String,
      created_at ${T}
    ) ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(created_at)
    ORDER BY (user_id, account_id, id)`,
  ]
  for (const query of statements) await client.command({ query })
}
