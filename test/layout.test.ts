/**
 * A newcomer reads the product one file at a time: a file past 300 lines holds more than one
 * concern and is split by concern (docs/architecture.md). dependency-cruiser checks the imports
 * (`npm test`); this checks the sizes, which it does not.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const MAX_LINES = 300;

function productFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? productFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the layout', () => {
  const files = ['src', 'commands'].flatMap((d) => productFiles(join(ROOT, d)));

  it('finds the product files it checks', () => {
    expect(files.map((f) => relative(ROOT, f))).toEqual(expect.arrayContaining(['src/app.ts', 'commands/imagine.ts']));
  });

  it(`keeps every product file to ${MAX_LINES} lines`, () => {
    const long = files
      .map((f) => ({ file: relative(ROOT, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((f) => f.lines > MAX_LINES);
    expect(long).toEqual([]);
  });
});
