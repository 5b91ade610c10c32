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
