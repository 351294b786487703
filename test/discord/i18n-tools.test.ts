import { describe, expect, it } from 'vitest';
import { en, zhCN, type ToolMessageKey } from '../../src/discord/i18n-tools.ts';

const placeholders = (text: string) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
const keys = Object.keys(en) as ToolMessageKey[];

describe('the image tools’ sentences', () => {
  it.each(keys)('%s has a Chinese sentence with the same placeholders', (key) => {
    expect(zhCN[key]).toBeTruthy();
    expect(placeholders(zhCN[key]!)).toEqual(placeholders(en[key]));
  });

  it('keeps command metadata within Discord’s 100 characters', () => {
    for (const key of keys.filter((k) => k.startsWith('command.'))) {
      expect([...en[key]].length, key).toBeLessThanOrEqual(100);
      expect([...zhCN[key]!].length, key).toBeLessThanOrEqual(100);
    }
  });
});
