/**
 * Withdrawal requests: address and amount validation, the per-user daily limit, admin approval above a
 * threshold, and the ledger: the amount leaves the user's available balance (startWithdrawal) in the same
 * transaction that records the request, so an accepted request is never without its funds, nor the funds
 * without their request. A rejection gives them back (failWithdrawal).
 */
import { sql } from 'drizzle-orm'
import { getAddress, isAddress, zeroAddress } from 'viem'
import { type Database, type Executor, queryRows } from '../../adapters/db/database.ts'
import type { withdrawalStates } from '../../adapters/db/schema.ts'
import { failWithdrawal, startWithdrawal } from '../../ledger/operations.ts'
import { BourseError, invalidInput } from '../../lib/errors.ts'
import { formatDecimal, parseDecimal } from '../../lib/money.ts'

export type WithdrawalState = (typeof withdrawalStates)[number]

export interface AssetPolicy {
  /** Smallest amount per request (decimal), default: any positive amount. */
  readonly minAmount?: string
  /** Most a user may request in 24 hours (decimal), counting everything not failed or rejected. */
  readonly dailyLimit: string
  /** Requests above this amount wait for an administrator's approval. */
  readonly approvalAbove: string
}

export interface WithdrawalPolicy {
  readonly assets: Readonly<Record<string, AssetPolicy>>
}

export interface WithdrawalRequest {
  readonly userId: bigint
  readonly walletId: string
  readonly asset: string
  readonly address: string
  readonly amount: string
  /** The client's id (Binance's withdrawOrderId): the same id again returns the first request. */
  readonly clientId?: string
}

export interface Withdrawal {
  readonly id: bigint
  readonly userId: bigint
  readonly clientId: string | null
  readonly walletId: string
  readonly chainId: bigint
  readonly asset: string
  readonly contract: string | null
  readonly decimals: number
  readonly toAddress: string
  readonly amount: string
  readonly units: bigint
  readonly state: WithdrawalState
  readonly txHash: string | null
  readonly failReason: string | null
  readonly createdAt: Date
  readonly updatedAt: Date
}

/** Validates and records a request and takes its amount from the user's balance; throws and changes nothing if refused. */
export async function requestWithdrawal(
  db: Database,
  policy: WithdrawalPolicy,
  req: WithdrawalRequest,
): Promise<Withdrawal> {
  const rules = policy.assets[req.asset]
  if (rules === undefined) throw invalidInput('asset', `${req.asset} cannot be withdrawn`)
  if (!isAddress(req.address, { strict: true })) {
    throw invalidInput('address', 'not an address, or its mixed-case checksum is wrong')
  }
  const to = getAddress(req.address)
  if (to === zeroAddress) throw invalidInput('address', 'the zero address cannot receive withdrawals')
  if (req.clientId !== undefined && !/^[A-Za-z0-9_.:-]{1,64}$/.test(req.clientId)) {
    throw invalidInput('clientId', 'expected 1-64 characters of [A-Za-z0-9_.:-]')
  }
  return db.transaction(async (tx) => {
    const [target] = await queryRows<{
      chain_id: bigint
      contract: string | null
      decimals: number
      scale: number
    }>(
      tx,
      sql`select w.chain_id, a.contract, a.decimals, s.scale from chain_wallet_assets a
          join chain_wallets w on w.id = a.wallet_id join assets s on s.symbol = a.asset
          where a.wallet_id = ${req.walletId} and a.asset = ${req.asset}`,
    )
    if (target === undefined) throw invalidInput('asset', `${req.asset} is not on wallet ${req.walletId}`)
    const decimals = Math.min(target.decimals, target.scale)
    const amountAtScale = parseDecimal(req.amount, decimals, { field: 'amount' })
    const amount = formatDecimal(amountAtScale, decimals, { trimZeros: true })
    const units = amountAtScale * 10n ** BigInt(target.decimals - decimals)
    const atScale = (text: string) => parseDecimal(text, 36, { allowZero: true })
    if (rules.minAmount !== undefined && atScale(amount) < atScale(rules.minAmount)) {
      throw invalidInput('amount', `below the minimum withdrawal of ${rules.minAmount} ${req.asset}`)
    }
    // One request of a user at a time past this point: the daily sum cannot be raced.
    await tx.execute(sql`select id from users where id = ${req.userId} for update`)
    if (req.clientId !== undefined) {
      const [existing] = await queryRows<Row>(
        tx,
        sql`select ${COLUMNS} from withdrawals where user_id = ${req.userId} and client_id = ${req.clientId}`,
      )
      if (existing !== undefined) return toWithdrawal(existing)
    }
    const [day] = await queryRows<{ total: string }>(
      tx,
      sql`select coalesce(sum(amount), 0)::text as total from withdrawals
          where user_id = ${req.userId} and asset = ${req.asset} and state not in ('failed', 'rejected')
            and created_at > now() - interval '24 hours'`,
    )
    if (atScale(day!.total) + atScale(amount) > atScale(rules.dailyLimit)) {
      throw new BourseError(
        'rejected',
        `the daily withdrawal limit of ${rules.dailyLimit} ${req.asset} would be exceeded (${day!.total} used)`,
        { field: 'amount' },
      )
    }
    const state: WithdrawalState =
      atScale(amount) > atScale(rules.approvalAbove) ? 'pending_approval' : 'approved'
    const [row] = await queryRows<Row>(
      tx,
      sql`insert into withdrawals (user_id, client_id, wallet_id, chain_id, asset, contract, decimals, to_address, amount, units, state)
          values (${req.userId}, ${req.clientId ?? null}, ${req.walletId}, ${target.chain_id}, ${req.asset}, ${target.contract},
            ${target.decimals}, ${to}, ${amount}, ${units.toString()}, ${state})
          returning ${COLUMNS}`,
    )
    // A savepoint inside this transaction: insufficient funds rolls the request back with it.
    await startWithdrawal(tx as unknown as Database, {
      userId: req.userId,
      asset: req.asset,
      amount,
      withdrawalId: String(row!.id),
    })
    return toWithdrawal(row!)
  })
}

/** An administrator lets a withdrawal that waits for approval go to the chain. */
export async function approveWithdrawal(db: Database, id: bigint, admin: string): Promise<Withdrawal> {
  const [row] = await queryRows<Row>(
    db,
    sql`update withdrawals set state = 'approved', approved_by = ${admin}, updated_at = now()
        where id = ${id} and state = 'pending_approval' returning ${COLUMNS}`,
  )
  if (row !== undefined) return toWithdrawal(row)
  const current = await getWithdrawal(db, id)
  if (current.state === 'approved' || current.state === 'processing' || current.state === 'completed')
    return current
  throw new BourseError('conflict', `withdrawal ${id} is ${current.state}; it cannot be approved`)
}

/** An administrator refuses a withdrawal that waits for approval: its funds go back to the user. */
export async function rejectWithdrawal(
  db: Database,
  id: bigint,
  admin: string,
  reason: string,
): Promise<Withdrawal> {
  return db.transaction(async (tx) => {
    const [row] = await queryRows<Row>(
      tx,
      sql`update withdrawals set state = 'rejected', approved_by = ${admin}, fail_reason = ${reason}, updated_at = now()
          where id = ${id} and state = 'pending_approval' returning ${COLUMNS}`,
    )
    if (row === undefined) {
      const current = await getWithdrawal(tx, id)
      if (current.state === 'rejected') return current
      throw new BourseError('conflict', `withdrawal ${id} is ${current.state}; it cannot be rejected`)
    }
    const w = toWithdrawal(row)
    await failWithdrawal(tx as unknown as Database, {
      userId: w.userId,
      asset: w.asset,
      amount: w.amount,
      withdrawalId: String(w.id),
    })
    return w
  })
}

export async function getWithdrawal(db: Executor, id: bigint): Promise<Withdrawal> {
  const [row] = await queryRows<Row>(db, sql`select ${COLUMNS} from withdrawals where id = ${id}`)
  if (row === undefined) throw new BourseError('not_found', `withdrawal ${id} does not exist`)
  return toWithdrawal(row)
}

export interface HistoryQuery {
  readonly asset?: string
  readonly states?: readonly WithdrawalState[]
  readonly clientId?: string
  readonly ids?: readonly bigint[]
  readonly startTime?: Date
  readonly endTime?: Date
  readonly offset?: number
  readonly limit?: number
}

/** A user's withdrawals, newest first. */
export async function listWithdrawals(
  db: Executor,
  userId: bigint,
  q: HistoryQuery = {},
): Promise<Withdrawal[]> {
  const conditions = [sql`user_id = ${userId}`]
  if (q.asset !== undefined) conditions.push(sql`asset = ${q.asset}`)
  if (q.states !== undefined) conditions.push(sql`state = any(${`{${q.states.join(',')}}`}::text[])`)
  if (q.clientId !== undefined) conditions.push(sql`client_id = ${q.clientId}`)
  if (q.ids !== undefined) conditions.push(sql`id = any(${`{${q.ids.join(',')}}`}::int8[])`)
  if (q.startTime !== undefined) conditions.push(sql`created_at >= ${q.startTime.toISOString()}`)
  if (q.endTime !== undefined) conditions.push(sql`created_at <= ${q.endTime.toISOString()}`)
  const rows = await queryRows<Row>(
    db,
    sql`select ${COLUMNS} from withdrawals where ${sql.join(conditions, sql` and `)}
        order by created_at desc, id desc limit ${q.limit ?? 1000} offset ${q.offset ?? 0}`,
  )
  return rows.map(toWithdrawal)
}

export const COLUMNS = sql.raw(
  `id, user_id, client_id, wallet_id, chain_id, asset, contract, decimals, to_address, trim_scale(amount)::text as amount,
   units::text as units, state, tx_hash, fail_reason, created_at, updated_at`,
)

export interface Row {
  id: bigint
  user_id: bigint
  client_id: string | null
  wallet_id: string
  chain_id: bigint
  asset: string
  contract: string | null
  decimals: number
  to_address: string
  amount: string
  units: string
  state: WithdrawalState
  tx_hash: string | null
  fail_reason: string | null
  created_at: Date | string
  updated_at: Date | string
}

export function toWithdrawal(r: Row): Withdrawal {
  return {
    id: BigInt(r.id),
    userId: BigInt(r.user_id),
    clientId: r.client_id,
    walletId: r.wallet_id,
    chainId: BigInt(r.chain_id),
    asset: r.asset,
    contract: r.contract,
    decimals: r.decimals,
    toAddress: r.to_address,
    amount: r.amount,
    units: BigInt(r.units),
    state: r.state,
    txHash: r.tx_hash,
    failReason: r.fail_reason,
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  }
}
