/**
 * The in-process bus of the embedded mode. It keeps NSQ's contract: every channel of a topic gets a copy of
 * each message, consumers of a channel share it, a requeued message comes back after its delay with one more
 * attempt, a topic without channels keeps its messages for the first channel. Nothing survives the process.
 */
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

interface StoredMessage {
  readonly id: string
  readonly body: Uint8Array
  readonly timestamp: number
  attempts: number
}

interface Consumer {
  readonly maxInFlight: number
  inFlight: number
  deliver(delivery: Delivery): void
}

class MemoryChannel {
  readonly #ready: StoredMessage[] = []
  readonly #consumers: Consumer[] = []
  #nextConsumer = 0
  #pumping = false

  put(message: StoredMessage): void {
    this.#ready.push(message)
    this.#pump()
  }

  add(consumer: Consumer): void {
    this.#consumers.push(consumer)
    this.#pump()
  }

  remove(consumer: Consumer): void {
    this.#consumers.splice(this.#consumers.indexOf(consumer), 1)
  }

  // Settling a delivery pumps again; the flag keeps a settlement made during a delivery from re-entering.
  #pump(): void {
    if (this.#pumping) return
    this.#pumping = true
    try {
      while (this.#ready.length > 0) {
        const consumer = this.#freeConsumer()
        if (!consumer) return
        this.#deliver(consumer, this.#ready.shift()!)
      }
    } finally {
      this.#pumping = false
    }
  }

  /** The next consumer in turn with room for another message. */
  #freeConsumer(): Consumer | undefined {
    const count = this.#consumers.length
    for (let step = 0; step < count; step++) {
      const index = (this.#nextConsumer + step) % count
      const consumer = this.#consumers[index]!
      if (consumer.inFlight < consumer.maxInFlight) {
        this.#nextConsumer = (index + 1) % count
        return consumer
      }
    }
    return undefined
  }

  #deliver(consumer: Consumer, message: StoredMessage): void {
    message.attempts++
    consumer.inFlight++
    let settled = false
    const settle = (then: () => void) => {
      if (settled) return
      settled = true
      consumer.inFlight--
      then()
      this.#pump()
    }
    consumer.deliver({
      id: message.id,
      body: message.body,
      attempts: message.attempts,
      timestamp: message.timestamp,
      finish: () => settle(() => {}),
      requeue: (delayMs) => settle(() => this.#requeue(message, delayMs)),
      // No in-flight timeout here (a handler's promise always settles in-process), so nothing to postpone.
      touch: () => {},
    })
  }

  #requeue(message: StoredMessage, delayMs: number): void {
    if (delayMs === 0) {
      this.#ready.push(message)
      return
    }
    setTimeout(() => this.put(message), delayMs).unref()
  }
}

class MemoryTopic {
  readonly #channels = new Map<string, MemoryChannel>()
  // Like nsqd, a topic holds its messages until it has a channel to give them to.
  #backlog: StoredMessage[] = []

  channel(name: string): MemoryChannel {
    let channel = this.#channels.get(name)
    if (!channel) {
      channel = new MemoryChannel()
      this.#channels.set(name, channel)
      for (const message of this.#backlog) channel.put(message)
      this.#backlog = []
    }
    return channel
  }

  publish(message: Omit<StoredMessage, 'attempts'>): void {
    if (this.#channels.size === 0) this.#backlog.push({ ...message, attempts: 0 })
    for (const channel of this.#channels.values()) channel.put({ ...message, attempts: 0 })
  }
}

export class MemoryBus implements Bus {
  readonly #topics = new Map<string, MemoryTopic>()
  readonly #subscriptions = new SubscriptionSet()
  #lastId = 0

  async publish(topic: string, message: Publishable): Promise<void> {
    await this.publishMany(topic, [message])
  }

  async publishMany(topic: string, messages: readonly Publishable[]): Promise<void> {
    checkName('topic', topic)
    const target = this.#topic(topic)
    for (const message of messages) {
      // A copy, so that a publisher reusing its buffer cannot change a message already sent.
      const body = encodeMessage(message).slice()
      target.publish({ id: this.#newId(), body, timestamp: Date.now() })
    }
  }

  async declare(topic: string, channel: string): Promise<void> {
    checkName('topic', topic)
    checkName('channel', channel)
    this.#topic(topic).channel(channel)
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
    const consumer: Consumer = {
      maxInFlight: options.maxInFlight,
      inFlight: 0,
      deliver: (delivery) => void runner.run(delivery),
    }
    const source = this.#topic(topic).channel(channel)
    source.add(consumer)
    return this.#subscriptions.add(async () => {
      source.remove(consumer)
      await runner.drain()
    })
  }

  close(): Promise<void> {
    return this.#subscriptions.closeAll()
  }

  #topic(name: string): MemoryTopic {
    let topic = this.#topics.get(name)
    if (!topic) {
      topic = new MemoryTopic()
      this.#topics.set(name, topic)
    }
    return topic
  }

  // 16 hex digits, the shape of an NSQ message id.
  #newId(): string {
    this.#lastId++
    return this.#lastId.toString(16).padStart(16, '0')
  }
}
