/**
 * A leader lease in Postgres: one row per job group (cron_leases). An instance acquires the row when it
 * is free or expired and renews it every ttl/3; a renewal by the holder keeps the token, a takeover raises
 * it. Expiry is database time, so instances' clocks do not matter; locally an instance counts itself
 * leader only until its last successful renewal's start + ttl (monotonic clock), so it stops acting
 * before another can take over, even when it cannot reach the database to learn it lost.
 *
 * The token fences a deposed leader: `fenced(tx)` fails unless the row still names this holder and token.
 */
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { sql } from 'drizzle-orm'
import { type Database, type Executor, queryRows } from '../../adapters/db/database.ts'
import type { Logger } from '../../lib/log.ts'

export interface LeaseOptions {
  readonly db: Database
  /** The job group: one leader per name. */
  readonly name: string
  /** Defaults to hostname + a random suffix. */
  readonly holder?: string
  readonly ttlMs?: number
  readonly log?: Logger
  /** Called when leadership is gained (true) or lost (false). */
  readonly onChange?: (leader: boolean, token: bigint) => void
}

export class LostLeaseError extends Error {
  constructor(name: string) {
    super(`no longer the leader of ${name}`)
    this.name = 'LostLeaseError'
  }
}

export class Lease {
  readonly name: string
  readonly holder: string
  readonly ttlMs: number
  private readonly db: Database
  private readonly log: Logger | undefined
  private readonly onChange: LeaseOptions['onChange']
  private validUntil = 0
  private currentToken = 0n
  private timer: NodeJS.Timeout | undefined
  private pending: Promise<boolean> | undefined
  private wasLeader = false

  constructor(opts: LeaseOptions) {
    this.db = opts.db
    this.name = opts.name
    this.holder = opts.holder ?? `${hostname()}-${randomUUID().slice(0, 8)}`
    this.ttlMs = opts.ttlMs ?? 15_000
    this.log = opts.log
    this.onChange = opts.onChange
  }

  /** True while the last renewal is younger than the ttl (by this process's monotonic clock). */
  isLeader(): boolean {
    const leader = performance.now() < this.validUntil
    if (!leader && this.wasLeader) this.changed(false)
    return leader
  }

  /** The fencing token of the current leadership (0 when never leader). */
  get token(): bigint {
    return this.currentToken
  }

  /** One acquire-or-renew attempt; true when this instance holds the lease afterwards. */
  tryAcquire(): Promise<boolean> {
    this.pending ??= this.attempt().finally(() => {
      this.pending = undefined
    })
    return this.pending
  }

  private async attempt(): Promise<boolean> {
    const started = performance.now()
    const ttl = `${this.ttlMs} milliseconds`
    try {
      const rows = await queryRows<{ token: bigint }>(
        this.db,
        sql`insert into cron_leases (name, holder, token, expires_at)
            values (${this.name}, ${this.holder}, 1, now() + ${ttl}::interval)
            on conflict (name) do update set
              holder = excluded.holder,
              token = case when cron_leases.holder = excluded.holder then cron_leases.token else cron_leases.token + 1 end,
              acquired_at = case when cron_leases.holder = excluded.holder then cron_leases.acquired_at else now() end,
              renewed_at = now(),
              expires_at = excluded.expires_at
            where cron_leases.holder = excluded.holder or cron_leases.expires_at < now()
            returning token`,
      )
      const row = rows[0]
      if (row === undefined) {
        this.validUntil = 0
        if (this.wasLeader) this.changed(false)
        return false
      }
      this.validUntil = started + this.ttlMs
      const gained = !this.wasLeader || row.token !== this.currentToken
      this.currentToken = row.token
      if (gained) this.changed(true)
      return true
    } catch (err) {
      this.log?.warn({ err: String(err), lease: this.name }, 'lease renewal failed')
      return this.isLeader()
    }
  }

  private changed(leader: boolean): void {
    this.wasLeader = leader
    this.log?.info(
      { lease: this.name, holder: this.holder, token: String(this.currentToken), leader },
      leader ? 'leading' : 'not leading',
    )
    this.onChange?.(leader, this.currentToken)
  }

  /** Tries now, then every ttl/3, until stopped. */
  start(): void {
    if (this.timer !== undefined) return
    const loop = () => {
      void this.tryAcquire().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(loop, Math.max(50, Math.floor(this.ttlMs / 3)))
      })
    }
    this.timer = setTimeout(loop, 0)
  }

  /** Stops renewing; with `release`, gives the lease up at once so another instance takes over now. */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    const t = this.timer
    this.timer = undefined
    if (t !== undefined) clearTimeout(t)
    await this.pending
    if (opts.release && this.validUntil > 0) {
      await this.db.execute(
        sql`update cron_leases set expires_at = now() - interval '1 millisecond'
            where name = ${this.name} and holder = ${this.holder} and token = ${this.currentToken}`,
      )
    }
    this.validUntil = 0
    if (this.wasLeader) this.changed(false)
  }

  /** Throws LostLeaseError unless the row still names this holder and token and has not expired. */
  async fenced(tx: Executor = this.db): Promise<void> {
    const rows = await queryRows<{ ok: boolean }>(
      tx,
      sql`select true as ok from cron_leases
          where name = ${this.name} and holder = ${this.holder} and token = ${this.currentToken} and expires_at > now()
          for share`,
    )
    if (rows.length === 0) throw new LostLeaseError(this.name)
  }
}
