/**
 * The native /v1 API: users and their API keys (administrators, and users for their own keys), balances,
 * and administration (halt/resume a market, adjust a balance with a reason, booked in the ledger with the
 * reason in its journal memo). Each endpoint is one table entry: its zod schemas validate the request and
 * are the OpenAPI document's (../openapi.ts), so the two cannot drift apart. Errors are `{code, message,
 * field?}` with the BourseError's status. Authentication: ./auth.ts.
 */
import { randomUUID } from 'node:crypto'
import { and, asc, eq, gt } from 'drizzle-orm'
import type { Context, Hono } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import type { z } from 'zod'
import { type Database, databaseError, type Executor } from '../../../adapters/db/database.ts'
import { apiKeys, assets, users } from '../../../adapters/db/schema.ts'
import { balancesOf } from '../../../ledger/ledger.ts'
import { adjustBalance } from '../../../ledger/operations.ts'
import { BourseError, invalidInput } from '../../../lib/errors.ts'
import type { Logger } from '../../../lib/log.ts'
import { resumeWithdrawals } from '../../cron/pause.ts'
import type { WithdrawRoutesDeps } from '../../withdrawals/binance-routes.ts'
import {
  approveWithdrawal,
  listWithdrawals,
  rejectWithdrawal,
  requestWithdrawal,
  type Withdrawal,
} from '../../withdrawals/withdrawals.ts'
import { type ApiKeyStore, createApiKey } from '../api-keys.ts'
import type { EngineClient } from '../engine-client.ts'
import {
  adminAuthenticator,
  type OidcConfig,
  type Permission,
  type UserAuth,
  UserAuthenticator,
} from './auth.ts'
import {
  AdjustBalanceBody,
  Adjustment,
  ApiKeyParams,
  ApiKeyView,
  Balance,
  CreateApiKeyBody,
  CreatedApiKey,
  CreateUserBody,
  ListUsersQuery,
  ListWithdrawalsQuery,
  MarketParams,
  MarketState,
  Me,
  ResumeWithdrawalsBody,
  ReviewWithdrawalBody,
  User,
  UserApiKeyParams,
  UserIdParams,
  WithdrawalParams,
  WithdrawalsResumed,
  WithdrawalView,
  WithdrawBody,
} from './schemas.ts'

export type Auth = 'admin' | 'user' | 'none'

export interface Endpoint {
  method: 'get' | 'post' | 'delete'
  /** OpenAPI style: /v1/users/{userId}. */
  path: string
  operationId: string
  summary: string
  description?: string
  tag: 'users' | 'api-keys' | 'account' | 'admin'
  auth: Auth
  /** A user route's API-key permission (a JWT has every permission). */
  permission?: Permission
  params?: z.ZodObject
  query?: z.ZodObject
  body?: z.ZodType
  status: 200 | 201
  response: z.ZodType
  /** The error statuses it answers besides 400 (and 401 when authenticated). */
  errors: number[]
  handler(input: Input): Promise<unknown>
}

interface Input {
  // biome-ignore lint/suspicious/noExplicitAny: each endpoint's schemas type these; the table erases them
  params: any
  // biome-ignore lint/suspicious/noExplicitAny: as above
  query: any
  // biome-ignore lint/suspicious/noExplicitAny: as above
  body: any
  user: UserAuth | undefined
  c: Context
}

export interface V1Deps {
  db: Executor
  engines: ReadonlyMap<string, EngineClient>
  keys: ApiKeyStore
  keyEncryptionKey: Buffer
  adminToken?: string
  oidc?: OidcConfig
  clientIp: (c: Context) => string
  now: () => number
  log: Logger
  /** The withdrawal limits and the networks' Wallets; without them, no withdrawal endpoints. */
  withdrawals?: Pick<WithdrawRoutesDeps, 'policy' | 'networks'>
}

const MAX_BODY = 64 * 1024

export function v1Endpoints(deps: V1Deps): Endpoint[] {
  const db = deps.db

  async function userRow(id: bigint) {
    const [row] = await db.select().from(users).where(eq(users.id, id))
    if (row === undefined) throw new BourseError('not_found', `no user ${id}`, { field: 'userId' })
    return row
  }

  async function keysOf(userId: bigint) {
    const rows = await db.select().from(apiKeys).where(eq(apiKeys.userId, userId)).orderBy(asc(apiKeys.id))
    return rows.map(keyView)
  }

  async function createKey(userId: bigint, body: z.output<typeof CreateApiKeyBody>) {
    await userRow(userId)
    if (body.kind === 'HMAC' && body.publicKey !== undefined)
      throw invalidInput('publicKey', 'an HMAC key has no public key: its secret is generated')
    const permissions = new Set(body.permissions)
    const created = await createApiKey(db, deps.keyEncryptionKey, {
      userId,
      kind: body.kind,
      ...(body.publicKey === undefined ? {} : { publicKey: body.publicKey }),
      ...(body.label === undefined ? {} : { label: body.label }),
      canRead: permissions.has('read'),
      canTrade: permissions.has('trade'),
      canWithdraw: permissions.has('withdraw'),
      allowedIps: [...new Set(body.allowedIps)],
    })
    const [row] = await db.select().from(apiKeys).where(eq(apiKeys.apiKey, created.apiKey))
    deps.log.info({ userId: String(userId), keyId: String(row!.id), kind: body.kind }, 'API key created')
    return created.secretKey === undefined
      ? keyView(row!)
      : { ...keyView(row!), secretKey: created.secretKey }
  }

  async function revokeKey(userId: bigint, keyId: bigint) {
    const [row] = await db
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.id, keyId), eq(apiKeys.userId, userId)))
      .returning()
    if (row === undefined)
      throw new BourseError('not_found', `user ${userId} has no API key ${keyId}`, { field: 'keyId' })
    deps.log.info({ userId: String(userId), keyId: String(keyId) }, 'API key revoked')
    return keyView(row)
  }

  return [
    {
      method: 'post',
      path: '/v1/users',
      operationId: 'createUser',
      summary: 'Create a user',
      tag: 'users',
      auth: 'admin',
      body: CreateUserBody,
      status: 201,
      response: User,
      errors: [409],
      async handler({ body }) {
        const b = body as z.output<typeof CreateUserBody>
        try {
          const [row] = await db
            .insert(users)
            .values({ name: b.name, oidcSubject: b.oidcSubject ?? null })
            .returning()
          return userView(row!)
        } catch (err) {
          if (databaseError(err, '23505'))
            throw new BourseError('conflict', 'a user has this name or OIDC subject already', {
              field: 'name',
            })
          throw err
        }
      },
    },
    {
      method: 'get',
      path: '/v1/users',
      operationId: 'listUsers',
      summary: 'List users by id',
      tag: 'users',
      auth: 'admin',
      query: ListUsersQuery,
      status: 200,
      response: User.array(),
      errors: [],
      async handler({ query }) {
        const q = query as z.output<typeof ListUsersQuery>
        const rows = await db
          .select()
          .from(users)
          .where(q.after === undefined ? undefined : gt(users.id, q.after))
          .orderBy(asc(users.id))
          .limit(q.limit ?? 100)
        return rows.map(userView)
      },
    },
    {
      method: 'get',
      path: '/v1/users/{userId}',
      operationId: 'getUser',
      summary: 'A user',
      tag: 'users',
      auth: 'admin',
      params: UserIdParams,
      status: 200,
      response: User,
      errors: [404],
      handler: async ({ params }) => userView(await userRow(params.userId)),
    },
    {
      method: 'post',
      path: '/v1/users/{userId}/api-keys',
      operationId: 'createUserApiKey',
      summary: 'Create an API key for a user (the secret is in this answer only)',
      tag: 'api-keys',
      auth: 'admin',
      params: UserIdParams,
      body: CreateApiKeyBody,
      status: 201,
      response: CreatedApiKey,
      errors: [404],
      handler: ({ params, body }) => createKey(params.userId, body),
    },
    {
      method: 'get',
      path: '/v1/users/{userId}/api-keys',
      operationId: 'listUserApiKeys',
      summary: "A user's API keys, revoked ones included, without secrets",
      tag: 'api-keys',
      auth: 'admin',
      params: UserIdParams,
      status: 200,
      response: ApiKeyView.array(),
      errors: [404],
      async handler({ params }) {
        await userRow(params.userId)
        return keysOf(params.userId)
      },
    },
    {
      method: 'delete',
      path: '/v1/users/{userId}/api-keys/{keyId}',
      operationId: 'revokeUserApiKey',
      summary: "Revoke a user's API key (it stops working within seconds)",
      tag: 'api-keys',
      auth: 'admin',
      params: UserApiKeyParams,
      status: 200,
      response: ApiKeyView,
      errors: [404],
      handler: ({ params }) => revokeKey(params.userId, params.keyId),
    },
    {
      method: 'get',
      path: '/v1/me',
      operationId: 'me',
      summary: 'Who the credentials stand for',
      tag: 'account',
      auth: 'user',
      status: 200,
      response: Me,
      errors: [],
      async handler({ user }) {
        const row = await userRow(user!.userId)
        return {
          userId: String(row.id),
          name: row.name,
          authenticatedBy: user!.authenticatedBy,
          permissions: user!.permissions,
        }
      },
    },
    {
      method: 'get',
      path: '/v1/balances',
      operationId: 'balances',
      summary: "The caller's balances, one per asset held",
      tag: 'account',
      auth: 'user',
      permission: 'read',
      status: 200,
      response: Balance.array(),
      errors: [403],
      handler: async ({ user }) => balancesOf(db, user!.userId),
    },
    {
      method: 'post',
      path: '/v1/api-keys',
      operationId: 'createApiKey',
      summary: 'Create an API key for yourself (signed in by JWT; the secret is in this answer only)',
      description: 'An API key cannot create keys: sign in with a JWT from the OIDC issuer.',
      tag: 'api-keys',
      auth: 'user',
      body: CreateApiKeyBody,
      status: 201,
      response: CreatedApiKey,
      errors: [403],
      async handler({ user, body }) {
        if (user!.authenticatedBy !== 'jwt')
          throw new BourseError(
            'forbidden',
            'API keys are created by a signed-in user (JWT) or an administrator',
          )
        return createKey(user!.userId, body)
      },
    },
    {
      method: 'get',
      path: '/v1/api-keys',
      operationId: 'listApiKeys',
      summary: 'Your API keys, without secrets',
      tag: 'api-keys',
      auth: 'user',
      status: 200,
      response: ApiKeyView.array(),
      errors: [],
      handler: ({ user }) => keysOf(user!.userId),
    },
    {
      method: 'delete',
      path: '/v1/api-keys/{keyId}',
      operationId: 'revokeApiKey',
      summary: 'Revoke one of your API keys',
      tag: 'api-keys',
      auth: 'user',
      params: ApiKeyParams,
      status: 200,
      response: ApiKeyView,
      errors: [404],
      handler: ({ user, params }) => revokeKey(user!.userId, params.keyId),
    },
    ...(deps.withdrawals === undefined ? [] : withdrawalEndpoints(db as Database, deps.withdrawals)),
    ...(['halt', 'resume'] as const).map(
      (action): Endpoint => ({
        method: 'post',
        path: `/v1/admin/markets/{symbol}/${action}`,
        operationId: `${action}Market`,
        summary:
          action === 'halt'
            ? 'Halt a market: no new orders match until resumed (committed before the answer)'
            : 'Resume trading on a halted market',
        tag: 'admin',
        auth: 'admin',
        params: MarketParams,
        status: 200,
        response: MarketState,
        errors: [404, 503],
        async handler({ params }) {
          const engine = deps.engines.get(params.symbol)
          if (engine === undefined)
            throw new BourseError('not_found', `no market ${params.symbol}`, { field: 'symbol' })
          const status = await engine[action]()
          deps.log.info({ symbol: params.symbol, status }, `market ${action}`)
          return { symbol: params.symbol, status }
        },
      }),
    ),
    ...(['approve', 'reject'] as const).map(
      (action): Endpoint => ({
        method: 'post',
        path: `/v1/admin/withdrawals/{withdrawalId}/${action}`,
        operationId: `${action}Withdrawal`,
        summary:
          action === 'approve'
            ? 'Approve a withdrawal held for approval: the syncer then signs and sends it'
            : 'Reject a withdrawal held for approval: its funds go back to the user (reason required)',
        tag: 'admin',
        auth: 'admin',
        params: WithdrawalParams,
        body: ReviewWithdrawalBody,
        status: 200,
        response: WithdrawalView,
        errors: [400, 404, 409],
        async handler({ params, body }) {
          const b = body as z.output<typeof ReviewWithdrawalBody>
          const operator = b.operator ?? 'admin'
          if (action === 'reject' && b.reason === undefined)
            throw invalidInput('reason', 'is required to reject')
          const w =
            action === 'approve'
              ? await approveWithdrawal(db as Database, params.withdrawalId, operator)
              : await rejectWithdrawal(db as Database, params.withdrawalId, operator, b.reason!)
          deps.log.info({ withdrawal: String(w.id), state: w.state, operator }, `withdrawal ${action}`)
          return withdrawalView(w)
        },
      }),
    ),
    {
      method: 'post',
      path: '/v1/admin/withdrawal-pauses/resume',
      operationId: 'resumeWithdrawals',
      summary: 'Resume withdrawals paused by reconciliation (liabilities exceeded on-chain holdings)',
      tag: 'admin',
      auth: 'admin',
      body: ResumeWithdrawalsBody,
      status: 200,
      response: WithdrawalsResumed,
      errors: [400],
      async handler({ body }) {
        const b = body as z.output<typeof ResumeWithdrawalsBody>
        const resumed = await resumeWithdrawals(db, {
          by: b.operator ?? 'admin',
          ...(b.wallet && { scope: b.wallet }),
        })
        deps.log.info({ resumed, wallet: b.wallet ?? '*' }, 'withdrawals resume')
        return { resumed }
      },
    },
    {
      method: 'post',
      path: '/v1/admin/balance-adjustments',
      operationId: 'adjustBalance',
      summary: "Adjust a user's balance with a reason, booked in the ledger against custody",
      description:
        'The journal (kind adjustment) carries "<operator>: <reason>" as its memo. A debit never takes a balance below zero.',
      tag: 'admin',
      auth: 'admin',
      body: AdjustBalanceBody,
      status: 201,
      response: Adjustment,
      errors: [404, 422],
      async handler({ body }) {
        const b = body as z.output<typeof AdjustBalanceBody>
        await userRow(b.userId)
        const [asset] = await db.select().from(assets).where(eq(assets.symbol, b.asset))
        if (asset === undefined) throw new BourseError('not_found', `no asset ${b.asset}`, { field: 'asset' })
        const fraction = b.amount.split('.')[1] ?? ''
        if (fraction.replace(/0+$/, '').length > asset.scale)
          throw invalidInput('amount', `${b.asset} has ${asset.scale} decimal places`)
        const key = b.idempotencyKey ?? randomUUID()
        const result = await adjustBalance(db as Database, {
          userId: b.userId,
          asset: b.asset,
          amount: b.amount,
          key,
          reason: b.reason,
          admin: b.operator ?? 'admin',
        })
        deps.log.info(
          { userId: String(b.userId), asset: b.asset, amount: b.amount, journalId: String(result.journalId) },
          'balance adjusted',
        )
        const balance = (await balancesOf(db, b.userId)).find((x) => x.asset === b.asset) ?? {
          asset: b.asset,
          available: '0',
          frozen: '0',
        }
        return {
          journalId: String(result.journalId),
          duplicate: result.duplicate,
          idempotencyKey: key,
          balance,
        }
      },
    },
  ]
}

/** Serves the endpoints on `app`. */
export function v1Routes(app: Hono, deps: V1Deps, endpoints: Endpoint[] = v1Endpoints(deps)): Endpoint[] {
  const admin = adminAuthenticator(deps.adminToken)
  const userAuth = new UserAuthenticator(deps.db, deps.keys, deps.oidc)
  for (const e of endpoints) {
    app.on(e.method.toUpperCase(), e.path.replace(/\{(\w+)\}/g, ':$1'), async (c) => {
      try {
        const text = await bodyText(c.req.raw)
        let user: UserAuth | undefined
        if (e.auth === 'admin') admin(c.req.raw)
        else if (e.auth === 'user') {
          user = await userAuth.authenticate(c.req.raw, text, deps.clientIp(c), deps.now())
          if (e.permission !== undefined && !user.permissions.includes(e.permission))
            throw new BourseError('forbidden', `this API key lacks the ${e.permission} permission`)
        }
        const params = e.params === undefined ? {} : parse(e.params, c.req.param(), '')
        const query = parse(e.query ?? emptyQuery, c.req.query(), '')
        let body: unknown
        if (e.body !== undefined) body = parse(e.body, jsonOf(text), '')
        else if (text.trim() !== '') throw invalidInput('body', 'this endpoint takes no body')
        const result = await e.handler({ params, query, body, user, c })
        return c.json(result as object, e.status)
      } catch (err) {
        const error =
          err instanceof BourseError ? err : new BourseError('internal', 'internal error', { cause: err })
        if (error.status >= 500)
          deps.log.error({ err, method: e.method, path: c.req.path }, `/v1 ${error.code}: ${error.message}`)
        return c.json(error.toJSON(), error.status as ContentfulStatusCode)
      }
    })
  }
  return endpoints
}

const emptyQuery = {
  safeParse(input: Record<string, string>) {
    const names = Object.keys(input)
    return names.length === 0
      ? ({ success: true, data: {} } as const)
      : ({
          success: false,
          error: {
            issues: [
              {
                code: 'unrecognized_keys',
                path: [],
                keys: names,
                message: `unexpected parameter ${names[0]}`,
              },
            ],
          },
        } as const)
  },
}

function parse(
  schema: {
    safeParse(input: unknown): { success: boolean; data?: unknown; error?: { issues: readonly unknown[] } }
  },
  input: unknown,
  prefix: string,
  // biome-ignore lint/suspicious/noExplicitAny: the caller's schema types it; Input erases it anyway
): any {
  const result = schema.safeParse(input)
  if (result.success) return result.data
  const issue = result.error!.issues[0] as {
    code: string
    path: PropertyKey[]
    keys?: string[]
    message: string
  }
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys![0]!] : issue.path
  const field = `${prefix}${path.map(String).join('.')}` || 'body'
  const message = issue.code === 'unrecognized_keys' ? `unexpected field ${issue.keys![0]}` : issue.message
  throw invalidInput(field, message)
}

async function bodyText(request: Request): Promise<string> {
  if (request.body === null) return ''
  const length = Number(request.headers.get('content-length') ?? '0')
  if (length > MAX_BODY) throw invalidInput('body', `larger than ${MAX_BODY} bytes`)
  const text = await request.text()
  if (text.length > MAX_BODY) throw invalidInput('body', `larger than ${MAX_BODY} bytes`)
  return text
}

function jsonOf(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw invalidInput('body', 'expected a JSON object')
  }
}

/** A user's own withdrawals: request one (the API key needs the withdraw permission) and list them. */
function withdrawalEndpoints(db: Database, w: NonNullable<V1Deps['withdrawals']>): Endpoint[] {
  return [
    {
      method: 'post',
      path: '/v1/withdrawals',
      operationId: 'requestWithdrawal',
      summary: 'Withdraw to an address on chain (held for approval above the limit; see GET for its state)',
      description:
        'The amount leaves your available balance at once. Checked: the address and its checksum, the asset on the network, the minimum and your daily limit.',
      tag: 'account',
      auth: 'user',
      permission: 'withdraw',
      body: WithdrawBody,
      status: 201,
      response: WithdrawalView,
      errors: [403, 422],
      async handler({ user, body }) {
        const b = body as z.output<typeof WithdrawBody>
        const network =
          b.network === undefined ? w.networks[0] : w.networks.find((n) => n.walletId === b.network)
        if (network === undefined) throw invalidInput('network', `withdrawals do not go out on ${b.network}`)
        return withdrawalView(
          await requestWithdrawal(db, w.policy, {
            userId: user!.userId,
            walletId: network.walletId,
            asset: b.asset,
            address: b.address,
            amount: b.amount,
            ...(b.clientId !== undefined && { clientId: b.clientId }),
          }),
        )
      },
    },
    {
      method: 'get',
      path: '/v1/withdrawals',
      operationId: 'listWithdrawals',
      summary: 'Your withdrawals, newest first',
      tag: 'account',
      auth: 'user',
      permission: 'read',
      query: ListWithdrawalsQuery,
      status: 200,
      response: WithdrawalView.array(),
      errors: [403],
      async handler({ user, query }) {
        const q = query as z.output<typeof ListWithdrawalsQuery>
        return (await listWithdrawals(db, user!.userId, { limit: q.limit ?? 100 })).map(withdrawalView)
      },
    },
  ]
}

function withdrawalView(w: Withdrawal): z.input<typeof WithdrawalView> {
  return {
    id: String(w.id),
    userId: String(w.userId),
    asset: w.asset,
    network: w.walletId,
    address: w.toAddress,
    amount: w.amount,
    state: w.state,
    clientId: w.clientId,
    txHash: w.txHash,
    failReason: w.failReason,
    createdAt: w.createdAt.toISOString(),
  }
}

function userView(row: typeof users.$inferSelect): z.input<typeof User> {
  return {
    id: String(row.id),
    name: row.name,
    oidcSubject: row.oidcSubject,
    createdAt: row.createdAt.toISOString(),
  }
}

function keyView(row: typeof apiKeys.$inferSelect): z.input<typeof ApiKeyView> {
  const permissions: Permission[] = []
  if (row.canRead) permissions.push('read')
  if (row.canTrade) permissions.push('trade')
  if (row.canWithdraw) permissions.push('withdraw')
  return {
    id: String(row.id),
    userId: String(row.userId),
    apiKey: row.apiKey,
    kind: row.kind,
    label: row.label,
    permissions,
    allowedIps: row.allowedIps,
    createdAt: row.createdAt.toISOString(),
    revokedAt: row.revokedAt === null ? null : row.revokedAt.toISOString(),
  }
}
