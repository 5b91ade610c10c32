/**
 * The gateway's HTTP app: the Binance-compatible REST API v3 over the markets' engines, Postgres and the
 * shared cache. `createGatewayApp` is the whole of it, so `bourse gateway`, `bourse dev` and the tests serve
 * the same app; only where the engines live (remote URLs or in process) differs.
 */
import { getConnInfo } from '@hono/node-server/conninfo'
import { type Context, Hono } from 'hono'
import type { Analytics } from '../../adapters/analytics/analytics.ts'
import type { Database, Executor } from '../../adapters/db/database.ts'
import type { PubSubCache } from '../../adapters/pubsub/index.ts'
import { createLogger, type Logger } from '../../lib/log.ts'
import { type WithdrawRoutesDeps, withdrawRoutes } from '../withdrawals/binance-routes.ts'
import { ApiKeyStore } from './api-keys.ts'
import { RateLimiter } from './binance/rate-limit.ts'
import { binanceRoutes } from './binance/routes.ts'
import type { EngineClient } from './engine-client.ts'
import { MarketDirectory } from './markets.ts'

export interface GatewayConfig {
  /** 32 bytes that encrypt API secrets at rest (parseEncryptionKey). */
  keyEncryptionKey: Buffer
  /** REQUEST_WEIGHT per IP per minute; Binance's is 6000. */
  weightPerMinute: number
  /** 429s within a minute after which the IP is banned (418). */
  rejectionsBeforeBan: number
  /** Take the client's address from X-Forwarded-For (behind a trusted ingress), else from the socket. */
  trustProxy: boolean
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
  const app = new Hono()
  const now = deps.now ?? Date.now
  binanceRoutes(app, {
    db: deps.db,
    analytics: deps.analytics,
    engines: deps.engines,
    markets: new MarketDirectory(deps.db),
    cache: deps.cache,
    keys: new ApiKeyStore(deps.db, deps.config.keyEncryptionKey),
    limiter: new RateLimiter(
      deps.cache,
      { weightPerMinute: deps.config.weightPerMinute, rejectionsBeforeBan: deps.config.rejectionsBeforeBan },
      now,
    ),
    clientIp: (c) => clientIp(c, deps.config.trustProxy),
    now,
    log: deps.log ?? createLogger('gateway'),
  })
  if (deps.withdrawals !== undefined) {
    withdrawRoutes(app, {
      ...deps.withdrawals,
      db: deps.db as Database,
      keys: new ApiKeyStore(deps.db, deps.config.keyEncryptionKey),
      clientIp: (c) => clientIp(c, deps.config.trustProxy),
      now,
      log: deps.log ?? createLogger('gateway'),
    })
  }
  return app
}

function clientIp(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header('x-forwarded-for')
    if (forwarded !== undefined) {
      const first = forwarded.split(',')[0]!.trim()
      if (first !== '') return first
    }
  }
  try {
    const address = getConnInfo(c).remote.address
    if (address !== undefined) return address.startsWith('::ffff:') ? address.slice(7) : address
  } catch {
    // Not served by @hono/node-server (app.request in tests): no socket to ask.
  }
  return 'unknown'
}
