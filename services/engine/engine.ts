/**
 * The matching engine of one market. Commands that arrive within a short window (bounded by count and by
 * time) form a batch; the batch's whole effect is committed to Postgres in one transaction, fenced by the
 * market's epoch, and only then does any caller get an answer. A failed commit rolls the book back, and
 * one whose answer was lost waits for Postgres to say whether it committed, so memory never holds what
 * Postgres does not. On start the engine claims a new epoch and rebuilds its book from the open orders in
 * Postgres.
 */
import { randomFillSync } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DatabaseHandle } from '../../adapters/db/database.ts'
import type { UserBalance } from '../../ledger/ledger.ts'
import { BourseError, invalidInput } from '../../lib/errors.ts'
import type { Logger } from '../../lib/log.ts'
import { Counter, Histogram, metricsRegistry } from '../../lib/metrics.ts'
import {
  Batch,
  type CommandResult,
  type EngineState,
  type LiveOrder,
  type Outcome,
  orderView,
  type PreparedCommand,
} from './batch.ts'
import { OrderBook } from './book/order-book.ts'
import type { Depth, Side, StpMode, TimeInForce } from './book/types.ts'
import type { DepthUpdate, OrderType, OrderView } from './events.ts'
import { MarketUnits } from './market.ts'
import {
  availableKey,
  type BatchWrite,
  CommitOutcomeUnknown,
  type CommittedBatch,
  claimMarket,
  committedSeq,
  FencedError,
  loadOpenOrders,
  readAvailable,
  writeBatch,
} from './store.ts'

export interface EngineOptions {
  database: DatabaseHandle
  symbol: string
  /** A batch closes at this many commands… */
  batchMaxCommands: number
  /** …or this long after its first command arrived. */
  batchWindowMs: number
  log: Logger
  /** Called after every commit that wrote events: the outbox relay's cue. */
  onCommit?: () => void
  /** Called after every commit with the levels it changed (the diff-depth streams' source). */
  onDepth?: (update: DepthUpdate) => void
}

export interface PlaceOrderRequest {
  userId: bigint
  side: Side
  type: OrderType
  timeInForce?: TimeInForce
  price?: string
  quantity?: string
  quoteOrderQty?: string
  clientOrderId?: string
  selfTradePreventionMode?: StpMode
}

export type EngineRequest =
  | { kind: 'place'; order: PlaceOrderRequest }
  | { kind: 'cancel'; userId: bigint; orderId?: bigint; clientOrderId?: string }
  | { kind: 'cancelAll'; userId: bigint }
  | { kind: 'halt' }
  | { kind: 'resume' }

interface Queued {
  command: PreparedCommand
  resolve(result: CommandResult): void
  reject(error: BourseError): void
}

const COMMIT_ATTEMPTS = 3
/** Known balances kept at most; past it they are forgotten and read again as needed. */
const KNOWN_BALANCES_MAX = 100_000
/** How long callers wait for a lost commit answer to be settled before they are told its outcome is unknown. */
const OUTCOME_PATIENCE_MS = 5_000
const OUTCOME_RETRY_MAX_MS = 1_000
const metrics = engineMetrics()

export class MatchingEngine {
  private readonly options: EngineOptions
  private readonly state: EngineState
  private readonly epoch: bigint
  private lastSeq: bigint
  private queue: Queued[] = []
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private fencedBy: FencedError | null = null
  /** Aborted by stop(): no new commands, and no more waiting on a lost commit answer. */
  private readonly stopped = new AbortController()
  /** A lost commit answer has gone unsettled past OUTCOME_PATIENCE_MS: Postgres is out of reach. */
  private outOfReach = false
  private lastPrice: string | null = null
  /** Users' available balances by availableKey, as this engine's last commits left them (see process). */
  private readonly knownAvailable = new Map<string, string>()
  /** Set while the book holds a batch's changes that are not committed yet; resolved at commit or rollback. */
  private uncommitted: PromiseWithResolvers<void> | null = null

  private constructor(options: EngineOptions, state: EngineState, epoch: bigint, lastSeq: bigint) {
    this.options = options
    this.state = state
    this.epoch = epoch
    this.lastSeq = lastSeq
  }

  /** Claims the market (a newer fencing epoch) and rebuilds the book from the open orders in Postgres. */
  static async start(options: EngineOptions): Promise<MatchingEngine> {
    const { db } = options.database
    const claim = await claimMarket(db, options.symbol)
    const units = new MarketUnits(claim.market)
    const book = new OrderBook(units.bookConfig())
    const orders = new Map<bigint, LiveOrder>()
    const clientIndex = new Map<string, bigint>()
    for (const row of await loadOpenOrders(db, options.symbol)) {
      const order: LiveOrder = {
        id: row.id,
        userId: row.userId,
        clientOrderId: row.clientOrderId,
        side: row.side,
        type: row.type,
        timeInForce: row.timeInForce,
        stpMode: row.selfTradePrevention,
        price: row.price === null ? null : units.priceToTicks(row.price),
        quantity: row.quantity === null ? null : units.lotsOf(row.quantity),
        quoteAmount: row.quoteQuantity === null ? null : units.quoteUnitsOf(row.quoteQuantity),
        executedQuantity: units.lotsOf(row.executedQuantity),
        executedQuote: units.quoteUnitsOf(row.cumulativeQuoteQuantity),
        frozen:
          row.side === 'BUY' ? units.quoteUnitsOf(row.frozenRemaining) : units.lotsOf(row.frozenRemaining),
        status: row.status,
        createdAt: row.createdAt,
        updatedAt: row.updatedAt,
      }
      orders.set(order.id, order)
      clientIndex.set(`${order.userId}:${order.clientOrderId}`, order.id)
    }
    book.restore(
      [...orders.values()].map((o) => ({
        orderId: String(o.id),
        userId: String(o.userId),
        side: o.side,
        price: o.price!,
        quantity: o.quantity!,
        remainingQuantity: o.quantity! - o.executedQuantity,
        executedQuote: o.executedQuote,
      })),
    )
    if (claim.market.status === 'halted') book.halt()
    const state: EngineState = {
      units,
      book,
      orders,
      clientIndex,
      lastOrderId: claim.lastOrderId,
      lastTradeId: claim.lastTradeId,
      status: claim.market.status,
    }
    options.log.info({ epoch: String(claim.epoch), openOrders: orders.size }, 'engine started')
    return new MatchingEngine(options, state, claim.epoch, claim.lastSeq)
  }

  get symbol(): string {
    return this.options.symbol
  }

  get units(): MarketUnits {
    return this.state.units
  }

  /** Validates and converts the request now (bad input changes nothing), then answers after its batch commits. */
  submit(request: EngineRequest): Promise<CommandResult> {
    if (this.fencedBy !== null) return Promise.reject(this.fencedBy)
    if (this.stopped.signal.aborted)
      return Promise.reject(
        new BourseError('unavailable', 'The engine is stopping; nothing was done. Try again.'),
      )
    if (this.outOfReach) return Promise.reject(unreachable())
    let command: PreparedCommand
    try {
      command = this.prepare(request)
    } catch (err) {
      return Promise.reject(err)
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ command, resolve, reject })
      this.schedule()
    })
  }

  order(userId: bigint, ref: { orderId?: bigint; clientOrderId?: string }): OrderView | undefined {
    const id = ref.orderId ?? this.state.clientIndex.get(`${userId}:${ref.clientOrderId}`)
    const order = id === undefined ? undefined : this.state.orders.get(id)
    return order === undefined || order.userId !== userId ? undefined : this.view(order)
  }

  openOrders(userId: bigint): OrderView[] {
    return [...this.state.orders.values()].filter((o) => o.userId === userId).map((o) => this.view(o))
  }

  /**
   * The book as committed. A batch changes the book before its commit, which may fail and roll it back:
   * wait until no batch's changes are pending, so the levels are what Postgres holds as of lastUpdateId.
   */
  async depth(
    limit: number,
  ): Promise<{ bids: [string, string][]; asks: [string, string][]; lastUpdateId: string }> {
    while (this.uncommitted !== null) await this.uncommitted.promise
    const levels: Depth = this.state.book.levels(limit)
    const units = this.state.units
    const side = (ls: Depth['bids']) =>
      ls.map((l): [string, string] => [units.price(l.price), units.quantity(l.quantity)])
    return { bids: side(levels.bids), asks: side(levels.asks), lastUpdateId: String(this.lastSeq) }
  }

  status() {
    return {
      symbol: this.symbol,
      status: this.state.status,
      epoch: String(this.epoch),
      fenced: this.fencedBy !== null,
      openOrders: this.state.orders.size,
      lastPrice: this.lastPrice,
      lastSeq: String(this.lastSeq),
    }
  }

  /** The book as it is, for tests that compare a rebuilt engine with the one before it. */
  snapshot() {
    return this.state.book.snapshot()
  }

  /**
   * Stops taking commands; those already taken are committed and answered before it returns. Behind a commit
   * whose answer was lost, they are refused instead, and the lost one's callers told its outcome is unknown.
   */
  async stop(): Promise<void> {
    this.stopped.abort()
    while (this.running !== null || this.queue.length > 0) {
      if (this.running === null) this.runNext()
      await this.running
    }
  }

  private view(order: LiveOrder): OrderView {
    return orderView(this.state.units, order)
  }

  private prepare(request: EngineRequest): PreparedCommand {
    switch (request.kind) {
      case 'place':
        return { kind: 'place', order: this.prepareOrder(request.order) }
      case 'cancel':
        if ((request.orderId === undefined) === (request.clientOrderId === undefined)) {
          throw invalidInput('orderId', 'send exactly one of orderId and origClientOrderId')
        }
        return {
          kind: 'cancel',
          userId: request.userId,
          orderId: request.orderId ?? null,
          clientOrderId: request.clientOrderId ?? null,
        }
      default:
        return request
    }
  }

  private prepareOrder(o: PlaceOrderRequest): Extract<PreparedCommand, { kind: 'place' }>['order'] {
    const units = this.state.units
    const clientOrderId = o.clientOrderId ?? `bourse-${randomId()}`
    const stpMode = o.selfTradePreventionMode ?? 'EXPIRE_MAKER'
    const common = { userId: o.userId, clientOrderId, side: o.side, type: o.type, stpMode }
    if (o.type === 'MARKET') {
      if ((o.quantity === undefined) === (o.quoteOrderQty === undefined)) {
        throw invalidInput('quantity', 'a MARKET order needs exactly one of quantity and quoteOrderQty')
      }
      if (o.price !== undefined) throw invalidInput('price', 'a MARKET order takes no price')
      return {
        ...common,
        timeInForce: 'IOC',
        price: null,
        quantity: o.quantity === undefined ? null : units.quantityToLots(o.quantity),
        quoteAmount: o.quoteOrderQty === undefined ? null : units.quoteToUnits(o.quoteOrderQty),
      }
    }
    if (o.quoteOrderQty !== undefined)
      throw invalidInput(
        'quoteOrderQty',
        `a ${o.type} order takes no quoteOrderQty: only a MARKET order does`,
      )
    if (o.price === undefined) throw invalidInput('price', `a ${o.type} order needs a price`)
    if (o.quantity === undefined) throw invalidInput('quantity', `a ${o.type} order needs a quantity`)
    if (o.type === 'LIMIT_MAKER' && o.timeInForce !== undefined && o.timeInForce !== 'GTC') {
      throw invalidInput('timeInForce', 'a LIMIT_MAKER order rests: GTC only')
    }
    return {
      ...common,
      timeInForce: o.timeInForce ?? 'GTC',
      price: units.priceToTicks(o.price),
      quantity: units.quantityToLots(o.quantity),
      quoteAmount: null,
    }
  }

  private schedule(): void {
    if (this.running !== null) return
    if (this.queue.length >= this.options.batchMaxCommands) {
      this.runNext()
      return
    }
    this.timer ??= setTimeout(() => this.runNext(), this.options.batchWindowMs)
  }

  private runNext(): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    if (this.running !== null || this.queue.length === 0) return
    const items = this.queue.splice(0, this.options.batchMaxCommands)
    this.running = this.process(items).finally(() => {
      this.running = null
      if (this.queue.length > 0) this.schedule()
    })
  }

  /**
   * One batch: apply, commit, answer. Its funds are the balances this engine's own commits left where it knows
   * them, read from Postgres where it does not. Known balances can be stale — a deposit, another market's
   * orders — which can never refuse an order wrongly nor overdraw: a batch that refused an order for lack of
   * funds runs again on balances read fresh, and so does one whose booking the database refused (another
   * process took funds since they were read).
   */
  private async process(items: Queued[]): Promise<void> {
    const started = performance.now()
    let useKnown = true
    for (let attempt = 1; ; ) {
      let funds: Funds
      try {
        funds = await this.fundsFor(items, useKnown)
      } catch (err) {
        return this.failBatch(items, err)
      }
      this.state.book.beginBatch()
      this.uncommitted = Promise.withResolvers()
      let batch: Batch
      let outcomes: Outcome[]
      let committed: { write: BatchWrite; result: CommittedBatch } | null = null
      const commitStarted = performance.now()
      // Whatever goes wrong before the commit — a failed transaction or a bug while applying — the book is
      // rolled back and every caller answered: the engine never stays inside a half-applied batch.
      try {
        batch = new Batch(this.state, funds.available)
        outcomes = items.map((item) => batch.apply(item.command))
        if (funds.someKnown && outcomes.some(lackedFunds)) {
          this.state.book.rollbackBatch()
          this.settleBook()
          useKnown = false
          continue
        }
        if (batch.hasWrites) {
          const write = batch.write(this.symbol, this.epoch, this.lastSeq + 1n)
          committed = { write, result: await this.commit(write, items) }
        }
      } catch (err) {
        this.state.book.rollbackBatch()
        this.settleBook()
        this.knownAvailable.clear()
        useKnown = false
        if (err instanceof BourseError && err.code === 'insufficient_funds' && attempt++ < COMMIT_ATTEMPTS)
          continue
        return this.failBatch(items, err)
      }
      this.state.book.commitBatch()
      if (committed === null) {
        this.settleBook()
        return answer(items, outcomes)
      }
      metrics.commitSeconds.observe((performance.now() - commitStarted) / 1000)
      batch.commitTo(this.state)
      const { write, result } = committed
      this.remember(result.balances)
      const firstSeq = this.lastSeq + 1n
      this.lastSeq = result.lastSeq
      this.settleBook()
      if (this.options.onDepth) this.publishDepth(batch, firstSeq, result.lastSeq)
      this.lastPrice = write.trades.at(-1)?.price ?? this.lastPrice
      metrics.batchSize.observe(items.length)
      metrics.commands.inc({ market: this.symbol }, items.length)
      answer(items, outcomes)
      metrics.ackSeconds.observe((performance.now() - started) / 1000)
      this.options.onCommit?.()
      return
    }
  }

  /**
   * writeBatch, and when its answer was lost, what Postgres holds: a batch it committed is committed here
   * too (its balances went with the answer, so none are known any more), one it did not fails as any other.
   * The engine waits until Postgres can tell; callers waiting longer than OUTCOME_PATIENCE_MS are told the
   * outcome is unknown (Binance's -1007), as are those of an engine stopped or fenced meanwhile.
   */
  private async commit(write: BatchWrite, items: Queued[]): Promise<CommittedBatch> {
    try {
      return await writeBatch(this.options.database.db, write)
    } catch (err) {
      if (!(err instanceof CommitOutcomeUnknown)) throw err
      this.options.log.warn({ err }, 'a batch commit went unanswered; asking Postgres whether it committed')
      const lastSeq = await this.committedSeqAfter(err, items)
      if (lastSeq < write.firstSeq)
        throw new BourseError('unavailable', 'the batch did not commit', { cause: err })
      this.knownAvailable.clear()
      return { lastSeq, balances: [] }
    }
  }

  /**
   * Past OUTCOME_PATIENCE_MS its callers are told the outcome is unknown, and until Postgres answers, the
   * commands waiting behind the batch, and any new ones, are refused: nothing of theirs was done. An engine
   * stopped meanwhile stops asking at once (a query to a half-open server may never fail): its successor reads
   * what Postgres holds.
   */
  private async committedSeqAfter(lost: CommitOutcomeUnknown, items: Queued[]): Promise<bigint> {
    const tellUnknown = () => {
      for (const item of items) item.reject(lost)
    }
    const refuseWaiting = () => {
      tellUnknown()
      for (const item of this.queue.splice(0)) item.reject(unreachable())
    }
    // Timed apart from the queries: while Postgres is unreachable, a query may wait rather than fail.
    const patience = setTimeout(() => {
      refuseWaiting()
      this.outOfReach = true
    }, OUTCOME_PATIENCE_MS)
    const { signal } = this.stopped
    try {
      for (let pause = 50; ; pause = Math.min(pause * 2, OUTCOME_RETRY_MAX_MS)) {
        try {
          return await untilAborted(committedSeq(this.options.database.db, this.symbol, this.epoch), signal)
        } catch (err) {
          if (err instanceof FencedError) {
            tellUnknown()
            throw err
          }
          if (signal.aborted) {
            refuseWaiting()
            throw lost
          }
          this.options.log.warn({ err }, 'Postgres cannot tell yet whether the batch committed')
        }
        await sleep(pause, undefined, { signal }).catch(() => {})
      }
    } finally {
      clearTimeout(patience)
      this.outOfReach = false
    }
  }

  /** Keeps the available balances a commit left, for the next batches' orders to draw on. */
  private remember(balances: readonly UserBalance[]): void {
    if (this.knownAvailable.size + balances.length > KNOWN_BALANCES_MAX) this.knownAvailable.clear()
    for (const b of balances) this.knownAvailable.set(availableKey(b.userId, b.asset), b.available)
  }

  private publishDepth(batch: Batch, firstSeq: bigint, lastSeq: bigint): void {
    const { book, units } = this.state
    const bids: [string, string][] = []
    const asks: [string, string][] = []
    for (const { side, price } of batch.touchedLevels()) {
      const level: [string, string] = [units.price(price), units.quantity(book.quantityAt(side, price))]
      ;(side === 'BUY' ? bids : asks).push(level)
    }
    const top = book.levels(20)
    const format = (ls: Depth['bids']) =>
      ls.map((l): [string, string] => [units.price(l.price), units.quantity(l.quantity)])
    try {
      this.options.onDepth!({
        market: this.symbol,
        firstSeq: String(firstSeq),
        lastSeq: String(lastSeq),
        time: Date.now(),
        bids,
        asks,
        top: { bids: format(top.bids), asks: format(top.asks) },
      })
    } catch (err) {
      this.options.log.warn({ err }, 'onDepth failed')
    }
  }

  private settleBook(): void {
    this.uncommitted?.resolve()
    this.uncommitted = null
  }

  private failBatch(items: Queued[], err: unknown): void {
    metrics.commitFailures.inc({ market: this.symbol })
    if (err instanceof FencedError) {
      this.fencedBy = err
      this.options.log.error({ err }, 'fenced out by a newer engine: no more commits from this one')
      for (const item of [...items, ...this.queue.splice(0)]) item.reject(err)
      return
    }
    this.options.log.error({ err }, 'batch commit failed; the book is rolled back')
    const error =
      err instanceof CommitOutcomeUnknown
        ? err
        : new BourseError('unavailable', 'The order could not be committed; nothing was done. Try again.', {
            cause: err,
          })
    for (const item of items) item.reject(error)
  }

  /**
   * The available balances a batch's new orders draw on: those this engine knows (when `useKnown`), the rest
   * read from Postgres, without locks (the booking checks them again under its own).
   */
  private async fundsFor(items: Queued[], useKnown: boolean): Promise<Funds> {
    const { base, quote } = this.state.units.row
    const available = new Map<string, string>()
    const unknown = new Map<string, { userId: bigint; asset: string }>()
    for (const { command } of items) {
      if (command.kind !== 'place') continue
      const asset = command.order.side === 'BUY' ? quote : base
      const key = availableKey(command.order.userId, asset)
      const known = useKnown ? this.knownAvailable.get(key) : undefined
      if (known !== undefined) available.set(key, known)
      else unknown.set(key, { userId: command.order.userId, asset })
    }
    const someKnown = available.size > 0
    if (unknown.size > 0) {
      for (const [key, balance] of await readAvailable(this.options.database.db, [...unknown.values()]))
        available.set(key, balance)
    }
    return { available, someKnown }
  }
}

interface Funds {
  /** Available balances by availableKey, as decimal strings. */
  available: Map<string, string>
  /** Whether any of them is a known balance rather than one read now. */
  someKnown: boolean
}

const lackedFunds = (outcome: Outcome) => !outcome.ok && outcome.error.code === 'insufficient_funds'

function answer(items: Queued[], outcomes: Outcome[]): void {
  items.forEach((item, i) => {
    const outcome = outcomes[i]!
    if (outcome.ok) item.resolve(outcome.result)
    else item.reject(outcome.error)
  })
}

/** The promise, or its signal's abort reason once aborted, whichever comes first. */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  promise.catch(() => {}) // settled after the abort, its outcome is nobody's
  return new Promise<T>((resolve, reject) => {
    const abort = () => reject(signal.reason)
    if (signal.aborted) return abort()
    signal.addEventListener('abort', abort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort))
  })
}

const unreachable = () =>
  new BourseError('unavailable', 'The engine cannot reach its database; nothing was done. Try again.')

function engineMetrics() {
  const registers = [metricsRegistry()]
  return {
    batchSize: new Histogram({
      name: 'bourse_engine_batch_size',
      help: 'Commands per committed batch',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
      registers,
    }),
    commitSeconds: new Histogram({
      name: 'bourse_engine_commit_seconds',
      help: 'Time to commit one batch to Postgres',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    ackSeconds: new Histogram({
      name: 'bourse_engine_ack_seconds',
      help: 'Time from a batch starting to its callers being answered',
      buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    commands: new Counter({
      name: 'bourse_engine_commands_total',
      help: 'Commands committed',
      labelNames: ['market'],
      registers,
    }),
    commitFailures: new Counter({
      name: 'bourse_engine_commit_failures_total',
      help: 'Batches whose commit failed and were rolled back',
      labelNames: ['market'],
      registers,
    }),
  }
}

// Random bytes for generated client order ids, drawn from a pool refilled 4 KiB at a time: a call into the
// crypto library for each order cost more of the gateway's thread than matching the order.
const idPool = Buffer.alloc(4096)
let idPoolOffset = idPool.length
const ID_BYTES = 9

/** 12 random base64url characters. */
function randomId(): string {
  if (idPoolOffset + ID_BYTES > idPool.length) {
    randomFillSync(idPool)
    idPoolOffset = 0
  }
  const id = idPool.toString('base64url', idPoolOffset, idPoolOffset + ID_BYTES)
  idPoolOffset += ID_BYTES
  return id
}
