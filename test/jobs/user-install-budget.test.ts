// The daily budget of places without the bot's server install (USER_INSTALL_DAILY_BUDGET): one
// key for the bot's DM, conversations between others and servers that did not install it, apart
// from every server's own budget; 0 allows nothing. The same on both engines' limits.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisLimits } from '../../src/jobs/bullmq/limits.ts';
import { createLimits, type LimitSettings, type Refusal } from '../../src/jobs/limits.ts';
import { budgetKey, USER_INSTALL_BUDGET } from '../../src/domain/place.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';

const settings = (userInstallDailyBudget: number): LimitSettings => ({
  userMaxConcurrent: 10,
  userHourlyQuota: 10,
  guildDailyBudget: 5,
  maxJobsInFlight: 2,
  queueMax: 10,
  breakerThreshold: 2,
  breakerCooldownMs: 60_000,
  userInstallDailyBudget,
});

type Reserve = (userId: string, key: string | null) => Promise<Refusal | null>;

let redis: FakeRedis | undefined;
let connections: Redis[] = [];
let prefixes = 0;
beforeAll(async () => {
  if (!skipWithoutRedis) redis = await startRedis();
});
afterAll(async () => {
  await Promise.all(connections.map((c) => c.quit()));
  connections = [];
  await redis?.stop();
});

const ENGINES: [string, (budget: number) => Reserve][] = [
  [
    'in-process',
    (budget) => {
      const limits = createLimits(settings(budget));
      return async (userId, key) => {
        const refusal = limits.check(userId, key, 0);
        if (!refusal) limits.take(userId, key);
        return refusal;
      };
    },
  ],
  [
    'Redis',
    (budget) => {
      const connection = new Redis(redis!.url, { maxRetriesPerRequest: null });
      connections.push(connection);
      const limits = createRedisLimits(connection, settings(budget), { prefix: `b${++prefixes}:` });
      let jobs = 0;
      return (userId, key) => limits.reserve({ jobId: `j${++jobs}`, userId, guildId: key, queued: 0 });
    },
  ],
];

describe('the budget key', () => {
  it('is the server for a server that installed the bot (and for records from before), the one key elsewhere', () => {
    expect(budgetKey({ guildId: 'g', place: 'guild' })).toBe('g');
    expect(budgetKey({ guildId: 'g' })).toBe('g');
    expect(budgetKey({ guildId: null })).toBeNull();
    for (const place of ['guild_user_install', 'bot_dm', 'private'] as const)
      expect(budgetKey({ guildId: place === 'guild_user_install' ? 'g' : null, place })).toBe(USER_INSTALL_BUDGET);
  });
});

describe.each(ENGINES)('USER_INSTALL_DAILY_BUDGET (%s)', (name, limitsWith) => {
  const run = name === 'Redis' ? it.skipIf(skipWithoutRedis) : it;

  run('is shared by every member in every place without the bot, and leaves servers’ budgets alone', async () => {
    const reserve = limitsWith(2);
    expect(await reserve('alice', USER_INSTALL_BUDGET)).toBeNull();
    expect(await reserve('bob', USER_INSTALL_BUDGET)).toBeNull();
    expect(await reserve('carol', USER_INSTALL_BUDGET)).toMatchObject({ kind: 'guild_daily', limit: 2 });
    expect(await reserve('carol', 'g')).toBeNull();
  });

  run('is its own limit, even above the servers’ GUILD_DAILY_BUDGET', async () => {
    const reserve = limitsWith(7);
    for (let i = 0; i < 7; i++) expect(await reserve(`u${i}`, USER_INSTALL_BUDGET)).toBeNull();
    expect(await reserve('u7', USER_INSTALL_BUDGET)).toMatchObject({ kind: 'guild_daily', limit: 7 });
  });

  run('0 allows none', async () => {
    const reserve = limitsWith(0);
    const refusal = await reserve('alice', USER_INSTALL_BUDGET);
    expect(refusal).toMatchObject({ kind: 'guild_daily', limit: 0 });
    expect(Number.isFinite((refusal as { retryAt: number }).retryAt)).toBe(true);
    expect(await reserve('alice', 'g')).toBeNull();
  });
});
