import { spawnSync } from 'node:child_process'
import { describe, expect, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import {
  boolean,
  CONFIG_EXIT_CODE,
  ConfigError,
  durationMs,
  fromEnv,
  int,
  list,
  loadConfig,
  oneOf,
  port,
  positiveInt,
  url,
} from './config.ts'

const schema = z.object({
  BOURSE_PORT: port().default(8080),
  BOURSE_DATABASE_URL: url({ protocols: ['postgres', 'postgresql'] }),
  BOURSE_WORKERS: positiveInt().default(4),
  BOURSE_TIMEOUT: durationMs().default(5000),
  BOURSE_REDIS_NODES: list(),
  BOURSE_DEBUG: boolean().default(false),
  BOURSE_MODE: oneOf(['dev', 'prod']).default('dev'),
  BOURSE_NOTE: z.string().optional(),
})

const good = {
  BOURSE_DATABASE_URL: 'postgres://bourse@127.0.0.1:5432/bourse',
  BOURSE_REDIS_NODES: '127.0.0.1:7000, 127.0.0.1:7001,,',
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    return err as ConfigError
  }
  throw new Error('expected a ConfigError')
}

describe('loadConfig', () => {
  it('returns typed values with defaults applied', () => {
    const config = loadConfig(schema, { ...good, PATH: '/usr/bin', BOURSE_PORT: '' })
    expect(config).toEqual({
      BOURSE_PORT: 8080,
      BOURSE_DATABASE_URL: 'postgres://bourse@127.0.0.1:5432/bourse',
      BOURSE_WORKERS: 4,
      BOURSE_TIMEOUT: 5000,
      BOURSE_REDIS_NODES: ['127.0.0.1:7000', '127.0.0.1:7001'],
      BOURSE_DEBUG: false,
      BOURSE_MODE: 'dev',
    })
    expectTypeOf(config.BOURSE_PORT).toEqualTypeOf<number>()
    expectTypeOf(config.BOURSE_REDIS_NODES).toEqualTypeOf<string[]>()
    expectTypeOf(config.BOURSE_DEBUG).toEqualTypeOf<boolean>()
    expectTypeOf(config.BOURSE_MODE).toEqualTypeOf<'dev' | 'prod'>()
    expectTypeOf(config.BOURSE_NOTE).toEqualTypeOf<string | undefined>()
  })

  it('lists every bad or missing variable by name, with what it expects and what it got', () => {
    const err = configError(() =>
      loadConfig(schema, {
        BOURSE_PORT: 'abc',
        BOURSE_WORKERS: '0',
        BOURSE_TIMEOUT: '5 minutes',
        BOURSE_DEBUG: 'yes',
        BOURSE_MODE: 'staging',
        BOURSE_DATABASE_URL: 'mysql://db',
      }),
    )
    expect(err.issues).toEqual([
      { variable: 'BOURSE_PORT', problem: 'expected an integer 1-65535, got "abc"' },
      {
        variable: 'BOURSE_DATABASE_URL',
        problem: 'expected a postgres:// or postgresql:// URL, got "mysql://db"',
      },
      { variable: 'BOURSE_WORKERS', problem: 'expected a positive integer, got "0"' },
      {
        variable: 'BOURSE_TIMEOUT',
        problem:
          'expected a duration like 500ms, 30s, 5m or 1h (a bare number is milliseconds), got "5 minutes"',
      },
      { variable: 'BOURSE_REDIS_NODES', problem: 'missing, expected a comma-separated list' },
      { variable: 'BOURSE_DEBUG', problem: 'expected true, false, 1 or 0, got "yes"' },
      { variable: 'BOURSE_MODE', problem: 'expected one of dev, prod, got "staging"' },
    ])
    expect(err.message.split('\n')[0]).toBe('invalid configuration:')
    expect(err.message).toContain('\n  BOURSE_PORT: expected an integer 1-65535, got "abc"\n')
  })

  it('names a missing plain zod string too', () => {
    const err = configError(() => loadConfig(z.object({ BOURSE_REGION: z.string() }), {}))
    expect(err.issues).toEqual([{ variable: 'BOURSE_REGION', problem: 'missing, expected string' }])
  })

  it('reports bad list items by index', () => {
    const s = z.object({ BOURSE_PEERS: list(url(), { min: 1 }) })
    expect(loadConfig(s, { BOURSE_PEERS: 'http://a:1, http://b:2' }).BOURSE_PEERS).toEqual([
      'http://a:1',
      'http://b:2',
    ])
    expect(configError(() => loadConfig(s, { BOURSE_PEERS: 'http://a:1,nope' })).issues).toEqual([
      { variable: 'BOURSE_PEERS[1]', problem: 'expected a URL, got "nope"' },
    ])
    expect(configError(() => loadConfig(s, { BOURSE_PEERS: ' , ' })).issues).toEqual([
      { variable: 'BOURSE_PEERS', problem: 'expected at least 1 comma-separated items, got " , "' },
    ])
  })

  it('never echoes secrets', () => {
    const s = z.object({
      BOURSE_API_SECRET: z.string().min(32, { error: 'expected at least 32 characters' }),
      BOURSE_DATABASE_URL: url({ protocols: ['postgres'] }),
    })
    const err = configError(() =>
      loadConfig(s, { BOURSE_API_SECRET: 'hunter2', BOURSE_DATABASE_URL: 'mysql://bourse:s3cret@db/x' }),
    )
    expect(err.message).not.toContain('hunter2')
    expect(err.message).not.toContain('s3cret')
    expect(err.issues).toEqual([
      {
        variable: 'BOURSE_API_SECRET',
        problem: 'expected at least 32 characters, got <redacted, 7 characters>',
      },
      {
        variable: 'BOURSE_DATABASE_URL',
        problem: 'expected a postgres:// URL, got "mysql://bourse:***@db/x"',
      },
    ])
  })

  it('never echoes a private key given in a *_KEY variable', () => {
    const s = z.object({
      BOURSE_WALLET_HOT_KEY: z.string().regex(/^0x[0-9a-f]{64}$/, 'expected a 0x private key'),
    })
    const err = configError(() => loadConfig(s, { BOURSE_WALLET_HOT_KEY: '0xdeadbeefcafe' }))
    expect(err.message).not.toContain('deadbeef')
    expect(err.issues).toEqual([
      {
        variable: 'BOURSE_WALLET_HOT_KEY',
        problem: 'expected a 0x private key, got <redacted, 14 characters>',
      },
    ])
  })
})

describe('env shapes', () => {
  const parse = <T>(schema: z.ZodType<T, string>, text: string) => schema.safeParse(text)

  it('port', () => {
    expect(parse(port(), '443').data).toBe(443)
    expect(parse(port(), '65535').data).toBe(65535)
    for (const bad of ['0', '65536', '-1', '80.5', ' 80', '0x50', '1e3', ''])
      expect(parse(port(), bad).success).toBe(false)
    expect(parse(port({ allowZero: true }), '0').data).toBe(0)
    expect(parse(port({ allowZero: true }), '-1').error?.issues[0]?.message).toBe(
      'expected an integer 0-65535',
    )
  })

  it('int and positiveInt', () => {
    expect(parse(int({ min: -5, max: 5 }), '-5').data).toBe(-5)
    expect(parse(int({ min: -5, max: 5 }), '6').success).toBe(false)
    expect(parse(int({ min: 10 }), '9').error?.issues[0]?.message).toBe('expected an integer >= 10')
    expect(parse(positiveInt(), '1').data).toBe(1)
    for (const bad of ['0', '-1', '1.0', '99999999999999999', 'x'])
      expect(parse(positiveInt(), bad).success).toBe(false)
  })

  it('durationMs', () => {
    const cases: [string, number][] = [
      ['1500', 1500],
      ['250ms', 250],
      ['30s', 30_000],
      ['1.5s', 1500],
      ['5m', 300_000],
      ['1h', 3_600_000],
      ['2d', 172_800_000],
      ['0', 0],
    ]
    for (const [text, ms] of cases) expect(parse(durationMs(), text).data).toBe(ms)
    for (const bad of ['', '-1s', '1.5ms', '5 m', '1w', 's', '1e3'])
      expect(parse(durationMs(), bad).success).toBe(false)
  })

  it('url', () => {
    expect(parse(url(), 'https://example.com/x?y=1').data).toBe('https://example.com/x?y=1')
    expect(parse(url(), 'example.com').success).toBe(false)
    expect(parse(url({ protocols: ['redis:'] }), 'redis://127.0.0.1:6379').success).toBe(true)
    expect(parse(url({ protocols: ['redis:'] }), 'http://127.0.0.1:6379').success).toBe(false)
  })

  it('list and boolean', () => {
    expect(parse(list(), 'a').data).toEqual(['a'])
    expect(parse(list(), ' a ,b , c').data).toEqual(['a', 'b', 'c'])
    expect(parse(list(port()), '1,2').data).toEqual([1, 2])
    expect(parse(boolean(), 'true').data).toBe(true)
    expect(parse(boolean(), '1').data).toBe(true)
    expect(parse(boolean(), 'false').data).toBe(false)
    expect(parse(boolean(), '0').data).toBe(false)
    for (const bad of ['yes', 'TRUE', 'on', '2', '']) expect(parse(boolean(), bad).success).toBe(false)
  })
})

describe('fromEnv', () => {
  it('returns the config when it is valid', () => {
    expect(fromEnv(schema, { env: good }).BOURSE_PORT).toBe(8080)
  })

  it('hands the message and exit code 2 to exit, naming the component', () => {
    class Exited extends Error {}
    let seen: { message: string; code: number } | undefined
    const exit = (message: string, code: number): never => {
      seen = { message, code }
      throw new Exited()
    }
    expect(() =>
      fromEnv(schema, { env: { ...good, BOURSE_PORT: 'abc' }, component: 'matching', exit }),
    ).toThrow(Exited)
    expect(seen).toEqual({
      message:
        'bourse matching: invalid configuration:\n  BOURSE_PORT: expected an integer 1-65535, got "abc"',
      code: CONFIG_EXIT_CODE,
    })
  })

  it('stops a real process with exit code 2 and no stack trace', () => {
    const script = `
      import { z } from 'zod'
      import { fromEnv, port } from './lib/config.ts'
      fromEnv(z.object({ BOURSE_PORT: port() }), { component: 'gateway' })
      console.log('unreachable')
    `
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: new URL('..', import.meta.url).pathname,
      env: { PATH: process.env.PATH, BOURSE_PORT: '99999' },
      encoding: 'utf8',
    })
    expect(child.status).toBe(2)
    expect(child.stdout).toBe('')
    expect(child.stderr).toBe(
      'bourse gateway: invalid configuration:\n  BOURSE_PORT: expected an integer 1-65535, got "99999"\n',
    )
  })
})
