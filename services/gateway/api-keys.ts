/**
 * API keys: created for a user (HMAC with a generated secret, or Ed25519 with the client's public key), looked
 * up by the X-MBX-APIKEY value, and used to verify request signatures. HMAC secrets are stored encrypted with
 * AES-256-GCM under the gateway's key-encryption key and decrypted only in memory to verify; they are never
 * logged. A short in-process cache keeps key lookups off Postgres on every request.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  type KeyObject,
  randomBytes,
  timingSafeEqual,
  verify,
} from 'node:crypto'
import { eq } from 'drizzle-orm'
import { z } from 'zod'
import type { Executor } from '../../adapters/db/database.ts'
import { apiKeys } from '../../adapters/db/schema.ts'
import { BourseError, invalidInput } from '../../lib/errors.ts'

export type ApiKeyKind = 'HMAC' | 'ED25519'

export interface ApiKeyRecord {
  id: bigint
  userId: bigint
  apiKey: string
  kind: ApiKeyKind
  canRead: boolean
  canTrade: boolean
  /** May request withdrawals (off unless granted). */
  canWithdraw: boolean
  allowedIps: readonly string[]
  /** True when `signature` is valid for `payload` under this key. */
  verify(payload: string, signature: string): boolean
}

export interface CreateApiKey {
  userId: bigint
  kind: ApiKeyKind
  /** Ed25519: the client's public key, PEM (SPKI). */
  publicKey?: string
  label?: string
  canRead?: boolean
  canTrade?: boolean
  canWithdraw?: boolean
  allowedIps?: readonly string[]
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

/** 64 characters of [A-Za-z0-9], the shape of a Binance API key and secret. */
function randomToken(length = 64): string {
  const bytes = randomBytes(length * 2)
  let out = ''
  for (const b of bytes) {
    if (b >= 248) continue // 248 = 62 * 4: keeps the choice uniform
    out += ALNUM[b % 62]
    if (out.length === length) return out
  }
  return out + randomToken(length - out.length)
}

/** The 32-byte key-encryption key from config: 64 hex characters or base64 of 32 bytes. */
export function parseEncryptionKey(text: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64')
  if (key.length !== 32)
    throw invalidInput('encryptionKey', 'expected 32 bytes as 64 hex or base64 characters')
  return key
}

/** BOURSE_KEY_ENCRYPTION_SECRET, as the gateway and ws read it: the same value on every replica of both. */
export const keyEncryptionKeyEnv = z
  .string()
  .refine((text) => {
    try {
      parseEncryptionKey(text)
      return true
    } catch {
      return false
    }
  }, 'expected 32 bytes as 64 hex characters or base64')
  .transform(parseEncryptionKey)

export function encryptSecret(secret: string, key: Buffer): string {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, iv)
  const ciphertext = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()])
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString('base64')
}

export function decryptSecret(stored: string, key: Buffer): string {
  const raw = Buffer.from(stored, 'base64')
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12))
  decipher.setAuthTag(raw.subarray(12, 28))
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8')
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/

/**
 * Creates a key. Returns the API key and, for HMAC, the secret: shown once, stored only encrypted.
 * `allowedIps` are exact IPv4/IPv6 addresses; empty allows any.
 */
export async function createApiKey(
  db: Executor,
  encryptionKey: Buffer,
  input: CreateApiKey,
): Promise<{ apiKey: string; secretKey?: string }> {
  for (const ip of input.allowedIps ?? []) {
    if (!IPV4.test(ip) && !(ip.includes(':') && /^[0-9a-fA-F:.]+$/.test(ip)))
      throw invalidInput('allowedIps', `"${ip}" is not an IP address`)
  }
  const apiKey = randomToken()
  const common = {
    userId: input.userId,
    apiKey,
    kind: input.kind,
    label: input.label ?? '',
    canRead: input.canRead ?? true,
    canTrade: input.canTrade ?? false,
    canWithdraw: input.canWithdraw ?? false,
    allowedIps: [...(input.allowedIps ?? [])],
  }
  if (input.kind === 'HMAC') {
    const secretKey = randomToken()
    await db.insert(apiKeys).values({ ...common, secretEncrypted: encryptSecret(secretKey, encryptionKey) })
    return { apiKey, secretKey }
  }
  if (input.publicKey === undefined) throw invalidInput('publicKey', 'an Ed25519 key needs its public key')
  let key: KeyObject
  try {
    key = createPublicKey(input.publicKey)
  } catch {
    throw invalidInput('publicKey', 'expected an Ed25519 public key in PEM')
  }
  if (key.asymmetricKeyType !== 'ed25519') throw invalidInput('publicKey', 'expected an Ed25519 public key')
  const pem = key.export({ type: 'spki', format: 'pem' }).toString()
  await db.insert(apiKeys).values({ ...common, publicKey: pem })
  return { apiKey }
}

export async function revokeApiKey(db: Executor, apiKey: string): Promise<void> {
  await db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.apiKey, apiKey))
}

/**
 * HMAC-SHA256 (RFC 2104: H(K^opad, H(K^ipad, m))) from the hash states of the padded key, made once per key:
 * a message then costs two state copies and two digests. createHmac sets up the key and looks the digest up
 * on every call; in gateway-order's CPU profile its signature checks cost 1.5 times these.
 */
export function hmacSha256(key: Buffer): (message: string) => Buffer {
  const block = Buffer.alloc(64)
  ;(key.length > block.length ? createHash('sha256').update(key).digest() : key).copy(block)
  const inner = createHash('sha256').update(block.map((b) => b ^ 0x36))
  const outer = createHash('sha256').update(block.map((b) => b ^ 0x5c))
  return (message) => outer.copy().update(inner.copy().update(message).digest()).digest()
}

/** Finds keys by their X-MBX-APIKEY value, with a short cache (a revoked key stops working within `ttlMs`). */
export class ApiKeyStore {
  private readonly db: Executor
  private readonly encryptionKey: Buffer
  private readonly ttlMs: number
  /** Lookups by API key, shared while under way: a busy key's requests wait on one query, not one each. */
  private readonly cache = new Map<string, { record: Promise<ApiKeyRecord | null>; expiresAt: number }>()

  constructor(db: Executor, encryptionKey: Buffer, ttlMs = 5000) {
    this.db = db
    this.encryptionKey = encryptionKey
    this.ttlMs = ttlMs
  }

  find(apiKey: string): Promise<ApiKeyRecord | null> {
    const now = Date.now()
    const hit = this.cache.get(apiKey)
    if (hit !== undefined && hit.expiresAt > now) return hit.record
    const record = this.load(apiKey)
    if (this.cache.size > 10_000) this.cache.clear()
    this.cache.set(apiKey, { record, expiresAt: now + this.ttlMs })
    // A failed lookup is not kept: the next request asks again.
    record.catch(() => {
      if (this.cache.get(apiKey)?.record === record) this.cache.delete(apiKey)
    })
    return record
  }

  private async load(apiKey: string): Promise<ApiKeyRecord | null> {
    const [row] = await this.db.select().from(apiKeys).where(eq(apiKeys.apiKey, apiKey))
    return row === undefined || row.revokedAt !== null ? null : this.toRecord(row)
  }

  private toRecord(row: typeof apiKeys.$inferSelect): ApiKeyRecord {
    const base = {
      id: row.id,
      userId: row.userId,
      apiKey: row.apiKey,
      kind: row.kind,
      canRead: row.canRead,
      canTrade: row.canTrade,
      canWithdraw: row.canWithdraw,
      allowedIps: row.allowedIps,
    }
    if (row.kind === 'HMAC') {
      let hmac: (payload: string) => Buffer
      try {
        hmac = hmacSha256(Buffer.from(decryptSecret(row.secretEncrypted!, this.encryptionKey), 'utf8'))
      } catch (err) {
        throw new BourseError('internal', 'an API secret could not be decrypted: wrong key-encryption key?', {
          cause: err,
        })
      }
      return {
        ...base,
        verify(payload, signature) {
          // HMAC signatures are hex and not case-sensitive.
          if (!/^[0-9a-fA-F]{64}$/.test(signature)) return false
          const expected = hmac(payload)
          return timingSafeEqual(expected, Buffer.from(signature, 'hex'))
        },
      }
    }
    const publicKey = createPublicKey(row.publicKey!)
    return {
      ...base,
      verify(payload, signature) {
        const sig = Buffer.from(signature, 'base64')
        if (sig.length !== 64) return false
        return verify(null, Buffer.from(payload, 'utf8'), publicKey, sig)
      },
    }
  }
}
