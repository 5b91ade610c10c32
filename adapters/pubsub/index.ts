import { InProcessRedis, type MemoryConfig, MemoryPubSubCache } from './memory.ts'
import type { PubSubCache } from './pubsub.ts'
import { type RedisConfig, RedisPubSubCache } from './redis.ts'

export { marketKey } from './keys.ts'
export type { MessageHandler, PubSubCache, Unsubscribe } from './pubsub.ts'
export { InProcessRedis }

/** Redis Cluster in a deployment; in the embedded mode every component connects to one `InProcessRedis`. */
export type PubSubCacheConfig = ({ kind: 'redis' } & RedisConfig) | ({ kind: 'memory' } & MemoryConfig)

export function createPubSubCache(config: PubSubCacheConfig): PubSubCache {
  return config.kind === 'redis' ? new RedisPubSubCache(config) : new MemoryPubSubCache(config)
}
