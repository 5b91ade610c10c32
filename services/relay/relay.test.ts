/**
 * The relay over the in-process bus: on PGlite (the embedded mode) and on the Postgres test server (two
 * relays racing for the same markets).
 */
import { sql } from 'drizzle-orm'
import { afterEach, describe, expect, test } from 'vitest'
import type { Bus, Publishable } from '../../adapters/bus/index.ts'
import { createBus } from '../../adapters/bus/index.ts'
import { queryRows } from '../../adapters/db/database.ts'
import { createTestDatabase } from '../../adapters/db/testing.ts'
import { sleep, waitUntil } from '../../adapters/testing/wait.ts'
import { BourseError } from '../../lib/errors.ts'
import { createLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { createOutboxRelay, deleteSentBefore, type OutboxRelay, type OutboxRelayOptions } from './relay.ts'
import {
  distinctSeqs,
  expectSeqOrderPerTopic,
  insertEvents,
  oneTo,
  recordAll,
  unsentCount,
} from './relay-testing.ts'

const log = createLogger('relay-test', { level: 'silent' })
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function setup(kind: 'pglite' | 'postgres' = 'pglite') {
  const handle = await createTestDatabase(kind)
  cleanups.push(() => handle.close())
  const bus = createBus({ kind: 'memory' })
  cleanups.push(() => bus.close())
  return { handle, db: handle.db, bus }
}

function relay(options: Partial<OutboxRelayOptions> & Pick<OutboxRelayOptions, 'db' | 'bus'>): OutboxRelay {
  const relay = createOutboxRelay({
    batchSize: 50,
    pollIntervalMs: 20,
    log,
    minBackoffMs: 10,
    maxBackoffMs: 100,
    registry: createRegistry({ defaultMetrics: false }),
    ...options,
  })
  cleanups.push(() => relay.stop())
  return relay
}

describe('outbox relay on the in-process bus', () => {
  test('publishes every event of every market once, in seq order per market, and marks them sent', async () => {
    const { db, bus } = await setup()
    const { received } = await recordAll(bus, '', 'test')
    await insertEvents(db, 'BTCUSDT', 1, 230)
    await insertEvents(db, 'ETHUSDT', 1, 97)
    const registry = createRegistry({ defaultMetrics: false })
    const relayer = relay({ db, bus, registry })
    relayer.start()
    await waitUntil(() => received.length === 327, 'all events arrive')
    await waitUntil(() => relayer.stats.backlog === 0, 'the backlog is seen empty')

    // The in-process bus delivers in publish order, so a market's whole stream is 1..N exactly.
    expect(received.filter((r) => r.market === 'BTCUSDT').map((r) => r.seq)).toEqual(oneTo(230))
    expect(received.filter((r) => r.market === 'ETHUSDT').map((r) => r.seq)).toEqual(oneTo(97))
    expectSeqOrderPerTopic(received)
    expect(await unsentCount(db)).toBe(0)
    expect(relayer.stats).toMatchObject({ published: 327, publishErrors: 0, backlog: 0 })

    const published = await registry.getSingleMetric('bourse_outbox_published_total')!.get()
    const btcTrades = published.values.find(
      (v) => v.labels.market === 'BTCUSDT' && v.labels.topic === 'trades',
    )
    // seqs 1..230 whose (seq / 3) % 4 is 0: the trades runs.
    expect(btcTrades?.value).toBe(oneTo(230).filter((s) => Math.floor(s / 3) % 4 === 0).length)
    const backlog = await registry.getSingleMetric('bourse_outbox_backlog')!.get()
    expect(backlog.values.map((v) => v.value)).toEqual([0, 0])
  })

  test('relays only its market when given one, under the topic prefix', async () => {
    const { db, bus } = await setup()
    const { received } = await recordAll(bus, 'x.', 'test')
    await insertEvents(db, 'BTCUSDT', 1, 20)
    await insertEvents(db, 'ETHUSDT', 1, 20)
    relay({ db, bus, market: 'ETHUSDT', topicPrefix: 'x.' }).start()
    await waitUntil(() => received.length === 20, 'the market events arrive')
    await sleep(100)
    expect(distinctSeqs(received, 'ETHUSDT')).toEqual(oneTo(20))
    expect(distinctSeqs(received, 'BTCUSDT')).toEqual([])
    expect(await unsentCount(db, 'BTCUSDT')).toBe(20)
  })

  test('wake() relays at once, without waiting for the poll', async () => {
    const { db, bus } = await setup()
    const { received } = await recordAll(bus, '', 'test')
    const relayer = relay({ db, bus, pollIntervalMs: 60_000 })
    relayer.start()
    await sleep(50) // the first round has run and found nothing
    await insertEvents(db, 'BTCUSDT', 1, 5)
    await sleep(100)
    expect(received).toHaveLength(0)
    relayer.wake()
    await waitUntil(() => received.length === 5, 'woken, the relay publishes', 2_000)
  })

  test('a publish whose acknowledgement is lost goes out again: duplicates, never a gap', async () => {
    const { db, bus } = await setup()
    const { received } = await recordAll(bus, '', 'test')
    await insertEvents(db, 'BTCUSDT', 1, 100)
    // The broker takes the messages but the answer never comes back, every third publish.
    let calls = 0
    const losing: Bus = {
      ...bus,
      publish: (topic, message) => bus.publish(topic, message),
      publishMany: async (topic: string, messages: readonly Publishable[]) => {
        await bus.publishMany(topic, messages)
        if (++calls % 3 === 0) throw new BourseError('unavailable', 'acknowledgement lost')
      },
    }
    const relayer = relay({ db, bus: losing, batchSize: 7 })
    relayer.start()
    await waitUntil(() => distinctSeqs(received, 'BTCUSDT').length === 100, 'every event arrives')
    await waitUntil(() => relayer.stats.backlog === 0, 'the backlog empties')
    expect(distinctSeqs(received, 'BTCUSDT')).toEqual(oneTo(100))
    expect(received.length).toBeGreaterThan(100)
    expectSeqOrderPerTopic(received)
    expect(relayer.stats.publishErrors).toBeGreaterThan(0)
    expect(await unsentCount(db)).toBe(0)
  })

  test('a market whose events cannot be published backs off alone; the loop survives', async () => {
    const { db, bus } = await setup()
    const { received } = await recordAll(bus, '', 'test')
    await insertEvents(db, 'BTCUSDT', 1, 10)
    await insertEvents(db, 'ETHUSDT', 1, 10)
    // A topic name NSQ refuses: this market's events wait and the error counts, retry after retry.
    await db.execute(sql`update outbox set topic = 'bad topic!' where market = 'BTCUSDT' and seq = 4`)
    const relayer = relay({ db, bus })
    relayer.start()
    await waitUntil(() => distinctSeqs(received, 'ETHUSDT').length === 10, 'the healthy market flows')
    await waitUntil(() => relayer.stats.publishErrors >= 3, 'the bad market is retried')
    expect(distinctSeqs(received, 'BTCUSDT')).toEqual([1, 2, 3])
    expect(relayer.stats.backlogByMarket).toEqual({ BTCUSDT: 7, ETHUSDT: 0 })

    await db.execute(sql`update outbox set topic = 'orders' where market = 'BTCUSDT' and seq = 4`)
    await waitUntil(() => distinctSeqs(received, 'BTCUSDT').length === 10, 'fixed, the market flows again')
    expect(received.filter((r) => r.market === 'BTCUSDT').map((r) => r.seq)).toEqual(oneTo(10))
  })

  test('a database that goes away is retried with backoff; the loop never throws and stops cleanly', async () => {
    const handle = await createTestDatabase('pglite')
    const bus = createBus({ kind: 'memory' })
    cleanups.push(() => bus.close())
    const relayer = relay({ db: handle.db, bus })
    relayer.start()
    await sleep(50)
    await handle.close()
    await waitUntil(() => relayer.stats.otherErrors >= 3, 'the relay keeps retrying the database')
    await relayer.stop()
  })

  test('waits at a missing seq, then publishes past it when it never comes', async () => {
    const { db, bus } = await setup()
    const { received } = await recordAll(bus, '', 'test')
    await insertEvents(db, 'BTCUSDT', 1, 3)
    await insertEvents(db, 'BTCUSDT', 5, 6)
    relay({ db, bus, gapTimeoutMs: 300 }).start()
    await waitUntil(() => received.length === 3, 'the events before the gap arrive')
    await sleep(100)
    expect(received.map((r) => r.seq)).toEqual([1, 2, 3])
    await insertEvents(db, 'BTCUSDT', 4, 4) // the late one fills the gap
    await waitUntil(() => received.length === 6, 'the gap filled, the rest follows')
    expect(received.map((r) => r.seq)).toEqual(oneTo(6))

    await insertEvents(db, 'BTCUSDT', 8, 9) // 7 never comes
    await sleep(150)
    expect(received).toHaveLength(6)
    await waitUntil(() => received.length === 8, 'past the timeout, the rest is published', 3_000)
    expect(received.map((r) => r.seq)).toEqual([...oneTo(6), 8, 9])
  })

  test('deleteSentBefore removes old sent events but the last of each market, never unsent ones', async () => {
    const { db, bus } = await setup()
    await insertEvents(db, 'BTCUSDT', 1, 10)
    await insertEvents(db, 'ETHUSDT', 1, 4)
    const relayer = relay({ db, bus })
    relayer.start()
    await waitUntil(() => relayer.stats.published === 14, 'all published')
    await relayer.stop()
    await insertEvents(db, 'BTCUSDT', 11, 12) // unsent
    expect(await deleteSentBefore(db, new Date(Date.now() - 60_000))).toBe(0)
    expect(await deleteSentBefore(db, new Date(Date.now() + 60_000), 3)).toBe(12)
    const left = await queryRows<{ market: string; seq: bigint; sent: boolean }>(
      db,
      sql`select market, seq, sent_at is not null as sent from outbox order by market, seq`,
    )
    expect(left).toEqual([
      { market: 'BTCUSDT', seq: 10n, sent: true },
      { market: 'BTCUSDT', seq: 11n, sent: false },
      { market: 'BTCUSDT', seq: 12n, sent: false },
      { market: 'ETHUSDT', seq: 4n, sent: true },
    ])
  })
})

describe('outbox relay on Postgres', () => {
  test('two relays on the same outbox never interleave a market: every event once, in order', async () => {
    const { db, bus } = await setup('postgres')
    const { received } = await recordAll(bus, '', 'test')
    const first = relay({ db, bus, batchSize: 20, pollIntervalMs: 5 })
    const second = relay({ db, bus, batchSize: 20, pollIntervalMs: 5 })
    first.start()
    second.start()
    for (let from = 1; from <= 600; from += 60) {
      await insertEvents(db, 'BTCUSDT', from, from + 59)
      await insertEvents(db, 'ETHUSDT', from, from + 59)
      first.wake()
      second.wake()
      await sleep(5)
    }
    await waitUntil(() => received.length >= 1200, 'all events arrive')
    await sleep(100)
    for (const market of ['BTCUSDT', 'ETHUSDT']) {
      expect(received.filter((r) => r.market === market).map((r) => r.seq)).toEqual(oneTo(600))
    }
    expect(first.stats.published + second.stats.published).toBe(1200)
    expect(await unsentCount(db)).toBe(0)
  })
})
