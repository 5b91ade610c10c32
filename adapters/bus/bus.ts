/**
 * The event bus: topics fan out to channels, each channel gets a copy of every message, consumers on one
 * channel share its messages. Delivery is at least once and unordered, so handlers must be idempotent.
 * NSQ in production (nsq.ts), an in-process broker in the embedded mode (memory.ts); both pass bus.contract.ts.
 */
import { invalidInput } from '../../lib/errors.ts'

/** Bytes are sent as they are, strings as UTF-8, anything else as JSON. */
export type Publishable = Uint8Array | string | object

export interface BusMessage {
  readonly id: string
  readonly body: Uint8Array
  /** 1 on the first delivery, +1 on each redelivery. */
  readonly attempts: number
  /** When the broker accepted the message, in ms since the epoch. */
  readonly timestamp: number
  text(): string
  json<T = unknown>(): T
  /** Requeues now instead of waiting for the handler to settle; its outcome is then ignored. */
  requeue(delayMs: number): void
  /** Tells the broker the handler is still working, postponing its redelivery timeout. */
  touch(): void
}

/** Resolving finishes the message; rejecting requeues it after `requeueDelayMs`. */
export type MessageHandler = (message: BusMessage) => Promise<void>

export interface SubscribeOptions {
  /** Never more than this many unfinished messages at once for this subscription. */
  maxInFlight: number
  requeueDelayMs: number
  /** A message whose handler fails on this attempt is dropped and passed to `onDiscard` (which must not throw). */
  maxAttempts?: number
  onDiscard?: (message: BusMessage, error: unknown) => void
}

export interface Subscription {
  /** Stops taking messages, waits for the handlers running, then disconnects. */
  close(): Promise<void>
}

export interface Bus {
  /** Resolves once the broker has accepted the message. */
  publish(topic: string, message: Publishable): Promise<void>
  /** Publishes a batch in one round trip (NSQ MPUB). */
  publishMany(topic: string, messages: readonly Publishable[]): Promise<void>
  /**
   * Creates the topic and the channel, so that messages published from now on are kept for the channel
   * until a subscriber takes them. Subscribing does the same. Messages published to a topic that has no
   * channel at all are kept for the first channel created.
   */
  declare(topic: string, channel: string): Promise<void>
  subscribe(
    topic: string,
    channel: string,
    handler: MessageHandler,
    options: SubscribeOptions,
  ): Promise<Subscription>
  /** Closes every subscription (draining them) and the connections. */
  close(): Promise<void>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeMessage(message: Publishable): Uint8Array {
  if (message instanceof Uint8Array) return message
  return encoder.encode(typeof message === 'string' ? message : JSON.stringify(message))
}

// NSQ's rule for topic and channel names.
const namePattern = /^[.a-zA-Z0-9_-]+(#ephemeral)?$/

export function checkName(field: 'topic' | 'channel', name: string): void {
  if (name.length > 64 || !namePattern.test(name)) {
    throw invalidInput(field, `"${name}" is not 1-64 of [.a-zA-Z0-9_-], optionally ending in #ephemeral`)
  }
}

export function checkSubscribeOptions(options: SubscribeOptions): void {
  if (!Number.isInteger(options.maxInFlight) || options.maxInFlight < 1) {
    throw invalidInput('maxInFlight', 'must be a positive integer')
  }
  if (!Number.isInteger(options.requeueDelayMs) || options.requeueDelayMs < 0) {
    throw invalidInput('requeueDelayMs', 'must be a non-negative integer')
  }
  if (
    options.maxAttempts !== undefined &&
    (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1)
  ) {
    throw invalidInput('maxAttempts', 'must be a positive integer')
  }
}

/** One delivered message as a broker presents it; `finish` and `requeue` may be called once between them. */
export interface Delivery {
  readonly id: string
  readonly body: Uint8Array
  readonly attempts: number
  readonly timestamp: number
  finish(): void
  requeue(delayMs: number): void
  touch(): void
}

/**
 * Runs the handlers of one subscription: settles each delivery from its handler's outcome, counts the
 * handlers running so that `drain` can wait for them, and hands back what arrives while draining.
 */
export class HandlerRunner {
  readonly #handler: MessageHandler
  readonly #options: SubscribeOptions
  #running = 0
  #draining = false
  #idle: (() => void) | undefined

  constructor(handler: MessageHandler, options: SubscribeOptions) {
    this.#handler = handler
    this.#options = options
  }

  async run(delivery: Delivery): Promise<void> {
    if (this.#draining) {
      delivery.requeue(0)
      return
    }
    this.#running++
    try {
      await this.#settle(delivery)
    } finally {
      this.#running--
      if (this.#running === 0) this.#idle?.()
    }
  }

  /** Resolves when no handler is running; deliveries from now on are requeued at once. */
  drain(): Promise<void> {
    this.#draining = true
    if (this.#running === 0) return Promise.resolve()
    return new Promise((resolve) => {
      this.#idle = resolve
    })
  }

  async #settle(delivery: Delivery): Promise<void> {
    let answered = false
    const answerOnce = (answer: () => void) => {
      if (answered) return
      answered = true
      answer()
    }
    const message = messageOf(delivery, (delayMs) => answerOnce(() => delivery.requeue(delayMs)))
    try {
      await this.#handler(message)
      answerOnce(() => delivery.finish())
    } catch (error) {
      answerOnce(() => this.#afterFailure(delivery, message, error))
    }
  }

  #afterFailure(delivery: Delivery, message: BusMessage, error: unknown): void {
    const { maxAttempts, requeueDelayMs, onDiscard } = this.#options
    if (maxAttempts === undefined || delivery.attempts < maxAttempts) {
      delivery.requeue(requeueDelayMs)
    } else {
      delivery.finish()
      onDiscard?.(message, error)
    }
  }
}

function messageOf(delivery: Delivery, requeue: (delayMs: number) => void): BusMessage {
  return {
    id: delivery.id,
    body: delivery.body,
    attempts: delivery.attempts,
    timestamp: delivery.timestamp,
    text: () => decoder.decode(delivery.body),
    json: <T>() => JSON.parse(decoder.decode(delivery.body)) as T,
    requeue,
    touch: () => delivery.touch(),
  }
}

/** The open subscriptions of a bus, so that closing the bus drains them all; closing one twice is harmless. */
export class SubscriptionSet {
  readonly #open = new Set<Subscription>()

  add(stop: () => Promise<void>): Subscription {
    let closing: Promise<void> | undefined
    const subscription: Subscription = {
      close: () => {
        closing ??= stop().finally(() => this.#open.delete(subscription))
        return closing
      },
    }
    this.#open.add(subscription)
    return subscription
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#open].map((subscription) => subscription.close()))
  }
}
