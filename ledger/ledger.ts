/**
 * The double-entry ledger. A booking is a set of movements that sums to zero per asset; it is applied
 * atomically, once per idempotency key, with the accounts it touches locked in ascending id order so that
 * two bookings sharing accounts (two markets sharing a user's quote asset) can never deadlock.
 *
 * Amounts are exact decimal strings; Postgres adds them as NUMERIC, and the sums checked here are bigint.
 */
import { sql } from 'drizzle-orm'
import { type Executor, queryRows } from '../adapters/db/database.ts'
import { CONTRA_ACCOUNTS, type entryReasons, type SystemAccount } from '../adapters/db/schema.ts'
import { BourseError } from '../lib/errors.ts'
import { formatDecimal, MAX_SCALE, parseDecimal } from '../lib/money.ts'

export type { SystemAccount }

const contraAccounts: ReadonlySet<string | null> = new Set(CONTRA_ACCOUNTS)
const mayGoNegative = (system: SystemAccount | null) => contraAccounts.has(system)
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

const ownerKey = (owner: Owner, asset: string) =>
  'userId' in owner ? `u:${owner.userId}:${asset}` : `s:${owner.system}:${asset}`

/**
 * Books the movements inside the caller's transaction. Throws `insufficient_funds` (and changes nothing,
 * provided the caller lets the transaction roll back) when a user or non-custody account would go negative.
 */
export async function book(tx: Executor, booking: Booking): Promise<BookingResult> {
  const started = await startBooking(tx, booking)
  return { ...started, journalId: await started.journalId }
}

export interface StartedBooking extends Omit<BookingResult, 'journalId'> {
  /** Settles when the journal, its entries and the balances are written. */
  readonly journalId: Promise<bigint>
}

/**
 * `book` in two round trips: the accounts created, locked and read and the key looked up together, then the
 * writes. It returns once the balances are checked, with the writes sent but not yet answered, so a caller's
 * own writes go out in the same round trip: under load every round trip also waits its turn on the caller's
 * event loop.
 *
 * `precondition`: the caller's own check, sent before the booking (the engine's fence). The writes go out only
 * once it has passed: had they followed a failed check, they could reach the connection after the caller's
 * rollback, outside any transaction.
 */
export async function startBooking(
  tx: Executor,
  booking: Booking,
  precondition?: Promise<unknown>,
): Promise<StartedBooking> {
  const amounts = checkBalanced(booking.movements)
  const accounts = wantedAccounts(booking.movements)
  const [, locked, existing] = await Promise.all([
    createAccounts(tx, accounts),
    lockAccounts(tx, accounts),
    queryRows<{ id: bigint }>(tx, sql`select id from journals where idempotency_key = ${booking.key}`),
    precondition,
  ])
  if (existing[0]) return { journalId: Promise.resolve(existing[0].id), duplicate: true, userBalances: [] }
  const accountIds = new Map([...locked.values()].map((a) => [ownerKey(ownerOf(a), a.asset), a.id]))
  const deltas = sumDeltas(booking.movements, amounts, accountIds)
  const after = balancesAfter(deltas, locked)
  const journalId = Promise.all([insertJournal(tx, booking, accountIds), applyDeltas(tx, deltas)]).then(
    ([id]) => id,
  )
  // The caller awaits it after sending its own writes; should one of those fail first, the transaction rolls
  // back and this failure must not surface as an unhandled rejection.
  journalId.catch(() => {})
  return { journalId, duplicate: false, userBalances: after }
}

/** Every amount parsed exactly, and the movements sum to zero per asset: double entry. */
function checkBalanced(movements: readonly Movement[]): bigint[] {
  if (movements.length === 0) throw new BourseError('invalid_input', 'a booking needs movements')
  const totals = new Map<string, bigint>()
  const amounts = movements.map((m) => {
    const units = parseDecimal(m.amount, MAX_SCALE, { field: 'amount', allowNegative: true })
    totals.set(m.asset, (totals.get(m.asset) ?? 0n) + units)
    return units
  })
  for (const [asset, total] of totals) {
    if (total !== 0n) {
      throw new BourseError(
        'internal',
        `booking does not balance in ${asset}: off by ${formatDecimal(total, MAX_SCALE, { trimZeros: true })}`,
      )
    }
  }
  return amounts
}

interface Wanted {
  userId: bigint | null
  system: string | null
  asset: string
}

/** Every owner and asset the movements touch, once each. */
function wantedAccounts(movements: readonly Movement[]): Wanted[] {
  const wanted = new Map<string, Wanted>()
  for (const m of movements) {
    const userId = 'userId' in m.owner ? m.owner.userId : null
    const system = 'system' in m.owner ? m.owner.system : null
    wanted.set(ownerKey(m.owner, m.asset), { userId, system, asset: m.asset })
  }
  return [...wanted.values()]
}

/** Creates the accounts that do not exist yet. */
async function createAccounts(tx: Executor, rows: readonly Wanted[]): Promise<void> {
  await tx.execute(
    sql`insert into accounts (user_id, system, asset)
        select * from unnest(${pgArray(rows.map((r) => (r.userId === null ? null : String(r.userId))))}::int8[],
          ${pgArray(rows.map((r) => r.system))}::text[], ${pgArray(rows.map((r) => r.asset))}::text[])
        on conflict do nothing`,
  )
}

interface LockedAccount {
  id: bigint
  user_id: bigint | null
  system: SystemAccount | null
  asset: string
  available: string
  frozen: string
}

const ownerOf = (a: LockedAccount): Owner =>
  a.user_id === null ? { system: a.system! } : { userId: a.user_id }

/**
 * Locks the accounts in ascending id order — the one order every booking uses — and reads their
 * balances. Users' and system accounts are found apart, each joined on plain equalities its unique index
 * serves: a join on `is not distinct from` scans every account.
 */
async function lockAccounts(tx: Executor, rows: readonly Wanted[]): Promise<Map<bigint, LockedAccount>> {
  const users = rows.filter((r) => r.userId !== null)
  const system = rows.filter((r) => r.system !== null)
  const locked = await queryRows<LockedAccount>(
    tx,
    sql`select id, user_id, system, asset, available::text, frozen::text from accounts
        where id = any(array(
          select a.id from accounts a
            join unnest(${pgArray(users.map((r) => String(r.userId)))}::int8[], ${pgArray(users.map((r) => r.asset))}::text[])
              as w(user_id, asset) on a.user_id = w.user_id and a.asset = w.asset
          union all
          select a.id from accounts a
            join unnest(${pgArray(system.map((r) => r.system))}::text[], ${pgArray(system.map((r) => r.asset))}::text[])
              as w(system, asset) on a.system = w.system and a.asset = w.asset))
        order by id for update`,
  )
  return new Map(locked.map((r) => [r.id, r]))
}

interface Delta {
  available: bigint
  frozen: bigint
}

function sumDeltas(
  movements: readonly Movement[],
  amounts: bigint[],
  ids: Map<string, bigint>,
): Map<bigint, Delta> {
  const deltas = new Map<bigint, Delta>()
  movements.forEach((m, i) => {
    const id = ids.get(ownerKey(m.owner, m.asset))!
    const delta = deltas.get(id) ?? { available: 0n, frozen: 0n }
    delta[m.bucket] += amounts[i]!
    deltas.set(id, delta)
  })
  return deltas
}

/** The touched users' balances after the deltas; refuses the booking if an account owed to someone would go negative. */
function balancesAfter(deltas: Map<bigint, Delta>, balances: Map<bigint, LockedAccount>): UserBalance[] {
  const users: UserBalance[] = []
  for (const [id, delta] of deltas) {
    const account = balances.get(id)!
    const after = (bucket: Bucket) =>
      parseDecimal(account[bucket], MAX_SCALE, { allowNegative: true, allowZero: true }) + delta[bucket]
    const available = after('available')
    const frozen = after('frozen')
    if (!mayGoNegative(account.system)) {
      for (const [bucket, value] of [
        ['available', available],
        ['frozen', frozen],
      ] as const) {
        if (value < 0n) {
          throw new BourseError('insufficient_funds', `insufficient ${bucket} ${account.asset} balance`, {
            field: 'amount',
          })
        }
      }
    }
    if (account.user_id !== null) {
      users.push({
        userId: account.user_id,
        asset: account.asset,
        available: trimmed(available),
        frozen: trimmed(frozen),
      })
    }
  }
  return users
}

const trimmed = (units: bigint) => formatDecimal(units, MAX_SCALE, { trimZeros: true })

/** The journal and its entries in one statement (the balance trigger checks the entries at its end). */
async function insertJournal(tx: Executor, booking: Booking, ids: Map<string, bigint>): Promise<bigint> {
  const column = (pick: (m: Movement) => string) => pgArray(booking.movements.map(pick))
  const [journal] = await queryRows<{ id: bigint }>(
    tx,
    sql`with journal as (
          insert into journals (idempotency_key, kind, memo) values (${booking.key}, ${booking.kind}, ${booking.memo ?? null})
          returning id),
        entries as (
          insert into ledger_entries (journal_id, account_id, asset, bucket, amount, reason, ref_type, ref_id)
          select journal.id, e.* from journal, unnest(
            ${column((m) => String(ids.get(ownerKey(m.owner, m.asset))))}::int8[], ${column((m) => m.asset)}::text[],
            ${column((m) => m.bucket)}::text[], ${column((m) => m.amount)}::numeric[], ${column((m) => m.reason)}::text[],
            ${column((m) => m.refType)}::text[], ${column((m) => m.refId)}::text[]) as e)
        select id from journal`,
  )
  return journal!.id
}

async function applyDeltas(tx: Executor, deltas: Map<bigint, Delta>): Promise<void> {
  const ids: string[] = []
  const available: string[] = []
  const frozen: string[] = []
  for (const [id, delta] of deltas) {
    ids.push(String(id))
    available.push(trimmed(delta.available))
    frozen.push(trimmed(delta.frozen))
  }
  await tx.execute(
    sql`update accounts a set available = a.available + d.available, frozen = a.frozen + d.frozen
        from unnest(${pgArray(ids)}::int8[], ${pgArray(available)}::numeric[], ${pgArray(frozen)}::numeric[])
          as d(id, available, frozen)
        where a.id = d.id`,
  )
}

/**
 * A Postgres array literal for one bound parameter: both drivers pass it as text and the cast in the query
 * types it, so a whole batch travels in a few parameters whatever its size.
 */
export function pgArray(values: readonly (string | null)[]): string {
  let literal = '{'
  for (let i = 0; i < values.length; i++) {
    const v = values[i] ?? null
    if (i > 0) literal += ','
    literal +=
      v === null
        ? 'NULL'
        : `"${NEEDS_ESCAPE.test(v) ? v.replaceAll('\\', '\\\\').replaceAll('"', '\\"') : v}"`
  }
  return `${literal}}`
}

// Amounts and ids, nearly all a batch carries, need none: testing first halves the cost of a batch's arrays.
const NEEDS_ESCAPE = /["\\]/

/** A user's balances, one row per asset they hold an account in. */
export async function balancesOf(db: Executor, userId: bigint): Promise<Balance[]> {
  return queryRows<{ asset: string; available: string; frozen: string }>(
    db,
    sql`select asset, trim_scale(available)::text as available, trim_scale(frozen)::text as frozen
        from accounts where user_id = ${userId} order by asset`,
  )
}
