import { createHmac, randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { hmacSha256 } from './api-keys.ts'

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
