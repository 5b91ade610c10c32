/**
 * How a chain follower (the deposit syncer, the DEX indexer) runs its passes: one pass after another until
 * aborted — again at once when woken during a pass (a new head arrived), else after the poll interval — with
 * exponential backoff up to a minute after failures. A `fatal` error ends the loop.
 */
export interface PassLoop {
  wake(): void
  run(options: { signal: AbortSignal; pollIntervalMs?: number }): Promise<void>
}

const MAX_BACKOFF_MS = 60_000

export function passLoop(
  pass: () => Promise<unknown>,
  handlers: { fatal: (err: unknown) => boolean; failed: (err: unknown, failures: number) => void },
): PassLoop {
  let woken = false
  let wakeUp: (() => void) | undefined
  const sleep = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal.removeEventListener('abort', done)
        wakeUp = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal.addEventListener('abort', done)
      wakeUp = done
    })
  return {
    wake() {
      woken = true
      wakeUp?.()
    },
    async run({ signal, pollIntervalMs = 2000 }) {
      let failures = 0
      while (!signal.aborted) {
        woken = false
        let delay = pollIntervalMs
        try {
          await pass()
          failures = 0
        } catch (err) {
          if (handlers.fatal(err)) throw err
          failures++
          delay = Math.min(pollIntervalMs * 2 ** failures, MAX_BACKOFF_MS)
          handlers.failed(err, failures)
        }
        if (woken || signal.aborted) continue
        await sleep(delay, signal)
      }
    },
  }
}
