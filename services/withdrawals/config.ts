/**
 * Withdrawal settings of the gateway, from its environment:
 *
 * - BOURSE_WITHDRAWAL_POLICY (JSON): the limits per asset,
 *   `{"USDT":{"dailyLimit":"50000","approvalAbove":"10000","minAmount":"10"}, "ETH":{...}}` (decimal strings).
 *   An asset not in it cannot be withdrawn; without the variable the withdrawal endpoints are off. The limits
 *   are the exchange operator's risk decision and are stored nowhere else (the Wallet resource and the
 *   chain_wallets table describe the chain, not how much may leave it), so they are configured explicitly
 *   and never guessed.
 * - BOURSE_WITHDRAWAL_WALLETS (optional list of Wallet ids): the networks withdrawals go out on, the first
 *   being the default. Without it they are derived from the chain_wallets table (every Wallet its syncer
 *   has registered, in id order), so a new Wallet needs no gateway change. A network's name is its Wallet id
 *   upper-cased, as in the deposit endpoints.
 */
import { sql } from 'drizzle-orm'
import { z } from 'zod'
import { type Executor, queryRows } from '../../adapters/db/database.ts'
import type { WithdrawRoutesDeps } from './binance-routes.ts'
import type { WithdrawalPolicy } from './withdrawals.ts'

const decimal = z
  .string({ error: 'expected a decimal string like "100.5"' })
  .regex(/^(0|[1-9][0-9]{0,29})(\.[0-9]{1,36})?$/, 'expected a decimal string like "100.5"')

const assetPolicy = z.object({
  dailyLimit: decimal,
  approvalAbove: decimal,
  minAmount: decimal.optional(),
})

const policySchema = z.record(
  z.string().regex(/^[A-Z0-9]{2,12}$/, 'expected asset symbols like USDT as keys'),
  assetPolicy,
)

/** BOURSE_WITHDRAWAL_POLICY's shape: a JSON text in, a WithdrawalPolicy out (issues named by their JSON path). */
export function withdrawalPolicyJson() {
  return z
    .string()
    .transform((text, ctx): unknown => {
      try {
        return JSON.parse(text)
      } catch {
        ctx.issues.push({
          code: 'custom',
          message: 'expected JSON like {"USDT":{"dailyLimit":"50000","approvalAbove":"10000"}}',
          input: text,
        })
        return z.NEVER
      }
    })
    .pipe(policySchema)
    .transform((assets): WithdrawalPolicy => ({ assets }))
}

/** A Wallet id as the operator names it. */
export const walletId = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'expected Wallet resource names like eth')

export type WithdrawalsConfig = Pick<WithdrawRoutesDeps, 'policy' | 'networks'>

/**
 * The gateway's withdrawal settings, or undefined (endpoints off) without a policy. Networks are the
 * listed wallets, else the registered ones.
 */
export async function withdrawalsConfig(
  db: Executor,
  opts: { policy?: WithdrawalPolicy; wallets?: readonly string[] },
): Promise<WithdrawalsConfig | undefined> {
  if (opts.policy === undefined) return undefined
  const wallets =
    opts.wallets !== undefined && opts.wallets.length > 0
      ? opts.wallets
      : (await queryRows<{ id: string }>(db, sql`select id from chain_wallets order by id`)).map((w) => w.id)
  return {
    policy: opts.policy,
    networks: wallets.map((id) => ({ network: id.toUpperCase(), walletId: id })),
  }
}
