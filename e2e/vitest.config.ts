import { defineConfig } from 'vitest/config'

// The end-to-end suites: they need the local control plane (scripts/cluster), so `make test` leaves them
// out and `make e2e` starts the cluster, exports KUBECONFIG and runs them with this config.
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // One cluster: files run one after another; each works in a namespace of its own.
    fileParallelism: false,
    pool: 'forks',
  },
})
