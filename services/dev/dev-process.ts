/**
 * Starts `bourse dev` as a child process, as a newcomer would run it, for tests that talk to the whole
 * exchange over HTTP: a fresh temporary data folder, a free loopback port, the demo trader's credentials
 * read from `--credentials-file`, and ready once it prints "Press Ctrl-C to stop." and has credited the demo
 * chain deposit it sends at start (1000 USDT and 1 ETH to the demo trader). `stop()` sends SIGTERM
 * (SIGKILL if it has not exited after a grace period) and removes the data folder.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../lib/net.ts'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))
const READY = 'Press Ctrl-C to stop.'
const CREDITED = 'Deposit credited:'

export interface DevProcess {
  /** http://127.0.0.1:PORT, without a trailing slash. */
  url: string
  /** The demo chain's JSON-RPC URL (a free port unless BOURSE_CHAIN_PORT is given in `env`). */
  chainUrl: string
  apiKey: string
  apiSecret: string
  dataDir: string
  /** Everything the process wrote so far (stdout and stderr), for failure messages. */
  output(): string
  /** SIGTERM; `killed` when it had not exited 15 s later and took a SIGKILL. */
  stop(): Promise<{ killed: boolean }>
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

export async function startDev(
  options: { readyTimeoutMs?: number; env?: Record<string, string> } = {},
): Promise<DevProcess> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 90_000
  const dir = await mkdtemp(join(tmpdir(), 'bourse-dev-'))
  const dataDir = join(dir, 'data')
  const credentialsFile = join(dir, 'credentials.json')
  const port = await freePort()
  const chainPort =
    options.env?.BOURSE_CHAIN_PORT === undefined ? await freePort() : Number(options.env.BOURSE_CHAIN_PORT)
  const chunks: string[] = []
  const child = spawn(process.execPath, ['cli/bourse.ts', 'dev', '--credentials-file', credentialsFile], {
    cwd: repoRoot,
    env: {
      ...process.env,
      BOURSE_PORT: String(port),
      BOURSE_DATA_DIR: dataDir,
      BOURSE_CHAIN_PORT: String(chainPort),
      BOURSE_WS_PORT: String(await freePort()),
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const output = () => chunks.join('')
  const done = exited(child)

  async function stop(): Promise<{ killed: boolean }> {
    let killed = false
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => {
        killed = true
        child.kill('SIGKILL')
      }, 15_000)
      await done
      clearTimeout(timer)
    }
    await rm(dir, { recursive: true, force: true })
    return { killed }
  }

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`bourse dev not ready after ${readyTimeoutMs} ms:\n${output()}`)),
        readyTimeoutMs,
      )
      let ready = false
      const onData = (data: Buffer) => {
        chunks.push(data.toString())
        const text = output()
        // Ready once it serves and the demo deposit it sent at start (if any) is credited: balances hold still.
        const funding = text.includes('sent to it now')
        if (!ready && text.includes(READY) && (!funding || text.split(CREDITED).length > 2)) {
          ready = true
          clearTimeout(timer)
          resolve()
        }
      }
      child.stdout?.on('data', onData)
      child.stderr?.on('data', (data: Buffer) => chunks.push(data.toString()))
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`bourse dev exited (${signal ?? code}) before it was ready:\n${output()}`))
      })
    })
    const credentials = JSON.parse(await readFile(credentialsFile, 'utf8')) as {
      apiKey: string
      apiSecret: string
    }
    return {
      url: `http://127.0.0.1:${port}`,
      chainUrl: `http://127.0.0.1:${chainPort}`,
      ...credentials,
      dataDir,
      output,
      stop,
    }
  } catch (err) {
    await stop()
    throw err
  }
}
