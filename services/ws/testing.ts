/** A WebSocket client for the ws tests: every message it got, and a way to wait for the next ones. */
import { WebSocket } from 'ws'

export interface TestClient {
  readonly ws: WebSocket
  /** Every message so far, parsed. */
  readonly messages: unknown[]
  send(request: unknown): void
  /** Resolves with the first message after `from` (default: the next unread one) that matches. */
  next<T = unknown>(match?: (message: T) => boolean, timeoutMs?: number): Promise<T>
  /** Resolves with the close code once the server closed the connection. */
  closed: Promise<number>
  close(): void
}

export async function connect(url: string, options: { autoPong?: boolean } = {}): Promise<TestClient> {
  const ws = new WebSocket(url, { autoPong: options.autoPong ?? true })
  const messages: unknown[] = []
  let read = 0
  const waiters = new Set<() => void>()
  ws.on('message', (data) => {
    messages.push(JSON.parse(data.toString()))
    for (const wake of waiters) wake()
  })
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve())
    ws.once('error', reject)
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
  })
  return {
    ws,
    messages,
    send: (request) => ws.send(typeof request === 'string' ? request : JSON.stringify(request)),
    next<T>(match: (message: T) => boolean = () => true, timeoutMs = 5000): Promise<T> {
      return new Promise((resolve, reject) => {
        const check = () => {
          while (read < messages.length) {
            const message = messages[read++] as T
            if (match(message)) {
              waiters.delete(check)
              clearTimeout(timer)
              resolve(message)
              return
            }
          }
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(
            new Error(`no matching message within ${timeoutMs} ms; last: ${JSON.stringify(messages.at(-1))}`),
          )
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    closed,
    close: () => ws.close(),
  }
}
