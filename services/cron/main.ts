/**
 * `bourse cron`: the scheduled work, led by one instance at a time (a lease row in Postgres, job group
 * BOURSE_CRON_LEASE, default `cron`): every replica runs the schedules, only the leader's ticks run jobs.
 * One port serves /metrics, /healthz and /readyz (ready once the first lease attempt has answered, leader
 * or not: a standby is a healthy replica).
 *
 * Always: retention (sent outbox events past BOURSE_CRON_OUTBOX_RETENTION, cron runs and reconciliations
 * past BOURSE_CRON_HISTORY_RETENTION), ledger invariants, daily statistics. With a chain
 * (BOURSE_CHAIN_RPC_URL and BOURSE_CRON_WALLET, a registered chain_wallets id): reconciliation against the
 * deposit addresses (from the table) and the hot, cold and gas keeper addresses (BOURSE_WALLET_HOT_ADDRESSES,
 * BOURSE_WALLET_COLD_ADDRESSES, BOURSE_WALLET_GAS_KEEPER_ADDRESS); the gas keeper check when
 * BOURSE_WALLET_GAS_KEEPER_MINIMUM (wei) is set; sweeps when the keys are given (BOURSE_WALLET_GAS_KEEPER_KEY,
 * BOURSE_WALLET_DEPOSIT_XPRV: the deposit account's extended private key, m/44'/60'/0') and
 * BOURSE_WALLET_SWEEP_THRESHOLDS (JSON {"USDT":"100000000"} in the asset's smallest units).
 * Schedules: BOURSE_CRON_SCHEDULE_<JOB> (croner patterns, UTC).
 *
 * With BOURSE_NSQ it also relays the ledger's event stream (deposits, withdrawals, adjustments: the users'
 * balanceUpdate events, ledger/events.ts) from the outbox to NSQ — every replica, one at a time per stream.
 */

import { sql } from 'drizzle-orm'
import {
  type Address,
  createPublicClient,
  getAddress,
  type Hex,
  http,
  isAddress,
  type PublicClient,
} from 'viem'
import { HDKey, hdKeyToAccount, privateKeyToAccount } from 'viem/accounts'
import { z } from 'zod'
import { nsqEnv } from '../../adapters/bus/env.ts'
import { createBus } from '../../adapters/bus/index.ts'
import { type Database, openDatabase, queryRows } from '../../adapters/db/database.ts'
import { LEDGER_STREAM } from '../../ledger/events.ts'
import { durationMs, fromEnv, list, port, url } from '../../lib/config.ts'
import { untilStopped } from '../../lib/lifecycle.ts'
import { createLogger, type Logger } from '../../lib/log.ts'
import { metricsRegistry, type Registry, startHttpServer } from '../../lib/metrics.ts'
import { createOutboxRelay } from '../relay/relay.ts'
import { Sweeper } from '../withdrawals/sweeps.ts'
import {
  type Alert,
  dailyStatsJob,
  gasKeeperJob,
  ledgerInvariantsJob,
  reconciliationJob,
  retentionJob,
  sweepJob,
} from './jobs.ts'
import { kubernetesEventAlert } from './kube.ts'
import { Lease } from './lease.ts'
import { type Job, Scheduler } from './scheduler.ts'

const address = z.string().refine((a) => isAddress(a, { strict: false }), 'expected a 0x address')
const wei = z.string().regex(/^\d{1,40}$/, 'expected an integer amount in wei')

export const CronEnv = z.object({
  BOURSE_DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
  BOURSE_CRON_PORT: port({ allowZero: true }).default(9090),
  BOURSE_HTTP_HOST: z.string().default('127.0.0.1'),
  BOURSE_NSQ: nsqEnv.BOURSE_NSQ.optional(),
  BOURSE_CRON_LEASE: z.string().default('cron'),
  BOURSE_CRON_LEASE_TTL: durationMs().default(15_000),
  BOURSE_CRON_OUTBOX_RETENTION: durationMs().default(7 * 86_400_000),
  BOURSE_CRON_HISTORY_RETENTION: durationMs().default(90 * 86_400_000),
  BOURSE_CRON_SCHEDULE_RETENTION: z.string().default('0 17 3 * * *'),
  BOURSE_CRON_SCHEDULE_LEDGER_INVARIANTS: z.string().default('0 */5 * * * *'),
  BOURSE_CRON_SCHEDULE_DAILY_STATS: z.string().default('0 */10 * * * *'),
  BOURSE_CRON_SCHEDULE_RECONCILIATION: z.string().default('0 */10 * * * *'),
  BOURSE_CRON_SCHEDULE_GAS_KEEPER: z.string().default('30 * * * * *'),
  BOURSE_CRON_SCHEDULE_SWEEPS: z.string().default('0 */5 * * * *'),
  BOURSE_CHAIN_RPC_URL: url({ protocols: ['http', 'https'] }).optional(),
  BOURSE_CRON_WALLET: z.string().optional(),
  BOURSE_WALLET_HOT_ADDRESSES: list(address).default([]),
  BOURSE_WALLET_COLD_ADDRESSES: list(address).default([]),
  BOURSE_WALLET_GAS_KEEPER_ADDRESS: address.optional(),
  BOURSE_WALLET_GAS_KEEPER_MINIMUM: wei.optional(),
  BOURSE_WALLET_GAS_KEEPER_KEY: z
    .string()
    .regex(/^0x[0-9a-fA-F]{64}$/, 'expected a 0x private key')
    .optional(),
  BOURSE_WALLET_DEPOSIT_XPRV: z.string().optional(),
  BOURSE_WALLET_SWEEP_THRESHOLDS: z.string().optional(),
})

export type CronConfig = z.output<typeof CronEnv>

/** What startCron reads: everything but where the process itself connects and listens (`bourse dev` embeds it). */
export const CronSettingsEnv = CronEnv.omit({
  BOURSE_DATABASE_URL: true,
  BOURSE_NSQ: true,
  BOURSE_CRON_PORT: true,
  BOURSE_HTTP_HOST: true,
})
export type CronSettings = z.output<typeof CronSettingsEnv>

export interface RunningCron {
  readonly scheduler: Scheduler
  readonly lease: Lease
  stop(): Promise<void>
}

/** Builds the jobs from the config and starts the lease and the schedules (for `bourse cron` and `bourse dev`). */
export async function startCron(o: {
  db: Database
  config: CronSettings
  registry?: Registry
  log?: Logger
  alert?: Alert
  holder?: string
}): Promise<RunningCron> {
  const c = o.config
  const jobs: Job[] = [
    retentionJob({
      schedule: c.BOURSE_CRON_SCHEDULE_RETENTION,
      outboxRetentionMs: c.BOURSE_CRON_OUTBOX_RETENTION,
      historyRetentionMs: c.BOURSE_CRON_HISTORY_RETENTION,
    }),
    ledgerInvariantsJob({ schedule: c.BOURSE_CRON_SCHEDULE_LEDGER_INVARIANTS, registry: o.registry }),
    dailyStatsJob({ schedule: c.BOURSE_CRON_SCHEDULE_DAILY_STATS }),
  ]
  const walletId = c.BOURSE_CRON_WALLET
  if (c.BOURSE_CHAIN_RPC_URL !== undefined && walletId !== undefined) {
    const client = createPublicClient({
      transport: http(c.BOURSE_CHAIN_RPC_URL, { retryCount: 2 }),
      cacheTime: 0,
    })
    const keeperKey = c.BOURSE_WALLET_GAS_KEEPER_KEY as Hex | undefined
    const keeper =
      c.BOURSE_WALLET_GAS_KEEPER_ADDRESS !== undefined
        ? getAddress(c.BOURSE_WALLET_GAS_KEEPER_ADDRESS)
        : keeperKey && privateKeyToAccount(keeperKey).address
    jobs.push(
      reconciliationJob({
        schedule: c.BOURSE_CRON_SCHEDULE_RECONCILIATION,
        registry: o.registry,
        alert: o.alert,
        wallets: [
          {
            walletId,
            client: client as PublicClient,
            hot: c.BOURSE_WALLET_HOT_ADDRESSES as Address[],
            cold: c.BOURSE_WALLET_COLD_ADDRESSES as Address[],
            gasKeeper: keeper === undefined ? [] : [keeper],
          },
        ],
      }),
    )
    const minimum =
      c.BOURSE_WALLET_GAS_KEEPER_MINIMUM === undefined
        ? undefined
        : BigInt(c.BOURSE_WALLET_GAS_KEEPER_MINIMUM)
    if (keeper !== undefined && minimum !== undefined) {
      jobs.push(
        gasKeeperJob({
          schedule: c.BOURSE_CRON_SCHEDULE_GAS_KEEPER,
          registry: o.registry,
          alert: o.alert,
          keepers: [{ walletId, client: client as PublicClient, address: keeper, minimum }],
        }),
      )
    }
    const cold = c.BOURSE_WALLET_COLD_ADDRESSES[0]
    if (keeperKey !== undefined && c.BOURSE_WALLET_DEPOSIT_XPRV !== undefined && cold !== undefined) {
      const [wallet] = await queryRows<{ chain_id: bigint; confirmations: number }>(
        o.db,
        sql`select chain_id, confirmations from chain_wallets where id = ${walletId}`,
      )
      if (wallet === undefined)
        throw new Error(`wallet ${walletId} is not registered (the syncer registers it)`)
      const node = HDKey.fromExtendedKey(c.BOURSE_WALLET_DEPOSIT_XPRV)
      const thresholds = Object.fromEntries(
        Object.entries(JSON.parse(c.BOURSE_WALLET_SWEEP_THRESHOLDS ?? '{}') as Record<string, string>).map(
          ([k, v]) => [k, BigInt(v)],
        ),
      )
      const sweeper = new Sweeper({
        db: o.db,
        walletId,
        chainId: Number(wallet.chain_id),
        rpcUrl: c.BOURSE_CHAIN_RPC_URL,
        confirmations: wallet.confirmations,
        coldAddress: getAddress(cold),
        gasKeeperKey: keeperKey,
        gasKeeperMinimum: minimum ?? 0n,
        // The account node's child 0/index: the path type wants a full BIP-44 path, the derivation is relative.
        depositAccount: (index) => hdKeyToAccount(node, { path: `m/0/${index}` as `m/44'/60'/${string}` }),
        thresholds,
        registry: o.registry,
        log: o.log,
      })
      jobs.push(sweepJob({ schedule: c.BOURSE_CRON_SCHEDULE_SWEEPS, sweepers: [sweeper] }))
    }
  }
  const lease = new Lease({
    db: o.db,
    name: c.BOURSE_CRON_LEASE,
    ttlMs: c.BOURSE_CRON_LEASE_TTL,
    ...(o.holder !== undefined && { holder: o.holder }),
    ...(o.log !== undefined && { log: o.log }),
  })
  const scheduler = new Scheduler({ db: o.db, lease, jobs, registry: o.registry, log: o.log })
  scheduler.start()
  o.log?.info({ jobs: jobs.map((j) => `${j.name} ${j.schedule}`), holder: lease.holder }, 'cron scheduled')
  return { scheduler, lease, stop: () => scheduler.stop() }
}

export async function main(_args: string[]): Promise<void> {
  const config = fromEnv(CronEnv, { component: 'cron' })
  const log = createLogger('cron')
  const registry = metricsRegistry()
  const database = await openDatabase({
    kind: 'postgres',
    url: config.BOURSE_DATABASE_URL,
    maxConnections: 4,
  })
  const cron = await startCron({ db: database.db, config, registry, log, alert: kubernetesEventAlert() })
  const bus = config.BOURSE_NSQ ? createBus({ kind: 'nsq', ...config.BOURSE_NSQ, logger: log }) : null
  const relay =
    bus &&
    createOutboxRelay({
      db: database.db,
      bus,
      market: LEDGER_STREAM,
      batchSize: 1000,
      pollIntervalMs: 500,
      log,
    })
  if (relay === null) log.warn('no BOURSE_NSQ: balance updates wait in the outbox')
  relay?.start()
  let answered = false
  void cron.lease.tryAcquire().then(() => {
    answered = true
  })
  const server = await startHttpServer({
    port: config.BOURSE_CRON_PORT,
    host: config.BOURSE_HTTP_HOST,
    registry,
    ready: () => answered,
  })
  log.info({ url: server.url }, 'cron running')
  await untilStopped()
  await cron.stop()
  await relay?.stop()
  await bus?.close()
  await server.close()
  await database.close()
}
