import { expect, test } from 'vitest'
import { marketKey } from './keys.ts'

test('market keys put the symbol in a hash tag', () => {
  expect(marketKey('BTCUSDT', 'trade')).toBe('md:{BTCUSDT}:trade')
  expect(marketKey('ETHUSDT', 'kline', '1m')).toBe('md:{ETHUSDT}:kline:1m')
})

test('a symbol that could break the hash tag is refused', () => {
  for (const symbol of ['btcusdt', 'BTC}USDT', '', 'BTC:USDT']) {
    expect(() => marketKey(symbol, 'trade')).toThrow(
      expect.objectContaining({ code: 'invalid_input', field: 'symbol' }),
    )
  }
})
