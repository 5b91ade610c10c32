import { describe, expect, it } from 'vitest'
import { clientAddress, freePort } from './net.ts'

describe('clientAddress', () => {
  it("takes the proxy's view, the last of X-Forwarded-For, only behind a trusted proxy", () => {
    expect(clientAddress('6.6.6.6, 10.0.0.7', '10.0.0.1', true)).toBe('10.0.0.7')
    expect(clientAddress('10.0.0.7', '10.0.0.1', true)).toBe('10.0.0.7')
    expect(clientAddress('6.6.6.6, 10.0.0.7', '::ffff:10.0.0.1', false)).toBe('10.0.0.1')
    expect(clientAddress(undefined, '::1', true)).toBe('::1')
    expect(clientAddress(' ', undefined, true)).toBe('unknown')
  })
})

describe('freePort', () => {
  it('finds a port below the ephemeral range that nothing listens on', async () => {
    const port = await freePort()
    expect(port).toBeGreaterThanOrEqual(10_000)
    expect(port).toBeLessThan(20_000)
  })
})
