import { describe, expect, it } from 'vitest'
import { Params } from './request.ts'

describe('Params', () => {
  it('signs the query string then the body, each without its signature pair', () => {
    const signed = (query: string, body: string) => new Params(query, body).payload
    expect(signed('signature=ab&symbol=BTCUSDT', '')).toBe('symbol=BTCUSDT')
    expect(signed('symbol=BTCUSDT&signature=ab&side=BUY', '')).toBe('symbol=BTCUSDT&side=BUY')
    expect(signed('recvWindow=5000', 'side=BUY&timestamp=1&signature=ab')).toBe(
      'recvWindow=5000side=BUY&timestamp=1',
    )
    expect(signed('signature=ab', '')).toBe('')
    // Anything else stays byte for byte, empty pairs and encoding included.
    expect(signed('a=1&&b=%41+c&signature=ab&', '')).toBe('a=1&&b=%41+c&')
  })

  it('decodes as URLSearchParams does, and the query string wins over the body', () => {
    const params = new Params('side=SELL', 'side=BUY&newClientOrderId=a%2Fb+c&flag&price=1')
    expect(params.get('side')).toBe('SELL')
    expect(params.get('newClientOrderId')).toBe('a/b c')
    expect(params.sent('flag')).toBe(true)
    expect(params.get('flag')).toBeUndefined()
    expect(params.names()).toEqual(['side', 'newClientOrderId', 'flag', 'price'])
  })

  it('refuses a parameter sent twice in one part, even spelled differently', () => {
    for (const [query, body] of [
      ['symbol=A&symbol=B', ''],
      ['', 'price=1&%70rice=2'],
    ]) {
      expect(() => new Params(query!, body!)).toThrow(
        expect.objectContaining({ code: -1101, message: 'Duplicate values for a parameter detected.' }),
      )
    }
  })
})
