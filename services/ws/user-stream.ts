/**
 * User data streams, the parts the gateway and ws share: each user's pub/sub channel (the user-events consumer
 * publishes Binance's `executionReport` / `outboundAccountPosition` payloads there, ws relays them) and the
 * listen keys of `POST/PUT/DELETE /api/v3/userDataStream`, kept in the cache for 60 minutes from their last
 * keep-alive. One listen key per user, as Binance does: POST while one is alive returns it (and extends it).
 */
import { randomBytes } from 'node:crypto'
import type { PubSubCache } from '../../adapters/pubsub/index.ts'

export const LISTEN_KEY_TTL_MS = 60 * 60_000
/** Binance's listen keys: 60 characters of [A-Za-z0-9]. */
export const listenKeyPattern = /^[A-Za-z0-9]{60}$/

/** The user's events channel; the user id is the hash tag, so each user lives on one shard. */
export const userChannel = (userId: string) => `uds:{u${userId}}:events`
const listenKeyKey = (listenKey: string) => `uds:lk:${listenKey}`
const userListenKeyKey = (userId: string) => `uds:{u${userId}}:lk`

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

function newListenKey(): string {
  let out = ''
  while (out.length < 60) {
    for (const b of randomBytes(80)) {
      if (b >= 248) continue // 248 = 62 * 4: keeps the choice uniform
      out += ALNUM[b % 62]
      if (out.length === 60) break
    }
  }
  return out
}

export class ListenKeys {
  readonly #cache: PubSubCache
  readonly #ttlMs: number

  constructor(cache: PubSubCache, ttlMs = LISTEN_KEY_TTL_MS) {
    this.#cache = cache
    this.#ttlMs = ttlMs
  }

  /** The user's live listen key, extended, or a new one. */
  async create(userId: string): Promise<string> {
    const existing = await this.#cache.get(userListenKeyKey(userId))
    if (existing !== undefined && (await this.keepAlive(existing, userId))) return existing
    const listenKey = newListenKey()
    await this.#cache.set(listenKeyKey(listenKey), userId, this.#ttlMs)
    await this.#cache.set(userListenKeyKey(userId), listenKey, this.#ttlMs)
    return listenKey
  }

  /** Extends the key by the full TTL; false when it does not exist (expired, closed, or another user's). */
  async keepAlive(listenKey: string, userId: string): Promise<boolean> {
    if ((await this.userOf(listenKey)) !== userId) return false
    await this.#cache.set(listenKeyKey(listenKey), userId, this.#ttlMs)
    await this.#cache.set(userListenKeyKey(userId), listenKey, this.#ttlMs)
    return true
  }

  async close(listenKey: string, userId: string): Promise<boolean> {
    if ((await this.userOf(listenKey)) !== userId) return false
    await this.#cache.del(listenKeyKey(listenKey))
    await this.#cache.del(userListenKeyKey(userId))
    return true
  }

  /** The user a live key belongs to. */
  async userOf(listenKey: string): Promise<string | undefined> {
    if (!listenKeyPattern.test(listenKey)) return undefined
    return this.#cache.get(listenKeyKey(listenKey))
  }
}
