/**
 * A TCP proxy in front of the Postgres test server that breaks one exchange on purpose, so tests can see
 * what a client does when its connection fails at the worst moment:
 * - `cutBeforeNextQuery`: the next query on a ready connection never reaches the server;
 * - `loseNextAnswer`: the server carries the next query out, and the connection is cut right after its
 *   ReadyForQuery, unforwarded (so any commit is done but the client never hears of it);
 * - `refuseConnections`: new connections are dropped at once, as while the server is unreachable.
 */
import { connect, createServer, type Socket } from 'node:net'

export interface PostgresProxy {
  /** The target URL with the proxy's host and port. */
  readonly url: string
  cutBeforeNextQuery(): void
  loseNextAnswer(): void
  refuseConnections(refuse: boolean): void
  close(): Promise<void>
}

type Fault = 'cut-before-query' | 'lose-answer' | null

const COMMAND_COMPLETE = 0x43 // 'C'
const READY_FOR_QUERY = 0x5a // 'Z'

export async function startPostgresProxy(targetUrl: string): Promise<PostgresProxy> {
  const target = new URL(targetUrl)
  let fault: Fault = null
  let refusing = false
  const sockets = new Set<Socket>()

  const server = createServer((client) => {
    if (refusing) {
      client.destroy()
      return
    }
    const upstream = connect(Number(target.port), target.hostname)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => {
        sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
      s.on('error', () => {})
    }
    const fromServer = new MessageReader()
    let ready = false // the startup is over: the server has said ReadyForQuery once
    let losing: { completed: boolean } | null = null

    client.on('data', (chunk) => {
      if (ready && fault === 'cut-before-query') {
        fault = null
        client.destroy()
        return
      }
      if (ready && fault === 'lose-answer') {
        fault = null
        losing = { completed: false }
      }
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      for (const type of fromServer.types(chunk)) {
        if (type === READY_FOR_QUERY) ready = true
        if (losing === null) continue
        // A first use of a statement costs a describe round trip, with a ReadyForQuery of its own: wait for
        // the one after the query ran (CommandComplete).
        if (type === COMMAND_COMPLETE) losing.completed = true
        if (type === READY_FOR_QUERY && losing.completed) {
          client.destroy()
          return
        }
      }
      if (losing === null) client.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as { port: number }
  const url = new URL(targetUrl)
  url.hostname = '127.0.0.1'
  url.port = String(address.port)

  return {
    url: url.toString(),
    cutBeforeNextQuery: () => {
      fault = 'cut-before-query'
    },
    loseNextAnswer: () => {
      fault = 'lose-answer'
    },
    refuseConnections: (refuse) => {
      refusing = refuse
    },
    close: async () => {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Splits the server's byte stream into messages (a type byte, then a length that counts itself). */
class MessageReader {
  private buffered = Buffer.alloc(0)

  /** The types of the messages `chunk` completes. */
  types(chunk: Buffer): number[] {
    this.buffered = Buffer.concat([this.buffered, chunk])
    const types: number[] = []
    while (this.buffered.length >= 5) {
      const end = 1 + this.buffered.readInt32BE(1)
      if (this.buffered.length < end) break
      types.push(this.buffered[0]!)
      this.buffered = this.buffered.subarray(end)
    }
    return types
  }
}
