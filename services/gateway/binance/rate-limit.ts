/**
 * Binance's IP request-weight limit, kept in the shared cache so every gateway replica counts the same
 * minute: a fixed one-minute window per IP (`incrWithTtl`), reported in X-MBX-USED-WEIGHT-1M. Past the limit a
 * request gets 429 with Retry-After (the seconds left in the minute). An IP that keeps sending after 429s
 * is banned with 418; bans scale from 2 minutes to 3 days for repeat offenders, as Binance's do.
 */
import type { PubSubCache } from '../../../adapters/pubsub/index.ts'
import { errors } from './errors.ts'

export interface RateLimitConfig {
  /** REQUEST_WEIGHT per minute per IP (Binance: 6000). */
  weightPerMinute: number
  /** Requests refused with 429 within one minute before the IP is banned. */
  rejectionsBeforeBan: number
}

const MINUTE = 60_000
const FIRST_BAN_MS = 2 * MINUTE
const MAX_BAN_MS = 3 * 24 * 60 * MINUTE

export class RateLimiter {
  private readonly cache: PubSubCache
  readonly config: RateLimitConfig
  private readonly now: () => number

  constructor(cache: PubSubCache, config: RateLimitConfig, now: () => number = Date.now) {
    this.cache = cache
    this.config = config
    this.now = now
  }

  /** Counts `weight` for `ip`; returns the weight used this minute or throws the 429/418 answer. */
  async charge(ip: string, weight: number): Promise<number> {
    const now = this.now()
    const windowStart = now - (now % MINUTE)
    // One round trip, not two: a banned IP's weight is counted too, which changes nothing while it is banned.
    const [banUntil, used] = await Promise.all([
      this.cache.get(`gw:ban:${ip}`),
      this.cache.incrWithTtl(`gw:w:${ip}:${windowStart}`, weight, MINUTE + 1000),
    ])
    if (banUntil !== undefined && Number(banUntil) > now) {
      const until = Number(banUntil)
      throw errors.banned(until, Math.ceil((until - now) / 1000))
    }
    if (used <= this.config.weightPerMinute) return used
    const retryAfter = Math.max(1, Math.ceil((windowStart + MINUTE - now) / 1000))
    const rejections = await this.cache.incrWithTtl(`gw:429:${ip}:${windowStart}`, 1, MINUTE + 1000)
    if (rejections > this.config.rejectionsBeforeBan) {
      const bans = await this.cache.incrWithTtl(`gw:bans:${ip}`, 1, MAX_BAN_MS)
      const duration = Math.min(FIRST_BAN_MS * 2 ** Math.min(bans - 1, 20), MAX_BAN_MS)
      const until = now + duration
      await this.cache.set(`gw:ban:${ip}`, String(until), duration)
      throw errors.banned(until, Math.ceil(duration / 1000))
    }
    const error = errors.tooMuchWeight(this.config.weightPerMinute, retryAfter)
    error.headers['X-MBX-USED-WEIGHT-1M'] = String(used)
    throw error
  }
}
