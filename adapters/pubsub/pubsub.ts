/**
 * Real-time state shared by the replicas of ws, handler and gateway: pub/sub channels (fed to WebSocket
 * clients) and the few cache operations market data and rate limiting need. Redis Cluster with sharded pub/sub
 * in production (redis.ts), an in-process store in the embedded mode (memory.ts); both pass pubsub.contract.ts.
 * Name market keys and channels with `marketKey` so that each market lives on one shard.
 */

export type MessageHandler = (message: string, channel: string) => void

/** Stops this one handler; the channel is unsubscribed when its last handler goes. */
export type Unsubscribe = () => Promise<void>

export interface PubSubCache {
  publish(channel: string, message: string): Promise<void>
  /** Resolves once subscribed: messages published after that reach the handler. */
  subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe>

  get(key: string): Promise<string | undefined>
  /** Without `ttlMs` the value stays until deleted. */
  set(key: string, value: string, ttlMs?: number): Promise<void>
  del(key: string): Promise<void>
  hashSet(key: string, fields: Record<string, string>): Promise<void>
  /** Empty when the key does not exist. */
  hashGetAll(key: string): Promise<Record<string, string>>
  /** Adds `by` and returns the new count; the key expires `ttlMs` after the increment that created it. */
  incrWithTtl(key: string, by: number, ttlMs: number): Promise<number>
  /** Adds `value` at the front and keeps only the newest `maxLen` values. */
  pushCapped(key: string, value: string, maxLen: number): Promise<void>
  /** The newest `count` values, newest first. */
  range(key: string, count: number): Promise<string[]>

  /** Unsubscribes everything and disconnects. */
  close(): Promise<void>
}

export interface Logger {
  warn(details: object, message: string): void
}

/** The handlers of one client, by channel; tells when a channel gains its first or loses its last handler. */
export class ChannelHandlers {
  readonly #byChannel = new Map<string, Set<MessageHandler>>()
  readonly #logger: Logger | undefined

  constructor(logger: Logger | undefined) {
    this.#logger = logger
  }

  /** Adds a handler; true if the channel had none, so the client must subscribe to it. */
  add(channel: string, handler: MessageHandler): boolean {
    const handlers = this.#byChannel.get(channel) ?? new Set()
    handlers.add(handler)
    this.#byChannel.set(channel, handlers)
    return handlers.size === 1
  }

  /** Removes a handler; true if it was the channel's last, so the client must unsubscribe. */
  remove(channel: string, handler: MessageHandler): boolean {
    const handlers = this.#byChannel.get(channel)
    if (!handlers?.delete(handler)) return false
    if (handlers.size > 0) return false
    this.#byChannel.delete(channel)
    return true
  }

  channels(): string[] {
    return [...this.#byChannel.keys()]
  }

  /** One failing handler must not keep the message from the others. */
  dispatch(channel: string, message: string): void {
    for (const handler of this.#byChannel.get(channel) ?? []) {
      try {
        handler(message, channel)
      } catch (error) {
        this.#logger?.warn({ err: error, channel }, 'pub/sub handler failed')
      }
    }
  }
}

/**
 * Subscribes through `subscribeChannel` when a channel gets its first handler and returns the handle that
 * unsubscribes through `unsubscribeChannel` when it loses its last one.
 */
export async function subscribeWith(
  handlers: ChannelHandlers,
  channel: string,
  handler: MessageHandler,
  transport: {
    subscribeChannel(channel: string): Promise<void>
    unsubscribeChannel(channel: string): Promise<void>
  },
): Promise<Unsubscribe> {
  // A wrapper per subscription: the same function subscribed twice gets two independent handles.
  const entry: MessageHandler = (message, from) => handler(message, from)
  if (handlers.add(channel, entry)) {
    try {
      await transport.subscribeChannel(channel)
    } catch (error) {
      handlers.remove(channel, entry)
      throw error
    }
  }
  return async () => {
    if (handlers.remove(channel, entry)) await transport.unsubscribeChannel(channel)
  }
}
