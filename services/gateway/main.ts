/**
 * `bourse gateway`: the REST API replicas. Reaches each market's engine over HTTP (keep-alive fetch), reads
 * Postgres for orders, trades and balances, and keeps rate limits in the Redis Cluster so every replica
 * counts the same minute. Serves /metrics, /healthz and /readyz beside the API on one port.
 */
import { getRequestListener } from '@hono/node-server'
import { z } from 'zod'
import { clickhouseEnv, openClickhouseFromEnv } from '../../adapters/analytics/analytics.ts'
import { openDatabase } from '../../adapters/db/database.ts'
import { createPubSubCache } from '../../adapters/pubsub/index.ts'
import { boolean, fromEnv, list, port, positiveInt, url } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger } from '../../lib/log.ts'
import { startHttpServer } from '../../lib/metrics.ts'
import { walletId, withdrawalPolicyJson, withdrawalsConfig } from '../withdrawals/config.ts'
import { keyEncryptionKeyEnv } from './api-keys.ts'
import { createGatewayApp } from './app.ts'
import { EngineClient } from './engine-client.ts'

const engineEntry = z
  .string()
  .regex(/^[A-Z0-9]{2,32}=https?:\/\/\S+$/, 'expected SYMBOL=http://host:port')
  .transform((text) => {
    const at = text.indexOf('=')
    return { symbol: text.slice(0, at), url: text.slice(at + 1) }
  })

const clickhouseOptional = {
  ...clickhouseEnv,
  BOURSE_CLICKHOUSE_URL: clickhouseEnv.BOURSE_CLICKHOUSE_URL.optional(),
}

export const GatewayEnv = z.object({
  BOURSE_DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
  /**
   * Every market's engine: `BTCUSDT=http://engine-btcusdt:7000,ETHUSDT=http://engine-ethusdt:7000`. Empty
   * before the first Market exists (the operator adds each one's engine as it is created).
   */
  BOURSE_ENGINES: list(engineEntry).default([]),
  BOURSE_REDIS_NODES: list(z.string(), { min: 1 }),
  /** Encrypts API secrets at rest; the same value on every replica. */
  BOURSE_KEY_ENCRYPTION_SECRET: keyEncryptionKeyEnv,
  BOURSE_GATEWAY_PORT: port().default(8080),
  BOURSE_HTTP_HOST: z.string().default('127.0.0.1'),
  BOURSE_WEIGHT_PER_MINUTE: positiveInt().default(6000),
  BOURSE_REJECTIONS_BEFORE_BAN: positiveInt().default(10),
  /** Behind a trusted ingress: the client's address is the last of X-Forwarded-For. */
  BOURSE_TRUST_PROXY: boolean().default(false),
  /** The analytics syncer's ClickHouse: with it, order and trade history reaches past what Postgres still holds. */
  ...clickhouseOptional,
  /** Withdrawal limits per asset (JSON, see withdrawals/config.ts); unset: the withdrawal endpoints are off. */
  BOURSE_WITHDRAWAL_POLICY: withdrawalPolicyJson().optional(),
  /** The Wallets withdrawals go out on, the first the default; unset: every registered Wallet. */
  BOURSE_WITHDRAWAL_WALLETS: list(walletId).optional(),
  /** The /v1 admin API's bearer token, from a Secret; unset: the admin API is off. */
  BOURSE_ADMIN_TOKEN: z.string().min(16, 'expected at least 16 characters').optional(),
  /** /v1 sign-in by this OIDC issuer's JWTs (`sub` = a user's oidcSubject); unset: API keys only. */
  BOURSE_OIDC_ISSUER: url({ protocols: ['https', 'http'] }).optional(),
  /** The `aud` its JWTs must carry; unset: any. */
  BOURSE_OIDC_AUDIENCE: z.string().optional(),
  /** Its JWKS; unset: the jwks_uri of its /.well-known/openid-configuration. */
  BOURSE_OIDC_JWKS_URL: url({ protocols: ['https', 'http'] }).optional(),
})

export async function main(_args: string[]): Promise<void> {
  const config = fromEnv(GatewayEnv, { component: 'gateway' })
  const log = createLogger('gateway')
  const database = await openDatabase({
    kind: 'postgres',
    url: config.BOURSE_DATABASE_URL,
    maxConnections: 10,
  })
  const cache = createPubSubCache({ kind: 'redis', nodes: config.BOURSE_REDIS_NODES })
  const engines = new Map(config.BOURSE_ENGINES.map((e) => [e.symbol, EngineClient.remote(e.symbol, e.url)]))
  const withdrawals = await withdrawalsConfig(database.db, {
    policy: config.BOURSE_WITHDRAWAL_POLICY,
    wallets: config.BOURSE_WITHDRAWAL_WALLETS,
  })
  if (config.BOURSE_ADMIN_TOKEN === undefined) log.info('no BOURSE_ADMIN_TOKEN: the /v1 admin API is off')
  if (withdrawals === undefined) log.info('no BOURSE_WITHDRAWAL_POLICY: the withdrawal endpoints are off')
  else
    log.info(
      {
        assets: Object.keys(withdrawals.policy.assets),
        networks: withdrawals.networks.map((n) => n.network),
      },
      'withdrawals enabled',
    )
  const analytics =
    config.BOURSE_CLICKHOUSE_URL === undefined
      ? undefined
      : openClickhouseFromEnv({ ...config, BOURSE_CLICKHOUSE_URL: config.BOURSE_CLICKHOUSE_URL })
  const app = createGatewayApp({
    db: database.db,
    engines,
    cache,
    log,
    ...(analytics !== undefined && { analytics }),
    ...(withdrawals !== undefined && { withdrawals }),
    config: {
      keyEncryptionKey: config.BOURSE_KEY_ENCRYPTION_SECRET,
      weightPerMinute: config.BOURSE_WEIGHT_PER_MINUTE,
      rejectionsBeforeBan: config.BOURSE_REJECTIONS_BEFORE_BAN,
      trustProxy: config.BOURSE_TRUST_PROXY,
      ...(config.BOURSE_ADMIN_TOKEN !== undefined && { adminToken: config.BOURSE_ADMIN_TOKEN }),
      ...(config.BOURSE_OIDC_ISSUER !== undefined && {
        oidc: {
          issuer: config.BOURSE_OIDC_ISSUER,
          ...(config.BOURSE_OIDC_AUDIENCE !== undefined && { audience: config.BOURSE_OIDC_AUDIENCE }),
          ...(config.BOURSE_OIDC_JWKS_URL !== undefined && { jwksUrl: config.BOURSE_OIDC_JWKS_URL }),
        },
      }),
    },
  })
  const http = await startHttpServer({
    port: config.BOURSE_GATEWAY_PORT,
    host: config.BOURSE_HTTP_HOST,
    app: getRequestListener(app.fetch),
  })
  log.info({ url: http.url, markets: [...engines.keys()] }, 'gateway serving')

  await untilStopped()
  await http.close()
  await cache.close()
  await analytics?.close()
  await database.close()
}
