/**
 * `bourse dev`: the whole exchange in one process on embedded stores — PGlite for Postgres, the in-process
 * bus and pub/sub, chDB for ClickHouse — with the demo markets, a funded demo trader and a market-making
 * bot, so a newcomer sees a live exchange with one command and no servers. Each component joins here as it
 * lands; what runs is printed at start.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { getRequestListener } from '@hono/node-server'
import { mount } from 'hono/mount'
import { z } from 'zod'
import { openAnalytics } from '../../adapters/analytics/analytics.ts'
import { createBus } from '../../adapters/bus/index.ts'
import { type DatabaseHandle, openDatabase } from '../../adapters/db/database.ts'
import { markets } from '../../adapters/db/schema.ts'
import { createPubSubCache, InProcessRedis, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { fromEnv, loadConfig, port } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger } from '../../lib/log.ts'
import { metricsRegistry, startHttpServer } from '../../lib/metrics.ts'
import { AnalyticsSettingsEnv, startAnalyticsSyncer } from '../analytics/main.ts'
import { CronSettingsEnv, startCron } from '../cron/main.ts'
import { createDexApp } from '../dex/api.ts'
import { MatchingEngine } from '../engine/engine.ts'
import { ApiKeyStore } from '../gateway/api-keys.ts'
import { createGatewayApp } from '../gateway/app.ts'
import { EngineClient } from '../gateway/engine-client.ts'
import { migrateAnalytics } from '../handler/clickhouse.ts'
import { createMarketDataHandler } from '../handler/handler.ts'
import { createOutboxRelay } from '../relay/relay.ts'
import { depthPublisher } from '../ws/depth-source.ts'
import { startWsServer } from '../ws/server.ts'
import { createUserEventsConsumer } from '../ws/user-events.ts'
import {
  checkChainPort,
  DEMO_COLD_ADDRESS,
  DEMO_DEPOSIT_MNEMONIC,
  DEMO_DEX_ID,
  DEMO_HOT_KEY,
  DEMO_WITHDRAWAL_POLICY,
  startDemoChain,
} from './chain.ts'
import { demoBots, demoTrader, devAdminToken, devEncryptionKey, seedDemo } from './demo.ts'
import { startMarketMaker } from './market-maker.ts'

const DevConfig = z.object({
  BOURSE_PORT: port().default(8080),
  /** Where the embedded stores keep their data between runs; delete it to start afresh. */
  BOURSE_DATA_DIR: z.string().default('.bourse/dev'),
  /** Also write the demo trader's API key and secret here, as JSON. */
  BOURSE_CREDENTIALS_FILE: z.string().optional(),
  /** Binance-compatible WebSocket streams. */
  BOURSE_WS_PORT: port().default(8090),
  /** The demo chain's (anvil's) JSON-RPC and WebSocket port. */
  BOURSE_CHAIN_PORT: port().default(8545),
})

/** The chain jobs run often enough for a newcomer to see them; BOURSE_CRON_SCHEDULE_* still override. */
const DEV_CRON_SCHEDULES = {
  BOURSE_CRON_SCHEDULE_RECONCILIATION: '*/30 * * * * *',
  BOURSE_CRON_SCHEDULE_SWEEPS: '15 * * * * *',
}

/** An engine for every market in the database, each committing to the embedded Postgres. */
async function startEngines(
  database: DatabaseHandle,
  cache: PubSubCache,
  onCommit: () => void,
): Promise<MatchingEngine[]> {
  const onDepth = depthPublisher(cache, createLogger('engine'))
  const symbols = (await database.db.select({ symbol: markets.symbol }).from(markets)).map((m) => m.symbol)
  return Promise.all(
    symbols.map((symbol) =>
      MatchingEngine.start({
        database,
        symbol,
        batchMaxCommands: 500,
        batchWindowMs: 2,
        log: createLogger('engine').child({ market: symbol }),
        onCommit,
        onDepth,
      }),
    ),
  )
}

export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { 'credentials-file': { type: 'string' } } })
  const config = fromEnv(DevConfig, { component: 'dev' })
  const credentialsFile = values['credentials-file'] ?? config.BOURSE_CREDENTIALS_FILE
  const log = createLogger('dev')
  const dataDir = resolve(config.BOURSE_DATA_DIR)
  await mkdir(dataDir, { recursive: true })
  await checkChainPort(config.BOURSE_CHAIN_PORT).catch((err: Error) => {
    process.stderr.write(`bourse dev: ${err.message}\n`)
    process.exit(1)
  })

  const database = await openDatabase({ kind: 'pglite', dataDir: join(dataDir, 'postgres') })
  await database.migrate()
  await seedDemo(database.db)
  const encryptionKey = await devEncryptionKey(dataDir)
  const adminToken = await devAdminToken(dataDir)
  const credentials = await demoTrader(database.db, dataDir, encryptionKey)
  const [maker, taker] = await demoBots(database.db)
  const chain = await startDemoChain({
    db: database.db,
    dataDir,
    port: config.BOURSE_CHAIN_PORT,
    userName: 'demo',
    log: createLogger('syncer'),
  })
  if (credentialsFile !== undefined)
    await writeFile(resolve(credentialsFile), JSON.stringify(credentials), { mode: 0o600 })

  const bus = createBus({ kind: 'memory' })
  const cache = createPubSubCache({ kind: 'memory', server: new InProcessRedis() })
  const analytics = openAnalytics({ kind: 'chdb', path: join(dataDir, 'chdb') })
  await migrateAnalytics(analytics)
  const history = await startAnalyticsSyncer({
    db: database.db,
    analytics,
    config: loadConfig(AnalyticsSettingsEnv),
    log: createLogger('analytics'),
  })
  const relay = createOutboxRelay({ db: database.db, bus, batchSize: 1000, pollIntervalMs: 200, log })
  const engines = await startEngines(database, cache, () => relay.wake())
  const handler = createMarketDataHandler({ bus, cache, analytics, log: createLogger('handler') })
  await handler.start()
  const userEvents = createUserEventsConsumer({ bus, cache, log: createLogger('user-events') })
  await userEvents.start()
  relay.start()
  const gateway = createGatewayApp({
    db: database.db,
    engines: new Map(engines.map((e) => [e.symbol, EngineClient.inProcess(e)])),
    cache,
    analytics,
    log: createLogger('gateway'),
    withdrawals: {
      policy: DEMO_WITHDRAWAL_POLICY,
      networks: [{ network: chain.walletId.toUpperCase(), walletId: chain.walletId }],
    },
    config: {
      keyEncryptionKey: encryptionKey,
      adminToken,
      weightPerMinute: 6000,
      rejectionsBeforeBan: 10,
      trustProxy: false,
    },
  })
  // Mounted, not merged: the DEX API's own routes (/orders/{status} beside /orders/{id}) are ones the gateway's
  // router cannot take.
  gateway.all('/dex/*', mount(createDexApp({ db: database.db, indexerId: DEMO_DEX_ID }).fetch))
  const http = await startHttpServer({
    port: config.BOURSE_PORT,
    host: '127.0.0.1',
    app: getRequestListener(gateway.fetch),
  })
  const ws = await startWsServer({
    port: config.BOURSE_WS_PORT,
    cache,
    log: createLogger('ws'),
    keys: new ApiKeyStore(database.db, encryptionKey),
  })
  const cron = await startCron({
    db: database.db,
    log: createLogger('cron'),
    registry: metricsRegistry(),
    config: loadConfig(CronSettingsEnv, { ...DEV_CRON_SCHEDULES, ...process.env, ...chain.cronEnv }),
  })
  const bot = startMarketMaker(engines, { maker, taker })

  console.log(
    [
      'Bourse is running in embedded mode:',
      `  gateway    ${http.url}/api/v3/…  (Binance Spot REST; /healthz, /readyz, /metrics)`,
      `  engines    ${engines.map((e) => e.symbol).join(', ')}: batches committed to PGlite in ${join(dataDir, 'postgres')}`,
      `  ws         ${ws.url}/ws/btcusdt@trade, /stream?streams=…  (Binance market streams)`,
      '  relay      outbox → in-process bus; user data streams (listen keys, /ws-api/v3) from its events',
      '  handler    trades → k-lines, 24h tickers, recent trades (in-process pub/sub) and chDB',
      `  analytics  chDB in ${join(dataDir, 'chdb')}: market data, and order/trade/ledger history copied from PGlite`,
      '  bot        a market maker and a taker trade on every market',
      '  cron       leader lease; retention, ledger invariants, daily statistics; on the chain: reconciliation',
      '             (ledger against the deposit, hot, cold and gas keeper addresses), gas keeper check, sweeps to cold',
      '',
      `  chain      anvil at ${chain.rpcUrl} (chain id ${chain.chainId}, a block a second), the syncer crediting deposits`,
      `             demo token USDT (ERC-20, 6 decimals) ${chain.token}; order contract ${chain.orderBook}`,
      `             DEMO deposit key, never for real funds: "${DEMO_DEPOSIT_MNEMONIC}"`,
      `  hot wallet ${chain.hotAddress}  (pays withdrawals, ETH and demo USDT; processor signing and broadcasting)`,
      `             DEMO hot wallet key (anvil's account 9), never for real funds: ${DEMO_HOT_KEY}`,
      `  cold       ${DEMO_COLD_ADDRESS}  (anvil's account 8: holds what backs the demo balances; sweeps land here)`,
      `  dex        ${http.url}/dex/orders/pending, /dex/orders/{id}, /dex/users/{address}/orders, /dex/statistics`,
      `             (the order contract's OrderCreated/Executed/Cancelled events, indexed)`,
      '',
      'Demo trader (10 BTC, 100 ETH, 100000 USDT):',
      `  apiKey     ${credentials.apiKey}`,
      `  apiSecret  ${credentials.apiSecret}`,
      ...(credentialsFile === undefined ? [] : [`  (also written to ${resolve(credentialsFile)})`]),
      `  deposit    ${chain.depositAddress}  (ETH and USDT on the demo chain${chain.funding.length > 0 ? '; 1000 USDT and 1 ETH sent to it now' : ''})`,
      `  withdraw   POST ${http.url}/sapi/v1/capital/withdraw/apply  coin=USDT&network=${chain.walletId.toUpperCase()}&address=0x…&amount=25 (signed, this key may withdraw;`,
      `             above ${DEMO_WITHDRAWAL_POLICY.assets.USDT!.approvalAbove} USDT or ${DEMO_WITHDRAWAL_POLICY.assets.ETH!.approvalAbove} ETH waits for approval), then GET /sapi/v1/capital/withdraw/history`,
      `Try: curl '${http.url}/api/v3/depth?symbol=BTCUSDT&limit=5'`,
      `     curl -H 'Authorization: Bearer ${adminToken}' ${http.url}/v1/users   (the /v1 admin API; OpenAPI at ${http.url}/openapi.json)`,
      'Press Ctrl-C to stop.',
    ].join('\n'),
  )

  await untilStopped()
  log.info('stopping')
  bot.stop()
  await cron.stop()
  await chain.stop()
  await http.close()
  await ws.close()
  await Promise.all(engines.map((e) => e.stop()))
  await relay.stop()
  await handler.stop()
  await userEvents.stop()
  await history.stop()
  await bus.close()
  await cache.close()
  await analytics.close()
  await database.close()
}
