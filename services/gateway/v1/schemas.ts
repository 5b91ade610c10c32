/**
 * The zod schemas of the native /v1 API: they validate every request and, through z.toJSONSchema, are the
 * OpenAPI document's parameters and bodies (../openapi.ts). Ids travel as decimal strings (they are int8 in
 * Postgres), amounts as decimal strings.
 */
import { z } from 'zod'
import { ERROR_CODES } from '../../../lib/errors.ts'

const MAX_INT8 = 9223372036854775807n

/** A positive int8 id as a decimal string. */
export const Id = z
  .string()
  .regex(/^[1-9][0-9]{0,18}$/, 'expected a positive integer id')
  // zod runs every check even after the regex failed: test the digits again before BigInt.
  .refine((text) => /^[0-9]{1,19}$/.test(text) && BigInt(text) <= MAX_INT8, 'expected an id below 2^63')
  .transform(BigInt)
  .meta({ description: 'A positive integer id, as a decimal string.', example: '1' })

/** Free text Postgres can store: well-formed UTF-16 (no lone surrogates) and no NUL character. */
function text(min: number, max: number) {
  return z
    .string()
    .min(min)
    .max(max)
    .refine((s) => s.isWellFormed() && !s.includes('\u0000'), 'expected text without NUL or lone surrogates')
}

export const UserName = z
  .string()
  .regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'expected 1-64 characters of [A-Za-z0-9_.@-]')
  .meta({ example: 'alice' })

export const MarketSymbol = z
  .string()
  .regex(/^[A-Z0-9]{2,32}$/, 'expected a market symbol such as BTCUSDT')
  .meta({ example: 'BTCUSDT' })

export const Asset = z
  .string()
  .regex(/^[A-Z0-9]{1,16}$/, 'expected an asset symbol such as BTC')
  .meta({ example: 'USDT' })

export const Permission = z.enum(['read', 'trade', 'withdraw'])

export const IpAddress = z
  .string()
  .regex(
    /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$|^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$/,
    'expected an IPv4 or IPv6 address',
  )
  .max(45)
  .meta({ example: '203.0.113.7' })

// ---- Requests

export const UserIdParams = z.strictObject({ userId: Id })
export const ApiKeyParams = z.strictObject({ keyId: Id })
export const UserApiKeyParams = z.strictObject({ userId: Id, keyId: Id })
export const MarketParams = z.strictObject({ symbol: MarketSymbol })

/** A page size of 1-1000 (default 100) in a query string. */
const pageLimit = (what: string) =>
  z
    .string()
    // The range as a pattern, so that the document says exactly what is accepted.
    .regex(/^(?:1000|[1-9][0-9]{0,2})$/, 'expected an integer 1-1000')
    .transform(Number)
    .optional()
    .meta({ description: `At most this many ${what} (1-1000, default 100).` })

/** A Wallet resource's name, as the id of its chain wallet. */
const WalletName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9.]{0,61}[a-z0-9])?$/, 'expected a Wallet resource name')

export const ListUsersQuery = z.strictObject({
  limit: pageLimit('users'),
  after: Id.optional().meta({ description: 'Users whose id is greater than this (the last id of a page).' }),
})

export const CreateUserBody = z.strictObject({
  name: UserName,
  oidcSubject: text(1, 255).optional().meta({
    description: "The user's `sub` at the configured OIDC issuer: a JWT with it signs in as this user.",
  }),
})

export const CreateApiKeyBody = z.strictObject({
  label: text(0, 100).optional(),
  kind: z.enum(['HMAC', 'ED25519']).default('HMAC').meta({
    description: 'HMAC: the gateway generates a secret (shown once). ED25519: send your public key.',
  }),
  publicKey: text(1, 1000).optional().meta({ description: 'ED25519 only: the public key in PEM (SPKI).' }),
  permissions: z.array(Permission).max(3).default(['read']),
  allowedIps: z
    .array(IpAddress)
    .max(30)
    .default([])
    .meta({ description: 'Exact client addresses the key may be used from; empty allows any.' }),
})

export const Decimal = z
  .string()
  .regex(/^-?[0-9]{1,30}(\.[0-9]{1,30})?$/, 'expected a decimal string such as -1.5')

/** Who acted, for the audit trail. */
const Operator = z
  .string()
  .regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'expected 1-64 characters of [A-Za-z0-9_.@-]')
  .optional()
  .meta({ description: 'Who made it, for the audit trail (default "admin").' })

export const AdjustBalanceBody = z.strictObject({
  userId: Id,
  asset: Asset,
  amount: Decimal.refine((text) => /[1-9]/.test(text), 'expected a non-zero amount').meta({
    description: 'Non-zero and signed: positive credits the user, negative debits (never below zero).',
    example: '-12.5',
  }),
  reason: text(1, 500).trim().min(1).meta({ description: 'Why: kept in the ledger journal memo.' }),
  idempotencyKey: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,100}$/, 'expected 1-100 characters of [A-Za-z0-9_.:-]')
    .optional()
    .meta({ description: 'The same key books the adjustment once; default: a new key per request.' }),
  operator: Operator,
})

// ---- Responses

export const ErrorBody = z
  .object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    field: z.string().optional().meta({ description: 'The input at fault.' }),
  })
  .meta({ description: 'Every /v1 error.' })

const IdOut = z.string().meta({ description: 'An integer id as a decimal string.' })
const Time = z.string().meta({ description: 'An ISO 8601 timestamp.' })

export const User = z.object({
  id: IdOut,
  name: z.string(),
  oidcSubject: z.string().nullable(),
  createdAt: Time,
})

export const ApiKeyView = z.object({
  id: IdOut,
  userId: IdOut,
  apiKey: z.string().meta({ description: 'What the client sends in X-Bourse-Key (and X-MBX-APIKEY).' }),
  kind: z.enum(['HMAC', 'ED25519']),
  label: z.string(),
  permissions: z.array(Permission),
  allowedIps: z.array(z.string()),
  createdAt: Time,
  revokedAt: Time.nullable(),
})

export const CreatedApiKey = ApiKeyView.extend({
  secretKey: z
    .string()
    .optional()
    .meta({ description: 'HMAC only: the secret, shown this once; the gateway keeps it encrypted.' }),
})

export const Balance = z.object({
  asset: z.string(),
  available: z.string(),
  frozen: z.string(),
})

export const Me = z.object({
  userId: IdOut,
  name: z.string(),
  authenticatedBy: z.enum(['apiKey', 'jwt']),
  permissions: z.array(Permission),
})

export const MarketState = z.object({ symbol: z.string(), status: z.enum(['trading', 'halted']) })

export const Adjustment = z.object({
  journalId: IdOut,
  duplicate: z
    .boolean()
    .meta({ description: 'The idempotency key had been booked before: nothing changed.' }),
  idempotencyKey: z.string(),
  balance: Balance,
})

export const WithdrawalParams = z.strictObject({ withdrawalId: Id })

export const ReviewWithdrawalBody = z.strictObject({
  operator: Operator,
  reason: text(1, 500)
    .optional()
    .meta({ description: 'Why a withdrawal is rejected (required to reject); kept with the withdrawal.' }),
})

export const WithdrawBody = z.strictObject({
  asset: Asset,
  network: WalletName.optional().meta({
    description: 'The Wallet (chain) to send on; default: the first network configured.',
  }),
  address: z
    .string()
    .max(100)
    .meta({ description: 'The 0x recipient address; mixed case must carry a valid EIP-55 checksum.' }),
  amount: Decimal.refine((text) => /[1-9]/.test(text) && !text.startsWith('-'), 'expected a positive amount'),
  clientId: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'expected 1-64 characters of [A-Za-z0-9_.:-]')
    .optional()
    .meta({
      description: 'Your id for the request: the same id again returns the first request, not a second.',
    }),
})

export const ListWithdrawalsQuery = z.strictObject({ limit: pageLimit('withdrawals, newest first') })

export const WithdrawalView = z.object({
  id: z.string(),
  userId: z.string(),
  asset: z.string(),
  network: z.string(),
  address: z.string(),
  amount: z.string(),
  state: z.enum(['pending_approval', 'approved', 'processing', 'completed', 'failed', 'rejected']),
  clientId: z.string().nullable(),
  txHash: z.string().nullable(),
  failReason: z.string().nullable(),
  createdAt: Time,
})

export const ResumeWithdrawalsBody = z.strictObject({
  operator: Operator,
  wallet: WalletName.optional().meta({
    description: 'A wallet id, or omitted for the exchange-wide pause that reconciliation sets.',
  }),
})

export const WithdrawalsResumed = z.object({ resumed: z.boolean() })
