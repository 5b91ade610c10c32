/**
 * The ledger's operations, each one booking with its idempotency key. The movement builders are pure so
 * that an engine batch can gather many orders' freezes and trades into one booking.
 */
import type { Database } from '../adapters/db/database.ts'
import { announceBooking } from './events.ts'
import { type Booking, type BookingResult, book, type Movement, type Owner, type RefType } from './ledger.ts'

const custody: Owner = { system: 'custody' }
const pendingWithdrawals: Owner = { system: 'withdrawals_pending' }
const networkFees: Owner = { system: 'network_fees' }

/** `amount` moved from one owner's bucket to another's: the two entries of one double-entry pair. */
function transfer(
  from: [Owner, Movement['bucket']],
  to: [Owner, Movement['bucket']],
  asset: string,
  amount: string,
  reason: Movement['reason'],
  refType: RefType,
  refId: string,
): Movement[] {
  return [
    { owner: from[0], bucket: from[1], asset, amount: negate(amount), reason, refType, refId },
    { owner: to[0], bucket: to[1], asset, amount, reason, refType, refId },
  ]
}

function negate(amount: string): string {
  return amount.startsWith('-') ? amount.slice(1) : `-${amount}`
}

export interface UserAmount {
  readonly userId: bigint
  readonly asset: string
  /** A positive decimal string, already validated against the asset's scale. */
  readonly amount: string
}

export function freezeMovements(a: UserAmount, refType: RefType, refId: string): Movement[] {
  const user: Owner = { userId: a.userId }
  return transfer([user, 'available'], [user, 'frozen'], a.asset, a.amount, 'freeze', refType, refId)
}

export function unfreezeMovements(a: UserAmount, refType: RefType, refId: string): Movement[] {
  const user: Owner = { userId: a.userId }
  return transfer([user, 'frozen'], [user, 'available'], a.asset, a.amount, 'unfreeze', refType, refId)
}

export interface TradeSettlement {
  readonly tradeRef: string
  readonly market: string
  readonly base: string
  readonly quote: string
  readonly buyerUserId: bigint
  readonly sellerUserId: bigint
  /** Base quantity and quote amount exchanged, positive decimals. */
  readonly quantity: string
  readonly quoteQuantity: string
  /** Fees as Binance charges them: in the asset each side receives (buyer in base, seller in quote). */
  readonly buyerFee: string
  readonly sellerFee: string
}

/**
 * A trade settles from the frozen funds of both orders: the buyer's frozen quote pays the seller, the
 * seller's frozen base pays the buyer, and each side's fee goes to the market's fee account.
 */
export function tradeMovements(t: TradeSettlement): Movement[] {
  const buyer: Owner = { userId: t.buyerUserId }
  const seller: Owner = { userId: t.sellerUserId }
  const fees: Owner = { system: `fees:${t.market}` }
  const ref = ['trade', t.tradeRef] as const
  const movements = [
    ...transfer([buyer, 'frozen'], [seller, 'available'], t.quote, t.quoteQuantity, 'trade', ...ref),
    ...transfer([seller, 'frozen'], [buyer, 'available'], t.base, t.quantity, 'trade', ...ref),
  ]
  if (!isZero(t.buyerFee))
    movements.push(...transfer([buyer, 'available'], [fees, 'available'], t.base, t.buyerFee, 'fee', ...ref))
  if (!isZero(t.sellerFee))
    movements.push(
      ...transfer([seller, 'available'], [fees, 'available'], t.quote, t.sellerFee, 'fee', ...ref),
    )
  return movements
}

function isZero(amount: string): boolean {
  return /^0*(\.0*)?$/.test(amount)
}

/** Books in a transaction of its own (a savepoint inside the caller's) and announces it on the ledger stream. */
const inTransaction = (db: Database, booking: Booking): Promise<BookingResult> =>
  db.transaction(async (tx) => {
    const result = await book(tx, booking)
    await announceBooking(tx, booking.movements, result)
    return result
  })

/** Credits a confirmed deposit; the key is the chain's (tx hash + log position), so a re-scan books nothing. */
export function creditDeposit(db: Database, a: UserAmount & { depositRef: string }): Promise<BookingResult> {
  return inTransaction(db, {
    key: `deposit:${a.depositRef}`,
    kind: 'deposit',
    movements: transfer(
      [custody, 'available'],
      [{ userId: a.userId }, 'available'],
      a.asset,
      a.amount,
      'deposit',
      'deposit',
      a.depositRef,
    ),
  })
}

export function freeze(db: Database, a: UserAmount & { key: string; refType: RefType; refId: string }) {
  return inTransaction(db, {
    key: a.key,
    kind: 'engine_batch',
    movements: freezeMovements(a, a.refType, a.refId),
  })
}

export function unfreeze(db: Database, a: UserAmount & { key: string; refType: RefType; refId: string }) {
  return inTransaction(db, {
    key: a.key,
    kind: 'market_release',
    movements: unfreezeMovements(a, a.refType, a.refId),
  })
}

/** Takes a withdrawal's amount out of the user's available balance into pending withdrawals. */
export function startWithdrawal(
  db: Database,
  a: UserAmount & { withdrawalId: string },
): Promise<BookingResult> {
  return inTransaction(db, {
    key: `withdrawal:${a.withdrawalId}:start`,
    kind: 'withdrawal',
    movements: transfer(
      [{ userId: a.userId }, 'available'],
      [pendingWithdrawals, 'available'],
      a.asset,
      a.amount,
      'withdrawal_start',
      'withdrawal',
      a.withdrawalId,
    ),
  })
}

/**
 * A withdrawal's end: `completed` — it left the exchange's custody on chain — or `failed` — the funds go back
 * to the user. Both share one key, so only one of the two can ever happen.
 */
function endWithdrawal(
  db: Database,
  a: UserAmount & { withdrawalId: string },
  outcome: 'completed' | 'failed',
): Promise<BookingResult> {
  const [to, reason] =
    outcome === 'completed'
      ? ([custody, 'withdrawal_complete'] as const)
      : ([{ userId: a.userId }, 'withdrawal_fail'] as const)
  return inTransaction(db, {
    key: `withdrawal:${a.withdrawalId}:end`,
    kind: 'withdrawal',
    movements: transfer(
      [pendingWithdrawals, 'available'],
      [to, 'available'],
      a.asset,
      a.amount,
      reason,
      'withdrawal',
      a.withdrawalId,
    ),
  })
}

export const completeWithdrawal = (db: Database, a: UserAmount & { withdrawalId: string }) =>
  endWithdrawal(db, a, 'completed')

export const failWithdrawal = (db: Database, a: UserAmount & { withdrawalId: string }) =>
  endWithdrawal(db, a, 'failed')

/**
 * Gas that one of the exchange's own transactions burned (a withdrawal, a sweep, a gas top-up): it left the
 * chain, so custody shrinks by it, against the network_fees expense account. Keyed by the transaction, so a
 * follow-up pass that sees the receipt again books nothing.
 */
export function payNetworkFee(db: Database, a: { asset: string; amount: string; chainTxId: string }) {
  return inTransaction(db, {
    key: `network_fee:${a.chainTxId}`,
    kind: 'network_fee',
    movements: transfer(
      [networkFees, 'available'],
      [custody, 'available'],
      a.asset,
      a.amount,
      'network_fee',
      'chain_tx',
      a.chainTxId,
    ),
  })
}

/**
 * An administrator's correction of a user's balance, positive or negative, with the reason in the memo.
 * It moves money against custody, like a deposit or withdrawal made outside the chain.
 */
export function adjustBalance(
  db: Database,
  a: { userId: bigint; asset: string; amount: string; key: string; reason: string; admin: string },
): Promise<BookingResult> {
  const credit = !a.amount.startsWith('-')
  const size = credit ? a.amount : negate(a.amount)
  const [from, to]: [Owner, Owner] = credit
    ? [custody, { userId: a.userId }]
    : [{ userId: a.userId }, custody]
  return inTransaction(db, {
    key: `adjustment:${a.key}`,
    kind: 'adjustment',
    memo: `${a.admin}: ${a.reason}`,
    movements: transfer([from, 'available'], [to, 'available'], a.asset, size, 'adjustment', 'admin', a.key),
  })
}
