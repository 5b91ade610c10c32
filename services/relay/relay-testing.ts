/**
 * What the relay suites share: outbox rows written the way the engine writes them (straight SQL, seqs
 * 1, 2, 3, … per market, topics in runs), and a subscriber that records what the bus delivers.
 */
import { sql } from 'drizzle-orm'
import { expect } from 'vitest'
import type { Bus, Subscription } from '../../adapters/bus/index.ts'
import type { Database } from '../../adapters/db/database.ts'
import { queryRows } from '../../adapters/db/database.ts'

export const eventTopics = ['trades', 'orders', 'balances', 'market'] as const

/** Inserts events `from`..`to` of a market; the topic changes every 3 seqs, so batches hold several topic runs. */
export async function insertEvents(db: Database, market: string, from: number, to: number): Promise<void> {
  await db.execute(sql`insert into outbox (market, seq, topic, payload)
    select ${market}, g, (array['trades', 'orders', 'balances', 'market'])[(g / 3) % 4 + 1],
           jsonb_build_object('n', g, 'market', 'overwritten')
    from generate_series(${from}::int8, ${to}::int8) g`)
}

export async function unsentCount(db: Database, market?: string): Promise<number> {
  const filter = market === undefined ? sql`` : sql` and market = ${market}`
  const [row] = await queryRows<{ n: bigint }>(
    db,
    sql`select count(*)::int8 as n from outbox where sent_at is null${filter}`,
  )
  return Number(row!.n)
}

export interface Received {
  market: string
  seq: number
  topic: string
}

/** Every message of the four topics (under `prefix`) on `channel`, in the order the handlers ran. */
export async function recordAll(
  bus: Bus,
  prefix: string,
  channel: string,
): Promise<{ received: Received[]; subscriptions: Subscription[] }> {
  const received: Received[] = []
  const subscriptions: Subscription[] = []
  for (const topic of eventTopics) {
    subscriptions.push(
      await bus.subscribe(
        prefix + topic,
        channel,
        async (message) => {
          const body = message.json<{ market: string; seq: string; topic: string; n: number }>()
          // The payload comes through with market, seq (a decimal string) and topic put in.
          expect(body.topic).toBe(topic)
          expect(body.seq).toBe(String(body.n))
          received.push({ market: body.market, seq: Number(body.seq), topic: body.topic })
        },
        { maxInFlight: 100, requeueDelayMs: 0 },
      ),
    )
  }
  return { received, subscriptions }
}

/** The market's seqs with duplicates dropped, sorted. */
export function distinctSeqs(received: readonly Received[], market: string): number[] {
  return [...new Set(received.filter((r) => r.market === market).map((r) => r.seq))].sort((a, b) => a - b)
}

export function oneTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1)
}

/**
 * Within each (market, topic) — what one NSQ topic can promise — the first deliveries come in seq order, and
 * each event carries the topic its seq was written with.
 */
export function expectSeqOrderPerTopic(received: readonly Received[]): void {
  const seen = new Set<string>()
  const lastSeq = new Map<string, number>()
  for (const { market, seq, topic } of received) {
    expect(topic).toBe(eventTopics[Math.floor(seq / 3) % 4])
    if (seen.has(`${market}/${seq}`)) continue
    seen.add(`${market}/${seq}`)
    const key = `${market}/${topic}`
    expect(seq, `${key} out of order`).toBeGreaterThan(lastSeq.get(key) ?? 0)
    lastSeq.set(key, seq)
  }
}
