import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores, three workers: most of the suite waits on real time (silences, kills, a browser,
    // Azurite), not on the CPU. A clean-clone CI on an idle 2-core machine took tests 521 s at 3
    // against 716-748 s at 2 (same 1 751 tests, all passing). Integration and e2e tests start real
    // processes (agents, Azurite, a hub), so a test must wait for what it needs, never assume a pace.
    maxWorkers: 3,
    reporters: ['default'],
  },
});
