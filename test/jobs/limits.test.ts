import { describe, expect, it } from 'vitest';
import { createLimits, type LimitSettings } from '../../src/jobs/limits.ts';
import { encodeCustomId, parseCustomId } from '../../src/discord/custom-id.ts';

const settings: LimitSettings = {
  userMaxConcurrent: 2,
  userHourlyQuota: 3,
  guildDailyBudget: 4,
  maxJobsInFlight: 2,
  queueMax: 1,
  breakerThreshold: 2,
  breakerCooldownMs: 60_000,
};

function setup() {
  let clock = 1_000_000;
  const limits = createLimits(settings, () => clock);
  return { limits, advance: (ms: number) => (clock += ms), now: () => clock };
}

describe('limits', () => {
  it('caps concurrent jobs per user and frees the slot when a job ends', () => {
    const { limits } = setup();
    limits.take('u', 'g');
    limits.take('u', 'g');
    expect(limits.check('u', 'g', 0)).toEqual({ kind: 'user_concurrent', limit: 2 });
    expect(limits.check('other', 'g', 0)).toBeNull();
    limits.release('u', 'g', false);
    expect(limits.check('u', 'g', 0)).toBeNull();
  });

  it('counts the hourly quota on a rolling window, and refunds what was never billed', () => {
    const { limits, advance, now } = setup();
    for (let i = 0; i < 3; i++) {
      limits.take('u', 'g');
      limits.release('u', 'g', false);
      advance(60_000);
    }
    const start = now() - 180_000;
    expect(limits.check('u', 'g', 0)).toEqual({ kind: 'user_hourly', limit: 3, retryAt: start + 3_600_000 });
    advance(3_600_000 - 180_000 + 1);
    expect(limits.check('u', 'g', 0)).toBeNull();
    limits.take('u', 'g');
    limits.release('u', 'g', true);
    expect(limits.check('u', 'g', 0)).toBeNull();
  });

  it('enforces the guild daily budget across users', () => {
    const { limits } = setup();
    for (const user of ['a', 'b', 'c', 'd']) {
      limits.take(user, 'g');
      limits.release(user, 'g', false);
    }
    expect(limits.check('e', 'g', 0)).toMatchObject({ kind: 'guild_daily', limit: 4 });
    expect(limits.check('e', 'other-guild', 0)).toBeNull();
  });

  it('applies a guild’s lower quota and budget, never a higher one, with the right retry time', () => {
    const { limits, advance, now } = setup();
    for (let i = 0; i < 2; i++) {
      limits.take('u', 'g');
      limits.release('u', 'g', false);
      advance(60_000);
    }
    const second = now() - 60_000;
    expect(limits.check('u', 'g', 0, { userHourlyQuota: 1, guildDailyBudget: 10 })).toEqual({
      kind: 'user_hourly',
      limit: 1,
      retryAt: second + 3_600_000,
    });
    expect(limits.check('u', 'g', 0, { userHourlyQuota: 100, guildDailyBudget: 100 })).toBeNull();
    expect(limits.check('v', 'g', 0, { userHourlyQuota: 100, guildDailyBudget: 2 })).toMatchObject({
      kind: 'guild_daily',
      limit: 2,
    });
  });

  it('restores quota windows from a snapshot, and does not count a resumed job twice', () => {
    const { limits, now } = setup();
    const saved: unknown[] = [];
    const before = createLimits(settings, now, (s) => saved.push(structuredClone(s)));
    before.take('u', 'g');
    before.release('u', 'g', false);
    limits.restore(JSON.parse(JSON.stringify(saved.at(-1))));
    limits.take('u', 'g', { quota: false });
    limits.take('u', 'g');
    limits.release('u', 'g', false);
    limits.release('u', 'g', false);
    limits.take('u', 'g');
    limits.release('u', 'g', false);
    expect(limits.check('u', 'g', 0)).toMatchObject({ kind: 'user_hourly', limit: 3 });
    expect(limits.snapshot()).toEqual({ users: { u: [now(), now(), now()] }, guilds: { g: [now(), now(), now()] } });
    limits.restore({ users: { x: ['junk', now() - 7_200_000] }, guilds: 'nonsense' });
    expect(limits.snapshot().users.x).toBeUndefined();
  });

  it('refuses when the queue is full', () => {
    expect(setup().limits.check('u', 'g', 1)).toEqual({ kind: 'queue_full', limit: 1 });
  });

  it('cools down after consecutive API failures, recovers, and re-opens on the next failure', () => {
    const { limits, advance, now } = setup();
    limits.apiResult(false);
    limits.apiResult(true);
    limits.apiResult(false);
    expect(limits.coolingUntil()).toBeNull();
    limits.apiResult(false);
    expect(limits.check('u', 'g', 0)).toEqual({ kind: 'api_cooling', retryAt: now() + 60_000 });
    advance(60_001);
    expect(limits.check('u', 'g', 0)).toBeNull();
    limits.apiResult(false);
    expect(limits.coolingUntil()).toBe(now() + 60_000);
  });
});

describe('button custom ids', () => {
  it('round-trips and rejects anything else', () => {
    expect(parseCustomId(encodeCustomId('regen', 'abc123'))).toEqual({ action: 'regen', jobId: 'abc123' });
    for (const bad of [
      'qi0:regen:abc',
      'qi1:nuke:abc',
      'qi1:approve',
      'qi1:del:',
      'qi1:del:a:b',
      'qi1:del:a b',
      'random',
    ])
      expect(parseCustomId(bad)).toBeNull();
  });
});
