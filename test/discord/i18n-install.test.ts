// The sentences of installs for oneself: every one in both languages, with the same placeholders.
import { describe, expect, it } from 'vitest';
import { en, zhCN } from '../../src/discord/i18n/install.ts';

const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

describe('i18n of installs for oneself', () => {
  it.each(Object.keys(en) as (keyof typeof en)[])('%s is in Chinese too, with the same placeholders', (key) => {
    const zh = zhCN[key];
    expect(zh).toBeTruthy();
    expect(placeholders(zh!)).toEqual(placeholders(en[key]));
  });

  it('fits a message (2000 characters) with long values in the placeholders', () => {
    for (const table of [en, zhCN]) {
      for (const text of Object.values(table))
        expect(text.replace(/\{\w+\}/g, 'x'.repeat(300)).length).toBeLessThan(2000);
    }
  });
});
