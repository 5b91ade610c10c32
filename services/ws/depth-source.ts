/**
 * Where the depth and bookTicker streams come from: the engine's `onDepth` after each committed batch. This
 * publishes the update on the market's depth channel and keeps the last one under the book key (for partial
 * depth on a replica that has seen no update yet). Fire and forget, in order: one market is one cluster slot,
 * so ioredis sends these on one connection in call order. A lost message costs a client one resync, since the
 * next update's `U` tells it (Binance's local order book algorithm).
 *
 * Wiring: `MatchingEngine.start({ …, onDepth: depthPublisher(cache, log) })`.
 */
import type { PubSubCache } from '../../adapters/pubsub/index.ts'
import type { Logger } from '../../lib/log.ts'
import type { DepthUpdate } from '../engine/events.ts'
import { bookKey, depthChannel } from './streams.ts'

export function depthPublisher(cache: PubSubCache, log: Logger): (update: DepthUpdate) => void {
  let failures = 0
  const failed = (err: unknown) => {
    if (failures++ % 1000 === 0) log.warn({ err, failures }, 'depth publish failed')
  }
  return (update) => {
    const json = JSON.stringify(update)
    cache.set(bookKey(update.market), json).catch(failed)
    cache.publish(depthChannel(update.market), json).catch(failed)
  }
}
