import { setTimeout as sleep } from 'node:timers/promises'

/** Polls until `condition` holds; fails naming what never happened. */
export async function waitUntil(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`)
    await sleep(10)
  }
}

export { sleep }
