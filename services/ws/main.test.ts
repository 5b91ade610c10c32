/**
 * `bourse ws` as a child process, as the operator runs it, against the test Redis Cluster and Postgres: with
 * the gateway's Postgres and key-encryption secret it serves the WebSocket API's user data stream to a key
 * made in Postgres, and events on the user's Redis channel reach the subscription; without them the WebSocket
 * API is off, and with only one of the two it exits 2 naming the other.
 */
import { createHmac } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { users } from '../../adapters/db/schema.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { createPubSubCache, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { runNode, waitFor } from '../../adapters/testing/child.ts'
import { redisClusterNodes } from '../../adapters/testing/servers.ts'
import { freePort } from '../../lib/net.ts'
import { createApiKey, parseEncryptionKey } from '../gateway/api-keys.ts'
import { connect } from './testing.ts'
import { userChannel } from './user-stream.ts'

const SECRET = 'ab'.repeat(32)
let tdb: TestDatabase
let databaseUrl: string
let cache: PubSubCache
let userId: bigint
let key: { apiKey: string; secretKey: string }

beforeAll(async () => {
  tdb = await createTestDatabase('postgres')
  databaseUrl = tdb.config.kind === 'postgres' ? tdb.config.url : ''
  const [user] = await tdb.db.insert(users).values({ name: 'ws-main' }).returning()
  userId = user!.id
  const made = await createApiKey(tdb.db, parseEncryptionKey(SECRET), { userId, kind: 'HMAC' })
  key = { apiKey: made.apiKey, secretKey: made.secretKey! }
  cache = createPubSubCache({ kind: 'redis', nodes: redisClusterNodes() })
})

afterAll(async () => {
  await cache?.close()
  await tdb?.close()
})

async function startWs(env: Record<string, string>) {
  const port = await freePort()
  const base = `127.0.0.1:${port}`
  const p = runNode(['cli/bourse.ts', 'ws'], {
    BOURSE_REDIS_NODES: redisClusterNodes().join(','),
    BOURSE_WS_PORT: String(port),
    ...env,
  })
  await waitFor(async () => (await fetch(`http://${base}/readyz`)).status === 200, 'ready', p.output)
  return { ...p, base }
}

describe('bourse ws', () => {
  it("serves the WebSocket API's user data stream with the gateway's API keys", async () => {
    const ws = await startWs({ BOURSE_DATABASE_URL: databaseUrl, BOURSE_KEY_ENCRYPTION_SECRET: SECRET })
    try {
      const session = await connect(`ws://${ws.base}/ws-api/v3`)
      const timestamp = Date.now()
      const payload = `apiKey=${key.apiKey}&timestamp=${timestamp}`
      const signature = createHmac('sha256', key.secretKey).update(payload).digest('hex')
      session.send({
        id: 1,
        method: 'userDataStream.subscribe.signature',
        params: { apiKey: key.apiKey, timestamp, signature },
      })
      expect(await session.next()).toEqual({ id: 1, status: 200, result: { subscriptionId: 0 } })
      const event = { e: 'balanceUpdate', E: timestamp, a: 'USDT', d: '5', T: timestamp }
      await cache.publish(userChannel(String(userId)), JSON.stringify(event))
      expect(await session.next()).toEqual({ subscriptionId: 0, event })
      session.close()
      ws.child.kill('SIGTERM')
      expect(await ws.exited).toBe(0)
    } finally {
      ws.child.kill('SIGKILL')
    }
  })

  it('serves market streams without Postgres, the WebSocket API off', async () => {
    const ws = await startWs({})
    try {
      await expect(connect(`ws://${ws.base}/ws-api/v3`)).rejects.toThrow('HTTP 404')
      expect(ws.output()).toContain('the WebSocket API (/ws-api/v3) is off')
    } finally {
      ws.child.kill('SIGKILL')
    }
  })

  it('exits 2 naming the key-encryption secret when only Postgres is given', async () => {
    const p = runNode(['cli/bourse.ts', 'ws'], {
      BOURSE_REDIS_NODES: redisClusterNodes().join(','),
      BOURSE_WS_PORT: String(await freePort()),
      BOURSE_DATABASE_URL: databaseUrl,
    })
    expect(await p.exited).toBe(2)
    expect(p.output()).toContain('BOURSE_KEY_ENCRYPTION_SECRET is not set')
  })
})
