import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: integration and e2e tests start real processes (agents, Azurite, a hub).
    maxWorkers: 2,
    reporters: ['default'],
  },
});
