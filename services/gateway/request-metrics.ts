/**
 * The gateway's RED metrics: requests by method, route and status, and their duration. Routes are the path
 * with numeric segments folded (`/v1/users/:id`), and every unknown path counts as one route, so a scanner
 * or a fuzzer cannot grow the label set.
 */
import type { MiddlewareHandler } from 'hono'
import { Counter, Histogram, metricsRegistry, type Registry } from '../../lib/metrics.ts'

const metricsByRegistry = new WeakMap<Registry, { requests: Counter; seconds: Histogram }>()

function metricsOf(registry: Registry) {
  let metrics = metricsByRegistry.get(registry)
  if (metrics === undefined) {
    const registers = [registry]
    metrics = {
      requests: new Counter({
        name: 'bourse_gateway_requests_total',
        help: 'HTTP requests answered, by method, route and status',
        labelNames: ['method', 'route', 'status'],
        registers,
      }),
      seconds: new Histogram({
        name: 'bourse_gateway_request_seconds',
        help: 'Time to answer an HTTP request, by method and route',
        labelNames: ['method', 'route'],
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
        registers,
      }),
    }
    metricsByRegistry.set(registry, metrics)
  }
  return metrics
}

export function routeLabel(path: string, status: number): string {
  return status === 404 ? 'unmatched' : path.replace(/\/\d+(?=\/|$)/g, '/:id')
}

export function requestMetrics(registry: Registry = metricsRegistry()): MiddlewareHandler {
  const { requests, seconds } = metricsOf(registry)
  return async (c, next) => {
    const started = performance.now()
    await next()
    const route = routeLabel(c.req.path, c.res.status)
    requests.inc({ method: c.req.method, route, status: String(c.res.status) })
    seconds.observe({ method: c.req.method, route }, (performance.now() - started) / 1000)
  }
}
