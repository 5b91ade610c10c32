import { createHmac, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { users } from '../../adapters/db/schema.ts'
import { createTestDatabase, type TestDatabase } from '../../adapters/db/testing.ts'
import { sleep } from '../../adapters/testing/wait.ts'
import { ApiKeyStore, createApiKey, hmacSha256, revokeApiKey } from './api-keys.ts'

describe('hmacSha256', () => {
  it("signs as OpenSSL's HMAC does, for keys shorter, as long as and longer than a block", () => {
    for (const keyLength of [0, 1, 32, 63, 64, 65, 200]) {
      const key = randomBytes(keyLength)
      const sign = hmacSha256(key)
      for (const message of [
        '',
        'symbol=BTCUSDT&timestamp=1',
        'é€😀'.repeat(40),
        randomBytes(300).toString('hex'),
      ]) {
        // Twice: the precomputed states are copied, never consumed.
        for (let i = 0; i < 2; i++)
          expect(sign(message).toString('hex')).toBe(createHmac('sha256', key).update(message).digest('hex'))
      }
    }
  })
})

describe('ApiKeyStore', () => {
  const encryptionKey = randomBytes(32)
  let database: TestDatabase
  let apiKey: string
  let secretKey: string

  beforeAll(async () => {
    database = await createTestDatabase('pglite')
    const [user] = await database.db.insert(users).values({ name: 'keyholder' }).returning()
    ;({ apiKey, secretKey } = (await createApiKey(database.db, encryptionKey, {
      userId: user!.id,
      kind: 'HMAC',
      canTrade: true,
    })) as { apiKey: string; secretKey: string })
  })
  afterAll(() => database?.close())

  it("answers a busy key's concurrent requests from one lookup, and verifies with the stored secret", async () => {
    const store = new ApiKeyStore(database.db, encryptionKey)
    const select = vi.spyOn(database.db, 'select')
    const found = await Promise.all(Array.from({ length: 20 }, () => store.find(apiKey)))
    expect(select).toHaveBeenCalledTimes(1)
    select.mockRestore()
    expect(new Set(found).size).toBe(1)
    const signature = createHmac('sha256', secretKey).update('timestamp=1').digest('hex')
    expect(found[0]!.verify('timestamp=1', signature)).toBe(true)
    expect(found[0]!.verify('timestamp=2', signature)).toBe(false)
  })

  it('asks again after a failed lookup, and forgets a revoked key once its entry expires', async () => {
    const store = new ApiKeyStore(database.db, encryptionKey, 50)
    const select = vi.spyOn(database.db, 'select').mockImplementationOnce(() => {
      throw new Error('connection lost')
    })
    await expect(store.find(apiKey)).rejects.toThrow('connection lost')
    expect(await store.find(apiKey)).toMatchObject({ apiKey, canTrade: true })
    select.mockRestore()

    await revokeApiKey(database.db, apiKey)
    await sleep(60)
    expect(await store.find(apiKey)).toBeNull()
  })
})
