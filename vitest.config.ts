import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', '.tools/**', 'e2e/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Suites share the real test servers; files run in parallel but each names its own keys/topics/schemas.
    pool: 'forks',
  },
})
