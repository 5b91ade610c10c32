import { Agent, request } from 'node:http'
import { afterEach, describe, expect, it } from 'vitest'
import { Counter, createRegistry, type HttpServer, metricsRegistry, startHttpServer } from './metrics.ts'

const servers: HttpServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

async function start(opts: Omit<Parameters<typeof startHttpServer>[0], 'port' | 'host'>) {
  const server = await startHttpServer({ port: 0, host: '127.0.0.1', ...opts })
  servers.push(server)
  return server
}

describe('startHttpServer', () => {
  it('serves Prometheus metrics, default and custom, on a free port', async () => {
    const registry = createRegistry({ labels: { component: 'test' } })
    const orders = new Counter({
      name: 'bourse_orders_total',
      help: 'Orders accepted',
      registers: [registry],
    })
    orders.inc(3)
    const server = await start({ registry })
    expect(server.port).toBeGreaterThan(0)
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`)
    const res = await fetch(`${server.url}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/plain')
    const body = await res.text()
    expect(body).toContain('# TYPE bourse_orders_total counter')
    expect(body).toContain('bourse_orders_total{component="test"} 3')
    expect(body).toMatch(/^process_cpu_user_seconds_total\{component="test"\} /m)
    expect(body).toMatch(/^nodejs_eventloop_lag_seconds\{component="test"\} /m)
  })

  it('answers /healthz always and /readyz by the ready check', async () => {
    let ready = false
    const server = await start({ registry: createRegistry({ defaultMetrics: false }), ready: () => ready })
    const health = await fetch(`${server.url}/healthz`)
    expect([health.status, await health.text()]).toEqual([200, 'ok\n'])
    const notReady = await fetch(`${server.url}/readyz`)
    expect([notReady.status, await notReady.text()]).toEqual([503, 'not ready\n'])
    ready = true
    const nowReady = await fetch(`${server.url}/readyz?verbose=1`)
    expect([nowReady.status, await nowReady.text()]).toEqual([200, 'ready\n'])
  })

  it('treats a throwing or rejecting ready check as not ready, and no check as ready', async () => {
    const registry = createRegistry({ defaultMetrics: false })
    const throwing = await start({
      registry,
      ready: () => {
        throw new Error('db down')
      },
    })
    expect((await fetch(`${throwing.url}/readyz`)).status).toBe(503)
    const rejecting = await start({ registry, ready: async () => Promise.reject(new Error('db down')) })
    expect((await fetch(`${rejecting.url}/readyz`)).status).toBe(503)
    const asyncReady = await start({ registry, ready: async () => true })
    expect((await fetch(`${asyncReady.url}/readyz`)).status).toBe(200)
    const none = await start({ registry })
    expect((await fetch(`${none.url}/readyz`)).status).toBe(200)
  })

  it('404s unknown paths and 405s other methods', async () => {
    const server = await start({ registry: createRegistry({ defaultMetrics: false }) })
    expect((await fetch(`${server.url}/`)).status).toBe(404)
    expect((await fetch(`${server.url}/metricsx`)).status).toBe(404)
    const post = await fetch(`${server.url}/metrics`, { method: 'POST' })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, HEAD')
    const head = await fetch(`${server.url}/healthz`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')
  })

  it('closes even with a keep-alive connection open, and stops accepting', async () => {
    const server = await startHttpServer({
      port: 0,
      host: '127.0.0.1',
      registry: createRegistry({ defaultMetrics: false }),
    })
    // A keep-alive client holds its socket open after the response, as Prometheus does.
    await new Promise<void>((resolve, reject) => {
      const req = request(`${server.url}/healthz`, { agent: new Agent({ keepAlive: true }) }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      req.on('error', reject)
      req.end()
    })
    await server.close()
    await server.close() // idempotent
    await expect(fetch(`${server.url}/healthz`)).rejects.toThrow()
  })

  it("serves the component's own API on every other path", async () => {
    const server = await start({
      registry: createRegistry({ defaultMetrics: false }),
      app: (req, res) => res.end(`api saw ${req.method} ${req.url}`),
    })
    expect(await (await fetch(`${server.url}/orders?x=1`, { method: 'POST' })).text()).toBe(
      'api saw POST /orders?x=1',
    )
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
  })

  it('refuses a port already in use', async () => {
    const server = await start({ registry: createRegistry({ defaultMetrics: false }) })
    await expect(startHttpServer({ port: server.port, host: '127.0.0.1' })).rejects.toThrow(/EADDRINUSE/)
  })
})

describe('metricsRegistry', () => {
  it('is one registry per process, with default metrics', async () => {
    expect(metricsRegistry()).toBe(metricsRegistry())
    expect(await metricsRegistry().metrics()).toContain('process_resident_memory_bytes')
  })
})
