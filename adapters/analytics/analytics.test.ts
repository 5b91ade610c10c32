/**
 * The analytics contract, run on chDB: no ClickHouse server can run on these machines (Debian ships only an
 * 18.x server, far older than what @clickhouse/client speaks to), so the HTTP side of the same client is
 * exercised in production only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type Analytics, openAnalytics } from './analytics.ts'

describe('analytics contract: chdb through @clickhouse/client', () => {
  let client: Analytics
  beforeAll(async () => {
    client = openAnalytics({ kind: 'chdb' })
    await client.command({ query: 'create database if not exists contract' })
  })
  afterAll(async () => client?.close())

  it('keeps Decimal values exact from insert to select', async () => {
    await client.command({
      query: `create table contract.prices (id UInt64, price Decimal(38, 18)) engine = MergeTree order by id`,
    })
    const price = '98765432109876543.000000000000000001'
    await client.insert({ table: 'contract.prices', values: [{ id: 1, price }], format: 'JSONEachRow' })
    const result = await client.query({
      query: 'select id, toString(price) as price from contract.prices',
      format: 'JSONEachRow',
    })
    expect(await result.json()).toEqual([{ id: '1', price }])
  })

  it('drops a redelivered insert that carries the same deduplication token', async () => {
    await client.command({
      query: `create table contract.trades (market String, id UInt64, qty Decimal(38, 18))
              engine = MergeTree order by (market, id) settings non_replicated_deduplication_window = 1000`,
    })
    const batch = [
      { market: 'BTCUSDT', id: 1, qty: '0.5' },
      { market: 'BTCUSDT', id: 2, qty: '1.25' },
    ]
    for (let delivery = 0; delivery < 2; delivery++) {
      await client.insert({
        table: 'contract.trades',
        values: batch,
        format: 'JSONEachRow',
        clickhouse_settings: { insert_deduplication_token: 'BTCUSDT:1-2' },
      })
    }
    const result = await client.query({
      query: 'select count() as n, toString(sum(qty)) as qty from contract.trades',
      format: 'JSONEachRow',
    })
    expect(await result.json()).toEqual([{ n: '2', qty: '1.75' }])
  })

  it('merges partial aggregates of an AggregatingMergeTree into one k-line', async () => {
    await client.command({
      query: `create table contract.klines (
                market String, bucket DateTime, open AggregateFunction(argMin, Decimal(38, 18), UInt64),
                close AggregateFunction(argMax, Decimal(38, 18), UInt64), high SimpleAggregateFunction(max, Decimal(38, 18)),
                volume SimpleAggregateFunction(sum, Decimal(38, 18)))
              engine = AggregatingMergeTree order by (market, bucket)`,
    })
    const insertTrades = (rows: string) =>
      client.command({
        query: `insert into contract.klines select market, toStartOfMinute(ts), argMinState(price, id),
                argMaxState(price, id), max(price), sum(qty)
                from values('market String, ts DateTime, id UInt64, price Decimal(38, 18), qty Decimal(38, 18)', ${rows})
                group by market, toStartOfMinute(ts)`,
      })
    await insertTrades(
      `('BTCUSDT', '2026-01-05 10:00:01', 1, 100, 1), ('BTCUSDT', '2026-01-05 10:00:30', 2, 105, 2)`,
    )
    await insertTrades(`('BTCUSDT', '2026-01-05 10:00:59', 3, 99, 0.5)`)
    const result = await client.query({
      query: `select toString(argMinMerge(open)) as open, toString(argMaxMerge(close)) as close,
                     toString(max(high)) as high, toString(sum(volume)) as volume
              from contract.klines group by market, bucket`,
      format: 'JSONEachRow',
    })
    expect(await result.json()).toEqual([{ open: '100', close: '99', high: '105', volume: '3.5' }])
  })
})
