/**
 * The cron scheduler: jobs on croner schedules, run only by the leader of the job group (Lease), each
 * run recorded in cron_runs (started, finished, outcome, error, duration, the job's result) and exported
 * as bourse_cron_runs_total{job,outcome} and bourse_cron_run_seconds{job}. A job never overlaps itself:
 * a tick that finds the previous run still going is skipped (counted as outcome "overlap", not recorded).
 */
import { Cron } from 'croner'
import { sql } from 'drizzle-orm'
import { type Database, queryRows } from '../../adapters/db/database.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Gauge, Histogram, type Registry } from '../../lib/metrics.ts'
import type { Lease } from './lease.ts'

export interface JobContext {
  readonly db: Database
  readonly lease: Lease
  /** The lease token the run started under. */
  readonly token: bigint
  readonly log: Logger | undefined
}

export interface Job {
  readonly name: string
  /** A cron pattern (croner: seconds optional, e.g. "*\/30 * * * * *"), or "@manual" for runNow only. */
  readonly schedule: string
  run(ctx: JobContext): Promise<unknown>
}

export type RunOutcome = 'ok' | 'failed' | 'overlap' | 'not_leader'

export interface RunResult {
  readonly job: string
  readonly outcome: RunOutcome
  readonly runId?: bigint
  readonly durationMs?: number
  readonly error?: string
  readonly result?: unknown
}

export interface SchedulerOptions {
  readonly db: Database
  readonly lease: Lease
  readonly jobs: readonly Job[]
  readonly registry?: Registry
  readonly log?: Logger
  /** IANA time zone for the patterns; default UTC. */
  readonly timezone?: string
}

interface Metrics {
  runs: Counter<'job' | 'outcome'>
  seconds: Histogram<'job'>
  leader: Gauge<'lease'>
}

const metricsByRegistry = new WeakMap<Registry, Metrics>()

function metricsFor(registry: Registry): Metrics {
  let m = metricsByRegistry.get(registry)
  if (m === undefined) {
    m = {
      runs: new Counter({
        name: 'bourse_cron_runs_total',
        help: 'Cron job runs by outcome (ok, failed; overlap: skipped because the previous run was still going).',
        labelNames: ['job', 'outcome'],
        registers: [registry],
      }),
      seconds: new Histogram({
        name: 'bourse_cron_run_seconds',
        help: 'Duration of cron job runs.',
        labelNames: ['job'],
        buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 900],
        registers: [registry],
      }),
      leader: new Gauge({
        name: 'bourse_cron_leader',
        help: '1 while this instance holds the lease of the job group.',
        labelNames: ['lease'],
        registers: [registry],
      }),
    }
    metricsByRegistry.set(registry, m)
  }
  return m
}

export class Scheduler {
  private readonly o: SchedulerOptions
  private readonly jobs: Map<string, Job>
  private readonly running = new Map<string, Promise<RunResult>>()
  private readonly crons = new Map<string, Cron>()
  private readonly metrics: Metrics | undefined

  constructor(opts: SchedulerOptions) {
    this.o = opts
    this.jobs = new Map(opts.jobs.map((j) => [j.name, j]))
    if (this.jobs.size !== opts.jobs.length) throw new Error('cron job names must be unique')
    this.metrics = opts.registry === undefined ? undefined : metricsFor(opts.registry)
    for (const j of opts.jobs) {
      if (j.schedule !== '@manual') new Cron(j.schedule, { paused: true }).stop() // refuses a bad pattern now
    }
  }

  /** Starts the lease and the schedules. */
  start(): void {
    this.o.lease.start()
    for (const job of this.jobs.values()) {
      if (job.schedule === '@manual') continue
      const cron = new Cron(job.schedule, { timezone: this.o.timezone ?? 'UTC' }, () => {
        void this.trigger(job.name).catch((err: unknown) =>
          this.o.log?.error({ job: job.name, err: String(err) }, 'cron run could not be recorded'),
        )
      })
      this.crons.set(job.name, cron)
    }
  }

  /** The next time each scheduled job fires. */
  nextRuns(): Record<string, Date | null> {
    return Object.fromEntries([...this.crons].map(([name, c]) => [name, c.nextRun()]))
  }

  /** Runs a job now if this instance leads and the job is not already running (what a schedule tick does). */
  trigger(name: string): Promise<RunResult> {
    const job = this.jobs.get(name)
    if (job === undefined) throw new Error(`no cron job ${name}`)
    const leader = this.o.lease.isLeader()
    this.metrics?.leader.set({ lease: this.o.lease.name }, leader ? 1 : 0)
    if (!leader) return Promise.resolve({ job: name, outcome: 'not_leader' })
    if (this.running.has(name)) {
      this.metrics?.runs.inc({ job: name, outcome: 'overlap' })
      this.o.log?.warn({ job: name }, 'cron job still running; this tick is skipped')
      return Promise.resolve({ job: name, outcome: 'overlap' })
    }
    const run = this.execute(job).finally(() => this.running.delete(name))
    this.running.set(name, run)
    return run
  }

  private async execute(job: Job): Promise<RunResult> {
    const token = this.o.lease.token
    const [row] = await queryRows<{ id: bigint }>(
      this.o.db,
      sql`insert into cron_runs (job, holder, token) values (${job.name}, ${this.o.lease.holder}, ${token}) returning id`,
    )
    const runId = row!.id
    const started = performance.now()
    let outcome: 'ok' | 'failed' = 'ok'
    let error: string | undefined
    let result: unknown
    try {
      result = await job.run({
        db: this.o.db,
        lease: this.o.lease,
        token,
        log: this.o.log?.child({ job: job.name }),
      })
    } catch (err) {
      outcome = 'failed'
      error = err instanceof Error ? err.message : String(err)
    }
    const durationMs = Math.round(performance.now() - started)
    await this.o.db.execute(
      sql`update cron_runs set finished_at = now(), outcome = ${outcome}, error = ${error ?? null},
            duration_ms = ${durationMs}, result = ${result === undefined ? null : JSON.stringify(result, jsonSafe)}::jsonb
          where id = ${runId}`,
    )
    this.metrics?.runs.inc({ job: job.name, outcome })
    this.metrics?.seconds.observe({ job: job.name }, durationMs / 1000)
    if (outcome === 'failed')
      this.o.log?.error({ job: job.name, runId: String(runId), error, durationMs }, 'cron job failed')
    else this.o.log?.info({ job: job.name, runId: String(runId), durationMs }, 'cron job done')
    return { job: job.name, outcome, runId, durationMs, ...(error !== undefined && { error }), result }
  }

  /** Stops the schedules, waits for running jobs, and releases the lease so another instance leads at once. */
  async stop(): Promise<void> {
    for (const c of this.crons.values()) c.stop()
    this.crons.clear()
    await Promise.allSettled([...this.running.values()])
    await this.o.lease.stop({ release: true })
    this.metrics?.leader.set({ lease: this.o.lease.name }, 0)
  }
}

/** JSON for job results: bigints as decimal strings. */
export const jsonSafe = (_key: string, value: unknown) =>
  typeof value === 'bigint' ? value.toString() : value
