/**
 * The bus on NSQ through nsqjs. Publishing goes to the nsqd next to the service (NSQ's advice); consumers read
 * from that nsqd and from whatever nsqlookupd knows. A lost nsqd connection is dialled again: the publisher on
 * the next publish (which fails fast with a retryable error meanwhile), readers every few seconds.
 */
import { once } from 'node:events'
import { type Message, Reader, Writer } from 'nsqjs'
import { BourseError } from '../../lib/errors.ts'
import {
  type Bus,
  checkName,
  checkSubscribeOptions,
  type Delivery,
  encodeMessage,
  HandlerRunner,
  type MessageHandler,
  type Publishable,
  type SubscribeOptions,
  type Subscription,
  SubscriptionSet,
} from './bus.ts'

export interface NsqConfig {
  /** `host:port` of the nsqd this process publishes to. */
  nsqdTcp: string
  /** Base URL of that nsqd's HTTP API (topic and channel creation). */
  nsqdHttp: string
  /** nsqlookupd HTTP base URLs, to also consume from the other nsqds that carry a topic. */
  lookupdHttp?: string[]
  logger?: { warn(details: object, message: string): void }
}

// Also how often a reader retries a lost nsqd connection (nsqjs ties both to this setting).
const lookupdPollSeconds = 2
const subscribeTimeoutMs = 10_000

export class NsqBus implements Bus {
  readonly #config: NsqConfig
  readonly #publisher: NsqPublisher
  readonly #subscriptions = new SubscriptionSet()

  constructor(config: NsqConfig) {
    this.#config = config
    this.#publisher = new NsqPublisher(config.nsqdTcp)
  }

  async publish(topic: string, message: Publishable): Promise<void> {
    await this.publishMany(topic, [message])
  }

  async publishMany(topic: string, messages: readonly Publishable[]): Promise<void> {
    checkName('topic', topic)
    if (messages.length === 0) return
    await this.#publisher.publish(
      topic,
      messages.map((message) => Buffer.from(encodeMessage(message))),
    )
  }

  async declare(topic: string, channel: string): Promise<void> {
    checkName('topic', topic)
    checkName('channel', channel)
    await this.#nsqdHttp(`/topic/create?${new URLSearchParams({ topic })}`)
    await this.#nsqdHttp(`/channel/create?${new URLSearchParams({ topic, channel })}`)
  }

  async subscribe(
    topic: string,
    channel: string,
    handler: MessageHandler,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    checkName('topic', topic)
    checkName('channel', channel)
    checkSubscribeOptions(options)
    const runner = new HandlerRunner(handler, options)
    const reader = new Reader(topic, channel, {
      nsqdTCPAddresses: [this.#config.nsqdTcp],
      lookupdHTTPAddresses: this.#config.lookupdHttp ?? [],
      lookupdPollInterval: lookupdPollSeconds,
      maxInFlight: options.maxInFlight,
      requeueDelay: options.requeueDelayMs,
    })
    reader.on('message', (message: Message) => void runner.run(deliveryOf(message)))
    reader.on('error', (error: Error) =>
      this.#config.logger?.warn({ err: error, topic, channel }, 'nsq reader'),
    )
    reader.connect()
    await subscribed(reader, `${topic}/${channel}`)
    return this.#subscriptions.add(async () => {
      reader.pause()
      await runner.drain()
      await afterPendingResponses()
      reader.close()
    })
  }

  async close(): Promise<void> {
    await this.#subscriptions.closeAll()
    this.#publisher.close()
  }

  async #nsqdHttp(path: string): Promise<void> {
    const url = `${this.#config.nsqdHttp}${path}`
    const response = await fetch(url, { method: 'POST' }).catch((error: unknown) => {
      throw unavailable(`nsqd HTTP ${this.#config.nsqdHttp} unreachable`, error)
    })
    if (!response.ok) throw unavailable(`nsqd ${url} answered ${response.status}: ${await response.text()}`)
  }
}

/** One writer connection, dialled on first use and again after it is lost. */
class NsqPublisher {
  readonly #host: string
  readonly #port: number
  #writer: Promise<Writer> | undefined

  constructor(address: string) {
    const separator = address.lastIndexOf(':')
    this.#host = address.slice(0, separator)
    this.#port = Number(address.slice(separator + 1))
  }

  async publish(topic: string, bodies: Buffer[]): Promise<void> {
    const writer = await this.#connected()
    await new Promise<void>((resolve, reject) => {
      writer.publish(topic, bodies, (error) => (error ? reject(publishError(error)) : resolve()))
    })
  }

  close(): void {
    void this.#writer?.then(
      (writer) => writer.close(),
      () => {},
    )
    this.#writer = undefined
  }

  #connected(): Promise<Writer> {
    if (this.#writer) return this.#writer
    const writer = new Writer(this.#host, this.#port)
    const ready = new Promise<Writer>((resolve, reject) => {
      const lost = (error?: Error) => {
        if (this.#writer === ready) this.#writer = undefined
        reject(unavailable(`nsqd ${this.#host}:${this.#port} unreachable`, error))
      }
      writer.once('ready', () => resolve(writer))
      writer.on('error', lost)
      writer.on('closed', lost)
    })
    this.#writer = ready
    writer.connect()
    return ready
  }
}

async function subscribed(reader: Reader, name: string): Promise<void> {
  try {
    await once(reader, 'ready', { signal: AbortSignal.timeout(subscribeTimeoutMs) })
  } catch (error) {
    reader.close()
    throw unavailable(`could not subscribe to ${name}`, error)
  }
}

/** nsqjs writes FIN and REQ on the next tick: wait for them before closing the connection. */
function afterPendingResponses(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

function deliveryOf(message: Message): Delivery {
  return {
    id: message.id,
    body: message.body,
    attempts: message.attempts,
    timestamp: Number(message.timestamp / 1_000_000n),
    finish: () => message.finish(),
    // No reader-wide backoff: the requeue delay is the retry policy, and backoff would stall other messages.
    requeue: (delayMs) => message.requeue(delayMs, false),
    touch: () => message.touch(),
  }
}

function unavailable(message: string, cause?: unknown): BourseError {
  return new BourseError('unavailable', message, { cause })
}

// nsqd refuses a bad or oversized message for good; anything else (a lost connection) is worth retrying.
function publishError(error: Error): BourseError {
  if (/E_BAD_|E_INVALID/.test(String(error))) {
    return new BourseError('invalid_input', `nsqd refused the message: ${error}`, { cause: error })
  }
  return unavailable('nsqd did not acknowledge the publish', error)
}
