/**
 * Configuration from environment variables, validated with zod. A bad or missing variable is
 * reported by NAME with what it expects and what it got, all of them at once, so an operator fixes
 * the deployment in one pass; components call fromEnv() and exit with code 2 instead of a stack trace.
 *
 * An empty variable (`BOURSE_PORT=`) counts as unset, so defaults apply to it.
 */
import { z } from 'zod'

/** Process exit code for a configuration error. */
export const CONFIG_EXIT_CODE = 2

export interface ConfigIssue {
  /** The environment variable, with an index for list items: `BOURSE_PEERS[1]`. */
  variable: string
  /** What is wrong: `expected an integer 1-65535, got "abc"` or `missing, expected a URL`. */
  problem: string
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[]

  constructor(issues: readonly ConfigIssue[]) {
    super(`invalid configuration:\n${issues.map((i) => `  ${i.variable}: ${i.problem}`).join('\n')}`)
    this.name = 'ConfigError'
    this.issues = issues
  }
}

type Env = Record<string, string | undefined>

// Values of variables whose names look secret (private keys: BOURSE_WALLET_HOT_KEY) are never echoed
// back, nor URL passwords.
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|KEY|CREDENTIAL|MNEMONIC|SEED|XPRV/i

function shown(variable: string, value: string): string {
  if (SECRET_NAME.test(variable)) return `<redacted, ${value.length} characters>`
  const masked = value.replace(/(\/\/[^/@:\s]*:)[^/@\s]*@/, '$1***@')
  return JSON.stringify(masked.length > 80 ? `${masked.slice(0, 80)}…` : masked)
}

function describe(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && !issue.message.startsWith('expected'))
    return `expected ${issue.expected}`
  return issue.message
}

/**
 * Parse `env` (default process.env) with an object schema whose keys are variable names.
 * Returns the typed value or throws a ConfigError listing every bad or missing variable.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env = process.env): z.output<S> {
  const input: Record<string, string | undefined> = {}
  for (const name of Object.keys(schema.shape)) {
    const value = env[name]
    input[name] = value === '' ? undefined : value
  }
  const result = schema.safeParse(input, { reportInput: true })
  if (result.success) return result.data
  const issues: ConfigIssue[] = []
  const seen = new Set<string>()
  for (const issue of result.error.issues) {
    const [name, ...rest] = issue.path.map(String)
    const variable = `${name ?? '(config)'}${rest.map((p) => `[${p}]`).join('')}`
    const raw = name === undefined ? undefined : input[name]
    let problem: string
    if (raw === undefined) problem = `missing, ${describe(issue)}`
    else {
      const got = rest.length > 0 && typeof issue.input === 'string' ? issue.input : raw
      problem = `${describe(issue)}, got ${shown(variable, got)}`
    }
    const key = `${variable}\0${problem}`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push({ variable, problem })
  }
  throw new ConfigError(issues)
}

export interface FromEnvOptions {
  /** Names the component in the message: `bourse matching: invalid configuration: ...`. */
  component?: string
  env?: Env
  /** For tests; default writes to stderr and calls process.exit(CONFIG_EXIT_CODE). */
  exit?: (message: string, code: number) => never
}

/**
 * loadConfig for a component's entry point: on a ConfigError, print its message (no stack trace)
 * and exit with code 2. Any other error is rethrown.
 */
export function fromEnv<S extends z.ZodObject>(schema: S, options: FromEnvOptions = {}): z.output<S> {
  try {
    return loadConfig(schema, options.env ?? process.env)
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err
    const message =
      options.component === undefined ? err.message : `bourse ${options.component}: ${err.message}`
    const exit =
      options.exit ??
      ((msg: string, code: number): never => {
        process.stderr.write(`${msg}\n`)
        process.exit(code)
      })
    return exit(message, CONFIG_EXIT_CODE)
  }
}

// ---- Reusable shapes for environment variables. Each takes a string and outputs a typed value;
// ---- chain .default(value) / .optional() as usual (defaults are given as the output type).

function shape<T>(expected: string, parse: (text: string) => T | undefined) {
  return z.string({ error: expected }).transform((text, ctx): T => {
    const value = parse(text)
    if (value === undefined) {
      ctx.issues.push({ code: 'custom', message: expected, input: text })
      return z.NEVER
    }
    return value
  })
}

/** An integer in [min, max] (defaults: any safe integer), digits only with an optional leading '-'. */
export function int(opts: { min?: number; max?: number } = {}) {
  const min = opts.min ?? Number.MIN_SAFE_INTEGER
  const max = opts.max ?? Number.MAX_SAFE_INTEGER
  const range =
    opts.min !== undefined && opts.max !== undefined
      ? ` ${min}-${max}`
      : opts.min !== undefined
        ? ` >= ${min}`
        : opts.max !== undefined
          ? ` <= ${max}`
          : ''
  return shape(`expected an integer${range}`, (text) => {
    if (!/^-?\d{1,16}$/.test(text)) return undefined
    const n = Number(text)
    return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined
  })
}

/** A TCP port 1-65535; allowZero admits 0 (let the OS choose). */
export function port(opts: { allowZero?: boolean } = {}) {
  return int({ min: opts.allowZero ? 0 : 1, max: 65535 })
}

/** An integer >= 1. */
export function positiveInt() {
  return shape('expected a positive integer', (text) => {
    if (!/^\d{1,16}$/.test(text)) return undefined
    const n = Number(text)
    return Number.isSafeInteger(n) && n >= 1 ? n : undefined
  })
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** A duration, output in milliseconds: `250ms`, `30s`, `5m`, `1h`, `1d`, `1.5s`; a bare number is milliseconds. */
export function durationMs() {
  return shape('expected a duration like 500ms, 30s, 5m or 1h (a bare number is milliseconds)', (text) => {
    const m = /^(\d{1,12}(?:\.\d{1,3})?)(ms|s|m|h|d)?$/.exec(text)
    if (m === null) return undefined
    const ms = Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!
    return Number.isSafeInteger(Math.round(ms)) && Number.isInteger(ms) ? ms : undefined
  })
}

/** An absolute URL, output as the original string; `protocols` like ['postgres', 'postgresql'] restricts the scheme. */
export function url(opts: { protocols?: readonly string[] } = {}) {
  const protocols = opts.protocols?.map((p) => p.replace(/:?$/, ':'))
  const expected =
    protocols === undefined
      ? 'expected a URL'
      : `expected a ${protocols.map((p) => `${p}//`).join(' or ')} URL`
  return shape(expected, (text) => {
    if (!URL.canParse(text)) return undefined
    const u = new URL(text)
    return protocols === undefined || protocols.includes(u.protocol) ? text : undefined
  })
}

/**
 * A comma-separated list, items trimmed and empty items dropped: `a, b,,c` is ['a', 'b', 'c'].
 * With an item schema (which takes a string), each item is validated and reported as NAME[i].
 */
export function list(): z.ZodType<string[], string>
export function list<T>(item: z.ZodType<T, string>, opts?: { min?: number }): z.ZodType<T[], string>
export function list<T>(item?: z.ZodType<T, string>, opts: { min?: number } = {}) {
  const split = z.string({ error: 'expected a comma-separated list' }).transform((text) =>
    text
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  )
  const min = opts.min ?? 0
  const items = z
    .array(item ?? z.string())
    .min(min, { error: `expected at least ${min} comma-separated items` })
  return split.pipe(items)
}

/** A boolean written exactly as `true`, `false`, `1` or `0`. */
export function boolean() {
  return shape('expected true, false, 1 or 0', (text) =>
    text === 'true' || text === '1' ? true : text === 'false' || text === '0' ? false : undefined,
  )
}

/** One of a fixed set of strings. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return shape(`expected one of ${values.join(', ')}`, (text) =>
    (values as readonly string[]).includes(text) ? (text as T[number]) : undefined,
  )
}
