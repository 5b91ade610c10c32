/**
 * What every PubSubCache promises; redis.test.ts and memory.test.ts run it. `connect` opens a new client on
 * the same backing store each call. Symbols are random per run, since suites share the Redis Cluster.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { uniqueName } from '../testing/servers.ts'
import { sleep, waitUntil } from '../testing/wait.ts'
import { marketKey } from './keys.ts'
import type { PubSubCache } from './pubsub.ts'

const runPrefix = uniqueName('T').toUpperCase()

/** Enough symbols that their channels land on every shard of a 3-master cluster (redis.test.ts checks). */
export const manySymbols = Array.from({ length: 48 }, (_, index) => `${runPrefix}${index}`)

let lastSymbol = 0
const newSymbol = () => `${runPrefix}X${++lastSymbol}`

export function pubSubCacheContract(connect: () => PubSubCache): void {
  const open: PubSubCache[] = []
  const newClient = () => {
    const client = connect()
    open.push(client)
    return client
  }
  afterEach(async () => {
    await Promise.all(open.splice(0).map((client) => client.close()))
  })

  describe('pub/sub', () => {
    test('a subscriber on one client gets what another client publishes, on every market', async () => {
      const [publisher, subscriber] = [newClient(), newClient()]
      const received = new Map<string, string[]>()
      for (const symbol of manySymbols) {
        await subscriber.subscribe(marketKey(symbol, 'trade'), (message, channel) => {
          received.set(channel, [...(received.get(channel) ?? []), message])
        })
      }
      for (const symbol of manySymbols)
        await publisher.publish(marketKey(symbol, 'trade'), `trade of ${symbol}`)
      await waitUntil(() => received.size === manySymbols.length, 'every market channel has its message')
      await sleep(50)
      for (const symbol of manySymbols) {
        expect(received.get(marketKey(symbol, 'trade'))).toEqual([`trade of ${symbol}`])
      }
    })

    test('each handler on a channel gets the message, and unsubscribing stops only that handler', async () => {
      const [publisher, subscriber, control] = [newClient(), newClient(), newClient()]
      const channel = marketKey(newSymbol(), 'ticker')
      const first: string[] = []
      const second: string[] = []
      const always: string[] = []
      const unsubscribeFirst = await subscriber.subscribe(channel, (message) => first.push(message))
      const unsubscribeSecond = await subscriber.subscribe(channel, (message) => second.push(message))
      await control.subscribe(channel, (message) => always.push(message))

      await publisher.publish(channel, 'm1')
      await waitUntil(() => first.length === 1 && second.length === 1, 'both handlers get m1')
      await unsubscribeFirst()
      await publisher.publish(channel, 'm2')
      await waitUntil(() => second.length === 2, 'the remaining handler gets m2')
      await unsubscribeSecond()
      await publisher.publish(channel, 'm3')
      await waitUntil(() => always.length === 3, 'the control subscriber gets m3')
      await sleep(50)

      expect(first).toEqual(['m1'])
      expect(second).toEqual(['m1', 'm2'])
      expect(always).toEqual(['m1', 'm2', 'm3'])
    })

    test('a failing handler does not keep the message from the others', async () => {
      const [publisher, subscriber] = [newClient(), newClient()]
      const channel = marketKey(newSymbol(), 'depth')
      const received: string[] = []
      await subscriber.subscribe(channel, () => {
        throw new Error('broken consumer')
      })
      await subscriber.subscribe(channel, (message) => received.push(message))
      await publisher.publish(channel, 'depth update')
      await waitUntil(() => received.length === 1, 'the healthy handler gets the message')
    })

    test('closing a client ends its subscriptions', async () => {
      const [publisher, leaving, staying] = [newClient(), connect(), newClient()]
      const channel = marketKey(newSymbol(), 'kline', '1m')
      const left: string[] = []
      const stayed: string[] = []
      await leaving.subscribe(channel, (message) => left.push(message))
      await staying.subscribe(channel, (message) => stayed.push(message))
      await leaving.close()
      await publisher.publish(channel, 'after close')
      await waitUntil(() => stayed.length === 1, 'the other client gets the message')
      await sleep(50)
      expect(left).toEqual([])
    })
  })

  describe('cache', () => {
    test('values are shared between clients, expire after their TTL and can be deleted', async () => {
      const [writer, reader] = [newClient(), newClient()]
      const symbol = newSymbol()
      const [lasting, expiring] = [marketKey(symbol, 'price'), marketKey(symbol, 'quote')]
      await writer.set(lasting, '42000.5')
      await writer.set(expiring, 'soon gone', 200)
      expect(await reader.get(lasting)).toBe('42000.5')
      expect(await reader.get(expiring)).toBe('soon gone')
      await sleep(300)
      expect(await reader.get(expiring)).toBeUndefined()
      expect(await reader.get(lasting)).toBe('42000.5')
      await writer.del(lasting)
      expect(await reader.get(lasting)).toBeUndefined()
    })

    test('a counter expires a TTL after its first increment, not after each', async () => {
      const client = newClient()
      const key = marketKey(newSymbol(), 'weight', 'client-1')
      expect(await client.incrWithTtl(key, 1, 400)).toBe(1)
      await sleep(200)
      expect(await client.incrWithTtl(key, 5, 400)).toBe(6)
      await sleep(300)
      expect(await client.incrWithTtl(key, 2, 400)).toBe(2)
    })

    test('concurrent increments are all counted', async () => {
      const [one, other] = [newClient(), newClient()]
      const key = marketKey(newSymbol(), 'weight', 'client-2')
      await Promise.all(
        Array.from({ length: 20 }, (_, index) => (index % 2 ? one : other).incrWithTtl(key, 3, 10_000)),
      )
      expect(await one.incrWithTtl(key, 0, 10_000)).toBe(60)
    })

    test('a capped list keeps the newest values, newest first', async () => {
      const client = newClient()
      const key = marketKey(newSymbol(), 'trades')
      for (let trade = 1; trade <= 7; trade++) await client.pushCapped(key, `t${trade}`, 5)
      expect(await client.range(key, 10)).toEqual(['t7', 't6', 't5', 't4', 't3'])
      expect(await client.range(key, 2)).toEqual(['t7', 't6'])
      expect(await client.range(marketKey(newSymbol(), 'trades'), 5)).toEqual([])
    })

    test('hash fields are merged and read back together', async () => {
      const client = newClient()
      const key = marketKey(newSymbol(), 'ticker')
      await client.hashSet(key, { last: '100', volume: '5' })
      await client.hashSet(key, { last: '101', high: '102' })
      expect(await client.hashGetAll(key)).toEqual({ last: '101', volume: '5', high: '102' })
      expect(await client.hashGetAll(marketKey(newSymbol(), 'ticker'))).toEqual({})
    })
  })
}
