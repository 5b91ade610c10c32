/**
 * Where the real test servers started by `scripts/testenv up` listen. A missing setting fails the test
 * with the way to fix it: a suite that silently skipped its servers would pass without testing anything.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const howToStart = 'run `scripts/testenv up` and `eval "$(scripts/testenv env)"`, or `make test`'

function setting(variable: string, server: string): string {
  const value = process.env[variable]
  if (!value) throw new Error(`${server} test server not configured (${variable} is unset): ${howToStart}`)
  return value
}

export function postgresUrl(): string {
  return setting('BOURSE_TEST_POSTGRES_URL', 'Postgres')
}

/** The cluster's nodes as `host:port` strings. */
export function redisClusterNodes(): string[] {
  return setting('BOURSE_TEST_REDIS_NODES', 'Redis Cluster').split(',')
}

/** nsqd's TCP address, `host:port`. */
export function nsqdTcpAddress(): string {
  return setting('BOURSE_TEST_NSQD_TCP', 'nsqd')
}

/** nsqd's HTTP base URL. */
export function nsqdHttpUrl(): string {
  return setting('BOURSE_TEST_NSQD_HTTP', 'nsqd')
}

/** nsqlookupd's HTTP base URL. */
export function nsqlookupdHttpUrl(): string {
  return setting('BOURSE_TEST_NSQLOOKUPD_HTTP', 'nsqlookupd')
}

/** A name no other test run uses: suites share the servers. */
export function uniqueName(prefix: string): string {
  return `${prefix}${randomBytes(5).toString('hex')}`
}

const testenvScript = fileURLToPath(new URL('../../scripts/testenv', import.meta.url))

/** Stops or starts one test server on the ports it had, for failure tests (which must restart what they stop). */
export async function testServer(action: 'stop' | 'start', server: 'nsqd' | 'nsqlookupd'): Promise<void> {
  await promisify(execFile)(testenvScript, [action, server])
}
