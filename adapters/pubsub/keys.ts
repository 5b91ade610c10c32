/**
 * Names of a market's Redis keys and channels. The symbol is a hash tag (`md:{BTCUSDT}:trade`), so that all of a
 * market lives in one cluster slot: one shard serves its sharded pub/sub and multi-key updates of it stay legal.
 */
import { invalidInput } from '../../lib/errors.ts'

const symbolPattern = /^[A-Z0-9]{2,32}$/

export function marketKey(symbol: string, ...parts: string[]): string {
  if (!symbolPattern.test(symbol)) throw invalidInput('symbol', `"${symbol}" is not 2-32 of [A-Z0-9]`)
  return ['md', `{${symbol}}`, ...parts].join(':')
}
