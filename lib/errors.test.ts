import { describe, expect, it } from 'vitest'
import { BourseError, invalidInput } from './errors.ts'

describe('BourseError', () => {
  it('carries the HTTP status of its code and names the field at fault', () => {
    const err = invalidInput('price', 'must be a positive decimal')
    expect(err.status).toBe(400)
    expect(err.code).toBe('invalid_input')
    expect(err.field).toBe('price')
    expect(err.message).toBe('price: must be a positive decimal')
    expect(err.toJSON()).toEqual({
      code: 'invalid_input',
      message: 'price: must be a positive decimal',
      field: 'price',
    })
    expect(err.retryable).toBe(false)
  })

  it('marks unavailable and rate-limited errors retryable', () => {
    expect(new BourseError('unavailable', 'commit failed').retryable).toBe(true)
    expect(new BourseError('unavailable', 'commit failed').status).toBe(503)
    expect(new BourseError('rate_limited', 'slow down').status).toBe(429)
    expect(new BourseError('conflict', 'stale epoch').retryable).toBe(false)
  })
})
