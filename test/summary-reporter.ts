import type { Reporter, TestModule } from 'vitest/node';

interface CoverageSummary {
  getCoverageSummary(): Record<'lines' | 'statements' | 'functions' | 'branches', { pct: number }>;
}

/**
 * Ends the run with one plain `tests: N passed, N failed, N skipped` line, the summary CI tools
 * read (vitest's own is coloured and spread over several lines), after a one-line coverage
 * summary when coverage is on.
 */
export default class SummaryReporter implements Reporter {
  private coverageLine = '';

  /** Vitest reports coverage just before the end of the run. */
  onCoverage(coverage: unknown): void {
    const summary = (coverage as CoverageSummary).getCoverageSummary();
    const pct = (k: keyof typeof summary) => `${k} ${summary[k].pct}%`;
    this.coverageLine = `coverage: ${pct('statements')}, ${pct('branches')}, ${pct('functions')}, ${pct('lines')}\n`;
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const counts = { passed: 0, failed: 0, skipped: 0 };
    for (const mod of testModules) {
      const tests = [...mod.children.allTests()];
      for (const test of tests) {
        const state = test.result().state;
        if (state === 'passed') counts.passed++;
        else if (state === 'failed') counts.failed++;
        else counts.skipped++;
      }
      // A file that failed to load has no tests but is a failure all the same.
      if (mod.state() === 'failed' && !tests.length) counts.failed++;
    }
    process.stdout.write(
      `\n${this.coverageLine}tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped\n`,
    );
  }
}
