// The part of nsqjs 0.13 (which ships no types) that nsq.ts uses.
declare module 'nsqjs' {
  import { EventEmitter } from 'node:events'

  export interface ConnectionOptions {
    clientId?: string
    heartbeatInterval?: number
    maxInFlight?: number
    requeueDelay?: number
  }

  export interface ReaderOptions extends ConnectionOptions {
    nsqdTCPAddresses?: string[]
    lookupdHTTPAddresses?: string[]
    /** Seconds between lookupd queries and reconnection attempts to nsqdTCPAddresses. */
    lookupdPollInterval?: number
  }

  export class Message {
    readonly id: string
    readonly attempts: number
    /** Nanoseconds since the epoch. */
    readonly timestamp: bigint
    readonly body: Buffer
    finish(): void
    requeue(delayMs?: number, backoff?: boolean): void
    touch(): void
  }

  export class Reader extends EventEmitter {
    constructor(topic: string, channel: string, options: ReaderOptions)
    connectionIds: string[]
    connect(): void
    pause(): void
    close(): void
  }

  export class Writer extends EventEmitter {
    constructor(host: string, port: number, options?: ConnectionOptions)
    connect(): void
    publish(topic: string, messages: Buffer[], callback: (error?: Error | null) => void): void
    close(): void
  }
}
