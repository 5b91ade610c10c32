/**
 * Writing the transactional outbox: events committed in the same transaction as the change they announce,
 * numbered `firstSeq`, `firstSeq + 1`, … within their stream (a market's symbol, or another stream such as
 * the ledger's); the relay (services/relay) publishes them in that order.
 */
import { sql } from 'drizzle-orm'
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
  // The events as one JSON document: Postgres parses it once. As a jsonb[] array literal every payload was
  // escaped into the literal and parsed out of it again, and the statement's bind cost more than its insert.
  await tx.execute(sql`select outbox_append(${stream}, ${firstSeq}::int8, ${JSON.stringify(events)}::jsonb)`)
}
