/**
 * What every Bus implementation promises; nsq.test.ts and memory.test.ts run it. Each test names its own
 * topic, since the NSQ suites share one nsqd.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { BourseError } from '../../lib/errors.ts'
import { uniqueName } from '../testing/servers.ts'
import { sleep, waitUntil } from '../testing/wait.ts'
import type { Bus, BusMessage, SubscribeOptions } from './bus.ts'

/** Every topic of this run starts with it, so that the NSQ suite can delete them afterwards. */
export const runTopicPrefix = uniqueName('bus-test-')
let lastTopic = 0
export const newTopic = () => `${runTopicPrefix}-${++lastTopic}`

const quick: SubscribeOptions = { maxInFlight: 10, requeueDelayMs: 0 }
// nsqd picks up a new channel's deferred messages on its next queue-scan refresh, up to 5 s later.
const redeliveryTimeoutMs = 20_000

export function busContract(connect: () => Bus): void {
  const open: Bus[] = []
  const newBus = () => {
    const bus = connect()
    open.push(bus)
    return bus
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((bus) => bus.close()))
  })

  /** Subscribes and records the text of every message the subscription handles. */
  async function recorder(bus: Bus, topic: string, channel: string, options = quick) {
    const texts: string[] = []
    const subscription = await bus.subscribe(
      topic,
      channel,
      async (message) => {
        texts.push(message.text())
      },
      options,
    )
    return { texts, subscription }
  }

  describe('delivery', () => {
    test('every channel of a topic gets every message, encoded as given', async () => {
      const bus = newBus()
      const topic = newTopic()
      const audit = await recorder(bus, topic, 'audit')
      const candles = await recorder(bus, topic, 'candles')
      await bus.publish(topic, 'plain text')
      await bus.publish(topic, { symbol: 'BTCUSDT', price: '42000.5' })
      await bus.publishMany(topic, [new Uint8Array([104, 105]), 'batched'])
      const expected = ['plain text', '{"symbol":"BTCUSDT","price":"42000.5"}', 'hi', 'batched']
      for (const channel of [audit, candles]) {
        await waitUntil(() => channel.texts.length >= expected.length, 'both channels have every message')
        expect(channel.texts.toSorted()).toEqual(expected.toSorted())
      }
    })

    test('the handler sees the message id, attempts, timestamp and JSON body', async () => {
      const bus = newBus()
      const topic = newTopic()
      const seen: BusMessage[] = []
      await bus.subscribe(topic, 'c', async (message) => void seen.push(message), quick)
      const before = Date.now()
      await bus.publish(topic, { sequence: 7 })
      await waitUntil(() => seen.length === 1, 'the message arrives')
      const [message] = seen
      expect(message!.json()).toEqual({ sequence: 7 })
      expect(message!.attempts).toBe(1)
      expect(message!.id).toMatch(/^[0-9a-f]{16}$/)
      expect(message!.timestamp).toBeGreaterThanOrEqual(before - 1000)
      expect(message!.timestamp).toBeLessThanOrEqual(Date.now())
    })

    test('consumers on one channel share its messages, each handled once', async () => {
      const bus = newBus()
      const topic = newTopic()
      const slowly = { maxInFlight: 1, requeueDelayMs: 0 }
      const consumers = [[], []].map((texts: string[]) => ({ texts }))
      for (const consumer of consumers) {
        await bus.subscribe(
          topic,
          'shared',
          async (message) => {
            consumer.texts.push(message.text())
            await sleep(5)
          },
          slowly,
        )
      }
      const sent = Array.from({ length: 30 }, (_, index) => `m${index}`)
      await bus.publishMany(topic, sent)
      const handled = () => consumers.flatMap((consumer) => consumer.texts)
      await waitUntil(() => handled().length >= sent.length, 'every message is handled')
      await sleep(100)
      expect(handled().toSorted()).toEqual(sent.toSorted())
      for (const consumer of consumers) expect(consumer.texts.length).toBeGreaterThan(0)
    })

    test('messages published before anyone subscribes wait for the channel', async () => {
      const bus = newBus()
      const declared = newTopic()
      await bus.declare(declared, 'later')
      await bus.publishMany(declared, ['a', 'b', 'c'])
      const fresh = newTopic()
      await bus.publishMany(fresh, ['x', 'y'])

      const fromDeclared = await recorder(bus, declared, 'later')
      const fromFresh = await recorder(bus, fresh, 'first')
      await waitUntil(() => fromDeclared.texts.length === 3, 'the declared channel gets its backlog')
      await waitUntil(() => fromFresh.texts.length === 2, "the first channel gets the topic's backlog")
      expect(fromDeclared.texts.toSorted()).toEqual(['a', 'b', 'c'])
      expect(fromFresh.texts.toSorted()).toEqual(['x', 'y'])
    })

    test('names NSQ would refuse are refused', async () => {
      const bus = newBus()
      await expect(bus.publish('bad topic', 'x')).rejects.toThrow(BourseError)
      await expect(bus.subscribe('t', 'a/b', async () => {}, quick)).rejects.toMatchObject({
        field: 'channel',
      })
      await expect(
        bus.subscribe('t', 'c', async () => {}, { ...quick, maxInFlight: 0 }),
      ).rejects.toMatchObject({
        code: 'invalid_input',
        field: 'maxInFlight',
      })
    })
  })

  describe('failure and redelivery', () => {
    test('a rejected message comes back after the requeue delay with one more attempt', async () => {
      const bus = newBus()
      const topic = newTopic()
      const requeueDelayMs = 300
      const attempts: { attempts: number; at: number }[] = []
      await bus.subscribe(
        topic,
        'c',
        async (message) => {
          attempts.push({ attempts: message.attempts, at: performance.now() })
          if (message.attempts === 1) throw new Error('downstream not ready')
        },
        { maxInFlight: 1, requeueDelayMs },
      )
      await bus.publish(topic, 'retry me')
      await waitUntil(() => attempts.length === 2, 'the message is redelivered', redeliveryTimeoutMs)
      expect(attempts.map((attempt) => attempt.attempts)).toEqual([1, 2])
      // 1 ms of slack for timer granularity; the broker counts from when it hears the requeue, later still.
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(requeueDelayMs - 1)
    })

    test('a handler can requeue explicitly with its own delay', async () => {
      const bus = newBus()
      const topic = newTopic()
      const attempts: { attempts: number; at: number }[] = []
      await bus.subscribe(
        topic,
        'c',
        async (message) => {
          attempts.push({ attempts: message.attempts, at: performance.now() })
          if (message.attempts === 1) message.requeue(250)
        },
        { maxInFlight: 1, requeueDelayMs: 0 },
      )
      await bus.publish(topic, 'later please')
      await waitUntil(() => attempts.length === 2, 'the message is redelivered', redeliveryTimeoutMs)
      expect(attempts[1]!.attempts).toBe(2)
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(249)
      await sleep(200)
      expect(attempts).toHaveLength(2)
    })

    test('after maxAttempts failures a message is discarded and reported', async () => {
      const bus = newBus()
      const topic = newTopic()
      const attempts: number[] = []
      const discarded: { attempts: number; error: unknown }[] = []
      await bus.subscribe(
        topic,
        'c',
        async (message) => {
          attempts.push(message.attempts)
          throw new Error(`poison ${message.attempts}`)
        },
        {
          maxInFlight: 1,
          requeueDelayMs: 0,
          maxAttempts: 3,
          onDiscard: (message, error) => discarded.push({ attempts: message.attempts, error }),
        },
      )
      await bus.publish(topic, 'poison')
      await waitUntil(() => discarded.length === 1, 'the message is discarded')
      await sleep(300)
      expect(attempts).toEqual([1, 2, 3])
      expect(discarded).toEqual([{ attempts: 3, error: new Error('poison 3') }])
    })

    test('never more than maxInFlight handlers run at once', async () => {
      const bus = newBus()
      const topic = newTopic()
      let running = 0
      let mostRunning = 0
      let handled = 0
      await bus.subscribe(
        topic,
        'c',
        async () => {
          running++
          mostRunning = Math.max(mostRunning, running)
          await sleep(20)
          running--
          handled++
        },
        { maxInFlight: 3, requeueDelayMs: 0 },
      )
      await bus.publishMany(
        topic,
        Array.from({ length: 15 }, (_, index) => index.toString()),
      )
      await waitUntil(() => handled === 15, 'all 15 messages are handled')
      expect(mostRunning).toBe(3)
    })
  })

  describe('closing', () => {
    test('closing a subscription waits for its running handlers, and what they finished stays finished', async () => {
      const bus = newBus()
      const topic = newTopic()
      let started = false
      let finished = false
      const subscription = await bus.subscribe(
        topic,
        'c',
        async () => {
          started = true
          await sleep(200)
          finished = true
        },
        { maxInFlight: 1, requeueDelayMs: 0 },
      )
      await bus.publish(topic, 'slow')
      await waitUntil(() => started, 'the handler starts')
      await subscription.close()
      expect(finished).toBe(true)

      const after = await recorder(bus, topic, 'c')
      await bus.publish(topic, 'next')
      await waitUntil(() => after.texts.length >= 1, 'the next message arrives')
      await sleep(200)
      expect(after.texts).toEqual(['next'])
    })

    test('closing the bus drains every subscription', async () => {
      const bus = connect()
      const topic = newTopic()
      let started = 0
      let finished = 0
      for (const channel of ['a', 'b']) {
        await bus.subscribe(
          topic,
          channel,
          async () => {
            started++
            await sleep(100)
            finished++
          },
          quick,
        )
      }
      await bus.publish(topic, 'x')
      await waitUntil(() => started === 2, 'both handlers start')
      await bus.close()
      expect(finished).toBe(2)
    })
  })
}
