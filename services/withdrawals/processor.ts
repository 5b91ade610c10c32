/**
 * Takes approved withdrawals of one Wallet to the chain from its hot wallet and settles them:
 *
 *   approved ──sign+store (chain_txs)──▶ processing ──broadcast, confirmations──▶ completed (ledger settles)
 *                                                    └─ reverted ───────────────▶ failed (funds back)
 *
 * Every step is idempotent and resumable: a new processor after a crash or an RPC failure finds the stored
 * transaction (never signs another nonce for the withdrawal), re-broadcasts its bytes, and the ledger's
 * complete/fail share one key so a withdrawal settles once.
 */
import { sql } from 'drizzle-orm'
import { type Address, encodeFunctionData, erc20Abi, getAddress, type Hex } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { type Database, queryRows } from '../../adapters/db/database.ts'
import { completeWithdrawal, failWithdrawal } from '../../ledger/operations.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, metricsRegistry, type Registry } from '../../lib/metrics.ts'
import { pausesInForce } from '../cron/pause.ts'
import { TxSender } from './sender.ts'
import { COLUMNS, type Row, toWithdrawal, type Withdrawal } from './withdrawals.ts'

export interface ProcessorOptions {
  readonly db: Database
  readonly walletId: string
  readonly chainId: number
  readonly rpcUrl: string
  readonly rpcHeaders?: Readonly<Record<string, string>>
  /** The hot wallet's private key (from a Secret); never logged. */
  readonly hotKey: Hex
  readonly confirmations: number
  /** Gas limits: 21000 pays a native transfer to an account; tokens get a fixed limit (no estimate, which fails on a revert). */
  readonly nativeGas?: bigint
  readonly tokenGas?: bigint
  readonly stuckAfterMs?: number
  readonly log?: Logger
  readonly now?: () => number
  /** Where the withdrawal gauges and counters go (default: the process's registry). */
  readonly registry?: Registry
}

/** What the processor last saw of its wallet's withdrawals (for /status). */
export interface ProcessorStatus {
  readonly wallet: string
  readonly hotAddress: Address
  /** Waiting for an administrator's approval. */
  readonly pendingApproval: number
  /** Approved, not yet signed (all of them while paused). */
  readonly pending: number
  /** Signed, on their way to the chain or waiting for confirmations. */
  readonly processing: number
  readonly paused: boolean
  readonly lastPassAt: number | null
  readonly lastError: string | null
}

interface Metrics {
  open: Gauge
  settled: Counter
  errors: Counter
  paused: Gauge
}

function processorMetrics(registry: Registry): Metrics {
  const gauge = (name: string, help: string, labelNames: string[]) =>
    (registry.getSingleMetric(name) as Gauge | undefined) ??
    new Gauge({ name, help, labelNames, registers: [registry] })
  const counter = (name: string, help: string, labelNames: string[]) =>
    (registry.getSingleMetric(name) as Counter | undefined) ??
    new Counter({ name, help, labelNames, registers: [registry] })
  return {
    open: gauge('bourse_withdrawals_open', 'Open withdrawals of the wallet by state', ['wallet', 'state']),
    settled: counter('bourse_withdrawals_settled_total', 'Withdrawals settled by outcome', [
      'wallet',
      'outcome',
    ]),
    errors: counter('bourse_withdrawal_pass_errors_total', 'Withdrawal passes that failed', ['wallet']),
    paused: gauge('bourse_withdrawals_paused', '1 while withdrawals of the wallet are paused', ['wallet']),
  }
}

export class WithdrawalProcessor {
  readonly sender: TxSender
  readonly hotAddress: Address
  private readonly db: Database
  private readonly walletId: string
  private readonly nativeGas: bigint
  private readonly tokenGas: bigint
  private readonly log: Logger | undefined
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private readonly metrics: Metrics
  private current: ProcessorStatus

  constructor(opts: ProcessorOptions) {
    this.db = opts.db
    this.walletId = opts.walletId
    this.nativeGas = opts.nativeGas ?? 21_000n
    this.tokenGas = opts.tokenGas ?? 100_000n
    this.log = opts.log
    const hot = privateKeyToAccount(opts.hotKey)
    this.hotAddress = hot.address
    this.metrics = processorMetrics(opts.registry ?? metricsRegistry())
    this.current = {
      wallet: opts.walletId,
      hotAddress: hot.address,
      pendingApproval: 0,
      pending: 0,
      processing: 0,
      paused: false,
      lastPassAt: null,
      lastError: null,
    }
    this.sender = new TxSender({
      db: opts.db,
      walletId: opts.walletId,
      chainId: opts.chainId,
      rpcUrl: opts.rpcUrl,
      rpcHeaders: opts.rpcHeaders,
      confirmations: opts.confirmations,
      stuckAfterMs: opts.stuckAfterMs,
      log: opts.log,
      now: opts.now,
    })
    this.sender.addSigner(hot)
  }

  /** One full pass: sign what is approved, broadcast and follow, settle what is final. */
  async tick(): Promise<void> {
    await this.signApproved()
    await this.sender.pump(this.hotAddress)
    await this.settle()
    await this.refreshStatus()
  }

  /** The counts of the last pass (or refreshStatus), with the last pass's error if it failed. */
  status(): ProcessorStatus {
    return this.current
  }

  /** Counts the wallet's open withdrawals by state into status() and the gauges. */
  async refreshStatus(): Promise<ProcessorStatus> {
    const [rows, paused] = await Promise.all([
      queryRows<{ state: string; n: number }>(
        this.db,
        sql`select state, count(*)::int as n from withdrawals
            where wallet_id = ${this.walletId} and state in ('pending_approval', 'approved', 'processing')
            group by state`,
      ),
      pausesInForce(this.db, this.walletId),
    ])
    const count = (state: string) => Number(rows.find((r) => r.state === state)?.n ?? 0)
    this.current = {
      ...this.current,
      pendingApproval: count('pending_approval'),
      pending: count('approved'),
      processing: count('processing'),
      paused: paused.length > 0,
      lastPassAt: Date.now(),
      lastError: null,
    }
    const wallet = this.walletId
    this.metrics.open.set({ wallet, state: 'pending_approval' }, this.current.pendingApproval)
    this.metrics.open.set({ wallet, state: 'approved' }, this.current.pending)
    this.metrics.open.set({ wallet, state: 'processing' }, this.current.processing)
    this.metrics.paused.set({ wallet }, this.current.paused ? 1 : 0)
    return this.current
  }

  /**
   * Approved withdrawals get their signed transaction stored (not broadcast) and become `processing`;
   * none while withdrawals are paused (reconciliation found a deficit; an admin resumes).
   */
  async signApproved(): Promise<void> {
    const paused = await pausesInForce(this.db, this.walletId)
    if (paused.length > 0) {
      this.log?.warn(
        { reason: paused[0]!.reason, scope: paused[0]!.scope },
        'withdrawals paused; signing nothing',
      )
      return
    }
    const approved = await queryRows<Row>(
      this.db,
      sql`select ${COLUMNS} from withdrawals where wallet_id = ${this.walletId} and state = 'approved' order by id`,
    )
    for (const w of approved.map(toWithdrawal)) {
      const t = await this.sender.submit(this.hotAddress, this.txFor(w))
      await this.db.execute(
        sql`update withdrawals set state = 'processing', chain_tx_id = ${t.id}, tx_hash = ${t.txHash}, updated_at = now()
            where id = ${w.id} and state = 'approved'`,
      )
    }
  }

  /** Broadcasts the stored, not yet sent transactions only (a step of `tick`, for tests of a crash in between). */
  broadcastSigned(): Promise<void> {
    return this.sender.broadcastSigned(this.hotAddress)
  }

  /** Completes the withdrawals whose transaction succeeded at depth, fails those that reverted. */
  async settle(): Promise<void> {
    const done = await queryRows<Row & { tx_state: 'confirmed' | 'reverted'; mined_hash: string }>(
      this.db,
      sql`select w.*, t.state as tx_state, t.mined_hash
          from (select ${COLUMNS}, chain_tx_id from withdrawals where wallet_id = ${this.walletId} and state = 'processing') w
          join chain_txs t on t.id = w.chain_tx_id
          where t.state in ('confirmed', 'reverted')
          order by w.id`,
    )
    for (const row of done) {
      const w = toWithdrawal(row)
      const ok = row.tx_state === 'confirmed'
      await this.db.transaction(async (tx) => {
        const settle = ok ? completeWithdrawal : failWithdrawal
        await settle(tx as unknown as Database, {
          userId: w.userId,
          asset: w.asset,
          amount: w.amount,
          withdrawalId: String(w.id),
        })
        await tx.execute(
          sql`update withdrawals set state = ${ok ? 'completed' : 'failed'}, tx_hash = ${row.mined_hash},
                fail_reason = ${ok ? null : 'the transaction reverted'}, updated_at = now()
              where id = ${w.id} and state = 'processing'`,
        )
      })
      this.metrics.settled.inc({ wallet: this.walletId, outcome: ok ? 'completed' : 'failed' })
      this.log?.info({ withdrawalId: String(w.id), hash: row.mined_hash, ok }, 'withdrawal settled')
    }
  }

  private txFor(w: Withdrawal) {
    const refId = String(w.id)
    if (w.contract === null) {
      return {
        purpose: 'withdrawal' as const,
        refId,
        to: getAddress(w.toAddress),
        value: w.units,
        gas: this.nativeGas,
      }
    }
    const data = encodeFunctionData({
      abi: erc20Abi,
      functionName: 'transfer',
      args: [getAddress(w.toAddress), w.units],
    })
    return {
      purpose: 'withdrawal' as const,
      refId,
      to: getAddress(w.contract),
      value: 0n,
      data,
      gas: this.tokenGas,
    }
  }

  /** Runs `tick` every `intervalMs` until stopped; a failing pass (RPC down) is logged and retried. */
  start(intervalMs = 2000): void {
    const loop = async () => {
      try {
        await this.tick()
      } catch (err) {
        this.current = { ...this.current, lastError: String(err) }
        this.metrics.errors.inc({ wallet: this.walletId })
        this.log?.warn({ err: String(err) }, 'withdrawal pass failed; retrying')
      }
      if (this.timer !== undefined) this.timer = setTimeout(() => (this.running = loop()), intervalMs)
    }
    this.timer = setTimeout(() => (this.running = loop()), 0)
  }

  async stop(): Promise<void> {
    const t = this.timer
    this.timer = undefined
    if (t !== undefined) clearTimeout(t)
    await this.running
  }
}
