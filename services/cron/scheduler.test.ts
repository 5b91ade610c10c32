/**
 * The leader lease and the scheduler on a real Postgres: two instances, one leads, the other takes over
 * (token raised) once the first stops renewing; a deposed leader is fenced; every run is recorded with its
 * outcome and duration and counted in the metrics; a job never overlaps itself.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { Lease, LostLeaseError } from './lease.ts'
import { Scheduler } from './scheduler.ts'

let tdb: TestDatabase

beforeAll(async () => {
  tdb = await createTestDatabase('postgres')
}, 30_000)

afterAll(async () => {
  await tdb?.close()
})

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out')
    await sleep(20)
  }
}

describe('lease', () => {
  it('one instance leads; the other takes over when the first stops renewing', async () => {
    const a = new Lease({ db: tdb.db, name: 'handover', holder: 'a', ttlMs: 600 })
    const b = new Lease({ db: tdb.db, name: 'handover', holder: 'b', ttlMs: 600 })
    a.start()
    await until(() => a.isLeader())
    b.start()
    // b keeps trying for several ttl/3 periods while a renews: a stays leader, b never leads.
    await sleep(900)
    expect(a.isLeader()).toBe(true)
    expect(b.isLeader()).toBe(false)
    expect(a.token).toBe(1n)
    await a.fenced()
    // a stops renewing without releasing (a crash, a partition): b takes over once the row expires.
    const stoppedAt = Date.now()
    await a.stop()
    await until(() => b.isLeader(), 3000)
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(300)
    expect(b.token).toBe(2n)
    const [row] = await queryRows<{ holder: string; token: bigint }>(
      tdb.db,
      sql`select holder, token from cron_leases where name = 'handover'`,
    )
    expect(row).toEqual({ holder: 'b', token: 2n })
    // a, deposed, is fenced out of anything it still tries to write.
    await expect(a.fenced()).rejects.toBeInstanceOf(LostLeaseError)
    await b.fenced()
    // b releases on a clean stop: a takes over at once, with a new token.
    await b.stop({ release: true })
    expect(await a.tryAcquire()).toBe(true)
    expect(a.token).toBe(3n)
    await a.stop({ release: true })
  })
})

describe('scheduler', () => {
  it('records every run with its outcome and duration, exports metrics, and never overlaps a job', async () => {
    const registry = createRegistry({ defaultMetrics: false })
    const lease = new Lease({ db: tdb.db, name: 'cron', holder: 'one', ttlMs: 2000 })
    let concurrent = 0
    let maxConcurrent = 0
    let slowRuns = 0
    let failNext = true
    const s = new Scheduler({
      db: tdb.db,
      lease,
      registry,
      jobs: [
        {
          name: 'slow',
          schedule: '* * * * * *', // every second; each run takes 1.5 s
          run: async () => {
            concurrent++
            maxConcurrent = Math.max(maxConcurrent, concurrent)
            await sleep(1500)
            concurrent--
            return { n: ++slowRuns }
          },
        },
        {
          name: 'flaky',
          schedule: '@manual',
          run: async () => {
            if (failNext) {
              failNext = false
              throw new Error('rpc down')
            }
            return { deleted: 3n }
          },
        },
      ],
    })
    // Not the leader yet: a trigger does nothing and records nothing.
    expect((await s.trigger('flaky')).outcome).toBe('not_leader')
    s.start()
    await until(() => lease.isLeader())
    const failed = await s.trigger('flaky')
    expect(failed.outcome).toBe('failed')
    expect(failed.error).toBe('rpc down')
    const ok = await s.trigger('flaky')
    expect(ok.outcome).toBe('ok')
    await until(() => slowRuns >= 2, 8000)
    await s.stop()
    expect(maxConcurrent).toBe(1)
    const runs = await queryRows<{
      job: string
      outcome: string
      error: string | null
      duration_ms: number
      finished: boolean
      token: bigint
      result: unknown
    }>(
      tdb.db,
      sql`select job, outcome, error, duration_ms, finished_at >= started_at as finished, token, result
          from cron_runs order by id`,
    )
    const flaky = runs.filter((r) => r.job === 'flaky')
    expect(flaky.map((r) => [r.outcome, r.error, r.result])).toEqual([
      ['failed', 'rpc down', null],
      ['ok', null, { deleted: '3' }],
    ])
    const slow = runs.filter((r) => r.job === 'slow')
    expect(slow.length).toBeGreaterThanOrEqual(2)
    for (const r of slow) {
      expect(r.outcome).toBe('ok')
      expect(r.finished).toBe(true)
      expect(r.duration_ms).toBeGreaterThanOrEqual(1400)
      expect(r.token).toBe(lease.token)
    }
    const text = await registry.metrics()
    expect(text).toContain('bourse_cron_runs_total{job="flaky",outcome="failed"} 1')
    expect(text).toContain('bourse_cron_runs_total{job="flaky",outcome="ok"} 1')
    expect(text).toMatch(/bourse_cron_runs_total\{job="slow",outcome="overlap"\} [1-9]/)
    expect(text).toMatch(/bourse_cron_run_seconds_count\{job="slow"\} [2-9]/)
  }, 20_000)

  it('refuses a bad schedule', () => {
    const lease = new Lease({ db: tdb.db, name: 'bad' })
    expect(
      () =>
        new Scheduler({
          db: tdb.db,
          lease,
          jobs: [{ name: 'x', schedule: 'every day', run: async () => {} }],
        }),
    ).toThrow()
  })
})
