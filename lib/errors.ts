/**
 * Typed errors that carry their HTTP status and a machine-readable code, so every layer can throw
 * and the HTTP edge maps them without guessing. `field` names the input at fault.
 */
export const ERROR_CODES = [
  'invalid_input',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'insufficient_funds',
  'rejected',
  'rate_limited',
  'unavailable',
  /** The request was sent on but its answer was lost: it may or may not have been carried out. */
  'outcome_unknown',
  'internal',
] as const

export type ErrorCode = (typeof ERROR_CODES)[number]

const statusOf: Record<ErrorCode, number> = {
  invalid_input: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  insufficient_funds: 422,
  rejected: 422,
  rate_limited: 429,
  unavailable: 503,
  outcome_unknown: 503,
  internal: 500,
}

export class BourseError extends Error {
  readonly code: ErrorCode
  readonly status: number
  readonly field: string | undefined
  /** A retryable error: the same request may succeed later and nothing was changed. */
  readonly retryable: boolean

  constructor(code: ErrorCode, message: string, options: { field?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'BourseError'
    this.code = code
    this.status = statusOf[code]
    this.field = options.field
    this.retryable = code === 'unavailable' || code === 'rate_limited'
  }

  toJSON(): { code: ErrorCode; message: string; field?: string } {
    return this.field === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, field: this.field }
  }
}

/** `err` and the causes it wraps (drivers and fetch wrap the error that tells what happened). */
export function* errorChain(err: unknown): Generator<{ code?: unknown; severity?: unknown }> {
  for (let e = err; typeof e === 'object' && e !== null; e = (e as { cause?: unknown }).cause) yield e
}

/** Bad input: names the field and says what was expected. */
export function invalidInput(field: string, message: string): BourseError {
  return new BourseError('invalid_input', `${field}: ${message}`, { field })
}
