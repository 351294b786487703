// The sentences of installs for oneself: every one in both languages, with the same placeholders,
// and none of them taken by i18n.ts already (the tables are to be merged into it).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { en, zhCN } from '../../src/discord/i18n-dm.ts';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('i18n-dm', () => {
  it.each(Object.keys(en) as (keyof typeof en)[])('%s is in Chinese too, with the same placeholders', (key) => {
    const zh = zhCN[key];
    expect(zh).toBeTruthy();
    expect(placeholders(zh!)).toEqual(placeholders(en[key]));
  });

  it('no key is one i18n.ts already has, so merging loses nothing', () => {
    // i18n.ts, or the folder it is being split into.
    const dir = join(import.meta.dirname, '..', '..', 'src', 'discord');
    const files = [
      join(dir, 'i18n.ts'),
      ...(existsSync(join(dir, 'i18n')) ? readdirSync(join(dir, 'i18n')).map((f) => join(dir, 'i18n', f)) : []),
    ];
    const existing = files
      .filter((f) => existsSync(f) && f.endsWith('.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    expect(existing).toContain("'context.guild_only'");
    for (const key of Object.keys(en)) expect(existing).not.toContain(`'${key}'`);
  });

  it('fits a message (2000 characters) with long values in the placeholders', () => {
    for (const table of [en, zhCN]) {
      for (const text of Object.values(table))
        expect(text.replace(/\{\w+\}/g, 'x'.repeat(300)).length).toBeLessThan(2000);
    }
  });
});
