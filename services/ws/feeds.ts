/**
 * The replica's feeds: one per stream name that some client of this replica listens to, and one pub/sub
 * subscription per channel however many feeds and clients share it (trade and aggTrade share the trade
 * channel; depth, partial depth and bookTicker share the depth channel). A channel message is parsed at most
 * once, each feed turns it into its stream's payload once, and the payload goes to every client of the feed.
 */
import type { PubSubCache, Unsubscribe } from '../../adapters/pubsub/index.ts'
import type { Logger } from '../../lib/log.ts'
import type { DepthUpdate } from '../engine/events.ts'
import { zonedSource } from '../handler/intervals.ts'
import { toKlineStreamPayload } from '../handler/klines.ts'
import { klineAt } from '../handler/queries.ts'
import { bookKey, channelOf, type StreamSpec } from './streams.ts'

/** One payload of one stream, framed for raw and combined connections only when asked. */
export class Frame {
  readonly stream: string
  readonly raw: string
  #combined: string | undefined

  constructor(stream: string, raw: string) {
    this.stream = stream
    this.raw = raw
  }

  get combined(): string {
    this.#combined ??= `{"stream":${JSON.stringify(this.stream)},"data":${this.raw}}`
    return this.#combined
  }
}

export interface Subscriber {
  deliver(frame: Frame): void
}

/** A channel message, parsed on first demand. */
class Message {
  readonly text: string
  #json: unknown

  constructor(text: string) {
    this.text = text
  }

  get json(): unknown {
    this.#json ??= JSON.parse(this.text)
    return this.#json
  }
}

abstract class Feed {
  readonly name: string
  readonly subscribers = new Set<Subscriber>()

  constructor(name: string) {
    this.name = name
  }

  abstract onMessage(message: Message): void

  /** When the first subscriber comes (timers, state from the cache). */
  start(_cache: PubSubCache): Promise<void> | void {}

  stop(): void {}

  protected emit(raw: string): void {
    const frame = new Frame(this.name, raw)
    for (const subscriber of this.subscribers) subscriber.deliver(frame)
  }
}

/** trade, ticker and user data: the handler (user events: user-events.ts) publishes Binance's payload already. */
class PassThroughFeed extends Feed {
  onMessage(message: Message): void {
    this.emit(message.text)
  }
}

interface TradePayload {
  E: number
  s: string
  t: number
  p: string
  q: string
  T: number
  m: boolean
}

/** Each trade is its own aggregate: ids 1:1, first = last = the trade's id. */
class AggTradeFeed extends Feed {
  onMessage(message: Message): void {
    const t = message.json as TradePayload
    this.emit(
      JSON.stringify({
        e: 'aggTrade',
        E: t.E,
        s: t.s,
        a: t.t,
        p: t.p,
        q: t.q,
        f: t.t,
        l: t.t,
        T: t.T,
        m: t.m,
        M: true,
      }),
    )
  }
}

class MiniTickerFeed extends Feed {
  onMessage(message: Message): void {
    const t = message.json as Record<string, unknown>
    this.emit(
      JSON.stringify({ e: '24hrMiniTicker', E: t.E, s: t.s, c: t.c, o: t.o, h: t.h, l: t.l, v: t.v, q: t.q }),
    )
  }
}

const NONE: [string, string] = ['0', '0']

/** Best bid and ask whenever either changes, `u` the engine's update id. */
class BookTickerFeed extends Feed {
  #last = ''

  onMessage(message: Message): void {
    const update = message.json as DepthUpdate
    const [b, B] = update.top.bids[0] ?? NONE
    const [a, A] = update.top.asks[0] ?? NONE
    const key = `${b}/${B}/${a}/${A}`
    if (key === this.#last) return
    this.#last = key
    this.emit(JSON.stringify({ u: Number(update.lastSeq), s: update.market, b, B, a, A }))
  }
}

/**
 * Diff depth: the changes of the engine's batches within each 100 ms or 1 s, merged (a level's last
 * quantity wins), with `U` the first batch's first seq and `u` the last batch's last seq. A window whose
 * batches changed no level sends nothing and its range joins the next message. A missing batch (a lost
 * message, a restarted engine) is never merged over: what came before is sent, then the range restarts at
 * the new batch, so a client sees `U` past its book's id + 1 and resynchronises, as Binance's algorithm says.
 */
class DepthDiffFeed extends Feed {
  readonly #symbol: string
  readonly #speedMs: number
  #timer: NodeJS.Timeout | undefined
  #first: bigint | undefined
  #last: bigint | undefined
  #bids = new Map<string, string>()
  #asks = new Map<string, string>()

  constructor(name: string, symbol: string, speedMs: number) {
    super(name)
    this.#symbol = symbol
    this.#speedMs = speedMs
  }

  override start(): void {
    this.#timer = setInterval(() => this.#flush(), this.#speedMs)
  }

  override stop(): void {
    clearInterval(this.#timer)
  }

  onMessage(message: Message): void {
    const update = message.json as DepthUpdate
    const first = BigInt(update.firstSeq)
    const last = BigInt(update.lastSeq)
    if (this.#last !== undefined && last <= this.#last) return // a duplicate
    if (this.#last !== undefined && first !== this.#last + 1n) {
      this.#flush()
      this.#first = undefined
    }
    this.#first ??= first
    this.#last = last
    for (const [price, qty] of update.bids) this.#bids.set(price, qty)
    for (const [price, qty] of update.asks) this.#asks.set(price, qty)
  }

  #flush(): void {
    if (this.#bids.size === 0 && this.#asks.size === 0) return
    const payload = {
      e: 'depthUpdate',
      E: Date.now(),
      s: this.#symbol,
      U: Number(this.#first),
      u: Number(this.#last),
      b: [...this.#bids],
      a: [...this.#asks],
    }
    this.#bids = new Map()
    this.#asks = new Map()
    this.#first = undefined
    this.emit(JSON.stringify(payload))
  }
}

/** The best 5, 10 or 20 levels every 100 ms or 1 s, from the engine's last update (read at start). */
class PartialDepthFeed extends Feed {
  readonly #symbol: string
  readonly #levels: number
  readonly #speedMs: number
  #timer: NodeJS.Timeout | undefined
  #latest: DepthUpdate | undefined
  #log: Logger

  constructor(name: string, spec: Extract<StreamSpec, { kind: 'partialDepth' }>, log: Logger) {
    super(name)
    this.#symbol = spec.symbol
    this.#levels = spec.levels
    this.#speedMs = spec.speedMs
    this.#log = log
  }

  override async start(cache: PubSubCache): Promise<void> {
    this.#timer = setInterval(() => this.#push(), this.#speedMs)
    try {
      const stored = await cache.get(bookKey(this.#symbol))
      if (stored !== undefined) this.#take(JSON.parse(stored) as DepthUpdate)
    } catch (err) {
      this.#log.warn({ err, symbol: this.#symbol }, 'reading the last book failed')
    }
  }

  override stop(): void {
    clearInterval(this.#timer)
  }

  onMessage(message: Message): void {
    this.#take(message.json as DepthUpdate)
  }

  #take(update: DepthUpdate): void {
    if (this.#latest === undefined || BigInt(update.lastSeq) > BigInt(this.#latest.lastSeq))
      this.#latest = update
  }

  #push(): void {
    const latest = this.#latest
    if (latest === undefined) return
    this.emit(
      JSON.stringify({
        lastUpdateId: Number(latest.lastSeq),
        bids: latest.top.bids.slice(0, this.#levels),
        asks: latest.top.asks.slice(0, this.#levels),
      }),
    )
  }
}

interface KlineEvent {
  e: 'kline'
  E: number
  s: string
  k: { t: number; T: number; x: boolean; [field: string]: unknown }
}

/**
 * kline_<interval>: the handler's k-line updates as published, and a bucket's last one sent again with
 * `x: true` once the bucket is over — when the next bucket's first update comes, or within a second of its
 * close time. Bots act on that closed candle; the handler itself publishes only when trades come.
 */
class KlineFeed extends Feed {
  /** The newest k-line update, until it has gone out closed. */
  #open: KlineEvent | undefined
  #timer: NodeJS.Timeout | undefined

  override start(): void {
    this.#timer = setInterval(() => {
      if (this.#open !== undefined && Date.now() > this.#open.k.T) this.#sendClosed()
    }, 1000)
  }

  override stop(): void {
    clearInterval(this.#timer)
  }

  onMessage(message: Message): void {
    const event = message.json as KlineEvent
    const open = this.#open
    if (open !== undefined && event.k.t > open.k.t) this.#sendClosed()
    if (open === undefined || event.k.t >= open.k.t) this.#open = event.k.x ? undefined : event
    this.emit(this.render(event, message.text))
  }

  /** The stream's payload for a k-line event; `text`: the event as the handler published it, if it is. */
  protected render(event: KlineEvent, text?: string): string {
    return text ?? JSON.stringify(event)
  }

  #sendClosed(): void {
    const event = this.#open!
    this.#open = undefined
    this.emit(this.render({ ...event, E: Date.now(), k: { ...event.k, x: true } }))
  }
}

/**
 * `kline_<interval>@+08:00`: the k-line of the zone's bucket, merged from the UTC k-lines that tile it
 * (handler/queries.ts). A change to one of those marks it; a marked k-line is read and sent once a second,
 * Binance's own pace for these streams, and a bucket that is over is read once more and sent closed.
 */
class ZonedKlineFeed extends Feed {
  readonly #spec: Extract<StreamSpec, { kind: 'zonedKline' }>
  readonly #log: Logger
  #cache: PubSubCache | undefined
  #timer: NodeJS.Timeout | undefined
  #changed = false
  #reading = false
  /** The bucket last sent while it was still open. */
  #open: { openTime: number; closeTime: number } | undefined

  constructor(name: string, spec: Extract<StreamSpec, { kind: 'zonedKline' }>, log: Logger) {
    super(name)
    this.#spec = spec
    this.#log = log
  }

  override start(cache: PubSubCache): void {
    this.#cache = cache
    this.#timer = setInterval(() => void this.#push(), 1000)
  }

  override stop(): void {
    clearInterval(this.#timer)
  }

  onMessage(): void {
    this.#changed = true
  }

  async #push(): Promise<void> {
    const over = this.#open !== undefined && Date.now() > this.#open.closeTime
    if ((!this.#changed && !over) || this.#reading) return
    this.#reading = true
    try {
      if (over) {
        await this.#send(this.#open!.openTime)
        this.#open = undefined
      }
      if (this.#changed) {
        this.#changed = false
        await this.#send(undefined)
      }
    } catch (err) {
      this.#changed = true
      this.#log.warn({ err, stream: this.name }, 'reading the k-line failed; trying again in a second')
    } finally {
      this.#reading = false
    }
  }

  /** Reads the bucket opening at `openTime` (the newest without it) and sends it, `x` by the clock. */
  async #send(openTime: number | undefined): Promise<void> {
    const { symbol, interval, offsetMs } = this.#spec
    const kline = await klineAt(this.#cache!, symbol, interval, offsetMs, openTime)
    if (kline === undefined) return
    const now = Date.now()
    const k = toKlineStreamPayload(symbol, kline, now)
    if (!k.x) this.#open = { openTime: kline.openTime, closeTime: kline.closeTime }
    this.emit(JSON.stringify({ e: 'kline', E: now, s: symbol, k }))
  }
}

/** Linkora's candle message: the k-line of the timeframe each time it changes, and once more closed. */
class LinkoraCandlesFeed extends KlineFeed {
  protected override render({ s, k }: KlineEvent): string {
    return JSON.stringify({
      type: 'candle',
      symbol: s,
      timeframe: k.i,
      timestamp: k.t,
      open: k.o,
      high: k.h,
      low: k.l,
      close: k.c,
      volume: k.v,
      closed: k.x,
    })
  }
}

/** Linkora's order book message: the best 20 levels a side after each change. */
class LinkoraOrderbookFeed extends Feed {
  onMessage(message: Message): void {
    const u = message.json as DepthUpdate
    this.emit(
      JSON.stringify({
        type: 'orderbook',
        symbol: u.market,
        timestamp: u.time,
        last_update_id: Number(u.lastSeq),
        bids: u.top.bids,
        asks: u.top.asks,
      }),
    )
  }
}

function createFeed(name: string, spec: StreamSpec, log: Logger): Feed {
  switch (spec.kind) {
    case 'trade':
    case 'ticker':
    case 'user':
      return new PassThroughFeed(name)
    case 'kline':
      return new KlineFeed(name)
    case 'aggTrade':
      return new AggTradeFeed(name)
    case 'miniTicker':
      return new MiniTickerFeed(name)
    case 'bookTicker':
      return new BookTickerFeed(name)
    case 'depth':
      return new DepthDiffFeed(name, spec.symbol, spec.speedMs)
    case 'partialDepth':
      return new PartialDepthFeed(name, spec, log)
    case 'zonedKline':
      // A zone that moves none of the interval's boundaries has the UTC k-lines themselves.
      return zonedSource(spec.interval, spec.offsetMs) === spec.interval
        ? new KlineFeed(name)
        : new ZonedKlineFeed(name, spec, log)
    case 'linkoraCandles':
      return new LinkoraCandlesFeed(name)
    case 'linkoraOrderbook':
      return new LinkoraOrderbookFeed(name)
  }
}

interface Source {
  feeds: Set<Feed>
  subscribed: Promise<Unsubscribe>
}

export class Hub {
  readonly #cache: PubSubCache
  readonly #log: Logger
  readonly #feeds = new Map<string, Feed>()
  readonly #sources = new Map<string, Source>()

  constructor(cache: PubSubCache, log: Logger) {
    this.#cache = cache
    this.#log = log
  }

  /** Channels subscribed on this replica (for tests and metrics). */
  get channelCount(): number {
    return this.#sources.size
  }

  get feedCount(): number {
    return this.#feeds.size
  }

  /** Adds the subscriber to the stream's feed; resolves once the channel is subscribed. */
  async join(subscriber: Subscriber, name: string, spec: StreamSpec): Promise<void> {
    let feed = this.#feeds.get(name)
    if (feed !== undefined) {
      feed.subscribers.add(subscriber)
      await this.#sources.get(channelOf(spec))?.subscribed
      return
    }
    feed = createFeed(name, spec, this.#log)
    feed.subscribers.add(subscriber)
    this.#feeds.set(name, feed)
    const channel = channelOf(spec)
    let source = this.#sources.get(channel)
    if (source === undefined) {
      const created: Source = { feeds: new Set(), subscribed: Promise.resolve(async () => {}) }
      created.subscribed = this.#cache.subscribe(channel, (text) => this.#dispatch(created, text, channel))
      source = created
      this.#sources.set(channel, source)
    }
    source.feeds.add(feed)
    try {
      await Promise.all([source.subscribed, feed.start(this.#cache)])
    } catch (err) {
      this.leave(subscriber, name, spec)
      throw err
    }
  }

  leave(subscriber: Subscriber, name: string, spec: StreamSpec): void {
    const feed = this.#feeds.get(name)
    if (feed === undefined || !feed.subscribers.delete(subscriber) || feed.subscribers.size > 0) return
    feed.stop()
    this.#feeds.delete(name)
    const channel = channelOf(spec)
    const source = this.#sources.get(channel)
    if (source === undefined) return
    source.feeds.delete(feed)
    if (source.feeds.size > 0) return
    this.#sources.delete(channel)
    source.subscribed
      .then((unsubscribe) => unsubscribe())
      .catch((err: unknown) => this.#log.warn({ err, channel }, 'unsubscribe failed'))
  }

  #dispatch(source: Source, text: string, channel: string): void {
    const message = new Message(text)
    for (const feed of source.feeds) {
      try {
        feed.onMessage(message)
      } catch (err) {
        this.#log.warn({ err, channel, stream: feed.name }, 'feed failed on a message')
      }
    }
  }

  close(): void {
    for (const feed of this.#feeds.values()) feed.stop()
    this.#feeds.clear()
    this.#sources.clear()
  }
}
