/**
 * Who is calling /v1.
 *
 * - Administrators: `Authorization: Bearer <BOURSE_ADMIN_TOKEN>`, compared in constant time (both sides hashed
 *   first, so neither the value nor its length leaks through timing). No token configured: the admin API is off.
 * - Users, either of:
 *   - an API key: `X-Bourse-Key: <apiKey>`, `X-Bourse-Timestamp: <epoch ms>` and `X-Bourse-Signature` over
 *     `<timestamp>\n<METHOD>\n<path and query as sent>\n<body>`: HMAC-SHA256 hex with the key's secret, or
 *     Ed25519 base64 with its private key — the same verification as the Binance API's keys (ApiKeyRecord.verify).
 *     The timestamp must be within 5 s behind and 1 s ahead of the server clock; the key's IP list applies.
 *   - a JWT from the configured OIDC issuer: `Authorization: Bearer <jwt>`, verified against the issuer's JWKS
 *     (from discovery, or a configured URL) with its `iss`, `aud` when configured, and expiry; its `sub` is the
 *     user whose `oidcSubject` it is.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { createRemoteJWKSet, type JWTVerifyGetKey, errors as joseErrors, jwtVerify } from 'jose'
import type { Executor } from '../../../adapters/db/database.ts'
import { users } from '../../../adapters/db/schema.ts'
import { BourseError } from '../../../lib/errors.ts'
import type { ApiKeyStore } from '../api-keys.ts'

export interface OidcConfig {
  issuer: string
  /** Expected `aud`; unset accepts any audience. */
  audience?: string
  /** The JWKS URL; unset: `jwks_uri` from the issuer's /.well-known/openid-configuration. */
  jwksUrl?: string
}

export type Permission = 'read' | 'trade' | 'withdraw'

export interface UserAuth {
  userId: bigint
  authenticatedBy: 'apiKey' | 'jwt'
  /** A JWT stands for the user: every permission. A key has its own. */
  permissions: Permission[]
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest()

export function adminAuthenticator(token: string | undefined): (request: Request) => void {
  const expected = token === undefined || token === '' ? undefined : digest(token)
  return (request) => {
    if (expected === undefined)
      throw new BourseError('unauthorized', 'the admin API is off: no admin token is configured')
    const given = bearer(request)
    if (given === undefined) throw new BourseError('unauthorized', 'send Authorization: Bearer <admin token>')
    if (!timingSafeEqual(digest(given), expected)) throw new BourseError('unauthorized', 'wrong admin token')
  }
}

function bearer(request: Request): string | undefined {
  const header = request.headers.get('authorization')
  if (header === null) return undefined
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return m === null ? undefined : m[1]
}

const API_KEY = /^[A-Za-z0-9]{1,128}$/
const MAX_AGE_MS = 5000
const MAX_AHEAD_MS = 1000

export class UserAuthenticator {
  private readonly db: Executor
  private readonly keys: ApiKeyStore
  private readonly oidc: OidcConfig | undefined
  private jwks: JWTVerifyGetKey | undefined

  constructor(db: Executor, keys: ApiKeyStore, oidc?: OidcConfig) {
    this.db = db
    this.keys = keys
    this.oidc = oidc
  }

  /** `body` is the raw request body as sent (signed with API keys). */
  async authenticate(request: Request, body: string, ip: string, now: number): Promise<UserAuth> {
    const token = bearer(request)
    if (token !== undefined) return this.byJwt(token)
    if (request.headers.has('authorization'))
      throw new BourseError('unauthorized', 'expected Authorization: Bearer <jwt>')
    if (request.headers.has('x-bourse-key')) return this.byKey(request, body, ip, now)
    throw new BourseError('unauthorized', 'send an API key (X-Bourse-Key) or Authorization: Bearer <jwt>')
  }

  private async byKey(request: Request, body: string, ip: string, now: number): Promise<UserAuth> {
    const apiKey = request.headers.get('x-bourse-key')!
    if (!API_KEY.test(apiKey))
      throw new BourseError('unauthorized', 'X-Bourse-Key: not an API key', { field: 'X-Bourse-Key' })
    const timestamp = request.headers.get('x-bourse-timestamp') ?? ''
    if (!/^[0-9]{1,15}$/.test(timestamp))
      throw new BourseError('unauthorized', 'X-Bourse-Timestamp: expected epoch milliseconds', {
        field: 'X-Bourse-Timestamp',
      })
    const signature = request.headers.get('x-bourse-signature') ?? ''
    if (signature === '' || signature.length > 200)
      throw new BourseError('unauthorized', 'X-Bourse-Signature: missing', { field: 'X-Bourse-Signature' })
    const key = await this.keys.find(apiKey)
    if (key === null)
      throw new BourseError('unauthorized', 'unknown or revoked API key', { field: 'X-Bourse-Key' })
    if (key.allowedIps.length > 0 && !key.allowedIps.includes(ip))
      throw new BourseError('forbidden', 'this API key may not be used from this address')
    const url = new URL(request.url)
    const payload = `${timestamp}\n${request.method}\n${url.pathname}${url.search}\n${body}`
    if (!key.verify(payload, signature))
      throw new BourseError('unauthorized', 'X-Bourse-Signature: wrong signature', {
        field: 'X-Bourse-Signature',
      })
    const age = now - Number(timestamp)
    if (age > MAX_AGE_MS || age < -MAX_AHEAD_MS)
      throw new BourseError('unauthorized', 'X-Bourse-Timestamp: outside the 5 s window, check the clock', {
        field: 'X-Bourse-Timestamp',
      })
    const permissions: Permission[] = []
    if (key.canRead) permissions.push('read')
    if (key.canTrade) permissions.push('trade')
    if (key.canWithdraw) permissions.push('withdraw')
    return { userId: key.userId, authenticatedBy: 'apiKey', permissions }
  }

  private async byJwt(token: string): Promise<UserAuth> {
    const oidc = this.oidc
    if (oidc === undefined)
      throw new BourseError('unauthorized', 'sign-in by JWT is off: no OIDC issuer is configured')
    let subject: string | undefined
    try {
      const { payload } = await jwtVerify(token, await this.keySet(oidc), {
        issuer: oidc.issuer,
        ...(oidc.audience === undefined ? {} : { audience: oidc.audience }),
      })
      subject = payload.sub
    } catch (err) {
      if (err instanceof BourseError) throw err
      if (err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError))
        throw new BourseError('unavailable', 'the OIDC issuer could not be reached', { cause: err })
      throw new BourseError('unauthorized', `invalid JWT: ${(err as Error).message}`)
    }
    if (subject === undefined || subject === '')
      throw new BourseError('unauthorized', 'the JWT has no subject')
    const [user] = await this.db.select({ id: users.id }).from(users).where(eq(users.oidcSubject, subject))
    if (user === undefined) throw new BourseError('unauthorized', 'no user has this OIDC subject')
    return { userId: user.id, authenticatedBy: 'jwt', permissions: ['read', 'trade', 'withdraw'] }
  }

  private async keySet(oidc: OidcConfig): Promise<JWTVerifyGetKey> {
    if (this.jwks !== undefined) return this.jwks
    let url = oidc.jwksUrl
    if (url === undefined) {
      const discovery = `${oidc.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`
      let document: { jwks_uri?: unknown }
      try {
        const response = await fetch(discovery, { signal: AbortSignal.timeout(5000) })
        if (!response.ok) throw new Error(`${discovery} answered ${response.status}`)
        document = (await response.json()) as { jwks_uri?: unknown }
      } catch (err) {
        throw new BourseError('unavailable', 'the OIDC issuer could not be reached', { cause: err })
      }
      if (typeof document.jwks_uri !== 'string')
        throw new BourseError('unavailable', 'the OIDC discovery document has no jwks_uri')
      url = document.jwks_uri
    }
    this.jwks = createRemoteJWKSet(new URL(url))
    return this.jwks
  }
}
