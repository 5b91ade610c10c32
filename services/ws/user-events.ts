/**
 * The user-events consumer: takes the engine's events from the bus (`orders`, `trades`, `balances`, and
 * `market` only to keep each market's seqs contiguous) on its own channel, turns them into Binance's user data
 * stream payloads and publishes each on its user's pub/sub channel (user-stream.ts), where ws picks them up.
 *
 * - `executionReport`: NEW, CANCELED, EXPIRED and TRADE_PREVENTION from the order events; one TRADE report per
 *   fill, with the fill's quantity, price, quote and commission from its trade event and the order's cumulative
 *   quantities as of that fill. The engine commits a fill's trade before the order update it causes (a maker's
 *   update follows each of its trades, a taker's comes once after all of them), so the consumer handles every
 *   market's events in seq order: fills wait by order id for the order's next update.
 * - `outboundAccountPosition`: the balance events of one batch for one user (they follow the batch's other
 *   events), free = available and locked = frozen.
 * - `balanceUpdate`: from the ledger stream's `balance_updates` (ledger/events.ts): deposits, withdrawals and
 *   adjustments, each followed by the `balances` it left (an outboundAccountPosition). The stream `ledger` is
 *   handled like a market.
 *
 * Idempotent by (market, seq): the bus delivers at least once and in any order, so each market's events wait
 * in a buffer until their seq is next; a seq below the market's cursor is a duplicate and dropped. The cursor is
 * stored in the cache (`md:{M}:uds:next`) after the payloads are published and before the messages are
 * acknowledged, so a restart carries on where it stopped. A seq missing for `gapTimeoutMs` is skipped (logged).
 * Ordering is per process: run ONE consumer on the channel (several consumers sharing it would each see gaps).
 */
import type { Bus, BusMessage, Subscription } from '../../adapters/bus/index.ts'
import { marketKey, type PubSubCache } from '../../adapters/pubsub/index.ts'
import { type BalanceUpdateEvent, LEDGER_STREAM } from '../../ledger/events.ts'
import type { Logger } from '../../lib/log.ts'
import { formatDecimal, parseDecimal } from '../../lib/money.ts'
import type { BalanceEvent, EngineEvent, OrderEvent, OrderView, TradeEvent } from '../engine/events.ts'
import { userChannel } from './user-stream.ts'

export interface UserEventsOptions {
  bus: Bus
  cache: PubSubCache
  log: Logger
  /** The bus channel (default `user-streams`). */
  channel?: string
  /** Prefixes the topic names, for tests sharing one nsqd. */
  topicPrefix?: string
  /** How long a missing seq is waited for before later events go on without it (default 5 s). */
  gapTimeoutMs?: number
  /** With no stored cursor, events are collected this long before the first one is taken (default 200 ms). */
  startWindowMs?: number
  /** Messages in flight per topic: later events wait for a missing one in memory (default 1000). */
  maxInFlight?: number
  /** The clock of `E` (event time). */
  now?: () => number
}

export interface UserEventsConsumer {
  start(): Promise<void>
  stop(): Promise<void>
}

export const USER_EVENT_TOPICS = ['orders', 'trades', 'balances', 'market', 'balance_updates'] as const

type Sequenced = (EngineEvent | BalanceUpdateEvent) & { market: string; seq: string }

interface Entry {
  event: Sequenced
  waiters: (() => void)[]
}

interface Fill {
  seq: bigint
  tradeId: string
  price: string
  quantity: string
  quote: string
  commission: string
  commissionAsset: string | null
  isMaker: boolean
  time: number
}

interface Output {
  userId: string
  payload: string
}

interface MarketState {
  market: string
  next: bigint | undefined
  started: Promise<void> | undefined
  buffer: Map<bigint, Entry>
  /** Fills seen but not yet reported, by order id, by trade id. */
  fills: Map<string, Map<string, Fill>>
  draining: boolean
  again: boolean
  gapTimer: NodeJS.Timeout | undefined
}

/** Where a stream's next seq is kept: a market's beside its market data, the ledger's under its own tag. */
const cursorKey = (stream: string) =>
  stream === LEDGER_STREAM ? `uds:{${LEDGER_STREAM}}:next` : marketKey(stream, 'uds', 'next')

export function createUserEventsConsumer(options: UserEventsOptions): UserEventsConsumer {
  return new Consumer(options)
}

class Consumer implements UserEventsConsumer {
  readonly #o: Required<Omit<UserEventsOptions, 'topicPrefix'>> & { topicPrefix: string }
  readonly #markets = new Map<string, MarketState>()
  #subscriptions: Subscription[] = []
  #stopped = false

  constructor(options: UserEventsOptions) {
    this.#o = {
      channel: 'user-streams',
      topicPrefix: '',
      gapTimeoutMs: 5000,
      startWindowMs: 200,
      maxInFlight: 1000,
      now: Date.now,
      ...options,
    }
  }

  async start(): Promise<void> {
    for (const topic of USER_EVENT_TOPICS) {
      this.#subscriptions.push(
        await this.#o.bus.subscribe(
          this.#o.topicPrefix + topic,
          this.#o.channel,
          (message) => this.#receive(message),
          { maxInFlight: this.#o.maxInFlight, requeueDelayMs: 1000 },
        ),
      )
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true
    for (const state of this.#markets.values()) clearTimeout(state.gapTimer)
    // Messages waiting in a buffer are never acknowledged: the bus gives them to the next consumer.
    const subscriptions = this.#subscriptions
    this.#subscriptions = []
    await Promise.race([
      Promise.all(subscriptions.map((s) => s.close())),
      new Promise((resolve) => setTimeout(resolve, 2000).unref()),
    ])
  }

  #receive(message: BusMessage): Promise<void> {
    const event = message.json<Sequenced>()
    if (typeof event.market !== 'string' || typeof event.seq !== 'string') return Promise.resolve()
    const seq = BigInt(event.seq)
    const state = this.#market(event.market)
    return new Promise<void>((resolve, reject) => {
      const waiter = () => resolve()
      const entry = state.buffer.get(seq)
      if (entry !== undefined) entry.waiters.push(waiter)
      else state.buffer.set(seq, { event, waiters: [waiter] })
      state.started ??= this.#startMarket(state)
      state.started.then(() => this.#drain(state)).catch(reject)
    })
  }

  #market(market: string): MarketState {
    let state = this.#markets.get(market)
    if (state === undefined) {
      state = {
        market,
        next: undefined,
        started: undefined,
        buffer: new Map(),
        fills: new Map(),
        draining: false,
        again: false,
        gapTimer: undefined,
      }
      this.#markets.set(market, state)
    }
    return state
  }

  async #startMarket(state: MarketState): Promise<void> {
    const stored = await this.#o.cache.get(cursorKey(state.market))
    if (stored !== undefined) {
      state.next = BigInt(stored)
      return
    }
    // Never consumed this market: the earliest seq delivered in the first moments is where it starts.
    await new Promise((resolve) => setTimeout(resolve, this.#o.startWindowMs))
    state.next = smallestSeq(state.buffer)
  }

  async #drain(state: MarketState): Promise<void> {
    if (state.draining) {
      state.again = true
      return
    }
    state.draining = true
    try {
      do {
        state.again = false
        const outputs: Output[] = []
        const waiters: (() => void)[] = []
        // Duplicates of what is done already.
        for (const [seq, entry] of state.buffer)
          if (seq < state.next!) {
            state.buffer.delete(seq)
            waiters.push(...entry.waiters)
          }
        const balances: BalanceEvent[] = []
        for (
          let entry = state.buffer.get(state.next!);
          entry !== undefined;
          entry = state.buffer.get(state.next!)
        ) {
          state.buffer.delete(state.next!)
          waiters.push(...entry.waiters)
          const event = entry.event
          if (event.topic === 'balances') balances.push(event)
          else {
            outputs.push(...this.#accountPositions(balances.splice(0)))
            outputs.push(...this.#handle(state, event))
          }
          state.next! += 1n
        }
        outputs.push(...this.#accountPositions(balances))
        if (waiters.length > 0) await this.#commit(state, outputs)
        for (const wake of waiters) wake()
      } while (state.again && !this.#stopped)
    } finally {
      state.draining = false
    }
    this.#watchGap(state)
  }

  /** Publishes the payloads, then moves the stored cursor; retried until it works (or the consumer stops). */
  async #commit(state: MarketState, outputs: Output[]): Promise<void> {
    let published = 0
    for (let delay = 100; ; delay = Math.min(delay * 2, 5000)) {
      try {
        for (; published < outputs.length; published++) {
          const { userId, payload } = outputs[published]!
          await this.#o.cache.publish(userChannel(userId), payload)
        }
        await this.#o.cache.set(cursorKey(state.market), String(state.next))
        return
      } catch (err) {
        if (this.#stopped) throw err
        this.#o.log.warn({ err, market: state.market }, 'publishing user events failed; retrying')
        await new Promise((resolve) => setTimeout(resolve, delay))
      }
    }
  }

  #watchGap(state: MarketState): void {
    clearTimeout(state.gapTimer)
    state.gapTimer = undefined
    if (state.buffer.size === 0 || this.#stopped) return
    const waitingFor = state.next
    state.gapTimer = setTimeout(() => {
      state.gapTimer = undefined
      if (state.next !== waitingFor || state.buffer.size === 0 || state.buffer.has(state.next!)) return
      const first = smallestSeq(state.buffer)
      this.#o.log.warn(
        { market: state.market, missing: `${state.next}..${first - 1n}` },
        'user events: seqs missing; going on without them',
      )
      state.next = first
      void this.#drain(state)
    }, this.#o.gapTimeoutMs)
    state.gapTimer.unref()
  }

  #handle(state: MarketState, event: Sequenced): Output[] {
    if (event.topic === 'trades') {
      this.#addFills(state, event)
      return []
    }
    if (event.topic === 'orders') return this.#orderReports(state, event)
    if (event.topic === 'balance_updates') return [balanceUpdate(event, this.#o.now())]
    return []
  }

  #addFills(state: MarketState, t: TradeEvent & { seq: string }): void {
    const sides = [
      [t.buyerOrderId, t.buyerCommission, t.buyerCommissionAsset, t.buyerIsMaker],
      [t.sellerOrderId, t.sellerCommission, t.sellerCommissionAsset, !t.buyerIsMaker],
    ] as const
    for (const [orderId, commission, commissionAsset, isMaker] of sides) {
      let fills = state.fills.get(orderId)
      if (fills === undefined) {
        fills = new Map()
        state.fills.set(orderId, fills)
      }
      fills.set(t.tradeId, {
        seq: BigInt(t.seq),
        tradeId: t.tradeId,
        price: t.price,
        quantity: t.quantity,
        quote: t.quoteQuantity,
        commission: commission ?? '0',
        commissionAsset: commissionAsset ?? null,
        isMaker,
        time: t.time,
      })
    }
  }

  #orderReports(state: MarketState, event: OrderEvent & { seq: string }): Output[] {
    const o = event.order
    const fills = [...(state.fills.get(o.orderId)?.values() ?? [])].sort((a, b) => (a.seq < b.seq ? -1 : 1))
    state.fills.delete(o.orderId)
    const E = this.#o.now()
    const reports: Record<string, unknown>[] = []
    // Cumulative quantities after fill i: the order's totals less the fills that came after it.
    let executed = o.executedQty
    let quote = o.cummulativeQuoteQty
    const after: { executed: string; quote: string }[] = []
    for (let i = fills.length - 1; i >= 0; i--) {
      after[i] = { executed, quote }
      executed = subtract(executed, fills[i]!.quantity)
      quote = subtract(quote, fills[i]!.quote)
    }
    const terminalOther = o.status === 'CANCELED' || o.status === 'EXPIRED' || o.status === 'EXPIRED_IN_MATCH'
    for (const [i, fill] of fills.entries()) {
      const last = i === fills.length - 1
      const status = last && !terminalOther ? o.status : 'PARTIALLY_FILLED'
      reports.push(
        executionReport(o, E, {
          x: 'TRADE',
          X: status,
          z: after[i]!.executed,
          Z: after[i]!.quote,
          T: fill.time,
          I: Number(fill.seq),
          fill,
        }),
      )
    }
    if (fills.length === 0 || terminalOther) {
      const x =
        o.status === 'EXPIRED_IN_MATCH'
          ? 'TRADE_PREVENTION'
          : o.status === 'PARTIALLY_FILLED' || o.status === 'FILLED'
            ? 'TRADE'
            : o.status
      reports.push(
        executionReport(o, E, {
          x,
          X: o.status,
          z: o.executedQty,
          Z: o.cummulativeQuoteQty,
          T: o.updateTime,
          I: Number(event.seq),
        }),
      )
    }
    return reports.map((r) => ({ userId: o.userId, payload: JSON.stringify(r) }))
  }

  /** One `outboundAccountPosition` per user for a run of balance events (one batch's). */
  #accountPositions(balances: BalanceEvent[]): Output[] {
    if (balances.length === 0) return []
    const byUser = new Map<string, BalanceEvent[]>()
    for (const b of balances) {
      const list = byUser.get(b.userId) ?? []
      list.push(b)
      byUser.set(b.userId, list)
    }
    const E = this.#o.now()
    return [...byUser].map(([userId, list]) => ({
      userId,
      payload: JSON.stringify({
        e: 'outboundAccountPosition',
        E,
        u: Math.max(...list.map((b) => b.time)),
        B: list.map((b) => ({ a: b.asset, f: b.available, l: b.frozen })),
      }),
    }))
  }
}

/** Binance's `balanceUpdate`: `d` is the signed change of the free balance, `T` when it was booked. */
function balanceUpdate(u: BalanceUpdateEvent, E: number): Output {
  return {
    userId: u.userId,
    payload: JSON.stringify({ e: 'balanceUpdate', E, a: u.asset, d: u.delta, T: u.time }),
  }
}

interface ReportParts {
  x: string
  X: string
  z: string
  Z: string
  T: number
  I: number
  fill?: Fill
}

const ON_BOOK = new Set(['NEW', 'PARTIALLY_FILLED'])

/** Binance's `executionReport`, field for field (user-data-stream.md). */
export function executionReport(o: OrderView, E: number, r: ReportParts): Record<string, unknown> {
  const zero = formatDecimal(0n, 8)
  const working = ON_BOOK.has(r.X) && o.type !== 'MARKET' && o.timeInForce === 'GTC'
  return {
    e: 'executionReport',
    E,
    s: o.symbol,
    c: o.clientOrderId,
    S: o.side,
    o: o.type,
    f: o.type === 'MARKET' ? 'GTC' : o.timeInForce,
    q: o.origQty,
    p: o.price,
    P: zero,
    F: zero,
    g: -1,
    C: r.X === 'CANCELED' ? o.clientOrderId : '',
    x: r.x,
    X: r.X,
    r: 'NONE',
    i: Number(o.orderId),
    l: r.fill?.quantity ?? zero,
    z: r.z,
    L: r.fill?.price ?? zero,
    n: r.fill?.commission ?? '0',
    N: r.fill?.commissionAsset ?? null,
    T: r.T,
    t: r.fill === undefined ? -1 : Number(r.fill.tradeId),
    I: r.I,
    w: working,
    m: r.fill?.isMaker ?? false,
    M: false,
    O: o.time,
    Z: r.Z,
    Y: r.fill?.quote ?? zero,
    Q: o.origQuoteOrderQty,
    ...(working && { W: o.time }),
    V: o.selfTradePreventionMode,
  }
}

/** a − b for decimal strings, at the larger of their scales. */
function subtract(a: string, b: string): string {
  const scale = Math.max(decimals(a), decimals(b))
  return formatDecimal(parseDecimal(a, scale) - parseDecimal(b, scale), scale)
}

function decimals(text: string): number {
  const dot = text.indexOf('.')
  return dot < 0 ? 0 : text.length - dot - 1
}

/** The smallest key (bigints: Math.min does not take them). */
function smallestSeq(buffer: Map<bigint, unknown>): bigint {
  let least: bigint | undefined
  for (const seq of buffer.keys()) if (least === undefined || seq < least) least = seq
  return least!
}
