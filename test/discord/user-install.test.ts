// The fake Discord where the bot is not a member: its own DM (context 1), conversations between
// others (context 2), servers that did not install it (a member's user install), and what the
// bot may and may not do there, against the real discord.js client.
import {
  AttachmentBuilder,
  DiscordAPIError,
  InteractionContextType,
  MessageFlags,
  SlashCommandBuilder,
  ApplicationIntegrationType,
} from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_BOT_PERMISSIONS, EXTERNAL_APP_PERMISSIONS, PermissionBits } from '../fakes/discord/permissions.ts';
import type { FakeDiscordOptions } from '../fakes/discord/types.ts';
import { caught, startHarness, type Harness } from './helpers.ts';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452000000030000000208060000009d74666a', 'hex');

/** The first guild installed the app; 'Elsewhere' did not, but alice and bob are members. */
const WITH_ELSEWHERE: FakeDiscordOptions = {
  guilds: [
    { name: 'Test Guild' },
    {
      name: 'Elsewhere',
      botInstalled: false,
      members: [{ user: 'alice' }, { user: 'bob' }],
      channels: [{ name: 'chat' }],
    },
  ],
};

const everywhere = new SlashCommandBuilder()
  .setName('imagine')
  .setDescription('Generate an image')
  .addStringOption((o) => o.setName('prompt').setDescription('What').setRequired(true))
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall, ApplicationIntegrationType.UserInstall)
  .setContexts(InteractionContextType.Guild, InteractionContextType.BotDM, InteractionContextType.PrivateChannel);
const staff = new SlashCommandBuilder()
  .setName('imagine-review')
  .setDescription('Review')
  .setIntegrationTypes(ApplicationIntegrationType.GuildInstall)
  .setContexts(InteractionContextType.Guild);

describe('fake Discord: user installs, DMs and conversations without the bot', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it("the bot's DM (context 1): user instead of member, no guild, the user's install, a DM channel", async () => {
    h = await startHarness();
    const { discord } = h;
    const seen: unknown[] = [];
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      seen.push([
        interaction.context,
        interaction.inGuild(),
        interaction.guildId,
        interaction.authorizingIntegrationOwners.userId,
        interaction.authorizingIntegrationOwners.guildId,
      ]);
      await interaction.deferReply();
      await interaction.editReply({ content: 'here', files: [new AttachmentBuilder(PNG, { name: 'a.png' })] });
    });
    const it = discord.slash('imagine', { prompt: 'a cat' }, { context: 'bot_dm' });
    const original = await it.waitForOriginal((m) => m.attachments.length === 1);
    const alice = discord.user('alice');
    expect(it.payload).toMatchObject({
      context: 1,
      user: { id: alice.id },
      channel: { type: 1, recipients: [{ id: alice.id }] },
      authorizing_integration_owners: { 1: alice.id },
      app_permissions: DEFAULT_BOT_PERMISSIONS.toString(),
    });
    expect(it.payload).not.toHaveProperty('guild_id');
    expect(it.payload).not.toHaveProperty('member');
    expect(it.where).toBe('bot_dm');
    expect(seen).toEqual([[InteractionContextType.BotDM, false, null, alice.id, null]]);
    expect(original.channel_id).toBe(discord.dmChannel('alice').id);
    // The older `dm: true` is the guild install's DM: "0" maps to "0".
    const legacy = discord.slash('imagine', { prompt: 'x' }, { dm: true });
    expect(legacy.payload).toMatchObject({ context: 1, authorizing_integration_owners: { 0: '0' } });
    await legacy.waitForOriginal((m) => m.attachments.length === 1);
    expect(discord.errors).toEqual([]);
  });

  it('a DM or group DM between others (context 2): answered through the token only; the channel is Missing Access', async () => {
    h = await startHarness();
    const { discord, client } = h;
    const errors: unknown[] = [];
    const fetched: string[] = [];
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.deferReply();
      await interaction.editReply({ content: 'for you two' });
      const followup = await interaction.followUp({ content: 'only you', flags: MessageFlags.Ephemeral });
      await interaction.webhook.editMessage(followup, { content: 'only you, edited' });
      fetched.push((await interaction.fetchReply(followup.id)).content, (await interaction.fetchReply()).content);
      errors.push(
        await caught(() =>
          client.rest.post(`/channels/${interaction.channelId}/messages`, { body: { content: 'hi' } }),
        ),
      );
      errors.push(await caught(() => client.rest.get(`/channels/${interaction.channelId}`)));
      await interaction.followUp({ content: 'done' });
    });
    discord.expectError({ code: 50001, status: 403 }, 2);
    const dm = discord.slash('imagine', { prompt: 'a cat' }, { context: 'private' });
    await dm.waitForFollowup((m) => m.content === 'done');
    expect(dm.payload).toMatchObject({
      context: 2,
      user: { id: discord.user('alice').id },
      authorizing_integration_owners: { 1: discord.user('alice').id },
      channel: { type: 1, recipients: [{ username: 'alice' }, { username: 'bob' }] },
      app_permissions: EXTERNAL_APP_PERMISSIONS.toString(),
    });
    expect(dm.payload).not.toHaveProperty('guild_id');
    expect(dm.original()?.content).toBe('for you two');
    const [ephemeral] = dm.followups();
    expect(ephemeral).toMatchObject({ content: 'only you, edited', flags: MessageFlags.Ephemeral });
    expect(errors.map((e) => [(e as DiscordAPIError).status, (e as DiscordAPIError).code])).toEqual([
      [403, 50001],
      [403, 50001],
    ]);
    expect(fetched.slice(0, 2)).toEqual(['only you, edited', 'for you two']);

    expect(discord.expectedErrors).toHaveLength(2);
    discord.expectError({ code: 50001, status: 403 }, 2);
    const group = discord.slash(
      'imagine',
      { prompt: 'a dog' },
      { context: 'private', with: ['alice', 'mod'], user: 'bob' },
    );
    await group.waitForFollowup((m) => m.content === 'done');
    expect(group.payload).toMatchObject({
      context: 2,
      channel: { type: 3 },
      authorizing_integration_owners: { 1: discord.user('bob').id },
    });
    expect(() => discord.slash('imagine', { prompt: 'x' }, { context: 'private', userInstall: false })).toThrow(
      /only a user install/,
    );
    expect(discord.errors).toEqual([]);
  });

  it("a server that did not install the bot: context 0 with the member, the user's install, no gateway guild, Missing Access on its routes", async () => {
    h = await startHarness(WITH_ELSEWHERE);
    const { discord, client } = h;
    const elsewhere = discord.guilds.find((g) => g.name === 'Elsewhere')!;
    expect([...client.guilds.cache.values()].map((g) => g.name)).toEqual(['Test Guild']);
    const refused: unknown[] = [];
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.reply({ content: 'hello' });
      refused.push(
        await caught(() =>
          client.rest.post(`/channels/${interaction.channelId}/messages`, { body: { content: 'hi' } }),
        ),
      );
      refused.push(
        await caught(() =>
          client.rest.patch(`/channels/${interaction.channelId}/messages/1`, { body: { content: 'hi' } }),
        ),
      );
      refused.push(await caught(() => client.rest.get(`/guilds/${elsewhere.id}`)));
      refused.push(
        await caught(() =>
          client.rest.put(`/applications/${discord.applicationId}/guilds/${elsewhere.id}/commands`, { body: [] }),
        ),
      );
      await interaction.followUp({ content: 'done' });
    });
    discord.expectError({ code: 50001, status: 403 }, 4);
    const it = discord.slash('imagine', { prompt: 'a cat' }, { context: 'guild_user_install' });
    await it.waitForFollowup((m) => m.content === 'done');
    const alice = discord.user('alice');
    expect(it.payload).toMatchObject({
      context: 0,
      guild_id: elsewhere.id,
      member: { user: { id: alice.id } },
      authorizing_integration_owners: { 1: alice.id },
      app_permissions: EXTERNAL_APP_PERMISSIONS.toString(),
      channel: { name: 'chat' },
    });
    expect(it.where).toBe('guild_user_install');
    expect(it.isEphemeral).toBe(false);
    expect(refused.map((e) => (e as DiscordAPIError).code)).toEqual([50001, 50001, 50001, 50001]);
    h.onInteraction(async (interaction) => {
      if (interaction.isChatInputCommand()) await interaction.reply({ content: 'done' });
    });
    // In the server that installed it, a member who also installed it lists both.
    const both = discord.slash('imagine', { prompt: 'x' }, { userInstall: true });
    expect(both.payload).toMatchObject({
      context: 0,
      authorizing_integration_owners: { 0: discord.guild.id, 1: alice.id },
    });
    await both.waitForOriginal((m) => m.content === 'done');
    expect(discord.errors).toEqual([]);
  });

  it('a server that lets external apps answer only privately: every response is forced ephemeral', async () => {
    h = await startHarness({
      guilds: [
        { name: 'Test Guild' },
        { name: 'Strict', botInstalled: false, externalApps: 'ephemeral', members: [{ user: 'alice' }] },
      ],
    });
    const { discord } = h;
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.deferReply();
      await interaction.editReply({ content: 'public?' });
      await interaction.followUp({ content: 'and this?' });
    });
    const it = discord.slash('imagine', { prompt: 'a cat' }, { context: 'guild_user_install' });
    await it.waitForFollowup();
    expect(it.forcedEphemeral).toBe(true);
    expect(BigInt((it.payload.member as { permissions: string }).permissions) & PermissionBits.UseExternalApps).toBe(
      0n,
    );
    expect(it.messages().map((m) => [m.content, (m.flags ?? 0) & MessageFlags.Ephemeral])).toEqual([
      ['public?', 64],
      ['and this?', 64],
    ]);
    // The same member can use external apps publicly where the server allows it.
    h.onInteraction(async (interaction) => {
      if (interaction.isChatInputCommand()) await interaction.reply({ content: 'hi' });
    });
    const open = discord.slash('imagine', { prompt: 'x' }, { context: 'guild' });
    await open.waitForOriginal();
    expect(open.isEphemeral).toBe(false);
    expect(discord.errors).toEqual([]);
  });

  it('DMs: the bot opens the channel; a user who refuses DMs answers 50007', async () => {
    h = await startHarness();
    const { discord, client } = h;
    const alice = await client.users.fetch(discord.user('alice').id);
    await alice.send('first');
    discord.refuseDms('alice');
    discord.expectError(50007);
    const refused = await caught(() => alice.send('second'));
    expect(refused).toBeInstanceOf(DiscordAPIError);
    expect([
      (refused as DiscordAPIError).status,
      (refused as DiscordAPIError).code,
      (refused as DiscordAPIError).message,
    ]).toEqual([403, 50007, 'Cannot send messages to this user']);
    discord.refuseDms('alice', false);
    await alice.send('third');
    expect(discord.messages(discord.dmChannel('alice').id).map((m) => m.content)).toEqual(['first', 'third']);
    expect(discord.errors).toEqual([]);
  });

  it('an app only the member installed gets 5 follow-ups per interaction (400 40094 after), a server install any number', async () => {
    h = await startHarness();
    const { discord } = h;
    const outcomes: (string | number)[][] = [];
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.deferReply();
      const row: (string | number)[] = [];
      for (let i = 1; i <= 6; i++) {
        const error = await caught(() => interaction.followUp({ content: `${i}` }));
        row.push(error === undefined ? 'ok' : (error as DiscordAPIError).code);
      }
      outcomes.push(row);
    });
    discord.expectError(40094);
    await discord.slash('imagine', { prompt: 'x' }, { context: 'bot_dm' }).waitForFollowup((m) => m.content === '5');
    await expect.poll(() => outcomes.length).toBe(1);
    await discord.slash('imagine', { prompt: 'x' }).waitForFollowup((m) => m.content === '6');
    await expect.poll(() => outcomes.length).toBe(2);
    expect(outcomes).toEqual([
      ['ok', 'ok', 'ok', 'ok', 'ok', 40094],
      ['ok', 'ok', 'ok', 'ok', 'ok', 'ok'],
    ]);
    expect(discord.errors).toEqual([]);
  });

  it('the token lives 15 minutes: edits and follow-ups past it answer 401 50027', async () => {
    h = await startHarness();
    const { discord } = h;
    const results: unknown[] = [];
    let pass = 0;
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.deferReply();
      await new Promise<void>((resolve) => {
        const wait = () => (pass > 0 ? resolve() : setTimeout(wait, 5));
        wait();
      });
      results.push(await caught(() => interaction.editReply({ content: 'late' })));
      results.push(await caught(() => interaction.followUp({ content: 'late' })));
    });
    const it = discord.slash('imagine', { prompt: 'a cat' }, { context: 'bot_dm' });
    await it.waitForCallback();
    it.elapse(15 * 60_000 + 1);
    expect(it.tokenValid()).toBe(false);
    discord.expectError(50027, 2);
    pass = 1;
    await discord.waitForRequest(
      (r) => r.status === 401 && r.method === 'POST' && r.route === '/webhooks/{webhook_id}/{webhook_token}',
    );
    await expect.poll(() => results.length).toBe(2);
    expect(results.map((e) => [(e as DiscordAPIError).status, (e as DiscordAPIError).code])).toEqual([
      [401, 50027],
      [401, 50027],
    ]);
    expect(discord.errors).toEqual([]);
  });

  it('registration keeps integration_types and contexts, refuses values outside the schema, and the client offers commands only where registered', async () => {
    h = await startHarness(WITH_ELSEWHERE);
    const { discord, client } = h;
    await client.application!.commands.set([everywhere.toJSON(), staff.toJSON()]);
    expect(discord.commands.list().map((c) => [c.name, c.integration_types, c.contexts])).toEqual([
      ['imagine', [0, 1], [0, 1, 2]],
      ['imagine-review', [0], [0]],
    ]);
    for (const bad of [
      { integration_types: [2] },
      { integration_types: [] },
      { contexts: [3] },
      { contexts: [0, 0] },
    ]) {
      const error = await caught(() =>
        client.rest.put(`/applications/${discord.applicationId}/commands`, {
          body: [{ name: 'x', description: 'x', ...bad }],
        }),
      );
      expect((error as DiscordAPIError).code, JSON.stringify(bad)).toBe(50035);
    }
    expect(discord.takeErrors().map((e) => e.code)).toEqual([50035, 50035, 50035, 50035]);
    h.onInteraction(async (interaction) => {
      if (interaction.isChatInputCommand()) await interaction.reply({ content: 'ok' });
    });
    expect(() => discord.slash('imagine-review', {}, { context: 'bot_dm' })).toThrow(/contexts \[0\], not 1/);
    expect(() => discord.slash('imagine-review', {}, { context: 'guild_user_install' })).toThrow(
      /integration types \[0\]/,
    );
    // In a server that installed the bot, only the guild install authorizes a guild-install-only command.
    const review = discord.slash('imagine-review', {}, { user: 'mod', userInstall: true });
    expect(review.payload.authorizing_integration_owners).toEqual({ 0: discord.guild.id });
    for (const context of ['guild', 'guild_user_install', 'bot_dm', 'private'] as const) {
      await discord.slash('imagine', { prompt: 'x' }, { context }).waitForOriginal();
    }
    expect(discord.errors).toEqual([]);
  });
});
