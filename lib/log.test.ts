import { describe, expect, it } from 'vitest'
import { ConfigError } from './config.ts'
import { createLogger } from './log.ts'

function capture() {
  const lines: Record<string, unknown>[] = []
  return { lines, destination: { write: (s: string) => lines.push(JSON.parse(s)) } }
}

describe('createLogger', () => {
  it('writes JSON lines carrying the component and a level label', () => {
    const { lines, destination } = capture()
    createLogger('matching', { destination, env: {} }).info({ market: 'BTC-USDT' }, 'started')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({
      level: 'info',
      component: 'matching',
      market: 'BTC-USDT',
      msg: 'started',
    })
    expect(typeof lines[0]!.time).toBe('string')
  })

  it('takes its level from BOURSE_LOG_LEVEL, default info', () => {
    const a = capture()
    const quiet = createLogger('x', { destination: a.destination, env: {} })
    quiet.debug('hidden')
    quiet.warn('shown')
    expect(a.lines.map((l) => l.msg)).toEqual(['shown'])
    const b = capture()
    createLogger('x', { destination: b.destination, env: { BOURSE_LOG_LEVEL: 'debug' } }).debug('shown')
    expect(b.lines.map((l) => l.msg)).toEqual(['shown'])
    expect(() => createLogger('x', { env: { BOURSE_LOG_LEVEL: 'verbose' } })).toThrow(ConfigError)
  })

  it('redacts secrets', () => {
    const { lines, destination } = capture()
    createLogger('gateway', { destination, env: {} }).info(
      {
        password: 'p1',
        account: { apiSecret: 's1', privateKey: 'k1', token: 't1', name: 'alice' },
        req: { headers: { authorization: 'Bearer t2', host: 'x' } },
        headers: { authorization: 'Basic t3', cookie: 'c1' },
        wallet: { secret: 's2' },
      },
      'request',
    )
    const text = JSON.stringify(lines)
    for (const secret of ['p1', 's1', 'k1', 't1', 't2', 't3', 'c1', 's2'])
      expect(text).not.toContain(`"${secret}"`)
    expect(lines[0]).toMatchObject({
      password: '[redacted]',
      account: { apiSecret: '[redacted]', name: 'alice' },
      req: { headers: { authorization: '[redacted]', host: 'x' } },
    })
  })
})
