/**
 * PubSubCache in process for the embedded mode. `InProcessRedis` holds the data and the channels, like the
 * server; each component gets its own `MemoryPubSubCache` client on it, like a connection, so closing one
 * client ends only its own subscriptions.
 */
import {
  ChannelHandlers,
  type Logger,
  type MessageHandler,
  type PubSubCache,
  subscribeWith,
  type Unsubscribe,
} from './pubsub.ts'

type Value =
  | { kind: 'string'; value: string }
  | { kind: 'hash'; fields: Map<string, string> }
  | { kind: 'list'; items: string[] }
type Entry = Value & { expiresAt: number | undefined }
type EntryOf<K extends Value['kind']> = Extract<Value, { kind: K }> & { expiresAt: number | undefined }

type Listener = (message: string, channel: string) => void

// Expired keys nobody reads again (rate-limit windows) are swept now and then rather than on a timer each.
const writesBetweenSweeps = 1000

export class InProcessRedis {
  readonly #entries = new Map<string, Entry>()
  readonly #listeners = new Map<string, Set<Listener>>()
  #writesSinceSweep = 0

  /** The live entry at `key`, if any; a key holding another kind of value is an error, as in Redis. */
  read<K extends Value['kind']>(key: string, kind: K): EntryOf<K> | undefined {
    const entry = this.#entries.get(key)
    if (!entry) return undefined
    if (isExpired(entry)) {
      this.#entries.delete(key)
      return undefined
    }
    if (entry.kind !== kind) throw new Error(`WRONGTYPE ${key} holds a ${entry.kind}, not a ${kind}`)
    return entry as EntryOf<K>
  }

  write<E extends Entry>(key: string, entry: E): E {
    this.#entries.set(key, entry)
    if (++this.#writesSinceSweep >= writesBetweenSweeps) this.#sweep()
    return entry
  }

  delete(key: string): void {
    this.#entries.delete(key)
  }

  listen(channel: string, listener: Listener): void {
    const listeners = this.#listeners.get(channel) ?? new Set()
    listeners.add(listener)
    this.#listeners.set(channel, listeners)
  }

  unlisten(channel: string, listener: Listener): void {
    const listeners = this.#listeners.get(channel)
    listeners?.delete(listener)
    if (listeners?.size === 0) this.#listeners.delete(channel)
  }

  /** Delivered asynchronously, as over a network, to whoever listens at the time of publishing. */
  publish(channel: string, message: string): void {
    const listeners = [...(this.#listeners.get(channel) ?? [])]
    queueMicrotask(() => {
      for (const listener of listeners) listener(message, channel)
    })
  }

  #sweep(): void {
    this.#writesSinceSweep = 0
    for (const [key, entry] of this.#entries) if (isExpired(entry)) this.#entries.delete(key)
  }
}

function isExpired(entry: Entry): boolean {
  return entry.expiresAt !== undefined && entry.expiresAt <= Date.now()
}

export interface MemoryConfig {
  server: InProcessRedis
  logger?: Logger
}

export class MemoryPubSubCache implements PubSubCache {
  readonly #server: InProcessRedis
  readonly #handlers: ChannelHandlers
  readonly #deliver: Listener

  constructor(config: MemoryConfig) {
    this.#server = config.server
    this.#handlers = new ChannelHandlers(config.logger)
    this.#deliver = (message, channel) => this.#handlers.dispatch(channel, message)
  }

  async publish(channel: string, message: string): Promise<void> {
    this.#server.publish(channel, message)
  }

  subscribe(channel: string, handler: MessageHandler): Promise<Unsubscribe> {
    return subscribeWith(this.#handlers, channel, handler, {
      subscribeChannel: async (name) => this.#server.listen(name, this.#deliver),
      unsubscribeChannel: async (name) => this.#server.unlisten(name, this.#deliver),
    })
  }

  async get(key: string): Promise<string | undefined> {
    return this.#server.read(key, 'string')?.value
  }

  async set(key: string, value: string, ttlMs?: number): Promise<void> {
    this.#server.write(key, {
      kind: 'string',
      value,
      expiresAt: ttlMs === undefined ? undefined : Date.now() + ttlMs,
    })
  }

  async del(key: string): Promise<void> {
    this.#server.delete(key)
  }

  async hashSet(key: string, fields: Record<string, string>): Promise<void> {
    const hash = this.#server.read(key, 'hash') ?? this.#server.write(key, newHash())
    for (const [field, value] of Object.entries(fields)) hash.fields.set(field, value)
  }

  async hashGetAll(key: string): Promise<Record<string, string>> {
    return Object.fromEntries(this.#server.read(key, 'hash')?.fields ?? [])
  }

  async incrWithTtl(key: string, by: number, ttlMs: number): Promise<number> {
    const counter = this.#server.read(key, 'string') ?? this.#server.write(key, newCounter())
    const count = Number(counter.value) + by
    if (!Number.isSafeInteger(count)) throw new Error(`ERR value at ${key} is not an integer or out of range`)
    counter.value = String(count)
    counter.expiresAt ??= Date.now() + ttlMs
    return count
  }

  async pushCapped(key: string, value: string, maxLen: number): Promise<void> {
    const list = this.#server.read(key, 'list') ?? this.#server.write(key, newList())
    list.items.unshift(value)
    list.items.splice(maxLen)
  }

  async range(key: string, count: number): Promise<string[]> {
    return this.#server.read(key, 'list')?.items.slice(0, count) ?? []
  }

  async close(): Promise<void> {
    for (const channel of this.#handlers.channels()) this.#server.unlisten(channel, this.#deliver)
  }
}

function newHash(): EntryOf<'hash'> {
  return { kind: 'hash', fields: new Map(), expiresAt: undefined }
}

function newCounter(): EntryOf<'string'> {
  return { kind: 'string', value: '0', expiresAt: undefined }
}

function newList(): EntryOf<'list'> {
  return { kind: 'list', items: [], expiresAt: undefined }
}
