import { afterAll, describe, expect, test } from 'vitest'
import { BourseError } from '../../lib/errors.ts'
import { nsqdHttpUrl, nsqdTcpAddress, nsqlookupdHttpUrl, testServer } from '../testing/servers.ts'
import { sleep, waitUntil } from '../testing/wait.ts'
import { busContract, newTopic, runTopicPrefix } from './bus.contract.ts'
import { createBus } from './index.ts'

const connect = () =>
  createBus({
    kind: 'nsq',
    nsqdTcp: nsqdTcpAddress(),
    nsqdHttp: nsqdHttpUrl(),
    lookupdHttp: [nsqlookupdHttpUrl()],
  })

describe('NSQ bus', () => {
  busContract(connect)
  // nsqd keeps topics on disk: leave no test topics behind on the shared server.
  afterAll(() => deleteTopics(runTopicPrefix))

  test('messages survive an nsqd restart, and the publisher and readers reconnect', {
    timeout: 60_000,
  }, async () => {
    const bus = connect()
    const topic = newTopic()
    const live: string[] = []
    try {
      await bus.declare(topic, 'stored')
      await bus.subscribe(topic, 'live', async (message) => void live.push(message.text()), {
        maxInFlight: 10,
        requeueDelayMs: 0,
      })
      await bus.publish(topic, 'before')
      await waitUntil(() => live.length === 1, 'the live channel gets the first message')

      await testServer('stop', 'nsqd')
      const refused = await bus.publish(topic, 'during').catch((error: unknown) => error)
      expect(refused).toBeInstanceOf(BourseError)
      expect(refused).toMatchObject({ code: 'unavailable', retryable: true })

      await testServer('start', 'nsqd')
      await publishRetrying(() => bus.publish(topic, 'after'))
      const stored: string[] = []
      await bus.subscribe(topic, 'stored', async (message) => void stored.push(message.text()), {
        maxInFlight: 10,
        requeueDelayMs: 0,
      })
      await waitUntil(() => stored.length === 2, 'the stored channel gets both messages', 20_000)
      expect(stored.toSorted()).toEqual(['after', 'before'])
      await waitUntil(() => live.length === 2, 'the live reader reconnects and gets the new message', 20_000)
      expect(live).toEqual(['before', 'after'])
    } finally {
      await testServer('start', 'nsqd')
      await bus.close()
    }
  })
})

/** What the outbox relay does: keep trying while nsqd is away. */
async function publishRetrying(publish: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await publish()
    } catch (error) {
      if (!(error instanceof BourseError && error.retryable) || attempt === 100) throw error
      await sleep(100)
    }
  }
}

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
