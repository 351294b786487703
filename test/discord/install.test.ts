// Where the bot is when an interaction arrives (src/discord/install.ts), as a table of raw
// payload fields, then against the interactions the fake Discord sends the real discord.js client.
import { describe, expect, it } from 'vitest';
import {
  canPostInChannel,
  factsOf,
  forInstall,
  hasReviewDesk,
  missingPermissions,
  mustBeEphemeral,
  nsfwPolicy,
  placeOf,
  usesUserInstallBudget,
  type InteractionFacts,
  type Place,
} from '../../src/discord/install.ts';
import { EXTERNAL_APP_PERMISSIONS, PermissionBits } from '../fakes/discord/permissions.ts';
import { deferred, startHarness } from './helpers.ts';

const GUILD = '111111111111111111';
const USER = '222222222222222222';

describe('placeOf', () => {
  it.each<[string, InteractionFacts, Place]>([
    ['a server that installed the bot', { context: 0, guildId: GUILD, owners: { 0: GUILD } }, 'guild'],
    [
      'a server that installed it, the member too',
      { context: 0, guildId: GUILD, owners: { 0: GUILD, 1: USER } },
      'guild',
    ],
    ['a server that did not install it', { context: 0, guildId: GUILD, owners: { 1: USER } }, 'guild_user_install'],
    [
      'another server installed it, not this one',
      { context: 0, guildId: GUILD, owners: { 0: '333333333333333333', 1: USER } },
      'guild_user_install',
    ],
    ["the bot's DM, user install", { context: 1, guildId: null, owners: { 1: USER }, channelType: 1 }, 'bot_dm'],
    ["the bot's DM, guild install", { context: 1, owners: { 0: '0' } }, 'bot_dm'],
    ['a DM between others', { context: 2, owners: { 1: USER }, channelType: 1 }, 'private'],
    ['a group DM', { context: 2, owners: { 1: USER }, channelType: 3 }, 'private'],
    ['an old guild payload (no context, no owners)', { guildId: GUILD }, 'guild'],
    ['an old DM payload', { guildId: null, channelType: 1 }, 'bot_dm'],
    ['no context, a group DM channel', { channelType: 3 }, 'private'],
  ])('%s', (_name, facts, place) => {
    expect(placeOf(facts)).toBe(place);
  });
});

describe('what follows from the place', () => {
  it.each<[Place, { post: boolean; desk: boolean; budget: boolean; spoiler: string; hold: string }]>([
    ['guild', { post: true, desk: true, budget: false, spoiler: 'review', hold: 'review' }],
    ['guild_user_install', { post: false, desk: false, budget: true, spoiler: 'withhold', hold: 'withhold' }],
    ['bot_dm', { post: true, desk: false, budget: true, spoiler: 'spoiler', hold: 'hold' }],
    ['private', { post: false, desk: false, budget: true, spoiler: 'withhold', hold: 'withhold' }],
  ])('%s', (place, expected) => {
    expect({
      post: canPostInChannel(place),
      desk: hasReviewDesk(place),
      budget: usesUserInstallBudget(place),
      spoiler: nsfwPolicy(place, 'spoiler'),
      hold: nsfwPolicy(place, 'hold'),
    }).toEqual(expected);
  });

  const withApps = (PermissionBits.ViewChannel | PermissionBits.UseExternalApps).toString();
  const withoutApps = PermissionBits.ViewChannel.toString();
  it.each<[Place, bigint | string | null, boolean]>([
    ['guild_user_install', withoutApps, true],
    ['guild_user_install', withApps, false],
    ['guild_user_install', PermissionBits.UseExternalApps, false],
    ['guild_user_install', null, true],
    ['guild_user_install', 'not a number', true],
    ['guild', withoutApps, false],
    ['bot_dm', null, false],
    ['private', null, false],
  ])('mustBeEphemeral(%s, %s) is %s', (place, perms, expected) => {
    expect(mustBeEphemeral(place, perms)).toBe(expected);
  });

  it.each<[string, bigint | string | null, string[]]>([
    ['both', (PermissionBits.AttachFiles | PermissionBits.EmbedLinks).toString(), []],
    ['an external app', EXTERNAL_APP_PERMISSIONS, []],
    ['no attach', PermissionBits.EmbedLinks, ['AttachFiles']],
    ['no embeds', PermissionBits.AttachFiles.toString(), ['EmbedLinks']],
    ['nothing', '0', ['AttachFiles', 'EmbedLinks']],
    ['not sent', null, []],
  ])('missingPermissions: %s', (_name, perms, missing) => {
    expect(missingPermissions(perms)).toEqual(missing);
  });
});

describe('forInstall', () => {
  const commands = [
    { name: 'imagine', description: 'd', integration_types: [0, 1], contexts: [0, 1, 2] },
    { name: 'imagine-review', description: 'd', integration_types: [0], contexts: [0] },
  ];
  it('keeps what each command declares with USER_INSTALL on', () => {
    expect(forInstall(commands, { userInstall: true })).toEqual(commands);
  });
  it('makes every command guild install and guild context only with USER_INSTALL off, without touching the input', () => {
    const before = structuredClone(commands);
    expect(forInstall(commands, { userInstall: false }).map((c) => [c.name, c.integration_types, c.contexts])).toEqual([
      ['imagine', [0], [0]],
      ['imagine-review', [0], [0]],
    ]);
    expect(commands).toEqual(before);
  });
});

describe('factsOf a discord.js interaction from the fake Discord', () => {
  it('gives the place the fake dispatched in, its forced ephemeral and the app permissions', async () => {
    const h = await startHarness({
      guilds: [
        {
          name: 'Test Guild',
          everyonePermissions: ['ViewChannel', 'SendMessages'],
          botPermissions: ['ViewChannel', 'SendMessages', 'EmbedLinks'],
        },
        { name: 'Strict', botInstalled: false, externalApps: 'ephemeral', members: [{ user: 'alice' }] },
        { name: 'Open', botInstalled: false, members: [{ user: 'alice' }] },
      ],
    });
    try {
      const { discord } = h;
      const got: InteractionFacts[] = [];
      const all = deferred();
      h.onInteraction(async (interaction) => {
        if (!interaction.isChatInputCommand()) return;
        got.push(factsOf(interaction));
        await interaction.reply({ content: 'ok' });
        if (got.length === 5) all.resolve();
      });
      const its = [
        discord.slash('imagine', { prompt: 'x' }),
        discord.slash('imagine', { prompt: 'x' }, { context: 'guild_user_install', guild: 'Strict' }),
        discord.slash('imagine', { prompt: 'x' }, { context: 'guild_user_install', guild: 'Open' }),
        discord.slash('imagine', { prompt: 'x' }, { context: 'bot_dm' }),
        discord.slash('imagine', { prompt: 'x' }, { context: 'private', with: ['bob', 'mod'] }),
      ];
      await all.promise;
      const rows = got.map((facts) => {
        const place = placeOf(facts);
        return [place, mustBeEphemeral(place, facts.memberPermissions), missingPermissions(facts.appPermissions)];
      });
      expect(rows).toEqual([
        ['guild', false, ['AttachFiles']],
        ['guild_user_install', true, []],
        ['guild_user_install', false, []],
        ['bot_dm', false, []],
        ['private', false, []],
      ]);
      expect(its.map((it) => [it.where, it.forcedEphemeral])).toEqual(
        rows.map(([place, ephemeral]) => [place, ephemeral]),
      );
      expect(discord.errors).toEqual([]);
    } finally {
      await h.close();
    }
  });
});
