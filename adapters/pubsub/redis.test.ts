import { Cluster } from 'ioredis'
import { afterAll, describe, expect, test } from 'vitest'
import { redisClusterNodes } from '../testing/servers.ts'
import { createPubSubCache } from './index.ts'
import { marketKey } from './keys.ts'
import { manySymbols, pubSubCacheContract } from './pubsub.contract.ts'

describe('Redis Cluster pub/sub and cache', () => {
  pubSubCacheContract(() => createPubSubCache({ kind: 'redis', nodes: redisClusterNodes() }))

  describe('slots', () => {
    const cluster = new Cluster(redisClusterNodes())
    afterAll(() => cluster.quit())
    const slotOf = async (key: string) => Number(await cluster.call('CLUSTER', 'KEYSLOT', key))

    test("a market's keys and channels all hash to one slot", async () => {
      const names = [
        marketKey('BTCUSDT', 'trade'),
        marketKey('BTCUSDT', 'kline', '1m'),
        marketKey('BTCUSDT', 'ticker'),
        marketKey('BTCUSDT', 'trades'),
      ]
      const slots = await Promise.all(names.map(slotOf))
      expect(new Set(slots).size).toBe(1)
      expect(slots[0]).toBe(await slotOf('BTCUSDT'))
    })

    test("the contract's symbols cover every master, so pub/sub was tested across all shards", async () => {
      const ranges = (await cluster.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][]
      const masterOf = (slot: number) => {
        const [, , [host, port]] = ranges.find(([first, last]) => first <= slot && slot <= last)!
        return `${host}:${port}`
      }
      const slots = await Promise.all(manySymbols.map((symbol) => slotOf(marketKey(symbol, 'trade'))))
      expect(new Set(slots.map(masterOf)).size).toBe(3)
    })
  })
})
