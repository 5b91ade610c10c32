/**
 * Binance stream names (`btcusdt@trade`, `btcusdt@kline_1m`, `btcusdt@depth20@100ms`, …) and the pub/sub
 * channel each is fed from. Symbols are lowercase in stream names and uppercase in channels.
 */
import { marketKey } from '../../adapters/pubsub/index.ts'
import { type Interval, isInterval, parseInterval, zonedSource } from '../handler/intervals.ts'
import { channels as handlerChannels } from '../handler/keys.ts'
import { userChannel } from './user-stream.ts'

/** The engine's book changes per committed batch (DepthUpdate JSON), published by depth-source.ts. */
export const depthChannel = (symbol: string) => marketKey(symbol, 'depth')
/** The last DepthUpdate as JSON, so a replica serves partial depth and bookTicker before the next change. */
export const bookKey = (symbol: string) => marketKey(symbol, 'book')

export type StreamSpec =
  | { kind: 'trade' | 'aggTrade' | 'ticker' | 'miniTicker' | 'bookTicker'; symbol: string }
  | { kind: 'kline'; symbol: string; interval: Interval }
  /** `<symbol>@kline_<interval>@+08:00`: the buckets of UTC+8, the one zone Binance streams. */
  | { kind: 'zonedKline'; symbol: string; interval: Interval; offsetMs: number }
  | { kind: 'depth'; symbol: string; speedMs: 100 | 1000 }
  | { kind: 'partialDepth'; symbol: string; levels: 5 | 10 | 20; speedMs: 100 | 1000 }
  /** The seeds' Linkora socket: `/ws?symbol=BTCUSDT&type=candles&timeframe=5` and `type=orderbook`. */
  | { kind: 'linkoraCandles'; symbol: string; interval: Interval }
  | { kind: 'linkoraOrderbook'; symbol: string }
  /** A user data stream: a listen key's or a WebSocket API subscription's, fed from the user's channel. */
  | { kind: 'user'; userId: string }

/** The Linkora stream a `/ws?symbol=…&type=…` URL asks for (an internal name and its spec), or undefined. */
export function parseLinkora(params: URLSearchParams): [string, StreamSpec] | undefined {
  const symbol = params.get('symbol') ?? ''
  if (!/^[A-Z0-9]{2,32}$/.test(symbol)) return undefined
  if (params.get('type') === 'orderbook')
    return [`linkora:orderbook:${symbol}`, { kind: 'linkoraOrderbook', symbol }]
  if (params.get('type') !== 'candles') return undefined
  const interval = parseInterval(params.get('timeframe') ?? '1')
  return interval === undefined
    ? undefined
    : [`linkora:candles:${symbol}:${interval}`, { kind: 'linkoraCandles', symbol, interval }]
}

const HOUR = 3_600_000
const simple = new Set(['trade', 'aggTrade', 'ticker', 'miniTicker', 'bookTicker'])
const symbolPattern = /^[a-z0-9]{2,32}$/

/** The stream a name denotes, or undefined when Binance would not know it. Names are case-sensitive. */
export function parseStream(name: string): StreamSpec | undefined {
  const at = name.indexOf('@')
  if (at < 0) return undefined
  const lower = name.slice(0, at)
  if (!symbolPattern.test(lower)) return undefined
  const symbol = lower.toUpperCase()
  const rest = name.slice(at + 1).split('@')
  const [kind, speed] = rest
  if (rest.length > 2 || kind === undefined) return undefined
  if (simple.has(kind)) {
    return speed === undefined ? ({ kind, symbol } as StreamSpec) : undefined
  }
  if (kind.startsWith('kline_')) {
    const interval = kind.slice('kline_'.length)
    if (!isInterval(interval)) return undefined
    if (speed === undefined) return { kind: 'kline', symbol, interval }
    return speed === '+08:00' ? { kind: 'zonedKline', symbol, interval, offsetMs: 8 * HOUR } : undefined
  }
  const match = /^depth(5|10|20)?$/.exec(kind)
  if (match === null) return undefined
  if (speed !== undefined && speed !== '100ms' && speed !== '1000ms') return undefined
  const speedMs = speed === '100ms' ? 100 : 1000
  if (match[1] === undefined) return { kind: 'depth', symbol, speedMs }
  return { kind: 'partialDepth', symbol, levels: Number(match[1]) as 5 | 10 | 20, speedMs }
}

/** The pub/sub channel a stream's feed listens to. */
export function channelOf(spec: StreamSpec): string {
  switch (spec.kind) {
    case 'trade':
    case 'aggTrade':
      return handlerChannels.trade(spec.symbol)
    case 'kline':
    case 'linkoraCandles':
      return handlerChannels.kline(spec.symbol, spec.interval)
    case 'zonedKline':
      return handlerChannels.kline(spec.symbol, zonedSource(spec.interval, spec.offsetMs))
    case 'ticker':
    case 'miniTicker':
      return handlerChannels.ticker(spec.symbol)
    case 'bookTicker':
    case 'depth':
    case 'partialDepth':
    case 'linkoraOrderbook':
      return depthChannel(spec.symbol)
    case 'user':
      return userChannel(spec.userId)
  }
}
