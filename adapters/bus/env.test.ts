import { describe, expect, test } from 'vitest'
import { z } from 'zod'
import { ConfigError, loadConfig } from '../../lib/config.ts'
import { nsqEnv } from './env.ts'

const schema = z.object(nsqEnv)

describe('BOURSE_NSQ', () => {
  test('parses the Secret JSON into the bus settings', () => {
    const value = JSON.stringify({
      nsqd: 'nsqd:4150',
      nsqdHttp: 'http://nsqd:4151',
      lookupd: ['http://nsqlookupd:4161'],
    })
    expect(loadConfig(schema, { BOURSE_NSQ: value }).BOURSE_NSQ).toEqual({
      nsqdTcp: 'nsqd:4150',
      nsqdHttp: 'http://nsqd:4151',
      lookupdHttp: ['http://nsqlookupd:4161'],
    })
  })

  test.each([
    ['nsqd:4150', 'expected JSON'],
    ['{"nsqd": "nsqd", "nsqdHttp": "http://nsqd:4151"}', 'nsqd: expected host:port'],
    ['{"nsqd": "nsqd:4150", "nsqdHttp": "tcp://nsqd:4151"}', 'nsqdHttp: expected an http(s):// URL'],
    ['{"nsqd": "nsqd:4150"}', 'nsqdHttp'],
  ])('%s is refused naming what is wrong', (value, problem) => {
    let error: unknown
    try {
      loadConfig(schema, { BOURSE_NSQ: value })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(ConfigError)
    const [issue] = (error as ConfigError).issues
    expect(issue?.variable).toBe('BOURSE_NSQ')
    expect(issue?.problem).toContain(problem)
  })
})
