/**
 * The double-entry ledger. A booking is a set of movements that sums to zero per asset; it is applied
 * atomically, once per idempotency key, with the accounts it touches locked in ascending id order so that
 * two bookings sharing accounts (two markets sharing a user's quote asset) can never deadlock.
 *
 * Amounts are exact decimal strings; Postgres adds them as NUMERIC, and the sums checked here are bigint. The
 * booking itself is the database's `ledger_book` (migrations/0012_one_call_bookings.sql): one call, one round
 * trip, whoever books.
 */
import { type SQL, sql } from 'drizzle-orm'
import { databaseError, type Executor, pgArray, queryRows } from '../adapters/db/database.ts'
import type { entryReasons, SystemAccount } from '../adapters/db/schema.ts'
import { BourseError } from '../lib/errors.ts'
import { formatDecimal, MAX_SCALE, parseDecimal } from '../lib/money.ts'

export type { SystemAccount }

export type Owner = { readonly userId: bigint } | { readonly system: SystemAccount }
export type Bucket = 'available' | 'frozen'
export type EntryReason = (typeof entryReasons)[number]
export type RefType = 'order' | 'trade' | 'deposit' | 'withdrawal' | 'admin' | 'chain_tx'
export type JournalKind =
  | 'deposit'
  | 'engine_batch'
  | 'withdrawal'
  | 'adjustment'
  | 'market_release'
  | 'network_fee'

export interface Movement {
  readonly owner: Owner
  readonly asset: string
  readonly bucket: Bucket
  /** Signed decimal: positive adds to the bucket, negative takes from it. */
  readonly amount: string
  readonly reason: EntryReason
  readonly refType: RefType
  readonly refId: string
}

export interface Booking {
  readonly key: string
  readonly kind: JournalKind
  readonly memo?: string
  readonly movements: readonly Movement[]
}

export interface BookingResult {
  readonly journalId: bigint
  /** True when the key had been booked before: nothing was changed this time. */
  readonly duplicate: boolean
  /** The users' balances the booking changed, as they are after it (empty for a duplicate). */
  readonly userBalances: readonly UserBalance[]
}

export interface UserBalance extends Balance {
  readonly userId: bigint
}

export interface Balance {
  readonly asset: string
  readonly available: string
  readonly frozen: string
}

/**
 * Books the movements inside the caller's transaction, in one call of the database's `ledger_book`. Throws
 * `insufficient_funds` (and changes nothing, provided the caller lets the transaction roll back) when a user's
 * balance would go negative.
 */
export async function book(tx: Executor, booking: Booking): Promise<BookingResult> {
  if (booking.movements.length === 0) throw new BourseError('invalid_input', 'a booking needs movements')
  const [row] = await queryRows<{ booked: BookedJson }>(
    tx,
    sql`select ledger_book(${booking.key}, ${booking.kind}, ${booking.memo ?? null},
                           ${bookingColumns(booking.movements)}) as booked`,
  ).catch(rethrowLedgerError)
  const booked = row!.booked
  return {
    journalId: BigInt(booked.journalId),
    duplicate: booked.duplicate,
    userBalances: booked.balances.map(userBalance),
  }
}

/** What `ledger_book` answers; ids as text. */
interface BookedJson {
  journalId: string
  duplicate: boolean
  balances: BalanceJson[]
}

/** A user's balance as the database's ledger functions answer it. */
export interface BalanceJson {
  userId: string
  asset: string
  available: string
  frozen: string
}

export const userBalance = (b: BalanceJson): UserBalance => ({ ...b, userId: BigInt(b.userId) })

/**
 * The movements as `ledger_book` takes them, once they are checked: every amount exact, and summing to zero per
 * asset (double entry; the database checks it again). Typed arrays, one per column: the accounts, each once,
 * then the movements, each naming its account by its place among them.
 */
export function bookingColumns(movements: readonly Movement[]): SQL {
  checkBalanced(movements)
  const places = new Map<string, number>()
  const accounts: { userId: string | null; system: string | null; asset: string }[] = []
  const placeOf = ({ owner, asset }: Movement) => {
    const key = 'userId' in owner ? `u:${owner.userId}:${asset}` : `s:${owner.system}:${asset}`
    let place = places.get(key)
    if (place === undefined) {
      accounts.push({
        userId: 'userId' in owner ? String(owner.userId) : null,
        system: 'system' in owner ? owner.system : null,
        asset,
      })
      place = accounts.length
      places.set(key, place)
    }
    return String(place)
  }
  const column = (pick: (m: Movement) => string) => pgArray(movements.map(pick))
  const movementPlaces = column(placeOf)
  return sql`${pgArray(accounts.map((a) => a.userId))}::int8[], ${pgArray(accounts.map((a) => a.system))}::text[],
    ${pgArray(accounts.map((a) => a.asset))}::text[], ${movementPlaces}::int4[], ${column((m) => m.bucket)}::text[],
    ${column((m) => m.amount)}::numeric[], ${column((m) => m.reason)}::text[], ${column((m) => m.refType)}::text[],
    ${column((m) => m.refId)}::text[]`
}

/** A database error as the ledger's caller should see it: an overdraft `ledger_book` refused is `insufficient_funds`. */
export function rethrowLedgerError(err: unknown): never {
  const refusal = databaseError(err, 'BRNSF')
  if (refusal !== undefined)
    throw new BourseError('insufficient_funds', refusal.message, { field: 'amount', cause: err })
  throw err
}

function checkBalanced(movements: readonly Movement[]): void {
  const totals = new Map<string, bigint>()
  for (const m of movements) {
    const units = parseDecimal(m.amount, MAX_SCALE, { field: 'amount', allowNegative: true })
    totals.set(m.asset, (totals.get(m.asset) ?? 0n) + units)
  }
  for (const [asset, total] of totals) {
    if (total !== 0n) {
      throw new BourseError(
        'internal',
        `booking does not balance in ${asset}: off by ${formatDecimal(total, MAX_SCALE, { trimZeros: true })}`,
      )
    }
  }
}

/** A user's balances, one row per asset they hold an account in. */
export async function balancesOf(db: Executor, userId: bigint): Promise<Balance[]> {
  return queryRows<{ asset: string; available: string; frozen: string }>(
    db,
    sql`select asset, trim_scale(available)::text as available, trim_scale(frozen)::text as frozen
        from accounts where user_id = ${userId} order by asset`,
  )
}
