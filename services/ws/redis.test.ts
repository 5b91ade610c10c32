/**
 * Two ws replicas on the real Redis Cluster (sharded pub/sub): a client on either sees what was published
 * through the other's connection, for symbols spread over every shard.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPubSubCache, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { redisClusterNodes, uniqueName } from '../../adapters/testing/servers.ts'
import { waitUntil } from '../../adapters/testing/wait.ts'
import { createLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import { channels } from '../handler/keys.ts'
import { depthPublisher } from './depth-source.ts'
import { type RunningWsServer, startWsServer } from './server.ts'
import { connect, type TestClient } from './testing.ts'

const log = createLogger('ws-test', { level: 'silent' })

describe('ws replicas on the Redis Cluster', () => {
  const caches: PubSubCache[] = []
  const replicas: RunningWsServer[] = []
  const clients: TestClient[] = []
  const symbols = Array.from({ length: 6 }, () => uniqueName('WS').toUpperCase())

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) {
      const cache = createPubSubCache({ kind: 'redis', nodes: redisClusterNodes() })
      caches.push(cache)
      replicas.push(await startWsServer({ port: 0, cache, log, registry: createRegistry() }))
    }
  })
  afterAll(async () => {
    for (const c of clients) c.close()
    await Promise.all(replicas.map((r) => r.close()))
    await Promise.all(caches.map((c) => c.close()))
  })

  it('delivers to a client on replica B what was published through replica A’s connection, and back', async () => {
    const [a, b] = replicas as [RunningWsServer, RunningWsServer]
    const [cacheA, cacheB] = caches as [PubSubCache, PubSubCache]
    const streams = symbols.map((s) => `${s.toLowerCase()}@trade`).join('/')
    const onB = await connect(`${b.url}/stream?streams=${streams}`)
    const onA = await connect(`${a.url}/stream?streams=${streams}`)
    clients.push(onA, onB)
    await waitUntil(() => a.server.stats.channels === 6 && b.server.stats.channels === 6, 'both subscribed')
    // Pub/sub keeps nothing for a subscription still being confirmed by its shard (slow on a loaded
    // machine), so publish again until every stream has reached both replicas' clients.
    const streamsOf = (c: typeof onA) => new Set(c.messages.map((m) => (m as { stream: string }).stream))
    const deadline = Date.now() + 30_000
    while (streamsOf(onA).size < 6 || streamsOf(onB).size < 6) {
      if (Date.now() > deadline) throw new Error('timed out waiting for six trades on both replicas')
      for (const [i, symbol] of symbols.entries()) {
        const cache = i % 2 === 0 ? cacheA : cacheB
        await cache.publish(channels.trade(symbol), JSON.stringify({ e: 'trade', s: symbol, t: i }))
      }
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    for (const c of [onA, onB]) {
      expect(streamsOf(c)).toEqual(new Set(symbols.map((s) => `${s.toLowerCase()}@trade`)))
    }
  })

  it('serves depth published by an engine through another connection: partial depth from the stored book, diffs live', async () => {
    const [, b] = replicas as [RunningWsServer, RunningWsServer]
    const engineSide = createPubSubCache({ kind: 'redis', nodes: redisClusterNodes() })
    caches.push(engineSide)
    const symbol = symbols[0]!
    const publish = depthPublisher(engineSide, log)
    const top = { bids: [['9.5', '1']], asks: [['10.5', '2']] } as const
    const update = (first: number, last: number) => ({
      market: symbol,
      firstSeq: String(first),
      lastSeq: String(last),
      time: Date.now(),
      bids: [['9.5', String(last)]] as [string, string][],
      asks: [] as [string, string][],
      top: { bids: [['9.5', String(last)]] as [string, string][], asks: [...top.asks] as [string, string][] },
    })
    publish(update(1, 3))
    await sleep(200)
    const s = symbol.toLowerCase()
    const c = await connect(`${b.url}/stream?streams=${s}@depth10@100ms/${s}@depth@100ms`)
    clients.push(c)
    const partial = await c.next<{ stream: string; data: unknown }>((m) => m.stream.includes('depth10'))
    expect(partial.data).toEqual({ lastUpdateId: 3, bids: [['9.5', '3']], asks: [['10.5', '2']] })
    publish(update(4, 4))
    publish(update(5, 6))
    const diff = await c.next<{ stream: string; data: Record<string, unknown> }>(
      (m) => m.stream === `${s}@depth@100ms`,
    )
    expect(diff.data).toMatchObject({ e: 'depthUpdate', s: symbol, U: 4, u: 6, b: [['9.5', '6']], a: [] })
  })
})
