/**
 * The database adapter: drizzle over postgres.js (production) or over PGlite (embedded mode, tests),
 * with one schema and one set of migrations. Both drivers return int8 as bigint and NUMERIC as an exact
 * decimal string, so code above never sees a float.
 */
import { fileURLToPath } from 'node:url'
import { PGlite } from '@electric-sql/pglite'
import type { SQL } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite'
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator'
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js'
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { errorChain } from '../../lib/errors.ts'
import * as schema from './schema.ts'

export type DatabaseConfig =
  | { kind: 'postgres'; url: string; maxConnections?: number }
  /** dataDir: a folder for a persistent database; omitted, it lives in memory. */
  | { kind: 'pglite'; dataDir?: string }

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>
/** What a transaction callback receives: the same query surface as Database. */
export type Transaction = Parameters<Parameters<Database['transaction']>[0]>[0]
export type Executor = Database | Transaction

export interface DatabaseHandle {
  readonly kind: DatabaseConfig['kind']
  readonly db: Database
  /** Applies the migrations not yet applied (the migration Job in Kubernetes, `bourse dev` at start). */
  migrate(): Promise<void>
  close(): Promise<void>
}

const migrationsFolder = fileURLToPath(new URL('../../migrations', import.meta.url))
const INT8_OID = 20

export async function openDatabase(config: DatabaseConfig): Promise<DatabaseHandle> {
  return config.kind === 'postgres'
    ? openPostgres(config.url, config.maxConnections)
    : openPglite(config.dataDir)
}

function openPostgres(url: string, maxConnections = 10): DatabaseHandle {
  const client = postgres(url, {
    max: maxConnections,
    onnotice: () => {},
    types: { bigint: postgres.BigInt },
  })
  const db = drizzlePostgres(preparing(client), { schema })
  return {
    kind: 'postgres',
    db,
    migrate: () => migratePostgres(db, { migrationsFolder }),
    close: () => client.end({ timeout: 5 }),
  }
}

type Scope = (sql: unknown) => unknown

/**
 * The client as drizzle should see it: drizzle sends every query through postgres.js's `unsafe` with
 * `prepare: false` (drizzle-orm#6096), which costs each query a describe round trip before it runs and a
 * parse and plan in Postgres. This view prepares them: postgres.js keeps one named statement per query text
 * on each connection, so a query seen before is a single Bind/Execute. Transactions and savepoints hand
 * drizzle a client of their own, viewed the same way.
 */
function preparing<T extends object>(client: T): T {
  const scoped =
    (open: (...args: unknown[]) => unknown) =>
    (...args: unknown[]) => {
      const body = args.pop() as Scope
      return open(...args, (sql: object) => body(preparing(sql)))
    }
  return new Proxy(client, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver)
      if (typeof value !== 'function') return value
      if (property === 'unsafe')
        return (query: string, params: unknown[], options?: object) =>
          value(query, params, { ...options, prepare: true })
      if (property === 'begin' || property === 'savepoint')
        return scoped(value as (...a: unknown[]) => unknown)
      return value
    },
  })
}

async function openPglite(dataDir?: string): Promise<DatabaseHandle> {
  const client = await PGlite.create(dataDir ?? 'memory://', {
    parsers: { [INT8_OID]: (text) => BigInt(text) },
  })
  const db = drizzlePglite(client, { schema })
  return {
    kind: 'pglite',
    db,
    migrate: () => migratePglite(db, { migrationsFolder }),
    close: () => client.close(),
  }
}

/** Runs raw SQL and returns its rows, whichever driver is underneath (postgres.js answers an array, PGlite `{rows}`). */
export async function queryRows<T extends object>(executor: Executor, query: SQL): Promise<T[]> {
  const result: unknown = await executor.execute(query)
  return (Array.isArray(result) ? result : (result as { rows: T[] }).rows) as T[]
}

/**
 * A Postgres array literal for one bound parameter: both drivers pass it as text and the cast in the query
 * types it, so a whole batch travels in a few parameters whatever its size.
 */
export function pgArray(values: readonly (string | null)[]): string {
  return `{${values.map(arrayElement).join(',')}}`
}

// Ids, amounts, names and timestamps, nearly all a batch carries, go bare; only an element the array syntax
// would misread (empty, spaced, braced, quoted, or the word NULL) is quoted, its quotes and backslashes escaped.
const BARE_ELEMENT = /^[\w.:+-]+$/
const NULL_WORD = /^null$/i

function arrayElement(value: string | null): string {
  if (value === null) return 'NULL'
  if (BARE_ELEMENT.test(value) && !NULL_WORD.test(value)) return value
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

/**
 * Postgres answered that the statement failed (severity ERROR), so its transaction rolled back. Anything else
 * (a lost connection, a FATAL that ended the session) leaves a statement's commit unknown.
 */
export function statementFailed(err: unknown): boolean {
  for (const e of errorChain(err)) if (e.severity === 'ERROR') return true
  return false
}

/** The Postgres error with this SQLSTATE behind `err`, if any. */
export function databaseError(err: unknown, sqlState: string): Error | undefined {
  for (const e of errorChain(err)) if (e.code === sqlState) return e as Error
  return undefined
}
