// The repository documents itself: every relative link in the docs leads to a file (and heading)
// the repository carries, and nothing points at folders next to it, which a clone does not have.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const DOCS = [
  'README.md',
  'test/README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
/** Not the repository's own files: dependencies, git, coverage output, the bot's data. */
const SKIP = new Set(['node_modules', '.git', 'coverage', 'data', 'dist']);

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (SKIP.has(name)) return [];
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** Markdown without code, where a `[x](y)` is an example, not a link. */
const prose = (text: string) => text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');

/** GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, -1, -2 for repeats. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = heading!
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function links(file: string): string[] {
  const text = prose(readFileSync(join(ROOT, file), 'utf8'));
  return [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
}

describe('documentation', () => {
  it('documents the PPInfra API in the repository', () => {
    expect(DOCS).toContain('docs/ppinfra-api.md');
  });

  it.each(DOCS)('every relative link in %s resolves to a file (and heading) in the repository', (file) => {
    const broken: string[] = [];
    for (const link of links(file)) {
      if (/^[a-z][a-z+.-]*:/i.test(link)) continue; // https:, mailto:
      const [path, anchor] = link.split('#') as [string, string | undefined];
      const target = path === '' ? join(ROOT, file) : join(ROOT, dirname(file), decodeURIComponent(path));
      if (relative(ROOT, target).startsWith('..')) broken.push(`${link} (outside the repository)`);
      else if (!existsSync(target)) broken.push(`${link} (no such file)`);
      else if (anchor && target.endsWith('.md') && !anchors(readFileSync(target, 'utf8')).has(anchor))
        broken.push(`${link} (no such heading)`);
    }
    expect(broken).toEqual([]);
  });

  it('no file of the repository refers to the shared folder next to it, which only exists where it was written', () => {
    const outside = new RegExp(`\\.\\./shared(?![\\w-])|${'shared'}/docs/`);
    const offenders = files(ROOT)
      .filter((path) => outside.test(readFileSync(path, 'utf8')))
      .map((path) => relative(ROOT, path));
    expect(offenders).toEqual([]);
  });
});

describe("Discord's OpenAPI description", () => {
  const dir = join(ROOT, 'test', 'fakes', 'discord', 'openapi');
  it('is carried by the repository with its licence, whatever $DISCORD_OPENAPI_SPEC says', () => {
    // A missing copy fails here: the fake Discord would otherwise refuse to start, never skip.
    expect(existsSync(join(dir, 'openapi.json'))).toBe(true);
    const spec = JSON.parse(readFileSync(join(dir, 'openapi.json'), 'utf8')) as { openapi?: string; paths?: object };
    expect(spec.openapi).toMatch(/^3\.1/);
    expect(Object.keys(spec.paths ?? {}).length).toBeGreaterThan(50);
    expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toMatch(/^MIT License[\s\S]*Copyright \d{4} Discord/);
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toContain('https://github.com/discord/discord-api-spec');
  });
});
