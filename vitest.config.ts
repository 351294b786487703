import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // Fake servers bind real loopback ports; files run in parallel workers, tests in a file in order.
    pool: 'forks',
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts', 'commands/**/*.ts'],
      reporter: ['json-summary'],
      // A floor, not a goal: main.ts, deploy.ts and cli.ts run in child processes the tests spawn,
      // which v8 coverage of this process does not see.
      thresholds: { statements: 80, branches: 72, functions: 80, lines: 82 },
    },
  },
});
