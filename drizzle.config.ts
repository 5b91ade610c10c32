import { defineConfig } from 'drizzle-kit'

// `npx drizzle-kit generate` writes the SQL migrations that both Postgres and PGlite apply at start.
export default defineConfig({
  dialect: 'postgresql',
  schema: './adapters/db/schema.ts',
  out: './migrations',
})
