/**
 * K-line intervals: Binance's set plus the Linkora timeframes (45m, 3h), under one canonical name each.
 * Buckets are UTC. Fixed-length intervals (seconds to 3 days) are aligned to the Unix epoch, as Binance and
 * ClickHouse's `toStartOfInterval` do: every interval that divides a day therefore starts at midnight, and 3d
 * buckets start on days whose epoch day number is a multiple of 3. Weeks start Monday 00:00 UTC; months are
 * calendar months. A bucket's close time is the next bucket's start minus 1 ms (Binance's `T`).
 *
 * Binance's `timeZone` moves the buckets to a UTC offset (`offsetMs`, e.g. +8 h): a 1d bucket then opens at
 * midnight in that zone, 16:00 UTC. Only UTC buckets are kept; a zone's are made of the UTC buckets of
 * `zonedSource`, the longest interval that tiles them.
 */

export const INTERVALS = [
  '1s',
  '1m',
  '3m',
  '5m',
  '15m',
  '30m',
  '45m',
  '1h',
  '2h',
  '3h',
  '4h',
  '6h',
  '8h',
  '12h',
  '1d',
  '3d',
  '1w',
  '1M',
] as const

export type Interval = (typeof INTERVALS)[number]

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const WEEK = 7 * DAY
/** 1970-01-01 was a Thursday; the first Monday is 4 days later. */
const FIRST_MONDAY = 4 * DAY

/** Length of the fixed-length intervals; weeks are fixed too, but aligned to Monday. Months vary. */
const FIXED: Record<Exclude<Interval, '1w' | '1M'>, number> = {
  '1s': SECOND,
  '1m': MINUTE,
  '3m': 3 * MINUTE,
  '5m': 5 * MINUTE,
  '15m': 15 * MINUTE,
  '30m': 30 * MINUTE,
  '45m': 45 * MINUTE,
  '1h': HOUR,
  '2h': 2 * HOUR,
  '3h': 3 * HOUR,
  '4h': 4 * HOUR,
  '6h': 6 * HOUR,
  '8h': 8 * HOUR,
  '12h': 12 * HOUR,
  '1d': DAY,
  '3d': 3 * DAY,
}

/**
 * Other names clients use for the same intervals: Linkora's timeframes (`1`, `45`, `1H`, `3H`, `1D`, `1W`,
 * `1M`) and TradingView's resolutions (`60`, `240`, `3D`, …). Binance's own names are case-sensitive (`1m` is
 * a minute, `1M` a month), and so is this table.
 */
const ALIASES: Record<string, Interval> = {
  '1': '1m',
  '3': '3m',
  '5': '5m',
  '15': '15m',
  '30': '30m',
  '45': '45m',
  '60': '1h',
  '120': '2h',
  '180': '3h',
  '240': '4h',
  '360': '6h',
  '480': '8h',
  '720': '12h',
  '1S': '1s',
  '1H': '1h',
  '2H': '2h',
  '3H': '3h',
  '4H': '4h',
  '6H': '6h',
  '8H': '8h',
  '12H': '12h',
  '1D': '1d',
  D: '1d',
  '3D': '3d',
  '1W': '1w',
  W: '1w',
  M: '1M',
}

const canonical = new Set<string>(INTERVALS)

/** The canonical interval for a Binance, Linkora or TradingView name; undefined when unknown. */
export function parseInterval(name: string): Interval | undefined {
  if (canonical.has(name)) return name as Interval
  return Object.hasOwn(ALIASES, name) ? ALIASES[name] : undefined
}

export function isInterval(name: string): name is Interval {
  return canonical.has(name)
}

/** Floor division that stays right for times before 1970. */
function floorTo(timeMs: number, length: number, origin = 0): number {
  return Math.floor((timeMs - origin) / length) * length + origin
}

/** Start (open time) of the bucket of `interval` holding `timeMs`, in epoch ms; in a zone `offsetMs` from UTC. */
export function bucketStart(interval: Interval, timeMs: number, offsetMs = 0): number {
  if (!Number.isFinite(timeMs)) throw new RangeError(`time must be a finite number, got ${timeMs}`)
  if (offsetMs !== 0) return bucketStart(interval, timeMs + offsetMs) - offsetMs
  if (interval === '1M') {
    const date = new Date(timeMs)
    return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1)
  }
  if (interval === '1w') return floorTo(timeMs, WEEK, FIRST_MONDAY)
  return floorTo(timeMs, FIXED[interval])
}

/** Start of the bucket after the one holding `timeMs`; in a zone `offsetMs` from UTC. */
export function nextBucketStart(interval: Interval, timeMs: number, offsetMs = 0): number {
  if (offsetMs !== 0) return nextBucketStart(interval, timeMs + offsetMs) - offsetMs
  const start = bucketStart(interval, timeMs)
  if (interval === '1M') {
    const date = new Date(start)
    return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1)
  }
  return start + (interval === '1w' ? WEEK : FIXED[interval])
}

/** The open time of the first bucket (in a zone `offsetMs` from UTC) that opens at or after `timeMs`. */
export function firstOpenFrom(interval: Interval, timeMs: number, offsetMs = 0): number {
  return bucketStart(interval, timeMs, offsetMs) === timeMs
    ? timeMs
    : nextBucketStart(interval, timeMs, offsetMs)
}

/** Close time of the bucket holding `timeMs`: its last millisecond, as Binance reports it. */
export function bucketEnd(interval: Interval, timeMs: number): number {
  return nextBucketStart(interval, timeMs) - 1
}

/** The bucket length in ms; for months, the longest (31 days), for sizing retention. */
export function nominalLengthMs(interval: Interval): number {
  if (interval === '1M') return 31 * DAY
  if (interval === '1w') return WEEK
  return FIXED[interval]
}

/**
 * The longest interval whose UTC buckets tile the buckets of `interval` in a zone `offsetMs` from UTC: its
 * (epoch-aligned) length divides the offset and the interval's own length — a day for weeks and months,
 * whose boundaries are midnights. `interval` itself when the offset moves none of its boundaries.
 */
export function zonedSource(interval: Interval, offsetMs: number): Interval {
  const span = interval === '1w' || interval === '1M' ? DAY : FIXED[interval]
  let source: Exclude<Interval, '1w' | '1M'> = '1s'
  for (const [name, length] of Object.entries(FIXED) as [keyof typeof FIXED, number][]) {
    if (span % length === 0 && offsetMs % length === 0 && length > FIXED[source]) source = name
  }
  return source
}
