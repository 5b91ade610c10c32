/**
 * Binance's "How to manage a local order book correctly", run by a client against the diff-depth stream while
 * orders flow through an in-process engine; the REST snapshot is the engine's depth (what the gateway's
 * /api/v3/depth answers). At the end the client's book must be the engine's.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createPubSubCache, InProcessRedis } from '../../adapters/pubsub/index.ts'
import { waitUntil } from '../../adapters/testing/wait.ts'
import { createLogger } from '../../lib/log.ts'
import { createRegistry } from '../../lib/metrics.ts'
import type { MatchingEngine } from '../engine/engine.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { depthPublisher } from './depth-source.ts'
import { type RunningWsServer, startWsServer } from './server.ts'
import { connect } from './testing.ts'

interface DepthEvent {
  e: 'depthUpdate'
  U: number
  u: number
  b: [string, string][]
  a: [string, string][]
}

interface Snapshot {
  lastUpdateId: string
  bids: [string, string][]
  asks: [string, string][]
}

/** The client side of Binance's algorithm, step by step. */
class LocalBook {
  bids = new Map<string, string>()
  asks = new Map<string, string>()
  id = -1
  buffered: DepthEvent[] = []
  synced = false
  resyncs = 0
  applied = 0

  onEvent(event: DepthEvent): void {
    if (!this.synced) {
      this.buffered.push(event)
      return
    }
    this.apply(event)
  }

  /** Steps 3–7: returns false when the snapshot is too old for the buffer (fetch it again). */
  sync(snapshot: Snapshot): boolean {
    const last = Number(snapshot.lastUpdateId)
    const firstU = this.buffered[0]?.U
    if (firstU !== undefined && last < firstU) return false
    this.bids = new Map(snapshot.bids)
    this.asks = new Map(snapshot.asks)
    this.id = last
    this.synced = true
    const buffered = this.buffered.filter((e) => e.u > last)
    this.buffered = []
    for (const event of buffered) this.apply(event)
    return true
  }

  apply(event: DepthEvent): void {
    if (event.u < this.id) return
    if (event.U > this.id + 1) {
      // Missed events: start again from a new snapshot.
      this.resyncs++
      this.synced = false
      this.buffered = [event]
      return
    }
    for (const [price, qty] of event.b) setLevel(this.bids, price, qty)
    for (const [price, qty] of event.a) setLevel(this.asks, price, qty)
    this.id = event.u
    this.applied++
  }

  sorted(side: 'bids' | 'asks'): [string, string][] {
    const sign = side === 'bids' ? -1 : 1
    return [...this[side]].sort((x, y) => sign * (Number(x[0]) - Number(y[0])))
  }
}

function setLevel(levels: Map<string, string>, price: string, qty: string): void {
  if (Number(qty) === 0) levels.delete(price)
  else levels.set(price, qty)
}

describe('local order book from the diff-depth stream and the REST snapshot', () => {
  let market: MarketFixture
  let engine: MatchingEngine
  let ws: RunningWsServer
  const redis = new InProcessRedis()
  const cache = createPubSubCache({ kind: 'memory', server: redis })
  const engineCache = createPubSubCache({ kind: 'memory', server: redis })
  const log = createLogger('ws-test', { level: 'silent' })

  beforeAll(async () => {
    market = await marketFixture('pglite')
    engine = await market.engine({ onDepth: depthPublisher(engineCache, log), batchWindowMs: 1 })
    ws = await startWsServer({ port: 0, cache, log, registry: createRegistry() })
  })
  afterAll(async () => {
    await ws?.close()
    await market?.close()
    await cache.close()
    await engineCache.close()
  })

  it('rebuilds the engine’s book while orders flow', async () => {
    const traders = await Promise.all(
      ['a', 'b', 'c'].map((name) => market.trader(name, { BTC: '1000', USDT: '1000000' })),
    )
    let seed = 42
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    let flowing = true
    let submitted = 0
    const flow = (async () => {
      while (flowing) {
        const work: Promise<unknown>[] = []
        for (let i = 0; i < 10; i++) {
          const userId = traders[Math.floor(random() * traders.length)]!
          const side = random() < 0.5 ? 'BUY' : 'SELL'
          const r = random()
          const request =
            r < 0.02
              ? ({ kind: 'cancelAll', userId } as const)
              : r < 0.08
                ? ({ kind: 'place', order: { userId, side, type: 'MARKET', quantity: '0.3' } } as const)
                : ({
                    kind: 'place',
                    order: {
                      userId,
                      side,
                      type: 'LIMIT',
                      // Mostly on its own side of 100, some crossing.
                      price: (100 + (side === 'BUY' ? -1 : 1) * (Math.floor(random() * 40) / 4 - 1)).toFixed(
                        2,
                      ),
                      quantity: (0.05 + random()).toFixed(3),
                    },
                  } as const)
          work.push(engine.submit(request).catch(() => undefined))
          submitted++
        }
        await Promise.all(work)
        await sleep(random() * 5)
      }
    })()

    // 1–2: open the stream and buffer; 3: the snapshot once events flow; 4: again while it is too old.
    const book = new LocalBook()
    const client = await connect(`${ws.url}/ws/btcusdt@depth@100ms`)
    client.ws.on('message', (data) => {
      const event = JSON.parse(data.toString()) as DepthEvent
      if (event.e === 'depthUpdate') book.onEvent(event)
    })
    await sleep(300)
    for (let round = 0; round < 10; round++) {
      await waitUntil(() => book.buffered.length > 0 || book.synced, 'depth events arrive')
      if (!book.synced && book.sync(await engine.depth(5000))) break
      await sleep(150)
    }
    expect(book.synced).toBe(true)
    await sleep(1500)
    flowing = false
    await flow
    // Resting bids at a dozen fresh prices last, far below the flow: the final batches are sure to change
    // levels, and the book compared at the end has depth whatever the random flow left (a loaded machine
    // submits fewer orders in the same time).
    for (let cents = 5000; cents < 5012; cents++) {
      await engine.submit({
        kind: 'place',
        order: {
          userId: traders[0]!,
          side: 'BUY',
          type: 'LIMIT',
          price: (cents / 100).toFixed(2),
          quantity: '0.1',
        },
      })
    }
    const final = await engine.depth(5000)
    await waitUntil(
      () => book.id === Number(final.lastUpdateId),
      'the local book reaches the engine’s last id',
      5000,
    )

    expect(submitted).toBeGreaterThan(200)
    expect(book.applied).toBeGreaterThan(5)
    expect(book.resyncs).toBe(0)
    expect(final.bids.length + final.asks.length).toBeGreaterThan(10)
    expect(book.sorted('bids')).toEqual(final.bids)
    expect(book.sorted('asks')).toEqual(final.asks)
    client.close()
  }, 60_000)
})
