/**
 * Fuzzes the gateway's REST API from its own /openapi.json with schemathesis (PyPI), against the gateway served
 * over HTTP as `bourse gateway` serves it, on PGlite with the in-process engine: no request may produce a 5xx
 * (`--checks not_a_server_error`). The document itself is first checked with openapi-spec-validator (3.1).
 *
 * schemathesis installs itself into a virtualenv under ~/.cache/bourse keyed by its version (once; later runs
 * reuse it). Three runs: the admin operations with the admin token, the user operations with an OIDC JWT, and
 * the Binance-compatible and /linkora ones with no credentials, each with a bounded number of examples per
 * operation (BOURSE_FUZZ_EXAMPLES, default 25) so the whole stays under a minute once installed.
 * BOURSE_FUZZ_SEED picks another seed (default 1).
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { join } from 'node:path'
import { getRequestListener } from '@hono/node-server'
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createPubSubCache, InProcessRedis } from '../../adapters/pubsub/index.ts'
import { createLogger } from '../../lib/log.ts'
import { type HttpServer, startHttpServer } from '../../lib/metrics.ts'
import { type MarketFixture, marketFixture } from '../engine/testing.ts'
import { createGatewayApp } from './app.ts'
import { EngineClient } from './engine-client.ts'
import { startTestIssuer, type TestIssuer } from './v1/testing.ts'

const SCHEMATHESIS = '4.32.5'
const SPEC_VALIDATOR = '0.7.2'
const ADMIN = 'fuzz-admin-token'
const EXAMPLES = process.env.BOURSE_FUZZ_EXAMPLES ?? '25'

let fx: MarketFixture
let http: HttpServer
let oidc: TestIssuer
let venv: string

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1' },
    })
    let output = ''
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? -1, output })
    })
  })
}

/** The virtualenv with schemathesis and openapi-spec-validator, made once per version (under flock). */
async function ensureSchemathesis(): Promise<string> {
  const dir = join(homedir(), '.cache', 'bourse', `schemathesis-${SCHEMATHESIS}`)
  const st = join(dir, 'bin', 'st')
  if (existsSync(join(dir, '.complete'))) return dir
  mkdirSync(join(homedir(), '.cache', 'bourse'), { recursive: true })
  const script = `test -f ${dir}/.complete || { rm -rf ${dir} && python3 -m venv ${dir} && ${dir}/bin/pip install -q schemathesis==${SCHEMATHESIS} openapi-spec-validator==${SPEC_VALIDATOR} && touch ${dir}/.complete; }`
  const r = await run('flock', [`${dir}.lock`, 'sh', '-c', script], 280_000)
  if (r.code !== 0 || !existsSync(st)) throw new Error(`installing schemathesis failed:\n${r.output}`)
  return dir
}

beforeAll(async () => {
  venv = await ensureSchemathesis()
  fx = await marketFixture('pglite')
  const engine = await fx.engine()
  const alice = await fx.trader('alice', { USDT: '1000', BTC: '1' })
  await fx.database.db.execute(sql`update users set oidc_subject = 'alice-sub' where id = ${alice}`)
  oidc = await startTestIssuer()
  const app = createGatewayApp({
    db: fx.database.db,
    engines: new Map([['BTCUSDT', EngineClient.inProcess(engine)]]),
    cache: createPubSubCache({ kind: 'memory', server: new InProcessRedis() }),
    config: {
      keyEncryptionKey: Buffer.alloc(32, 3),
      // The fuzzer is one client: a ban would turn every later request into a 418 and test nothing.
      weightPerMinute: 1_000_000_000,
      rejectionsBeforeBan: 1_000_000_000,
      trustProxy: false,
      adminToken: ADMIN,
      oidc: { issuer: oidc.issuer, audience: 'bourse' },
    },
    log: createLogger('gateway-fuzz', { level: 'silent' }),
    withdrawals: {
      policy: { assets: { USDT: { dailyLimit: '100', approvalAbove: '10' } } },
      networks: [{ network: 'ETH', walletId: 'eth' }],
    },
  })
  http = await startHttpServer({ port: 0, app: getRequestListener(app.fetch) })
}, 300_000)

afterAll(async () => {
  await http?.close()
  await oidc?.close()
  await fx?.close()
})

it('serves a valid OpenAPI 3.1 document', async () => {
  const document = await (await fetch(`${http.url}/openapi.json`)).json()
  const file = join(tmpdir(), `bourse-openapi-${process.pid}.json`)
  writeFileSync(file, JSON.stringify(document))
  const r = await run(join(venv, 'bin', 'openapi-spec-validator'), [file], 60_000)
  expect(r.output).toContain('OK')
  expect(r.code, r.output).toBe(0)
}, 60_000)

async function schemathesis(name: string, args: string[]): Promise<void> {
  const r = await run(
    join(venv, 'bin', 'st'),
    [
      'run',
      `${http.url}/openapi.json`,
      '--checks',
      // BOURSE_FUZZ_CHECKS=all also checks the answers against the document (status codes, schemas).
      process.env.BOURSE_FUZZ_CHECKS ?? 'not_a_server_error',
      '--max-examples',
      EXAMPLES,
      '--seed',
      process.env.BOURSE_FUZZ_SEED ?? '1',
      // One worker: with two, Python 3.11 sometimes fails inside schemathesis ("AST constructor recursion
      // depth mismatch"), an error of the fuzzer's, not of the API.
      '--workers',
      '1',
      '--generation-database',
      'none',
      '--no-color',
      ...args,
    ],
    170_000,
  )
  if (r.code !== 0) console.error(`schemathesis (${name}):\n${r.output}`)
  expect(r.output).not.toMatch(/Server error/)
  expect(r.code, `schemathesis ${name} failed: see the output above`).toBe(0)
}

it('answers no fuzzed admin request with a 5xx', async () => {
  await schemathesis('admin', [
    '--include-path-regex',
    '^/v1/(users|admin)',
    '-H',
    `Authorization: Bearer ${ADMIN}`,
  ])
}, 180_000)

it('answers no fuzzed user request with a 5xx', async () => {
  const token = await oidc.sign({ sub: 'alice-sub', exp: '15m' })
  await schemathesis('user', [
    '--include-path-regex',
    '^/v1/(me|balances|api-keys)',
    '-H',
    `Authorization: Bearer ${token}`,
  ])
}, 180_000)

it('answers no fuzzed Binance-compatible request with a 5xx', async () => {
  await schemathesis('binance', ['--exclude-path-regex', '^/v1/(users|admin|me|balances|api-keys)'])
}, 180_000)
