import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  bucketEnd,
  bucketStart,
  INTERVALS,
  isInterval,
  nextBucketStart,
  nominalLengthMs,
  parseInterval,
  zonedSource,
} from './intervals.ts'

const utc = (text: string) => Date.parse(`${text}Z`)

describe('parseInterval', () => {
  it('accepts every Binance interval as it is', () => {
    for (const name of INTERVALS) expect(parseInterval(name)).toBe(name)
    expect(INTERVALS).toEqual(expect.arrayContaining(['1s', '1m', '3d', '1w', '1M', '6h', '8h', '12h']))
  })

  it('maps the Linkora timeframes onto the canonical set', () => {
    const linkora = ['1', '3', '5', '15', '30', '45', '1H', '2H', '3H', '4H', '1D', '1W', '1M']
    expect(linkora.map(parseInterval)).toEqual([
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
      '1d',
      '1w',
      '1M',
    ])
  })

  it('keeps minutes and months apart and refuses unknown names', () => {
    expect(parseInterval('1m')).toBe('1m')
    expect(parseInterval('1M')).toBe('1M')
    expect(parseInterval('60')).toBe('1h')
    for (const bad of ['2m', '1y', '', '1h ', 'toString', '__proto__', '7']) {
      expect(parseInterval(bad)).toBeUndefined()
    }
    expect(isInterval('1H')).toBe(false)
  })
})

describe('bucketStart and bucketEnd', () => {
  it("matches Binance's 1m example: open 1672515780000, close 1672515839999", () => {
    expect(bucketStart('1m', 1672515780000 + 12_345)).toBe(1672515780000)
    expect(bucketEnd('1m', 1672515780000 + 12_345)).toBe(1672515839999)
  })

  it("starts weeks on Monday 00:00 UTC (Binance's 1w example 1499040000000 → 1499644799999)", () => {
    // 2017-07-03 is a Monday.
    expect(bucketStart('1w', utc('2017-07-05T13:00:00'))).toBe(1499040000000)
    expect(bucketEnd('1w', utc('2017-07-05T13:00:00'))).toBe(1499644799999)
    expect(bucketStart('1w', utc('2017-07-03T00:00:00'))).toBe(1499040000000)
    // Sunday 23:59:59.999 still belongs to the week that began the Monday before.
    expect(bucketStart('1w', utc('2017-07-09T23:59:59.999'))).toBe(1499040000000)
    expect(bucketStart('1w', utc('2017-07-10T00:00:00'))).toBe(utc('2017-07-10T00:00:00'))
    // The epoch itself (a Thursday) belongs to the week from Monday 1969-12-29.
    expect(bucketStart('1w', 0)).toBe(utc('1969-12-29T00:00:00'))
    expect(new Date(bucketStart('1w', utc('2024-02-29T12:00:00'))).getUTCDay()).toBe(1)
  })

  it('uses calendar months, leap years included', () => {
    expect(bucketStart('1M', utc('2024-02-29T23:59:59.999'))).toBe(utc('2024-02-01T00:00:00'))
    expect(bucketEnd('1M', utc('2024-02-10T00:00:00'))).toBe(utc('2024-02-29T23:59:59.999'))
    expect(bucketEnd('1M', utc('2023-02-10T00:00:00'))).toBe(utc('2023-02-28T23:59:59.999'))
    expect(bucketEnd('1M', utc('2100-02-10T00:00:00'))).toBe(utc('2100-02-28T23:59:59.999'))
    expect(bucketEnd('1M', utc('2000-02-10T00:00:00'))).toBe(utc('2000-02-29T23:59:59.999'))
    expect(bucketStart('1M', utc('2024-03-01T00:00:00'))).toBe(utc('2024-03-01T00:00:00'))
    expect(bucketEnd('1M', utc('2024-04-30T23:59:59.999'))).toBe(utc('2024-04-30T23:59:59.999'))
    expect(bucketEnd('1M', utc('2024-12-31T12:00:00'))).toBe(utc('2024-12-31T23:59:59.999'))
    expect(nextBucketStart('1M', utc('2024-12-31T12:00:00'))).toBe(utc('2025-01-01T00:00:00'))
    expect(bucketEnd('1d', utc('2024-02-28T12:00:00'))).toBe(utc('2024-02-28T23:59:59.999'))
    expect(bucketStart('1d', utc('2024-02-29T12:00:00'))).toBe(utc('2024-02-29T00:00:00'))
  })

  it('aligns 3d buckets to the Unix epoch', () => {
    expect(bucketStart('3d', 0)).toBe(0)
    expect(bucketStart('3d', utc('1970-01-03T23:59:59.999'))).toBe(0)
    expect(bucketStart('3d', utc('1970-01-04T00:00:00'))).toBe(utc('1970-01-04T00:00:00'))
    // 2024-01-01 is epoch day 19723 = 3 × 6574 + 1, so its bucket began the day before.
    expect(bucketStart('3d', utc('2024-01-01T10:00:00'))).toBe(utc('2023-12-31T00:00:00'))
    expect(bucketEnd('3d', utc('2024-01-01T10:00:00'))).toBe(utc('2024-01-02T23:59:59.999'))
    expect(bucketStart('3d', utc('2024-01-03T00:00:00'))).toBe(utc('2024-01-03T00:00:00'))
  })

  it('starts 45m and 3h buckets at midnight each day (epoch-aligned, both divide a day)', () => {
    expect(bucketStart('45m', utc('2024-05-05T00:44:59.999'))).toBe(utc('2024-05-05T00:00:00'))
    expect(bucketStart('45m', utc('2024-05-05T01:10:00'))).toBe(utc('2024-05-05T00:45:00'))
    expect(bucketStart('45m', utc('2024-05-05T23:59:00'))).toBe(utc('2024-05-05T23:15:00'))
    expect(bucketStart('3h', utc('2024-05-05T05:59:00'))).toBe(utc('2024-05-05T03:00:00'))
    expect(bucketStart('12h', utc('2024-05-05T13:00:00'))).toBe(utc('2024-05-05T12:00:00'))
    expect(bucketStart('1s', 1_700_000_000_999)).toBe(1_700_000_000_000)
  })

  it('floors times before 1970 into the right bucket', () => {
    expect(bucketStart('1m', -1)).toBe(-60_000)
    expect(bucketEnd('1m', -1)).toBe(-1)
    expect(bucketStart('1M', -1)).toBe(utc('1969-12-01T00:00:00'))
  })

  it('puts every time in [start, end] with end + 1 the next start, for every interval', () => {
    const time = fc.integer({ min: utc('1990-01-01T00:00:00'), max: utc('2200-01-01T00:00:00') })
    fc.assert(
      fc.property(time, fc.constantFrom(...INTERVALS), (t, interval) => {
        const start = bucketStart(interval, t)
        const end = bucketEnd(interval, t)
        expect(start).toBeLessThanOrEqual(t)
        expect(t).toBeLessThanOrEqual(end)
        expect(bucketStart(interval, start)).toBe(start)
        expect(bucketStart(interval, end)).toBe(start)
        expect(bucketStart(interval, end + 1)).toBe(end + 1)
        expect(end - start + 1).toBeLessThanOrEqual(nominalLengthMs(interval))
      }),
      { numRuns: 2000 },
    )
  })

  it('refuses a time that is not a number', () => {
    expect(() => bucketStart('1m', Number.NaN)).toThrow(RangeError)
  })
})

describe('buckets in a time zone', () => {
  const HOUR = 3_600_000
  const offsets = fc.integer({ min: -12 * 60, max: 14 * 60 }).map((minutes) => minutes * 60_000)

  it("opens a zone's day, week and month at its midnight", () => {
    expect(bucketStart('1d', utc('2024-05-05T10:00:00'), 8 * HOUR)).toBe(utc('2024-05-04T16:00:00'))
    expect(bucketStart('1d', utc('2024-05-05T17:00:00'), 8 * HOUR)).toBe(utc('2024-05-05T16:00:00'))
    expect(bucketStart('1w', utc('2024-05-05T10:00:00'), 8 * HOUR)).toBe(utc('2024-04-28T16:00:00'))
    expect(bucketStart('1M', utc('2024-05-01T03:00:00'), -5 * HOUR)).toBe(utc('2024-04-01T05:00:00'))
    expect(nextBucketStart('1M', utc('2024-05-01T03:00:00'), -5 * HOUR)).toBe(utc('2024-05-01T05:00:00'))
    expect(bucketStart('1h', utc('2024-05-05T10:10:00'), 5.5 * HOUR)).toBe(utc('2024-05-05T09:30:00'))
  })

  it('makes them of the longest UTC buckets that tile them', () => {
    expect(zonedSource('1d', 8 * HOUR)).toBe('8h')
    expect(zonedSource('1d', 5.75 * HOUR)).toBe('15m')
    expect(zonedSource('1d', -9.5 * HOUR)).toBe('30m')
    expect(zonedSource('1h', 8 * HOUR)).toBe('1h')
    expect(zonedSource('4h', 5 * HOUR)).toBe('1h')
    expect(zonedSource('3d', 14 * HOUR)).toBe('2h')
    expect(zonedSource('45m', HOUR)).toBe('15m')
    expect(zonedSource('1w', 8 * HOUR)).toBe('8h')
    expect(zonedSource('1M', -3 * HOUR)).toBe('3h')
  })

  it("puts every UTC bucket of the source inside exactly one of the zone's, for every interval and offset", () => {
    const time = fc.integer({ min: utc('1990-01-01T00:00:00'), max: utc('2200-01-01T00:00:00') })
    fc.assert(
      fc.property(time, fc.constantFrom(...INTERVALS), offsets, (t, interval, offset) => {
        const source = zonedSource(interval, offset)
        const start = bucketStart(source, t)
        const zoned = bucketStart(interval, t, offset)
        expect(bucketStart(interval, start, offset)).toBe(zoned)
        expect(bucketStart(interval, bucketEnd(source, t), offset)).toBe(zoned)
        expect(nextBucketStart(interval, t, offset)).toBeGreaterThan(t)
      }),
      { numRuns: 2000 },
    )
  })
})
