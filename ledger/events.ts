/**
 * The ledger's own event stream, for the balance changes no engine batch makes — deposits, withdrawals,
 * administrators' adjustments, funds released when a market is deleted. They go into the outbox under the
 * stream `ledger`, numbered by its outbox_streams row, in the booking's transaction, and the relay publishes
 * them like a market's. The user data streams turn `balance_updates` into Binance's balanceUpdate (a signed
 * change of the available balance) and `balances` (the balances after, as engines publish them) into
 * outboundAccountPosition.
 */
import { sql } from 'drizzle-orm'
import { type Executor, queryRows } from '../adapters/db/database.ts'
import { insertOutbox, type OutboxEvent } from '../adapters/db/outbox.ts'
import type { BookingResult, EntryReason, Movement, UserBalance } from './ledger.ts'

export const LEDGER_STREAM = 'ledger'

/** The changes of a user's available balance that Binance reports as balanceUpdate. */
const ANNOUNCED: ReadonlySet<EntryReason> = new Set([
  'deposit',
  'withdrawal_start',
  'withdrawal_fail',
  'adjustment',
])

export interface BalanceUpdateEvent {
  topic: 'balance_updates'
  market: string
  seq: string
  userId: string
  asset: string
  /** Signed decimal: positive credits the available balance. */
  delta: string
  reason: EntryReason
  time: number
}

/**
 * The `balances` events of users' balances after a booking, as the ledger stream publishes them. Engines publish
 * the same events, built in SQL by `engine_commit` (migrations/0012_one_call_bookings.sql) from the balances
 * `ledger_book` answers, inside the batch's one call: keep the two alike.
 */
export function balanceEvents(
  balances: readonly UserBalance[],
  time: number,
): (OutboxEvent & { topic: 'balances' })[] {
  return balances.map((b) => ({
    topic: 'balances' as const,
    payload: { userId: String(b.userId), asset: b.asset, available: b.available, frozen: b.frozen, time },
  }))
}

/** Writes a booking's events to the ledger stream; a duplicate booking changed nothing and writes none. */
export async function announceBooking(
  tx: Executor,
  movements: readonly Movement[],
  result: BookingResult,
  time = Date.now(),
): Promise<void> {
  if (result.duplicate) return
  const updates: OutboxEvent[] = movements.flatMap((m) =>
    'userId' in m.owner && m.bucket === 'available' && ANNOUNCED.has(m.reason)
      ? [
          {
            topic: 'balance_updates',
            payload: {
              userId: String(m.owner.userId),
              asset: m.asset,
              delta: m.amount,
              reason: m.reason,
              time,
            },
          },
        ]
      : [],
  )
  const events = [...updates, ...balanceEvents(result.userBalances, time)]
  if (events.length === 0) return
  const count = BigInt(events.length)
  const [stream] = await queryRows<{ last_seq: bigint }>(
    tx,
    sql`insert into outbox_streams (stream, last_seq) values (${LEDGER_STREAM}, ${count})
        on conflict (stream) do update set last_seq = outbox_streams.last_seq + ${count} returning last_seq`,
  )
  await insertOutbox(tx, LEDGER_STREAM, BigInt(stream!.last_seq) - count + 1n, events)
}
