/**
 * A local anvil chain (from the `@foundry-rs/anvil` npm package) on a free loopback port: the tests'
 * chain, and later `bourse dev`'s. The platform binary is spawned directly (not through the package's
 * Node wrapper) so that stopping it kills the chain itself.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { freePort } from '../lib/net.ts'

export interface AnvilOptions {
  /** A fixed port (bourse dev's 8545); without it, a free one. A taken port fails with PortInUseError. */
  readonly port?: number
  /** Blocks are mined on every transaction unless a block time is given (seconds) or mining is off. */
  readonly blockTime?: number
  readonly noMining?: boolean
  /** Slots per epoch: with 1, `safe` is head−1 and `finalized` head−2 (cheap tests of the finalized path). */
  readonly slotsInAnEpoch?: number
  readonly chainId?: number
  readonly mnemonic?: string
  readonly accounts?: number
  /** Extra command-line flags. */
  readonly args?: readonly string[]
  readonly readyTimeoutMs?: number
}

export interface Anvil {
  readonly port: number
  readonly rpcUrl: string
  readonly wsUrl: string
  readonly chainId: number
  /** Kills the process and waits for it to exit. Idempotent. */
  stop(): Promise<void>
}

/** The anvil binary of this platform's optional package. */
export function anvilBinary(): string {
  const platform = `${process.platform === 'win32' ? 'win32' : process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`
  const require = createRequire(import.meta.url)
  const exe = process.platform === 'win32' ? 'anvil.exe' : 'anvil'
  try {
    return require.resolve(`@foundry-rs/anvil-${platform}/bin/${exe}`)
  } catch (cause) {
    throw new Error(
      `anvil binary for ${platform} not installed: npm install --save-dev @foundry-rs/anvil (its optional dependency @foundry-rs/anvil-${platform} carries the binary)`,
      { cause },
    )
  }
}

/** anvil could not bind the fixed port it was given. */
export class PortInUseError extends Error {
  override name = 'PortInUseError'
  readonly port: number
  constructor(port: number) {
    super(`port ${port} on 127.0.0.1 is already in use`)
    this.port = port
  }
}

/**
 * Starts anvil on a free loopback port (or `opts.port`) and resolves once it accepts JSON-RPC. Retries a
 * free port taken meanwhile.
 */
export async function startAnvil(opts: AnvilOptions = {}): Promise<Anvil> {
  if (opts.port !== undefined) {
    try {
      return await startOn(opts.port, opts)
    } catch (err) {
      if (String(err).includes('Address already in use')) throw new PortInUseError(opts.port)
      throw err
    }
  }
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    try {
      return await startOn(port, opts)
    } catch (err) {
      lastError = err
      if (!String(err).includes('Address already in use')) break
    }
  }
  throw lastError
}

function startOn(port: number, opts: AnvilOptions): Promise<Anvil> {
  const chainId = opts.chainId ?? 31337
  const args = ['--host', '127.0.0.1', '--port', String(port), '--chain-id', String(chainId)]
  if (opts.blockTime !== undefined) args.push('--block-time', String(opts.blockTime))
  if (opts.noMining) args.push('--no-mining')
  if (opts.slotsInAnEpoch !== undefined) args.push('--slots-in-an-epoch', String(opts.slotsInAnEpoch))
  if (opts.mnemonic !== undefined) args.push('--mnemonic', opts.mnemonic)
  if (opts.accounts !== undefined) args.push('--accounts', String(opts.accounts))
  args.push(...(opts.args ?? []))
  const child = spawn(anvilBinary(), args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    await exited
  }
  return new Promise<Anvil>((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop()
      reject(
        new Error(`anvil did not start within ${opts.readyTimeoutMs ?? 15_000} ms: ${output.slice(-2000)}`),
      )
    }, opts.readyTimeoutMs ?? 15_000)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      // Keep only what the start-up check needs; anvil logs every request afterwards.
      if (output.length > 20_000) output = output.slice(-10_000)
      if (output.includes('Listening on')) {
        clearTimeout(timer)
        child.stdout?.off('data', onData)
        child.stdout?.resume()
        resolve({
          port,
          rpcUrl: `http://127.0.0.1:${port}`,
          wsUrl: `ws://127.0.0.1:${port}`,
          chainId,
          stop,
        })
      }
    }
    child.stdout?.on('data', onData)
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      reject(new Error(`anvil exited (${code ?? signal}) before listening: ${output.slice(-2000)}`))
    })
    killWithParent(child)
  })
}

const children = new Set<ChildProcess>()
let hooked = false

/** A test runner that dies without afterAll must not leave chains behind. */
function killWithParent(child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
  if (hooked) return
  hooked = true
  process.once('exit', () => {
    for (const c of children) c.kill('SIGKILL')
  })
}

// Tests import the port helper from here with the launcher.
