/**
 * Structured JSON logs to stdout, one logger per component, with secrets redacted.
 * The level comes from BOURSE_LOG_LEVEL (default info).
 */
import pino, { type DestinationStream, type Logger } from 'pino'
import { z } from 'zod'
import { loadConfig, oneOf } from './config.ts'

export type { Logger } from 'pino'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

const SECRET_KEYS = ['apiSecret', 'apiKey', 'password', 'privateKey', 'secret', 'token', 'mnemonic', 'seed']

/** Redacted paths: each secret key at the top level and one level down, plus authorization and cookie headers. */
export const REDACT_PATHS: readonly string[] = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`]),
  'headers.authorization',
  'headers.cookie',
  '*.headers.authorization',
  '*.headers.cookie',
  'headers["x-api-key"]',
  '*.headers["x-api-key"]',
]

const levelSchema = z.object({ BOURSE_LOG_LEVEL: oneOf(LOG_LEVELS).default('info') })

/**
 * A logger whose every line carries `component`. Throws ConfigError when BOURSE_LOG_LEVEL is not a
 * pino level. `destination` and `env` are for tests.
 */
export function createLogger(
  component: string,
  opts: { level?: LogLevel; destination?: DestinationStream; env?: Record<string, string | undefined> } = {},
): Logger {
  const level = opts.level ?? loadConfig(levelSchema, opts.env ?? process.env).BOURSE_LOG_LEVEL
  return pino(
    {
      level,
      base: { component },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    },
    // Synchronous writes: a line logged just before a crash or process.exit is not lost.
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  )
}
