/**
 * Prometheus metrics and health probes over plain node:http: /metrics, /healthz (liveness, always
 * 200 while the process serves) and /readyz (200 when ready() says so, else 503).
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { collectDefaultMetrics, Registry } from 'prom-client'

export { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client'

/** Reports readiness; a throw or rejection counts as not ready. */
export type ReadyCheck = () => boolean | Promise<boolean>

/** A new registry with Node's default process metrics (CPU, memory, event loop lag, GC) and optional labels on every series. */
export function createRegistry(
  opts: { defaultMetrics?: boolean; labels?: Record<string, string> } = {},
): Registry {
  const registry = new Registry()
  if (opts.labels !== undefined) registry.setDefaultLabels(opts.labels)
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry })
  return registry
}

let processRegistry: Registry | undefined

/** The process's registry, created with default metrics on first use. Components register their metrics here. */
export function metricsRegistry(): Registry {
  processRegistry ??= createRegistry()
  return processRegistry
}

async function isReady(ready: ReadyCheck | undefined): Promise<boolean> {
  if (ready === undefined) return true
  try {
    return (await ready()) === true
  } catch {
    return false
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string, head: boolean): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  })
  res.end(head ? undefined : body)
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

/**
 * A node:http request handler for /metrics, /healthz and /readyz (methods other than GET/HEAD 405);
 * any other path goes to `app` when there is one, else 404.
 */
export function metricsHandler(
  registry: Registry,
  opts: { ready?: ReadyCheck; app?: RequestHandler } = {},
): RequestHandler {
  return (req, res) => {
    const path = (req.url ?? '/').split('?', 1)[0]
    const head = req.method === 'HEAD'
    const text = 'text/plain; charset=utf-8'
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') {
      if (opts.app) opts.app(req, res)
      else send(res, 404, text, 'not found\n', head)
      return
    }
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD')
      send(res, 405, text, 'method not allowed\n', false)
      return
    }
    if (path === '/healthz') {
      send(res, 200, text, 'ok\n', head)
      return
    }
    const work =
      path === '/readyz'
        ? isReady(opts.ready).then((ok) =>
            send(res, ok ? 200 : 503, text, ok ? 'ready\n' : 'not ready\n', head),
          )
        : registry.metrics().then((body) => send(res, 200, registry.contentType, body, head))
    work.catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, text, `metrics failed: ${String(err)}\n`, head)
      else res.destroy()
    })
  }
}

export interface HttpServer {
  /** The bound port (the OS's choice when 0 was asked for). */
  readonly port: number
  readonly host: string
  /** `http://host:port`, for tests and logs. */
  readonly url: string
  /** Stop listening and drop open connections. */
  close(): Promise<void>
}

/**
 * A component's HTTP server: /metrics, /healthz and /readyz, and its own API (`app`, e.g. a hono app
 * through @hono/node-server's getRequestListener) for every other path. Host default 127.0.0.1: pass
 * 0.0.0.0 where Prometheus scrapes the pod; port 0 picks a free port. Resolves once listening.
 */
export async function startHttpServer(opts: {
  port: number
  host?: string
  registry?: Registry
  ready?: ReadyCheck
  app?: RequestHandler
  /** Takes over connections that ask to upgrade (WebSocket). */
  upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void
}): Promise<HttpServer> {
  const host = opts.host ?? '127.0.0.1'
  const handlerOpts = { ...(opts.ready && { ready: opts.ready }), ...(opts.app && { app: opts.app }) }
  const server = createServer(
    { keepAliveTimeout: 65_000 },
    metricsHandler(opts.registry ?? metricsRegistry(), handlerOpts),
  )
  if (opts.upgrade) server.on('upgrade', opts.upgrade)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const urlHost = host.includes(':') ? `[${host}]` : host
  let closing: Promise<void> | undefined
  return {
    port,
    host,
    url: `http://${urlHost}:${port}`,
    close() {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()))
        server.closeAllConnections()
      })
      return closing
    },
  }
}
