import type { Bus } from './bus.ts'
import { MemoryBus } from './memory.ts'
import { NsqBus, type NsqConfig } from './nsq.ts'

export type { Bus, BusMessage, MessageHandler, Publishable, SubscribeOptions, Subscription } from './bus.ts'

/** NSQ in a deployment; in memory for the embedded mode, where every component shares one bus instance. */
export type BusConfig = ({ kind: 'nsq' } & NsqConfig) | { kind: 'memory' }

export function createBus(config: BusConfig): Bus {
  return config.kind === 'nsq' ? new NsqBus(config) : new MemoryBus()
}
