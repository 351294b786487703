import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Fake servers bind real loopback ports; files run in parallel workers, tests in a file in order.
    pool: 'forks',
  },
});
