import { createServer } from 'node:net'

const FIRST = 10_000
const COUNT = 10_000

/**
 * A loopback port that was free a moment ago, for a child process that cannot bind port 0 and report it.
 * Drawn from 10000-19999, below the kernel's ephemeral range (32768 up): a port from that range can become
 * the local end of some outgoing connection before the child binds it (EADDRINUSE), and the test servers'
 * fixed ports are above 22000.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = FIRST + Math.floor(Math.random() * COUNT)
    if (await bindable(port)) return port
  }
  throw new Error(`no free loopback port in ${FIRST}-${FIRST + COUNT - 1}`)
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.unref()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/**
 * The client's address. With `trustProxy` (behind an ingress or load balancer that sets X-Forwarded-For) it
 * is the header's last address, the one that proxy saw: those before it are whatever the client sent, and
 * taking the first would let a client choose its address past rate limits, bans and API-key allow-lists.
 */
export function clientAddress(
  forwardedFor: string | undefined,
  socketAddress: string | undefined,
  trustProxy: boolean,
): string {
  if (trustProxy && forwardedFor !== undefined) {
    const last = forwardedFor.split(',').at(-1)!.trim()
    if (last !== '') return last
  }
  if (socketAddress === undefined) return 'unknown'
  return socketAddress.startsWith('::ffff:') ? socketAddress.slice(7) : socketAddress
}
