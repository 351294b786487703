import { describe, expect, it } from 'vitest';
import { en, zhCN } from '../../src/discord/i18n/tools.ts';

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const keys = Object.keys(en) as (keyof typeof en)[];

describe('the image tools’ sentences', () => {
  it.each(keys)('%s has a Chinese sentence with the same placeholders', (key) => {
    expect(zhCN[key]).toBeTruthy();
    expect(placeholders(zhCN[key]!)).toEqual(placeholders(en[key]));
  });

  it('keeps command metadata within Discord’s limits (names 32, descriptions 100)', () => {
    for (const key of keys.filter((k) => k.startsWith('command.'))) {
      const max = key.endsWith('.name') ? 32 : 100;
      expect([...en[key]].length, key).toBeLessThanOrEqual(max);
      expect([...zhCN[key]!].length, key).toBeLessThanOrEqual(max);
    }
  });
});
