/**
 * Binance's wallet endpoints for withdrawals: `POST /sapi/v1/capital/withdraw/apply` and
 * `GET /sapi/v1/capital/withdraw/history`, SIGNED, the apply call needing an API key with the withdraw
 * permission. Shapes follow Binance's wallet API: apply answers `{id}`; history lists
 * `{id, amount, transactionFee, coin, status, address, txId, applyTime, network, transferType,
 * withdrawOrderId, info, confirmNo, walletType, txKey, completeTime}` with Binance's status codes
 * (2 awaiting approval, 3 rejected, 4 processing, 5 failure, 6 completed).
 */
import type { Context, Hono } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { Database } from '../../adapters/db/database.ts'
import { BourseError } from '../../lib/errors.ts'
import type { Logger } from '../../lib/log.ts'
import type { ApiKeyStore } from '../gateway/api-keys.ts'
import { BinanceError, errors } from '../gateway/binance/errors.ts'
import { authenticate, type Params, readParams } from '../gateway/binance/request.ts'
import {
  listWithdrawals,
  requestWithdrawal,
  type Withdrawal,
  type WithdrawalPolicy,
  type WithdrawalState,
} from './withdrawals.ts'

export interface WithdrawRoutesDeps {
  db: Database
  keys: ApiKeyStore
  policy: WithdrawalPolicy
  /** Binance `network` names → the Wallet that withdraws on it; the first is the default network. */
  networks: ReadonlyArray<{ network: string; walletId: string }>
  clientIp: (c: Context) => string
  now: () => number
  log: Logger
}

const STATUS: Record<WithdrawalState, number> = {
  pending_approval: 2,
  rejected: 3,
  approved: 4,
  processing: 4,
  failed: 5,
  completed: 6,
}

export function withdrawRoutes(app: Hono, deps: WithdrawRoutesDeps): void {
  const handle =
    (security: 'USER_DATA' | 'WITHDRAW', fn: (p: Params, userId: bigint) => Promise<unknown>) =>
    async (c: Context) => {
      try {
        const params = await readParams(c.req.raw)
        const { key } = await authenticate(c.req.raw, params, security, deps.keys, deps.clientIp(c), deps.now)
        return c.json(await fn(params, key.userId))
      } catch (err) {
        const e = toBinance(err, deps.log)
        return c.json(e.toJSON(), e.status as ContentfulStatusCode)
      }
    }

  app.post(
    '/sapi/v1/capital/withdraw/apply',
    handle('WITHDRAW', async (params, userId) => {
      const coin = params.required('coin')
      const address = params.required('address')
      const amount = params.required('amount')
      if (params.get('addressTag') !== undefined)
        throw new BinanceError(-1100, 'addressTag is not used on EVM networks.')
      const network = params.get('network')
      const target =
        network === undefined
          ? deps.networks[0]
          : deps.networks.find((n) => n.network.toUpperCase() === network.toUpperCase())
      if (target === undefined) throw new BinanceError(-4003, `Network ${network} is not supported.`)
      const w = await requestWithdrawal(deps.db, deps.policy, {
        userId,
        walletId: target.walletId,
        asset: coin,
        address,
        amount,
        clientId: params.get('withdrawOrderId'),
      })
      return { id: String(w.id) }
    }),
  )

  app.get(
    '/sapi/v1/capital/withdraw/history',
    handle('USER_DATA', async (params, userId) => {
      const status = params.get('status')
      const states =
        status === undefined
          ? undefined
          : (Object.keys(STATUS) as WithdrawalState[]).filter((s) => String(STATUS[s]) === status)
      const limit = Math.min(Number(params.get('limit') ?? 1000), 1000)
      const offset = Number(params.get('offset') ?? 0)
      if (!Number.isInteger(limit) || limit < 1 || !Number.isInteger(offset) || offset < 0)
        throw new BinanceError(-1100, 'Illegal characters found in parameter limit or offset.')
      const ids = params.get('idList')?.split(',')
      if (ids?.some((id) => !/^\d{1,18}$/.test(id))) throw errors.illegalChars('idList', '^[0-9,]+$')
      const startTime = params.get('startTime')
      const endTime = params.get('endTime')
      const rows = await listWithdrawals(deps.db, userId, {
        asset: params.get('coin'),
        states,
        clientId: params.get('withdrawOrderId'),
        ids: ids?.map(BigInt),
        startTime:
          startTime === undefined ? new Date(deps.now() - 90 * 24 * 3600_000) : new Date(Number(startTime)),
        endTime: endTime === undefined ? undefined : new Date(Number(endTime)),
        limit,
        offset,
      })
      return rows.map((w) =>
        historyItem(w, deps.networks.find((n) => n.walletId === w.walletId)?.network ?? w.walletId),
      )
    }),
  )
}

function historyItem(w: Withdrawal, network: string) {
  return {
    id: String(w.id),
    amount: w.amount,
    transactionFee: '0',
    coin: w.asset,
    status: STATUS[w.state],
    address: w.toAddress,
    txId: w.txHash ?? '',
    applyTime: binanceTime(w.createdAt),
    network,
    transferType: 0,
    ...(w.clientId === null ? {} : { withdrawOrderId: w.clientId }),
    info: w.failReason ?? '',
    confirmNo: w.state === 'completed' ? 1 : 0,
    walletType: 0,
    txKey: '',
    ...(w.state === 'completed' ? { completeTime: binanceTime(w.updatedAt) } : {}),
  }
}

/** "2019-10-12 11:12:02", UTC, as Binance writes it. */
function binanceTime(d: Date): string {
  return d.toISOString().slice(0, 19).replace('T', ' ')
}

/** Bourse's names of the request's fields, as Binance's parameters call them. */
const PARAMETER: Readonly<Record<string, string>> = { asset: 'coin', clientId: 'withdrawOrderId' }

function inBinanceTerms(err: BourseError): string {
  const parameter = err.field === undefined ? undefined : PARAMETER[err.field]
  return parameter === undefined ? err.message : err.message.replace(`${err.field}:`, `${parameter}:`)
}

function toBinance(err: unknown, log: Logger): BinanceError {
  if (err instanceof BinanceError) return err
  if (err instanceof BourseError) {
    if (err.code === 'unavailable') return errors.disconnected()
    if (err.code === 'insufficient_funds') return new BinanceError(-4026, 'User has insufficient balance.')
    if (err.code === 'invalid_input' || err.code === 'rejected' || err.code === 'conflict')
      return new BinanceError(-1100, inBinanceTerms(err))
  }
  log.error({ err }, 'unexpected error in the withdrawal API')
  return errors.unknown()
}
