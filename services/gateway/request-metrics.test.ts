import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { createRegistry } from '../../lib/metrics.ts'
import { requestMetrics, routeLabel } from './request-metrics.ts'

describe('gateway request metrics', () => {
  it('folds ids and unknown paths so the label set stays bounded', () => {
    expect(routeLabel('/v1/users/42/api-keys/7', 200)).toBe('/v1/users/:id/api-keys/:id')
    expect(routeLabel('/api/v3/order', 400)).toBe('/api/v3/order')
    expect(routeLabel('/wp-admin/../etc', 404)).toBe('unmatched')
  })

  it('counts requests by method, route and status and times them', async () => {
    const registry = createRegistry({ defaultMetrics: false })
    const app = new Hono()
    app.use(requestMetrics(registry))
    app.get('/api/v3/ping', (c) => c.json({}))
    app.get('/v1/users/:id', (c) => c.json({ code: 'not_found' }, 404))
    await app.request('/api/v3/ping')
    await app.request('/api/v3/ping')
    await app.request('/nothing/here')
    const text = await registry.metrics()
    expect(text).toContain('bourse_gateway_requests_total{method="GET",route="/api/v3/ping",status="200"} 2')
    expect(text).toContain('bourse_gateway_requests_total{method="GET",route="unmatched",status="404"} 1')
    expect(text).toContain('bourse_gateway_request_seconds_count{method="GET",route="/api/v3/ping"} 2')
  })
})
