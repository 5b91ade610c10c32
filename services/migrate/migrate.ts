/** `bourse migrate`: applies the migrations not yet applied to the Postgres named by BOURSE_DATABASE_URL. */
import { z } from 'zod'
import { openDatabase } from '../../adapters/db/database.ts'
import { fromEnv, url } from '../../lib/config.ts'
import { createLogger } from '../../lib/log.ts'

const Config = z.object({ BOURSE_DATABASE_URL: url({ protocols: ['postgres:', 'postgresql:'] }) })

export async function main(): Promise<void> {
  const config = fromEnv(Config, { component: 'migrate' })
  const log = createLogger('migrate')
  const database = await openDatabase({ kind: 'postgres', url: config.BOURSE_DATABASE_URL })
  try {
    await database.migrate()
    log.info('migrations applied')
  } finally {
    await database.close()
  }
}
