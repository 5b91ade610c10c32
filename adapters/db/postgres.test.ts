import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { databaseContract } from './database.contract.ts'
import { queryRows } from './database.ts'
import { createTestDatabase, type TestDatabase } from './testing.ts'

databaseContract('postgres')

describe('postgres.js under drizzle', () => {
  let handle: TestDatabase
  beforeAll(async () => {
    handle = await createTestDatabase('postgres', 1)
  })
  afterAll(async () => handle?.close())

  // pg_prepared_statements lists the named statements of the session that asks: one connection here.
  const preparedOnThisConnection = async (executor: TestDatabase['db']) =>
    (await queryRows<{ statement: string }>(executor, sql`select statement from pg_prepared_statements`)).map(
      (r) => r.statement,
    )

  it('runs queries as named prepared statements, in transactions and savepoints too', async () => {
    const query = (alias: string) => sql`select ${alias}::text as ${sql.identifier(alias)}`
    await handle.db.execute(query('outside'))
    await handle.db.execute(query('outside'))
    await handle.db.transaction(async (tx) => {
      await tx.execute(query('in_transaction'))
      await tx.transaction(async (savepoint) => {
        await savepoint.execute(query('in_savepoint'))
      })
    })
    const statements = await preparedOnThisConnection(handle.db)
    // Once each: a text seen before runs as the statement prepared for it.
    for (const alias of ['outside', 'in_transaction', 'in_savepoint'])
      expect(statements.filter((s) => s.includes(`as "${alias}"`))).toHaveLength(1)
  })
})
