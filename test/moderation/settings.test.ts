import { describe, expect, it } from 'vitest';
import { createGuildSettingsStore, type OperatorDefaults } from '../../src/moderation/settings.ts';
import { createMemoryKeyValue } from '../../src/storage/key-value.ts';

const OPERATOR: OperatorDefaults = { reviewChannelId: '111', userHourlyQuota: 20, guildDailyBudget: 200 };

describe('guild settings', () => {
  it('follows the operator until a guild chooses: its review channel, spoilers, and the maximums', async () => {
    const settings = createGuildSettingsStore(createMemoryKeyValue(), OPERATOR);
    expect(await settings.get('g1')).toEqual({
      reviewChannelId: '111',
      reviewChannelSource: 'operator',
      moderatorRoleId: undefined,
      nsfwChannels: 'spoiler',
      sensitivity: 'standard',
      reviewAll: false,
      userHourlyQuota: 20,
      guildDailyBudget: 200,
      choices: {},
    });
    expect(settings.defaults).toBe(OPERATOR);
  });

  it('has no review channel at all when neither the operator nor the guild chose one', async () => {
    const settings = createGuildSettingsStore(createMemoryKeyValue(), { ...OPERATOR, reviewChannelId: undefined });
    expect(await settings.get('g1')).toMatchObject({ reviewChannelId: undefined, reviewChannelSource: 'none' });
    expect(await settings.update('g1', { reviewChannelId: '222' })).toMatchObject({
      reviewChannelId: '222',
      reviewChannelSource: 'guild',
    });
  });

  it("keeps each guild's choices apart and clears one with null, leaving the others", async () => {
    const settings = createGuildSettingsStore(createMemoryKeyValue(), OPERATOR);
    await settings.update('g1', {
      reviewChannelId: '222',
      moderatorRoleId: '333',
      nsfwChannels: 'review',
      userHourlyQuota: 5,
    });
    expect(await settings.get('g2')).toMatchObject({
      reviewChannelId: '111',
      moderatorRoleId: undefined,
      nsfwChannels: 'spoiler',
      userHourlyQuota: 20,
    });

    const cleared = await settings.update('g1', {
      reviewChannelId: null,
      moderatorRoleId: null,
      guildDailyBudget: undefined,
    });
    expect(cleared).toMatchObject({
      reviewChannelId: '111',
      reviewChannelSource: 'operator',
      moderatorRoleId: undefined,
      nsfwChannels: 'review',
      userHourlyQuota: 5,
      guildDailyBudget: 200,
    });
    expect(cleared.choices).toEqual({ nsfwChannels: 'review', userHourlyQuota: 5 });
  });

  it('lets a guild lower the limits, and the lower one wins when the operator later lowers the maximum', async () => {
    const kv = createMemoryKeyValue();
    await createGuildSettingsStore(kv, OPERATOR).update('g1', { userHourlyQuota: 10, guildDailyBudget: 150 });
    const lowered = createGuildSettingsStore(kv, { ...OPERATOR, userHourlyQuota: 4, guildDailyBudget: 300 });
    expect(await lowered.get('g1')).toMatchObject({
      userHourlyQuota: 4,
      guildDailyBudget: 150,
      choices: { userHourlyQuota: 10, guildDailyBudget: 150 },
    });
  });

  it('shares choices through the store: another process sees a change at its next read', async () => {
    const kv = createMemoryKeyValue();
    const one = createGuildSettingsStore(kv, OPERATOR);
    const two = createGuildSettingsStore(kv, OPERATOR);
    expect((await two.get('g1')).nsfwChannels).toBe('spoiler');
    await Promise.all([one.update('g1', { nsfwChannels: 'review' }), two.update('g1', { moderatorRoleId: '333' })]);
    expect(await one.get('g1')).toMatchObject({ nsfwChannels: 'review', moderatorRoleId: '333' });
  });

  it('keeps a guild’s sensitivity and review of every image, and clears them back to standard and off', async () => {
    const settings = createGuildSettingsStore(createMemoryKeyValue(), OPERATOR);
    expect(await settings.update('g1', { sensitivity: 'strict', reviewAll: true })).toMatchObject({
      sensitivity: 'strict',
      reviewAll: true,
      choices: { sensitivity: 'strict', reviewAll: true },
    });
    expect(await settings.get('g2')).toMatchObject({ sensitivity: 'standard', reviewAll: false });
    expect(await settings.update('g1', { reviewAll: false })).toMatchObject({
      sensitivity: 'strict',
      reviewAll: false,
    });
    expect(await settings.update('g1', { sensitivity: null, reviewAll: null })).toMatchObject({
      sensitivity: 'standard',
      reviewAll: false,
      choices: {},
    });
  });

  it('reads a sensitivity it does not know (written by another version) as standard', async () => {
    const kv = createMemoryKeyValue();
    await kv.set('guild:g1:sensitivity', 'paranoid');
    expect((await createGuildSettingsStore(kv, OPERATOR).get('g1')).sensitivity).toBe('standard');
  });
});
