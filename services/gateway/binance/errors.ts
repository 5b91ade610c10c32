/**
 * Binance's error answers, `{code, msg}` with the codes and messages of errors.md word for word, and the
 * mapping from Bourse's errors (the engine's messages already are Binance's where one exists).
 */
import type { BourseError } from '../../../lib/errors.ts'

export class BinanceError extends Error {
  readonly code: number
  readonly status: number
  /** Extra response headers (Retry-After). */
  readonly headers: Record<string, string>
  /** What was done before the failure, where Binance says (cancelReplace). */
  readonly data: unknown

  constructor(
    code: number,
    msg: string,
    status = 400,
    headers: Record<string, string> = {},
    data: unknown = undefined,
  ) {
    super(msg)
    this.name = 'BinanceError'
    this.code = code
    this.status = status
    this.headers = headers
    this.data = data
  }

  toJSON(): { code: number; msg: string; data?: unknown } {
    const body = { code: this.code, msg: this.message }
    return this.data === undefined ? body : { ...body, data: this.data }
  }
}

export const errors = {
  unknown: () => new BinanceError(-1000, 'An unknown error occurred while processing the request.', 500),
  disconnected: () =>
    new BinanceError(-1001, 'Internal error; unable to process your request. Please try again.', 503),
  timeout: () =>
    new BinanceError(
      -1007,
      'Timeout waiting for response from backend server. Send status unknown; execution status unknown.',
      503,
    ),
  tooMuchWeight: (limit: number, retryAfterSeconds: number) =>
    new BinanceError(
      -1003,
      `Too much request weight used; current limit is ${limit} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.`,
      429,
      { 'Retry-After': String(retryAfterSeconds) },
    ),
  banned: (untilMs: number, retryAfterSeconds: number) =>
    new BinanceError(
      -1003,
      `Way too much request weight used; IP banned until ${untilMs}. Please use WebSocket Streams for live updates to avoid bans.`,
      418,
      { 'Retry-After': String(retryAfterSeconds) },
    ),
  outsideRecvWindow: () =>
    new BinanceError(-1021, 'Timestamp for this request is outside of the recvWindow.'),
  aheadOfServer: () =>
    new BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time."),
  badSignature: () => new BinanceError(-1022, 'Signature for this request is not valid.'),
  illegalChars: (param: string, range: string) =>
    new BinanceError(-1100, `Illegal characters found in parameter '${param}'; legal range is '${range}'.`),
  duplicateParam: () => new BinanceError(-1101, 'Duplicate values for a parameter detected.'),
  mandatory: (param: string) =>
    new BinanceError(-1102, `Mandatory parameter '${param}' was not sent, was empty/null, or malformed.`),
  eitherParam: (a: string, b: string) =>
    new BinanceError(-1102, `Param '${a}' or '${b}' must be sent, but both were empty/null!`),
  tooGreat: (param: string, max: string) =>
    new BinanceError(-1102, `'${param}' contains unexpected value. Cannot be greater than ${max}.`),
  notRequired: (param: string) => new BinanceError(-1106, `Parameter '${param}' sent when not required.`),
  tifNotRequired: () => new BinanceError(-1114, 'TimeInForce parameter sent when not required.'),
  invalidTif: () => new BinanceError(-1115, 'Invalid timeInForce.'),
  invalidOrderType: () => new BinanceError(-1116, 'Invalid orderType.'),
  invalidSide: () => new BinanceError(-1117, 'Invalid side.'),
  emptyNewClientOrderId: () => new BinanceError(-1118, 'New client order ID was empty.'),
  emptyOrigClientOrderId: () => new BinanceError(-1119, 'Original client order ID was empty.'),
  badInterval: () => new BinanceError(-1120, 'Invalid interval.'),
  badSymbol: () => new BinanceError(-1121, 'Invalid symbol.'),
  lookupTooBig: (hours: number) =>
    new BinanceError(-1127, `More than ${hours} hours between startTime and endTime.`),
  badCombination: () => new BinanceError(-1128, 'Combination of optional parameters invalid.'),
  invalidParam: (param: string) =>
    new BinanceError(-1130, `Data sent for parameter '${param}' is not valid.`),
  statusMismatch: () =>
    new BinanceError(-1220, "The symbol's status does not match the requested symbolStatus."),
  filterFailure: (filter: string) => new BinanceError(-1013, `Filter failure: ${filter}`),
  newOrderRejected: (msg: string) => new BinanceError(-2010, msg),
  cancelRejected: (msg: string) => new BinanceError(-2011, msg),
  noSuchOrder: () => new BinanceError(-2013, 'Order does not exist.'),
  unknownListenKey: () => new BinanceError(-1125, 'This listenKey does not exist.'),
  badApiKeyFormat: () => new BinanceError(-2014, 'API-key format invalid.', 401),
  rejectedKey: () => new BinanceError(-2015, 'Invalid API-key, IP, or permissions for action.', 401),
}

/** The engine's messages on the way back, by what the request was doing. */
export function fromBourse(err: BourseError, action: 'place' | 'cancel' | 'query'): BinanceError {
  const msg = err.message
  if (msg.startsWith('Filter failure: ')) return errors.filterFailure(msg.slice('Filter failure: '.length))
  switch (err.code) {
    case 'insufficient_funds':
      return errors.newOrderRejected('Account has insufficient balance for requested action.')
    case 'conflict':
      return errors.newOrderRejected('Duplicate order sent.')
    case 'not_found':
      if (action === 'query') return errors.noSuchOrder()
      return action === 'cancel'
        ? errors.cancelRejected('Unknown order sent.')
        : errors.newOrderRejected('Unknown order sent.')
    case 'rejected':
      // The engine says "Market is halted."; Binance's word for a symbol that is not trading is "Market is closed."
      if (msg === 'Market is halted.') {
        return action === 'cancel'
          ? errors.cancelRejected('Market is closed.')
          : errors.newOrderRejected('Market is closed.')
      }
      return action === 'cancel' ? errors.cancelRejected(msg) : errors.newOrderRejected(msg)
    case 'invalid_input':
      // Anything else the engine refuses about a price or a size breaks that filter's rule (e.g. a price off the tick).
      if (err.field === 'price') return errors.filterFailure('PRICE_FILTER')
      if (err.field === 'quantity') return errors.filterFailure('LOT_SIZE')
      if (err.field === 'quoteOrderQty' || err.field === 'quoteAmount')
        return errors.filterFailure('NOTIONAL')
      if (err.field === 'timeInForce') return errors.invalidTif()
      return new BinanceError(-1013, msg)
    case 'unavailable':
      return errors.disconnected()
    case 'outcome_unknown':
      return errors.timeout()
    case 'rate_limited':
      return new BinanceError(-1015, 'Too many new orders.', 429)
    default:
      return errors.unknown()
  }
}
