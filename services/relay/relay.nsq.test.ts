/**
 * The relay against the real servers: Postgres and nsqd through the NSQ bus, including nsqd going away.
 * Topics carry a prefix of this run's own and are deleted afterwards (nsqd keeps topics on disk).
 */
import { afterAll, afterEach, describe, expect, test } from 'vitest'
import { type Bus, createBus } from '../../adapters/bus/index.ts'
import { createTestDatabase } from '../../adapters/db/testing.ts'
import {
  nsqdHttpUrl,
  nsqdTcpAddress,
  nsqlookupdHttpUrl,
  testServer,
  uniqueName,
} from '../../adapters/testing/servers.ts'
import { sleep, waitUntil } from '../../adapters/testing/wait.ts'
import { createLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { createOutboxRelay } from './relay.ts'
import {
  distinctSeqs,
  eventTopics,
  expectSeqOrderPerTopic,
  insertEvents,
  oneTo,
  recordAll,
  unsentCount,
} from './relay-testing.ts'

const log = createLogger('relay-test', { level: 'silent' })
const runPrefix = uniqueName('relay-test-')
let lastPrefix = 0
const newPrefix = () => `${runPrefix}-${++lastPrefix}.`

const connect = (): Bus =>
  createBus({
    kind: 'nsq',
    nsqdTcp: nsqdTcpAddress(),
    nsqdHttp: nsqdHttpUrl(),
    lookupdHttp: [nsqlookupdHttpUrl()],
  })

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})
afterAll(() => deleteTopics(runPrefix))

async function setup() {
  const handle = await createTestDatabase('postgres')
  cleanups.push(() => handle.close())
  const bus = connect()
  cleanups.push(() => bus.close())
  const prefix = newPrefix()
  // Declared first, so that nsqd keeps every message for the channel whatever happens to the reader.
  for (const topic of eventTopics) await bus.declare(prefix + topic, 'test')
  const registry = createRegistry({ defaultMetrics: false })
  const relay = createOutboxRelay({
    db: handle.db,
    bus,
    batchSize: 25,
    pollIntervalMs: 20,
    log,
    topicPrefix: prefix,
    minBackoffMs: 20,
    maxBackoffMs: 500,
    publishTimeoutMs: 2_000,
    registry,
  })
  cleanups.push(() => relay.stop())
  return { db: handle.db, bus, prefix, relay, registry }
}

describe('outbox relay on NSQ and Postgres', () => {
  test('every event of two markets arrives with its seq, in seq order, and gets sent_at', async () => {
    const { db, bus, prefix, relay } = await setup()
    await insertEvents(db, 'BTCUSDT', 1, 180)
    await insertEvents(db, 'ETHUSDT', 1, 75)
    const { received } = await recordAll(bus, prefix, 'test')
    relay.start()
    await waitUntil(
      () =>
        distinctSeqs(received, 'BTCUSDT').length === 180 && distinctSeqs(received, 'ETHUSDT').length === 75,
      'every event arrives',
      20_000,
    )
    expect(distinctSeqs(received, 'BTCUSDT')).toEqual(oneTo(180))
    expect(distinctSeqs(received, 'ETHUSDT')).toEqual(oneTo(75))
    expectSeqOrderPerTopic(received)
    await waitUntil(() => relay.stats.backlog === 0, 'the relay sees the backlog empty')
    expect(await unsentCount(db)).toBe(0)
    expect(relay.stats).toMatchObject({ published: 255, publishErrors: 0 })
  })

  test('with nsqd stopped, events wait in the outbox; when it is back, they all flow', {
    timeout: 90_000,
  }, async () => {
    const { db, bus, prefix, relay, registry } = await setup()
    const { received } = await recordAll(bus, prefix, 'test')
    relay.start()
    await insertEvents(db, 'BTCUSDT', 1, 40)
    relay.wake()
    await waitUntil(() => distinctSeqs(received, 'BTCUSDT').length === 40, 'the first events arrive', 20_000)

    try {
      await testServer('stop', 'nsqd')
      await insertEvents(db, 'BTCUSDT', 41, 140)
      await insertEvents(db, 'ETHUSDT', 1, 60)
      relay.wake()
      await waitUntil(() => relay.stats.publishErrors >= 3, 'the relay keeps retrying', 20_000)
      await waitUntil(() => relay.stats.backlog === 160, 'the backlog is seen', 5_000)
      const backlog = await registry.getSingleMetric('bourse_outbox_backlog')!.get()
      expect(Object.fromEntries(backlog.values.map((v) => [v.labels.market, v.value]))).toEqual({
        BTCUSDT: 100,
        ETHUSDT: 60,
      })
      const errors = await registry.getSingleMetric('bourse_outbox_publish_errors_total')!.get()
      expect(errors.values.reduce((sum, v) => sum + v.value, 0)).toBe(relay.stats.publishErrors)
      expect(await unsentCount(db)).toBe(160)
      await waitUntil(() => relay.stats.backingOff.length === 2, 'both markets back off')
      // Backoff is capped: a few seconds down is a bounded number of attempts, not a busy loop. At the 500 ms
      // cap each market tries about 3 times in 1.5 s; the bound doubles that for timers that fire late and
      // catch up on a loaded machine (it once saw 11 at load 5), far below the hundreds a busy loop makes.
      const before = relay.stats.publishErrors
      await sleep(1_500)
      expect(relay.stats.publishErrors - before).toBeLessThanOrEqual(2 * 2 * (1_500 / 500 + 2))
    } finally {
      await testServer('start', 'nsqd')
    }

    await waitUntil(() => relay.stats.backlog === 0, 'the backlog drains once nsqd is back', 30_000)
    expect(await unsentCount(db)).toBe(0)
    await waitUntil(
      () =>
        distinctSeqs(received, 'BTCUSDT').length === 140 && distinctSeqs(received, 'ETHUSDT').length === 60,
      'every event arrives after the restart',
      30_000,
    )
    expect(distinctSeqs(received, 'BTCUSDT')).toEqual(oneTo(140))
    expect(distinctSeqs(received, 'ETHUSDT')).toEqual(oneTo(60))
    expectSeqOrderPerTopic(received)
  })
})

async function deleteTopics(prefix: string): Promise<void> {
  const stats = (await (await fetch(`${nsqdHttpUrl()}/stats?format=json`)).json()) as {
    topics: { topic_name: string }[]
  }
  for (const { topic_name: topic } of stats.topics.filter(({ topic_name }) =>
    topic_name.startsWith(prefix),
  )) {
    await fetch(`${nsqdHttpUrl()}/topic/delete?${new URLSearchParams({ topic })}`, { method: 'POST' })
  }
}
