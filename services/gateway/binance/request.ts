/**
 * A Binance request's parameters and its security: parameters from the query string and/or an
 * application/x-www-form-urlencoded body (the query string wins), the API key in X-MBX-APIKEY, the
 * `signature` over the query string concatenated with the body, `timestamp` + `recvWindow`, key permissions
 * and IP allow lists, each refused with Binance's code and message.
 */
import type { ApiKeyRecord, ApiKeyStore } from '../api-keys.ts'
import { BinanceError, errors } from './errors.ts'

export class Params {
  private readonly values: Map<string, string>
  /** The signed payload: query string then body, each without its `signature` parameter. */
  readonly payload: string

  constructor(rawQuery: string, rawBody: string) {
    const query = parsePairs(rawQuery)
    const body = parsePairs(rawBody)
    this.values = body.pairs
    for (const [k, v] of query.pairs) this.values.set(k, v)
    this.payload = query.unsigned + body.unsigned
  }

  get(name: string): string | undefined {
    const v = this.values.get(name)
    return v === undefined || v === '' ? undefined : v
  }

  /** Sent at all, even empty. */
  sent(name: string): boolean {
    return this.values.has(name)
  }

  required(name: string): string {
    const v = this.get(name)
    if (v === undefined) throw errors.mandatory(name)
    return v
  }

  names(): string[] {
    return [...this.values.keys()]
  }
}

/**
 * The pairs of an x-www-form-urlencoded string (a name sent twice is refused), and the string without its
 * `signature` pair, as the signature covers it.
 */
function parsePairs(raw: string): { pairs: Map<string, string>; unsigned: string } {
  const pairs = new Map<string, string>()
  let unsigned = raw
  for (let start = 0; start < raw.length; ) {
    const amp = raw.indexOf('&', start)
    const end = amp === -1 ? raw.length : amp
    if (end > start) {
      const part = raw.slice(start, end)
      const [name, value] = pair(part)
      if (pairs.has(name)) throw errors.duplicateParam()
      pairs.set(name, value)
      if (part.startsWith('signature='))
        unsigned = start === 0 ? raw.slice(end + 1) : raw.slice(0, start - 1) + raw.slice(end)
    }
    start = end + 1
  }
  return { pairs, unsigned }
}

/** One `name=value`, decoded as URLSearchParams decodes it; it is asked only when something is encoded. */
function pair(part: string): [string, string] {
  if (/[%+]/.test(part)) return new URLSearchParams(part).entries().next().value!
  const eq = part.indexOf('=')
  return eq === -1 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)]
}

export async function readParams(request: Request): Promise<Params> {
  const url = request.url
  const q = url.indexOf('?')
  const rawQuery = q === -1 ? '' : url.slice(q + 1)
  let rawBody = ''
  // text() alone: asking for `request.body` first would make @hono/node-server build a web stream over the
  // socket, where text() reads the body straight from it.
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    const text = await request.text()
    if (text !== '') {
      const type = request.headers.get('content-type') ?? ''
      if (!type.startsWith('application/x-www-form-urlencoded') && type !== '') {
        throw new BinanceError(-1013, 'Request body must be application/x-www-form-urlencoded.')
      }
      rawBody = text
    }
  }
  return new Params(rawQuery, rawBody)
}

/** USER_STREAM: the API key alone (listen keys), no signature. */
export type Security = 'NONE' | 'USER_STREAM' | 'USER_DATA' | 'TRADE' | 'WITHDRAW'

const API_KEY_SHAPE = /^[A-Za-z0-9]{1,128}$/
const MAX_RECV_WINDOW = 60_000

/** Milliseconds, accepting microseconds as Binance does (a 16-digit timestamp). */
function millis(text: string, name: string): number {
  if (!/^\d{1,16}$/.test(text)) throw errors.illegalChars(name, '^[0-9]{1,16}$')
  const n = Number(text)
  return n >= 1e14 ? n / 1000 : n
}

/**
 * Authenticates a SIGNED request: the key, its IP allow list and permission, the signature, then the
 * timestamp against recvWindow (checked again just before the work is forwarded: see `checkWindow`).
 */
export async function authenticate(
  request: Request,
  params: Params,
  security: Exclude<Security, 'NONE'>,
  keys: ApiKeyStore,
  ip: string,
  now: () => number,
): Promise<{ key: ApiKeyRecord; timestamp: number; recvWindow: number }> {
  const header = request.headers.get('x-mbx-apikey')
  if (header === null || !API_KEY_SHAPE.test(header)) throw errors.badApiKeyFormat()
  const key = await keys.find(header)
  if (key === null) throw errors.rejectedKey()
  if (key.allowedIps.length > 0 && !key.allowedIps.includes(ip)) throw errors.rejectedKey()
  const allowed =
    security === 'TRADE' ? key.canTrade : security === 'WITHDRAW' ? key.canWithdraw : key.canRead
  if (!allowed) throw errors.rejectedKey()
  if (security === 'USER_STREAM') return { key, timestamp: 0, recvWindow: 0 }

  const timestamp = millis(params.required('timestamp'), 'timestamp')
  let recvWindow = 5000
  const rw = params.get('recvWindow')
  if (rw !== undefined) {
    if (!/^\d{1,10}(\.\d{1,3})?$/.test(rw))
      throw errors.illegalChars('recvWindow', '^[0-9]{1,10}(\\.[0-9]{1,3})?$')
    recvWindow = Number(rw)
    if (recvWindow > MAX_RECV_WINDOW) throw errors.tooGreat('recvWindow', String(MAX_RECV_WINDOW))
  }
  const signature = params.required('signature')
  // A '+' of a base64 signature sent without percent-encoding arrives as a space.
  if (!key.verify(params.payload, signature.replaceAll(' ', '+'))) throw errors.badSignature()
  checkWindow(timestamp, recvWindow, now())
  return { key, timestamp, recvWindow }
}

export function checkWindow(timestamp: number, recvWindow: number, serverTime: number): void {
  if (timestamp >= serverTime + 1000) throw errors.aheadOfServer()
  if (serverTime - timestamp > recvWindow) throw errors.outsideRecvWindow()
}
