/**
 * Outgoing transactions of the exchange's own addresses (hot wallet, gas keeper, deposit addresses being
 * swept), crash-safe:
 *
 * 1. `submit` allocates the sending address's next nonce in Postgres (row lock on `signer_nonces`), signs,
 *    and commits the signed raw transaction in `chain_txs` — all before anything is broadcast. A purpose
 *    (withdrawal 17, sweep 3 …) has at most one row, so a retry after a crash finds it instead of signing
 *    a second transaction with another nonce.
 * 2. `pump` broadcasts what is signed (re-sending the stored bytes is idempotent), follows receipts to the
 *    required depth, re-broadcasts a transaction a reorg or a restarted node dropped, and replaces one that
 *    is stuck with the same nonce and bumped fees (the new raw transaction is stored before it is sent;
 *    every earlier hash is kept and checked, since any of them may be the one mined).
 *
 * One process drives a sending address at a time (the cron/syncer leader); the nonce lock also keeps two
 * racing callers from sharing a nonce. RPC failures throw out of a step and leave the rows as they were.
 */
import { sql } from 'drizzle-orm'
import {
  type Address,
  type Chain,
  createPublicClient,
  defineChain,
  getAddress,
  type Hex,
  http,
  keccak256,
  type LocalAccount,
  type PublicClient,
  TransactionReceiptNotFoundError,
} from 'viem'
import { type Database, type Executor, queryRows } from '../../adapters/db/database.ts'
import type { chainTxStates } from '../../adapters/db/schema.ts'
import { payNetworkFee } from '../../ledger/operations.ts'
import type { Logger } from '../../lib/log.ts'
import { formatDecimal, rescale } from '../../lib/money.ts'
import { bumpFees, DEFAULT_BUMP_PERCENT, type Fees } from './fees.ts'

/** Every EVM chain's native coin has 18 decimals (wei). */
const NATIVE_DECIMALS = 18

export type ChainTxState = (typeof chainTxStates)[number]
export type Purpose = 'withdrawal' | 'sweep' | 'gas_topup'

export interface ChainTx {
  readonly id: bigint
  readonly fromAddress: Address
  readonly nonce: bigint
  readonly purpose: Purpose
  readonly refId: string
  readonly toAddress: Address
  readonly value: bigint
  readonly data: Hex
  readonly gas: bigint
  readonly fees: Fees
  readonly rawTx: Hex
  readonly txHash: Hex
  readonly previousHashes: readonly Hex[]
  readonly state: ChainTxState
  readonly minedHash: Hex | null
  readonly blockNumber: bigint | null
  readonly broadcastAt: Date | null
}

export interface TxRequest {
  readonly purpose: Purpose
  readonly refId: string
  readonly to: Address
  readonly value: bigint
  readonly data?: Hex
  readonly gas: bigint
  /** Fixed fees (a native sweep computes its value from them); default: the network's suggestion. */
  readonly fees?: Fees
}

export interface SenderOptions {
  readonly db: Database
  /**
   * The Wallet whose addresses send. The gas of every final transaction is booked against the wallet's
   * native asset (payNetworkFee) so that reconciliation sees what gas took; a wallet that does not list its
   * chain's coin books none.
   */
  readonly walletId: string
  readonly chainId: number
  readonly rpcUrl: string
  /** Headers for every RPC call (an Authorization taken from the URL's user-info, which fetch refuses). */
  readonly rpcHeaders?: Readonly<Record<string, string>>
  /** Blocks a transaction needs, its own included, before it counts as final. */
  readonly confirmations: number
  /** A broadcast transaction still unmined after this long is replaced with bumped fees. */
  readonly stuckAfterMs?: number
  readonly bumpPercent?: bigint
  readonly log?: Logger
  readonly now?: () => number
}

export interface PumpFailure {
  readonly txId: bigint
  readonly from: Address
  readonly error: string
}

export class PumpError extends Error {
  readonly failures: readonly PumpFailure[]

  constructor(failures: readonly PumpFailure[]) {
    super(
      `${failures.length} sending address(es) stuck: ${failures.map((f) => `${f.from} (chain tx ${f.txId}): ${f.error}`).join('; ')}`,
    )
    this.name = 'PumpError'
    this.failures = failures
  }
}

export class TxSender {
  readonly client: PublicClient
  readonly chainId: number
  private readonly db: Database
  private readonly confirmations: number
  private readonly stuckAfterMs: number
  private readonly bumpPercent: bigint
  private readonly walletId: string
  private readonly log: Logger | undefined
  private readonly now: () => number
  private readonly signers = new Map<string, LocalAccount>()

  constructor(opts: SenderOptions) {
    this.db = opts.db
    this.chainId = opts.chainId
    const chain: Chain = defineChain({
      id: opts.chainId,
      name: `chain-${opts.chainId}`,
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [opts.rpcUrl] } },
    })
    this.client = createPublicClient({
      chain,
      transport: http(opts.rpcUrl, {
        retryCount: 1,
        timeout: 10_000,
        ...(opts.rpcHeaders !== undefined && { fetchOptions: { headers: { ...opts.rpcHeaders } } }),
      }),
      cacheTime: 0,
    })
    this.confirmations = opts.confirmations
    this.stuckAfterMs = opts.stuckAfterMs ?? 5 * 60_000
    this.bumpPercent = opts.bumpPercent ?? DEFAULT_BUMP_PERCENT
    this.walletId = opts.walletId
    this.log = opts.log
    this.now = opts.now ?? Date.now
  }

  /** The key that signs for an address (needed to sign, and to replace a stuck transaction). */
  addSigner(account: LocalAccount): void {
    this.signers.set(account.address.toLowerCase(), account)
  }

  /** The transaction stored for a purpose, if any. */
  async find(purpose: Purpose, refId: string, db: Executor = this.db): Promise<ChainTx | undefined> {
    const [row] = await queryRows<Row>(
      db,
      sql`select ${COLUMNS} from chain_txs where purpose = ${purpose} and ref_id = ${refId}`,
    )
    return row === undefined ? undefined : toChainTx(row)
  }

  /**
   * Signs and stores the purpose's transaction with the address's next nonce, or returns the one already
   * stored for it. Nothing is broadcast here.
   */
  async submit(from: Address, req: TxRequest): Promise<ChainTx> {
    const existing = await this.find(req.purpose, req.refId)
    if (existing !== undefined) return existing
    const account = this.signer(from)
    const address = getAddress(from)
    // Network reads first: the row lock is then held only for signing and two inserts.
    const [fees, chainNonce] = await Promise.all([
      req.fees ?? this.suggestedFees(),
      this.client.getTransactionCount({ address, blockTag: 'pending' }),
    ])
    return this.db.transaction(async (tx) => {
      await tx.execute(
        sql`insert into signer_nonces (chain_id, address, next_nonce) values (${BigInt(this.chainId)}, ${address}, ${BigInt(chainNonce)})
            on conflict do nothing`,
      )
      const [lock] = await queryRows<{ next_nonce: bigint }>(
        tx,
        sql`select next_nonce from signer_nonces where chain_id = ${BigInt(this.chainId)} and address = ${address} for update`,
      )
      const again = await this.find(req.purpose, req.refId, tx)
      if (again !== undefined) return again
      // The chain's count is a floor: a nonce used outside this table (a manual send) is never reused.
      const stored = BigInt(lock!.next_nonce)
      const nonce = stored > BigInt(chainNonce) ? stored : BigInt(chainNonce)
      const data = req.data ?? '0x'
      const rawTx = await account.signTransaction({
        type: 'eip1559',
        chainId: this.chainId,
        nonce: Number(nonce),
        to: req.to,
        value: req.value,
        data,
        gas: req.gas,
        maxFeePerGas: fees.maxFeePerGas,
        maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
      })
      const [row] = await queryRows<Row>(
        tx,
        sql`insert into chain_txs (chain_id, from_address, nonce, purpose, ref_id, to_address, value, data, gas,
              max_fee_per_gas, max_priority_fee_per_gas, raw_tx, tx_hash)
            values (${BigInt(this.chainId)}, ${address}, ${nonce}, ${req.purpose}, ${req.refId}, ${getAddress(req.to)},
              ${req.value.toString()}, ${data}, ${req.gas}, ${fees.maxFeePerGas.toString()},
              ${fees.maxPriorityFeePerGas.toString()}, ${rawTx}, ${keccak256(rawTx)})
            returning ${COLUMNS}`,
      )
      await tx.execute(
        sql`update signer_nonces set next_nonce = ${nonce + 1n}
            where chain_id = ${BigInt(this.chainId)} and address = ${address}`,
      )
      return toChainTx(row!)
    })
  }

  /** Open transactions of the chain (optionally one sender), lowest nonce first. */
  async open(from?: Address): Promise<ChainTx[]> {
    const rows = await queryRows<Row>(
      this.db,
      sql`select ${COLUMNS} from chain_txs
          where chain_id = ${BigInt(this.chainId)} and state in ('signed', 'broadcast', 'mined')
            ${from === undefined ? sql`` : sql`and from_address = ${getAddress(from)}`}
          order by from_address, nonce`,
    )
    return rows.map(toChainTx)
  }

  /** Broadcasts every signed transaction (the stored bytes), without following them further. */
  async broadcastSigned(from?: Address): Promise<void> {
    for (const t of await this.open(from)) if (t.state === 'signed') await this.broadcast(t)
  }

  /**
   * One pass over the open transactions: broadcast, follow receipts, re-broadcast or replace. Each sending
   * address goes in nonce order and stops at its first failure (a later nonce cannot be mined before it)
   * without holding up the other addresses: one deposit address whose sweep the node refuses must not stop
   * every other sweep. Throws a PumpError naming the failures after the pass, if there were any.
   */
  async pump(from?: Address): Promise<void> {
    const failures: PumpFailure[] = []
    for (const t of await this.open(from)) {
      if (failures.some((f) => f.from === t.fromAddress)) continue
      try {
        if (t.state === 'signed') await this.broadcast(t)
        else await this.follow(t)
      } catch (err) {
        failures.push({ txId: t.id, from: t.fromAddress, error: errorText(err) })
      }
    }
    if (failures.length > 0) throw new PumpError(failures)
  }

  async broadcast(t: ChainTx): Promise<void> {
    try {
      await this.client.sendRawTransaction({ serializedTransaction: t.rawTx })
    } catch (err) {
      // The node has it already, or a transaction of this nonce is mined (ours: the receipts will say).
      if (!/already known|already imported|known transaction|nonce too low/i.test(errorText(err))) throw err
    }
    await this.db.execute(
      sql`update chain_txs set state = 'broadcast', broadcast_at = ${new Date(this.now()).toISOString()}, updated_at = now()
          where id = ${t.id} and tx_hash = ${t.txHash} and state = 'signed'`,
    )
  }

  private async follow(t: ChainTx): Promise<void> {
    const receipt = await this.findReceipt(t)
    if (receipt !== undefined) {
      const head = await this.client.getBlockNumber()
      const depth = head - receipt.blockNumber + 1n
      const final = depth >= BigInt(this.confirmations)
      const state: ChainTxState = !final ? 'mined' : receipt.status === 'success' ? 'confirmed' : 'reverted'
      await this.db.transaction(async (tx) => {
        const moved = await queryRows(
          tx,
          sql`update chain_txs set state = ${state}, mined_hash = ${receipt.transactionHash},
                block_number = ${receipt.blockNumber}, updated_at = now()
              where id = ${t.id} and state in ('broadcast', 'mined') returning id`,
        )
        // A reverted transaction burned its gas too.
        if (final && moved.length > 0) await this.bookGas(tx, t, receipt.gasUsed * receipt.effectiveGasPrice)
      })
      return
    }
    if (t.state === 'mined') {
      // Its block was reorged away: back to broadcast, and send it again.
      this.log?.warn(
        { txId: String(t.id), hash: t.minedHash },
        'a mined transaction disappeared; re-broadcasting',
      )
      await this.db.execute(
        sql`update chain_txs set state = 'broadcast', mined_hash = null, block_number = null, updated_at = now()
            where id = ${t.id} and state = 'mined'`,
      )
    }
    const sentAt = t.broadcastAt?.getTime() ?? this.now()
    if (this.now() - sentAt >= this.stuckAfterMs && this.signers.has(t.fromAddress.toLowerCase())) {
      await this.replace(t)
      return
    }
    // A node that restarted or evicted it has forgotten it: sending the same bytes again is harmless.
    await this.resend(t)
  }

  /** Rounded up to the ledger's scale: the books never claim more on chain than there is. */
  private async bookGas(tx: Executor, t: ChainTx, wei: bigint): Promise<void> {
    const [native] = await queryRows<{ asset: string; scale: number }>(
      tx,
      sql`select w.asset, a.scale from chain_wallet_assets w join assets a on a.symbol = w.asset
          where w.wallet_id = ${this.walletId} and w.contract is null`,
    )
    if (native === undefined || wei === 0n) return
    const amount = formatDecimal(rescale(wei, NATIVE_DECIMALS, native.scale, 'up'), native.scale)
    await payNetworkFee(tx as unknown as Database, { asset: native.asset, amount, chainTxId: String(t.id) })
  }

  private async resend(t: ChainTx): Promise<void> {
    try {
      await this.client.sendRawTransaction({ serializedTransaction: t.rawTx })
    } catch (err) {
      if (!/already known|already imported|known transaction|nonce too low|underpriced/i.test(errorText(err)))
        throw err
    }
  }

  /** Re-signs the same nonce with bumped fees, stores it (keeping the old hash), then broadcasts it. */
  async replace(t: ChainTx): Promise<ChainTx> {
    const account = this.signer(t.fromAddress)
    const fees = bumpFees(t.fees, await this.suggestedFees(), this.bumpPercent)
    const rawTx = await account.signTransaction({
      type: 'eip1559',
      chainId: this.chainId,
      nonce: Number(t.nonce),
      to: t.toAddress,
      value: t.value,
      data: t.data,
      gas: t.gas,
      maxFeePerGas: fees.maxFeePerGas,
      maxPriorityFeePerGas: fees.maxPriorityFeePerGas,
    })
    const [row] = await queryRows<Row>(
      this.db,
      sql`update chain_txs set raw_tx = ${rawTx}, tx_hash = ${keccak256(rawTx)},
            previous_hashes = array_append(previous_hashes, tx_hash),
            max_fee_per_gas = ${fees.maxFeePerGas.toString()}, max_priority_fee_per_gas = ${fees.maxPriorityFeePerGas.toString()},
            state = 'signed', broadcast_at = null, updated_at = now()
          where id = ${t.id} and tx_hash = ${t.txHash} and state in ('broadcast', 'mined')
          returning ${COLUMNS}`,
    )
    if (row === undefined) return (await this.find(t.purpose, t.refId))!
    const next = toChainTx(row)
    this.log?.info(
      { txId: String(t.id), nonce: String(t.nonce), replaced: t.txHash, by: next.txHash },
      'replacing a stuck transaction with bumped fees',
    )
    await this.broadcast(next)
    return next
  }

  private async findReceipt(t: ChainTx) {
    for (const hash of [t.txHash, ...t.previousHashes]) {
      try {
        return await this.client.getTransactionReceipt({ hash })
      } catch (err) {
        if (!(err instanceof TransactionReceiptNotFoundError)) throw err
      }
    }
    return undefined
  }

  async suggestedFees(): Promise<Fees> {
    const f = await this.client.estimateFeesPerGas()
    return { maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas }
  }

  private signer(address: Address): LocalAccount {
    const account = this.signers.get(address.toLowerCase())
    if (account === undefined) throw new Error(`no signing key for ${address}`)
    return account
  }
}

function errorText(err: unknown): string {
  const parts: string[] = []
  let e: unknown = err
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    parts.push(e.message, (e as { details?: string }).details ?? '')
    e = e.cause
  }
  return parts.join(' ')
}

const COLUMNS = sql.raw(
  `id, from_address, nonce, purpose, ref_id, to_address, value::text, data, gas, max_fee_per_gas::text,
   max_priority_fee_per_gas::text, raw_tx, tx_hash, previous_hashes, state, mined_hash, block_number, broadcast_at`,
)

interface Row {
  id: bigint
  from_address: string
  nonce: bigint
  purpose: Purpose
  ref_id: string
  to_address: string
  value: string
  data: string
  gas: bigint
  max_fee_per_gas: string
  max_priority_fee_per_gas: string
  raw_tx: string
  tx_hash: string
  previous_hashes: string[] | string
  state: ChainTxState
  mined_hash: string | null
  block_number: bigint | null
  broadcast_at: Date | string | null
}

function toChainTx(r: Row): ChainTx {
  const prev = Array.isArray(r.previous_hashes)
    ? r.previous_hashes
    : r.previous_hashes
        .replace(/^\{|\}$/g, '')
        .split(',')
        .filter((h) => h !== '')
  return {
    id: BigInt(r.id),
    fromAddress: getAddress(r.from_address),
    nonce: BigInt(r.nonce),
    purpose: r.purpose,
    refId: r.ref_id,
    toAddress: getAddress(r.to_address),
    value: BigInt(r.value),
    data: r.data as Hex,
    gas: BigInt(r.gas),
    fees: {
      maxFeePerGas: BigInt(r.max_fee_per_gas),
      maxPriorityFeePerGas: BigInt(r.max_priority_fee_per_gas),
    },
    rawTx: r.raw_tx as Hex,
    txHash: r.tx_hash as Hex,
    previousHashes: prev as Hex[],
    state: r.state,
    minedHash: r.mined_hash as Hex | null,
    blockNumber: r.block_number === null ? null : BigInt(r.block_number),
    broadcastAt: r.broadcast_at === null ? null : new Date(r.broadcast_at),
  }
}
