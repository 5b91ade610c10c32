import { describe, expect, test } from 'vitest'
import { RateLimiter, WorkQueue } from './workqueue.ts'

describe('work queue', () => {
  test('a key waits once however often it is added', async () => {
    const q = new WorkQueue('t')
    q.add('a')
    q.add('a')
    q.add('b')
    expect(q.length).toBe(2)
    expect(await q.get()).toBe('a')
    expect(await q.get()).toBe('b')
  })

  test('one worker at a time per key: a key added while processed comes back after done', async () => {
    const q = new WorkQueue('t')
    q.add('a')
    const key = await q.get()
    q.add('a')
    expect(q.length).toBe(0) // not handed to a second worker while the first holds it
    q.done(key!)
    expect(q.length).toBe(1)
    expect(await q.get()).toBe('a')
  })

  test('a waiting worker gets a key as soon as it is added; shutDown releases waiters', async () => {
    const q = new WorkQueue('t')
    const waiting = q.get()
    q.add('x')
    expect(await waiting).toBe('x')
    const idle = q.get()
    q.shutDown()
    expect(await idle).toBeUndefined()
  })

  test('addRateLimited backs off exponentially per key; forget resets', async () => {
    const r = new RateLimiter({ baseDelayMs: 5, maxDelayMs: 1000 })
    expect([r.when('k'), r.when('k'), r.when('k'), r.when('k')]).toEqual([5, 10, 20, 40])
    expect(r.when('other')).toBe(5)
    for (let i = 0; i < 20; i++) r.when('k')
    expect(r.when('k')).toBe(1000)
    r.forget('k')
    expect(r.when('k')).toBe(5)
  })

  test('the overall bucket limits a burst of requeues', () => {
    const r = new RateLimiter({ baseDelayMs: 0, qps: 10, burst: 2 })
    expect(r.when('a')).toBe(0)
    expect(r.when('b')).toBe(0)
    expect(r.when('c')).toBeGreaterThan(50)
  })

  test('addRateLimited brings the key back after the delay', async () => {
    const q = new WorkQueue('t', undefined, { baseDelayMs: 20 })
    q.addRateLimited('k')
    expect(q.length).toBe(0)
    await new Promise((r) => setTimeout(r, 60))
    expect(await q.get()).toBe('k')
  })
})
