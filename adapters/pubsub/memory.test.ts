import { describe } from 'vitest'
import { createPubSubCache, InProcessRedis } from './index.ts'
import { pubSubCacheContract } from './pubsub.contract.ts'

describe('in-process pub/sub and cache', () => {
  const server = new InProcessRedis()
  pubSubCacheContract(() => createPubSubCache({ kind: 'memory', server }))
})
