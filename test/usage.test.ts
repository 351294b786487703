// The usage ledger's arithmetic: UTC days, weeks and months from an injected clock, exact costs,
// and what a job at its end adds, over the real local shared state (in memory).
import { describe, expect, it } from 'vitest';
import type { Job } from '../src/domain/job.ts';
import { loadConfig } from '../src/config.ts';
import { createLocalSharedState } from '../src/storage/shared-state.ts';
import {
  cost,
  createUsageLedger,
  guildUsage,
  lastDays,
  money,
  monthDays,
  periods,
  rowName,
  usageOf,
  usageReport,
  utcDay,
} from '../src/usage/ledger.ts';
import { createMemoryKeyValue } from '../src/storage/key-value.ts';

const job = (id: string, over: Partial<Job> = {}): Job => ({
  id,
  prompt: 'a cat',
  size: '1024*1024',
  userId: 'u1',
  userName: 'alice',
  guildId: 'g1',
  channelId: 'c1',
  channelNsfw: false,
  locale: 'en-US',
  state: 'delivered',
  reply: { applicationId: 'a', token: 't', createdAt: 0 },
  createdAt: 0,
  polls: 1,
  ...over,
});

describe('UTC periods', () => {
  it('names the UTC day, whatever the local time zone would say', () => {
    expect(utcDay(Date.UTC(2026, 11, 31, 23, 59, 59, 999))).toBe('2026-12-31');
    expect(utcDay(Date.UTC(2027, 0, 1, 0, 0, 0, 0))).toBe('2027-01-01');
  });

  it('counts the last 7 days back across a month and a year, today included', () => {
    expect(lastDays(Date.UTC(2027, 0, 3, 12), 7)).toEqual([
      '2026-12-28',
      '2026-12-29',
      '2026-12-30',
      '2026-12-31',
      '2027-01-01',
      '2027-01-02',
      '2027-01-03',
    ]);
    expect(lastDays(Date.UTC(2028, 2, 1, 0, 0, 0, 1), 2)).toEqual(['2028-02-29', '2028-03-01']);
  });

  it('makes the month the calendar month so far: one day on the 1st, 31 on the 31st', () => {
    expect(monthDays(Date.UTC(2026, 11, 1, 0, 0))).toEqual(['2026-12-01']);
    const march = monthDays(Date.UTC(2026, 2, 31, 23, 59));
    expect(march).toHaveLength(31);
    expect([march[0], march[30]]).toEqual(['2026-03-01', '2026-03-31']);
    expect(monthDays(Date.UTC(2028, 1, 29, 5))).toHaveLength(29);
  });

  it('gives today, the last N days and the month for one instant', () => {
    expect(periods(Date.UTC(2026, 11, 2, 8), 3)).toEqual({
      today: ['2026-12-02'],
      lastDays: ['2026-11-30', '2026-12-01', '2026-12-02'],
      month: ['2026-12-01', '2026-12-02'],
    });
  });
});

describe('cost', () => {
  it('multiplies exactly, with at least two decimals', () => {
    expect(cost(3, '0.035')).toBe('0.105');
    expect(cost(10, '0.02')).toBe('0.20');
    expect(cost(3, '0.1')).toBe('0.30');
    expect(cost(0, '0.02')).toBe('0.00');
    expect(cost(7, '2')).toBe('14.00');
    expect(cost(1_000_000, '0.000001')).toBe('1.000000');
    expect(money(4, { perImage: '0.25', currency: 'USD' })).toBe('1.00 USD');
    expect(money(4, { perImage: '0.25', currency: undefined })).toBe('1.00');
  });

  it('takes PRICE_PER_IMAGE and PRICE_CURRENCY from the configuration, and names a bad one', () => {
    const base = { DISCORD_TOKEN: 'x', PPINFRA_API_KEY: 'y' };
    const ok = loadConfig({ ...base, PRICE_PER_IMAGE: '0.02', PRICE_CURRENCY: 'USD' });
    expect(ok.ok && ok.config.price).toEqual({ perImage: '0.02', currency: 'USD' });
    const none = loadConfig({ ...base, PRICE_PER_IMAGE: '', PRICE_CURRENCY: 'USD' });
    expect(none.ok && none.config.price).toBeUndefined();
    for (const bad of ['-1', '1e-3', '0,02', '$0.02', '.5', 'free']) {
      const result = loadConfig({ ...base, PRICE_PER_IMAGE: bad });
      expect(result.ok ? [] : result.problems).toEqual([
        'PRICE_PER_IMAGE must be a non-negative decimal number with a dot, such as 0.02 (no currency sign)',
      ]);
    }
    const currency = loadConfig({ ...base, PRICE_PER_IMAGE: '1', PRICE_CURRENCY: 'US DOLLARS' });
    expect(currency.ok ? [] : currency.problems).toEqual([
      'PRICE_CURRENCY must be a short currency label such as USD or CNY (up to 8 letters, no spaces)',
    ]);
  });
});

describe('what a job at its end adds', () => {
  it('counts an image when the task produced one, whatever became of it', () => {
    const completed = { completedAt: 5, finishedAt: 6 };
    expect(usageOf(job('delivered', completed))).toEqual({ images: 1, edits: 0, upscales: 0, failed: 0, flagged: 0 });
    expect(
      usageOf(
        job('held', {
          ...completed,
          state: 'held',
          nsfw: { flagged: true, hasNsfwContents: true, detectionResult: null },
        }),
      ),
    ).toEqual({ images: 1, edits: 0, upscales: 0, failed: 0, flagged: 1 });
    expect(usageOf(job('upload', { ...completed, state: 'failed', error: { kind: 'upload_limit' } }))).toEqual({
      images: 1,
      edits: 0,
      upscales: 0,
      failed: 1,
      flagged: 0,
    });
    expect(usageOf(job('failed', { state: 'failed', finishedAt: 6, error: { kind: 'task_failed' } }))).toEqual({
      images: 0,
      edits: 0,
      upscales: 0,
      failed: 1,
      flagged: 0,
    });
    // Edits and upscales are billed at their own prices: counted apart from generations.
    expect(usageOf(job('edit', { ...completed, tool: 'edit' }))).toMatchObject({ images: 0, edits: 1, upscales: 0 });
    expect(usageOf(job('up', { ...completed, tool: 'upscale' }))).toMatchObject({ images: 0, edits: 0, upscales: 1 });
  });

  it('adds up a guild’s today, last 7 days and month, and its top requesters this month, from an injected clock', async () => {
    const shared = createLocalSharedState(createMemoryKeyValue());
    const ledger = createUsageLedger(shared);
    const at = (d: number, h = 12) => Date.UTC(2026, 11, d, h);
    const jobs = [
      job('a', { completedAt: at(30, 23), finishedAt: Date.UTC(2026, 10, 30, 23, 59) }), // November: the week, not the month
      job('b', { userId: 'u2', completedAt: at(1), finishedAt: at(1) }),
      job('c', { userId: 'u2', completedAt: at(3), finishedAt: at(3) }),
      job('d', {
        userId: 'u3',
        completedAt: at(3),
        finishedAt: at(3),
        state: 'held',
        nsfw: { flagged: true, hasNsfwContents: 1, detectionResult: null },
      }),
      job('e', { finishedAt: at(3), state: 'failed', error: { kind: 'timeout' } }),
      job('f', { guildId: 'g2', completedAt: at(3), finishedAt: at(3, 0) }),
      job('g', { guildId: null, completedAt: at(2), finishedAt: at(2) }),
    ];
    for (const j of jobs) await ledger.record(j);
    const usage = await guildUsage(ledger, 'g1', at(3, 18));
    expect(usage).toEqual({
      today: { images: 2, edits: 0, upscales: 0, failed: 1, flagged: 1 },
      lastDays: { images: 4, edits: 0, upscales: 0, failed: 1, flagged: 1 },
      month: { images: 3, edits: 0, upscales: 0, failed: 1, flagged: 1 },
      top: [
        { userId: 'u2', images: 2 },
        { userId: 'u3', images: 1 },
      ],
    });

    const report = await usageReport(ledger, at(3, 18), 7);
    expect(report.periods).toEqual({
      today: { from: '2026-12-03', to: '2026-12-03' },
      lastDays: { from: '2026-11-27', to: '2026-12-03', days: 7 },
      month: { from: '2026-12-01', to: '2026-12-03' },
    });
    expect(report.guilds.map((g) => [g.guildId, g.today.images, g.lastDays.images, g.month.images])).toEqual([
      ['g1', 2, 4, 3],
      ['dm', 0, 1, 1],
      ['g2', 1, 1, 1],
    ]);
    expect(report.total).toEqual({
      today: { images: 3, edits: 0, upscales: 0, failed: 1, flagged: 1 },
      lastDays: { images: 6, edits: 0, upscales: 0, failed: 1, flagged: 1 },
      month: { images: 5, edits: 0, upscales: 0, failed: 1, flagged: 1 },
    });
    // A day later, Dec 3 is no longer today; a week later, November is out of the last 7 days.
    expect((await guildUsage(ledger, 'g1', at(4))).today.images).toBe(0);
    expect((await guildUsage(ledger, 'g1', Date.UTC(2026, 11, 7, 0, 0))).lastDays.images).toBe(3);
    await shared.close();
  });
});

describe('installs for oneself in the ledger', () => {
  it('counts every place without the bot’s server install in one row of its own, named for the operator', async () => {
    const shared = createLocalSharedState(createMemoryKeyValue());
    const ledger = createUsageLedger(shared, { now: () => Date.UTC(2026, 11, 3, 12) });
    const at = Date.UTC(2026, 11, 3, 10);
    await ledger.record(job('a', { finishedAt: at, completedAt: at, place: 'guild' }));
    await ledger.record(job('b', { finishedAt: at, completedAt: at, place: 'guild_user_install' }));
    await ledger.record(job('c', { finishedAt: at, completedAt: at, guildId: null, place: 'bot_dm' }));
    await ledger.record(job('d', { finishedAt: at, completedAt: at, guildId: null, place: 'private' }));
    await ledger.record(job('e', { finishedAt: at, completedAt: at, guildId: null }));
    const report = await usageReport(ledger, Date.UTC(2026, 11, 3, 12), 7);
    expect(Object.fromEntries(report.guilds.map((g) => [rowName(g.guildId), g.today.images]))).toEqual({
      g1: 1,
      'installs for oneself (DMs, servers without the bot)': 3,
      'direct messages': 1,
    });
    await shared.close();
  });
});
