import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Real processes, servers and databases: keep files in separate forks so a killed child never takes the runner down.
    pool: 'forks',
  },
})
