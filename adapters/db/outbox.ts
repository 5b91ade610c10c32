/**
 * Writing the transactional outbox: events committed in the same transaction as the change they announce,
 * numbered `firstSeq`, `firstSeq + 1`, … within their stream (a market's symbol, or another stream such as
 * the ledger's); the relay (services/relay) publishes them in that order.
 */
import { sql } from 'drizzle-orm'
import { pgArray } from '../../ledger/ledger.ts'
import type { Executor } from './database.ts'

export interface OutboxEvent {
  topic: string
  payload: unknown
}

export async function insertOutbox(
  tx: Executor,
  stream: string,
  firstSeq: bigint,
  events: readonly OutboxEvent[],
): Promise<void> {
  if (events.length === 0) return
  await tx.execute(
    sql`insert into outbox (market, seq, topic, payload)
        select ${stream}, ${firstSeq}::int8 + ordinality - 1, topic, payload
        from unnest(${pgArray(events.map((e) => e.topic))}::text[], ${pgArray(events.map((e) => JSON.stringify(e.payload)))}::jsonb[])
          with ordinality as e(topic, payload, ordinality)`,
  )
}
