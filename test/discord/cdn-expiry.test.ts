import { describe, expect, it } from 'vitest';
import { linkExpiresAt, linkFresh } from '../../src/discord/cdn-expiry.ts';

describe('a kept Discord CDN link, before it is handed on', () => {
  const at = (seconds: number) =>
    `https://cdn.discordapp.com/attachments/1/2/a.png?ex=${seconds.toString(16)}&is=0&hm=ab&`;
  const now = 1_800_000_000_000;

  it('reads `ex` as hex Unix seconds', () => {
    expect(linkExpiresAt(at(now / 1000))).toBe(now);
    expect(linkExpiresAt('https://example.com/a.png')).toBeUndefined();
    expect(linkExpiresAt('not a url')).toBeUndefined();
  });

  it('is stale when expired or within ten minutes of it; a link with no expiry is taken as it is', () => {
    expect(linkFresh(at(now / 1000 + 3600), now)).toBe(true);
    expect(linkFresh(at(now / 1000 + 599), now)).toBe(false);
    expect(linkFresh(at(now / 1000 - 1), now)).toBe(false);
    expect(linkFresh('https://example.com/a.png', now)).toBe(true);
  });
});
