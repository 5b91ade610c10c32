/**
 * The gateway's HTTP app: the Binance-compatible REST API v3 over the markets' engines, Postgres and the
 * shared cache. `createGatewayApp` is the whole of it, so `bourse gateway`, `bourse dev` and the tests serve
 * the same app; only where the engines live (remote URLs or in process) differs.
 */
import { getConnInfo } from '@hono/node-server/conninfo'
import { type Context, Hono } from 'hono'
import { RegExpRouter } from 'hono/router/reg-exp-router'
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import type { Database, Executor } from '../../adapters/db/database.ts'
import type { PubSubCache } from '../../adapters/pubsub/index.ts'
import { createLogger, type Logger } from '../../lib/log.ts'
import { clientAddress } from '../../lib/net.ts'
import { type WithdrawRoutesDeps, withdrawRoutes } from '../withdrawals/binance-routes.ts'
import { ApiKeyStore } from './api-keys.ts'
import { RateLimiter } from './binance/rate-limit.ts'
import { binanceRoutes } from './binance/routes.ts'
import type { EngineClient } from './engine-client.ts'
import { linkoraRoutes } from './linkora.ts'
import { MarketDirectory } from './markets.ts'
import { openApiDocument } from './openapi.ts'
import { requestMetrics } from './request-metrics.ts'
import type { OidcConfig } from './v1/auth.ts'
import { v1Routes } from './v1/routes.ts'

export interface GatewayConfig {
  /** 32 bytes that encrypt API secrets at rest (parseEncryptionKey). */
  keyEncryptionKey: Buffer
  /** REQUEST_WEIGHT per IP per minute; Binance's is 6000. */
  weightPerMinute: number
  /** 429s within a minute after which the IP is banned (418). */
  rejectionsBeforeBan: number
  /** Take the client's address from X-Forwarded-For (behind a trusted ingress), else from the socket. */
  trustProxy: boolean
  /** The /v1 admin API's bearer token (BOURSE_ADMIN_TOKEN); unset turns the admin API off. */
  adminToken?: string
  /** /v1 sign-in by JWTs of this OIDC issuer; unset accepts API keys only. */
  oidc?: OidcConfig
}

export interface GatewayDeps {
  db: Executor
  /** The analytics syncer's ClickHouse copy; without it, history endpoints read Postgres only. */
  analytics?: Analytics
  /** One client per market symbol. */
  engines: ReadonlyMap<string, EngineClient>
  cache: PubSubCache
  config: GatewayConfig
  log?: Logger
  /** The server clock, epoch milliseconds (tests move it). */
  now?: () => number
  /** Withdrawals through /sapi/v1/capital/withdraw/*: the limits and the networks' Wallets. */
  withdrawals?: Pick<WithdrawRoutesDeps, 'policy' | 'networks'>
}

export function createGatewayApp(deps: GatewayDeps): Hono {
  // RegExpRouter alone: one regular expression per method matches any path. Hono's default falls back to its
  // trie router (a tenth the speed, allocating per request) once any route is one the former cannot take, such
  // as a static segment beside a parameter with more segments after it; here that fails at start instead.
  const app = new Hono({ router: new RegExpRouter() })
  app.use(requestMetrics())
  const now = deps.now ?? Date.now
  // One key store for every route family, so a revoked key stops working everywhere at once.
  const keys = new ApiKeyStore(deps.db, deps.config.keyEncryptionKey)
  const ip = (c: Context) => clientIp(c, deps.config.trustProxy)
  const log = deps.log ?? createLogger('gateway')
  binanceRoutes(app, {
    db: deps.db,
    analytics: deps.analytics,
    engines: deps.engines,
    markets: new MarketDirectory(deps.db),
    cache: deps.cache,
    keys,
    limiter: new RateLimiter(
      deps.cache,
      { weightPerMinute: deps.config.weightPerMinute, rejectionsBeforeBan: deps.config.rejectionsBeforeBan },
      now,
    ),
    clientIp: ip,
    now,
    log,
  })
  if (deps.withdrawals !== undefined) {
    withdrawRoutes(app, {
      ...deps.withdrawals,
      db: deps.db as Database,
      keys,
      clientIp: ip,
      now,
      log,
    })
  }
  const endpoints = v1Routes(app, {
    db: deps.db,
    engines: deps.engines,
    keys,
    keyEncryptionKey: deps.config.keyEncryptionKey,
    adminToken: deps.config.adminToken,
    oidc: deps.config.oidc,
    clientIp: ip,
    now,
    log,
    ...(deps.withdrawals && { withdrawals: deps.withdrawals }),
  })
  linkoraRoutes(app, {
    engines: deps.engines,
    markets: new MarketDirectory(deps.db),
    cache: deps.cache,
    ...(deps.analytics && { analytics: deps.analytics }),
    now,
    log,
  })
  let openapi: object | undefined
  app.get('/openapi.json', (c) => {
    // Built on first ask, once every route is registered.
    openapi ??= openApiDocument(app, endpoints)
    return c.json(openapi)
  })
  return app
}

function clientIp(c: Context, trustProxy: boolean): string {
  return clientAddress(c.req.header('x-forwarded-for'), socketAddress(c), trustProxy)
}

function socketAddress(c: Context): string | undefined {
  try {
    return getConnInfo(c).remote.address
  } catch {
    return undefined // not served by @hono/node-server (app.request in tests): no socket to ask
  }
}
