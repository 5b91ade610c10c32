/**
 * Sweeps of deposit addresses to the cold address, per asset above its threshold:
 *
 *   native:  ready ─(balance − gas × maxFee to cold)─▶ sweeping ─▶ swept | failed
 *   ERC-20:  gas_required ─(gas keeper top-up stored+sent)─▶ waiting_for_gas ─(top-up confirmed)─▶ ready
 *            ─(token transfer to cold)─▶ sweeping ─▶ swept | failed
 *
 * Every transaction goes through TxSender (nonces in Postgres per sending address, signed bytes stored
 * before broadcast, stuck ones replaced with bumped fees); each sweep row keeps its state and the ids of
 * its chain transactions (hashes in chain_txs). The ledger does not move: a sweep stays inside custody.
 * The gas keeper's balance is exported as a gauge, with a low flag below its minimum (the alert).
 */
import { sql } from 'drizzle-orm'
import { type Address, encodeFunctionData, erc20Abi, getAddress, type Hex, type LocalAccount } from 'viem'
import { privateKeyToAccount } from 'viem/accounts'
import { type Database, queryRows } from '../../adapters/db/database.ts'
import type { sweepStates } from '../../adapters/db/schema.ts'
import type { Logger } from '../../lib/log.ts'
import { Gauge, type Registry } from '../../lib/metrics.ts'
import { type ChainTx, TxSender } from './sender.ts'

export type SweepState = (typeof sweepStates)[number]

export interface SweeperOptions {
  readonly db: Database
  readonly walletId: string
  readonly chainId: number
  readonly rpcUrl: string
  readonly confirmations: number
  readonly coldAddress: Address
  /** The gas keeper's private key (a Secret); it pays ERC-20 sweeps' gas. */
  readonly gasKeeperKey: Hex
  readonly gasKeeperMinimum: bigint
  /** The signing key of deposit address `index` (derived from the deposit account's private node). */
  readonly depositAccount: (index: number) => LocalAccount
  /** Per asset, the smallest balance (in the asset's units) worth sweeping. */
  readonly thresholds: Readonly<Record<string, bigint>>
  readonly tokenGas?: bigint
  readonly stuckAfterMs?: number
  readonly registry?: Registry
  readonly log?: Logger
  readonly now?: () => number
}

const NATIVE_GAS = 21_000n

export class Sweeper {
  readonly sender: TxSender
  readonly gasKeeper: Address
  private readonly o: SweeperOptions
  private readonly tokenGas: bigint
  private readonly keeperBalance: Gauge | undefined
  private readonly keeperLow: Gauge | undefined

  constructor(opts: SweeperOptions) {
    this.o = opts
    this.tokenGas = opts.tokenGas ?? 100_000n
    const keeper = privateKeyToAccount(opts.gasKeeperKey)
    this.gasKeeper = keeper.address
    this.sender = new TxSender({ ...opts, log: opts.log })
    this.sender.addSigner(keeper)
    if (opts.registry !== undefined) {
      const existing = (name: string) => opts.registry?.getSingleMetric(name) as Gauge | undefined
      this.keeperBalance =
        existing('bourse_gas_keeper_balance_wei') ??
        new Gauge({
          name: 'bourse_gas_keeper_balance_wei',
          help: "The gas keeper's native balance, in wei (as a float: for dashboards only).",
          labelNames: ['wallet'],
          registers: [opts.registry],
        })
      this.keeperLow =
        existing('bourse_gas_keeper_low') ??
        new Gauge({
          name: 'bourse_gas_keeper_low',
          help: '1 while the gas keeper holds less than its configured minimum: alert on it.',
          labelNames: ['wallet'],
          registers: [opts.registry],
        })
    }
  }

  /** One pass; the sweeps of addresses whose transactions went through move on even if another's are stuck. */
  async tick(): Promise<void> {
    await this.checkKeeper()
    await this.plan()
    await this.advance()
    const stuck = await this.sender.pump().then(
      () => null,
      (err: unknown) => err,
    )
    await this.advance()
    if (stuck !== null) throw stuck
  }

  /** Returns true when the gas keeper is below its minimum (and sets the alert gauge). */
  async checkKeeper(): Promise<boolean> {
    const balance = await this.sender.client.getBalance({ address: this.gasKeeper })
    const low = balance < this.o.gasKeeperMinimum
    this.keeperBalance?.set({ wallet: this.o.walletId }, Number(balance))
    this.keeperLow?.set({ wallet: this.o.walletId }, low ? 1 : 0)
    if (low)
      this.o.log?.warn({ wallet: this.o.walletId, balance: String(balance) }, 'gas keeper below its minimum')
    return low
  }

  /**
   * Opens a sweep for deposit addresses holding an asset at or above its threshold. An address sweeps one
   * asset at a time, tokens before the native coin: a native sweep takes the gas a token sweep needs.
   */
  async plan(): Promise<void> {
    const addresses = await queryRows<{ address_index: number; address: string }>(
      this.o.db,
      sql`select address_index, address from deposit_addresses where wallet_id = ${this.o.walletId} order by address_index`,
    )
    const assets = await queryRows<{ asset: string; contract: string | null }>(
      this.o.db,
      sql`select asset, contract from chain_wallet_assets where wallet_id = ${this.o.walletId}
          order by contract is null, asset`,
    )
    const open = await queryRows<{ from_address: string }>(
      this.o.db,
      sql`select from_address from sweeps where wallet_id = ${this.o.walletId} and state not in ('swept', 'failed')`,
    )
    const busy = new Set(open.map((s) => getAddress(s.from_address)))
    const fees = await this.sender.suggestedFees()
    for (const a of addresses) {
      const from = getAddress(a.address)
      if (busy.has(from)) continue
      const native = await this.sender.client.getBalance({ address: from })
      for (const asset of assets) {
        const threshold = this.o.thresholds[asset.asset]
        if (threshold === undefined) continue
        const { units, state } =
          asset.contract === null
            ? { units: native - NATIVE_GAS * fees.maxFeePerGas, state: 'ready' as const }
            : {
                units: await this.sender.client.readContract({
                  address: getAddress(asset.contract),
                  abi: erc20Abi,
                  functionName: 'balanceOf',
                  args: [from],
                }),
                state:
                  native >= this.tokenGas * fees.maxFeePerGas
                    ? ('ready' as const)
                    : ('gas_required' as const),
              }
        if (units < threshold || units <= 0n) continue
        await this.o.db.execute(
          sql`insert into sweeps (wallet_id, chain_id, asset, contract, address_index, from_address, to_address, units, state)
              values (${this.o.walletId}, ${BigInt(this.o.chainId)}, ${asset.asset}, ${asset.contract}, ${a.address_index},
                ${from}, ${getAddress(this.o.coldAddress)}, ${units.toString()}, ${state})
              on conflict do nothing`,
        )
        break
      }
    }
  }

  /** Moves every open sweep one step where its chain transactions allow. */
  async advance(): Promise<void> {
    const open = await queryRows<SweepRow>(
      this.o.db,
      sql`select id, asset, contract, address_index, from_address, to_address, units::text, state, gas_tx_id, chain_tx_id
          from sweeps where wallet_id = ${this.o.walletId} and state not in ('swept', 'failed') order by id`,
    )
    for (const s of open) {
      const id = String(s.id)
      if (s.state === 'gas_required') {
        const fees = await this.sender.suggestedFees()
        const native = await this.sender.client.getBalance({ address: getAddress(s.from_address) })
        const need = this.tokenGas * fees.maxFeePerGas * 2n - native
        const t = await this.sender.submit(this.gasKeeper, {
          purpose: 'gas_topup',
          refId: id,
          to: getAddress(s.from_address),
          value: need > 0n ? need : 1n,
          gas: NATIVE_GAS,
        })
        await this.set(s.id, 'waiting_for_gas', sql`gas_tx_id = ${t.id},`, 'gas_required')
      } else if (s.state === 'waiting_for_gas') {
        const t = await this.txById(s.gas_tx_id!)
        if (t.state === 'confirmed') await this.set(s.id, 'ready', sql``, 'waiting_for_gas')
        if (t.state === 'reverted')
          await this.set(s.id, 'failed', sql`fail_reason = 'gas top-up reverted',`, 'waiting_for_gas')
      } else if (s.state === 'ready') {
        const account = this.o.depositAccount(s.address_index)
        if (account.address !== getAddress(s.from_address))
          throw new Error(`deposit key ${s.address_index} does not match`)
        this.sender.addSigner(account)
        const units = BigInt(s.units)
        const req =
          s.contract === null
            ? await this.nativeSweep(s, units)
            : {
                purpose: 'sweep' as const,
                refId: id,
                to: getAddress(s.contract),
                value: 0n,
                data: encodeFunctionData({
                  abi: erc20Abi,
                  functionName: 'transfer',
                  args: [getAddress(s.to_address), units],
                }),
                gas: this.tokenGas,
              }
        const t = await this.sender.submit(account.address, req)
        await this.set(s.id, 'sweeping', sql`chain_tx_id = ${t.id},`, 'ready')
      } else if (s.state === 'sweeping') {
        const t = await this.txById(s.chain_tx_id!)
        if (t.state === 'confirmed') await this.set(s.id, 'swept', sql``, 'sweeping')
        if (t.state === 'reverted')
          await this.set(s.id, 'failed', sql`fail_reason = 'sweep reverted',`, 'sweeping')
      }
    }
  }

  /** The native sweep pays its own gas: value = balance − 21000 × maxFee, with those fees fixed. */
  private async nativeSweep(s: SweepRow, planned: bigint) {
    const fees = await this.sender.suggestedFees()
    const balance = await this.sender.client.getBalance({ address: getAddress(s.from_address) })
    const value = balance - NATIVE_GAS * fees.maxFeePerGas
    return {
      purpose: 'sweep' as const,
      refId: String(s.id),
      to: getAddress(s.to_address),
      value: value < planned ? value : planned,
      gas: NATIVE_GAS,
      fees,
    }
  }

  private async set(id: bigint, state: SweepState, extra: ReturnType<typeof sql>, from: SweepState) {
    await this.o.db.execute(
      sql`update sweeps set ${extra} state = ${state}, updated_at = now() where id = ${id} and state = ${from}`,
    )
  }

  private async txById(id: bigint): Promise<ChainTx> {
    const [row] = await queryRows<{ purpose: 'sweep' | 'gas_topup'; ref_id: string }>(
      this.o.db,
      sql`select purpose, ref_id from chain_txs where id = ${id}`,
    )
    return (await this.sender.find(row!.purpose, row!.ref_id))!
  }
}

interface SweepRow {
  id: bigint
  asset: string
  contract: string | null
  address_index: number
  from_address: string
  to_address: string
  units: string
  state: SweepState
  gas_tx_id: bigint | null
  chain_tx_id: bigint | null
}
