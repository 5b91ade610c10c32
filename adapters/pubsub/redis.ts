/**
 * PubSubCache on a Redis Cluster through ioredis: sharded pub/sub (SPUBLISH/SSUBSCRIBE, one subscriber
 * connection per master), so a message only travels within its shard instead of across the whole cluster.
 */
import { Cluster } from 'ioredis'
import {
  ChannelHandlers,
  type Logger,
  type MessageHandler,
  type PubSubCache,
  subscribeWith,
  type Unsubscribe,
} from './pubsub.ts'

export interface RedisConfig {
  /** Some of the cluster's nodes as `host:port`; the rest are discovered. */
  nodes: string[]
  logger?: Logger
}

export class RedisPubSubCache implements PubSubCache {
  readonly #cluster: Cluster
  readonly #handlers: ChannelHandlers

  constructor(config: RedisConfig) {
    this.#cluster = new Cluster(config.nodes, { shardedSubscribers: true })
    this.#handlers = new ChannelHandlers(config.logger)
    this.#cluster.on('smessage', (channel: string, message: string) =>
      this.#handlers.dispatch(channel, message),
    )
    this.#cluster.on('error', (error: Error) => config.logger?.warn({ err: error }, 'redis cluster'))
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.#cluster.spublish(channel, message)
  }

  subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    return subscribeWith(this.#handlers, channel, handler, {
      subscribeChannel: async (name) => void (await this.#cluster.ssubscribe(name)),
      unsubscribeChannel: async (name) => void (await this.#cluster.sunsubscribe(name)),
    })
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#cluster.get(key)) ?? undefined
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    if (ttlMs === undefined) await this.#cluster.set(key, value)
    else await this.#cluster.set(key, value, 'PX', ttlMs)
  }

  async del(key: string): Promise<void> {
    await this.#cluster.del(key)
  }

  async hashSet(key: string, fields: Record<string, string>): Promise<void> {
    await this.#cluster.hset(key, fields)
  }

  hashGetAll(key: string): Promise<Record<string, string>> {
    return this.#cluster.hgetall(key)
  }

  async incrWithTtl(key: string, by: number, ttlMs: number): Promise<number> {
    // PEXPIRE NX only sets an expiry the key lacks, so the window runs from the first increment.
    const [count] = await execAtomically(this.#cluster.multi().incrby(key, by).pexpire(key, ttlMs, 'NX'))
    return count as number
  }

  async pushCapped(key: string, value: string, maxLen: number): Promise<void> {
    await execAtomically(
      this.#cluster
        .multi()
        .lpush(key, value)
        .ltrim(key, 0, maxLen - 1),
    )
  }

  range(key: string, count: number): Promise<string[]> {
    return this.#cluster.lrange(key, 0, count - 1)
  }

  async close(): Promise<void> {
    await this.#cluster.quit()
  }
}

/** Runs a MULTI and returns each command's result, throwing the first command error. */
async function execAtomically(transaction: {
  exec(): Promise<[Error | null, unknown][] | null>
}): Promise<unknown[]> {
  const replies = await transaction.exec()
  if (!replies) throw new Error('Redis transaction aborted')
  return replies.map(([error, result]) => {
    if (error) throw error
    return result
  })
}
