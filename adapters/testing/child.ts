/** Bourse's commands started as child processes for tests, as the operator starts them: output and exit kept. */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

export interface Child {
  child: ChildProcess
  /** Everything it wrote so far, stdout and stderr, for failure messages. */
  output(): string
  exited: Promise<number | null>
}

/** `node <args>` in the repository's root (`['cli/bourse.ts', 'ws']`), with `env` over this process's. */
export function runNode(args: string[], env: Record<string, string>): Child {
  const chunks: string[] = []
  const child = spawn(process.execPath, args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.on('data', (d: Buffer) => chunks.push(d.toString()))
  child.stderr?.on('data', (d: Buffer) => chunks.push(d.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, output: () => chunks.join(''), exited }
}

/** Polls until `check` holds (a throw counts as not yet); fails naming what never happened, with the output. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  output: () => string,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}:\n${output()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
