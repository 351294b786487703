import { DiscordAPIError, PermissionFlagsBits, SlashCommandBuilder } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { caught, deferred, startHarness, type Harness } from './helpers.ts';

const imagine = new SlashCommandBuilder()
  .setName('imagine')
  .setDescription('Generate an image')
  .addStringOption((o) => o.setName('prompt').setDescription('What to draw').setRequired(true).setMaxLength(1000))
  .addStringOption((o) =>
    o
      .setName('size')
      .setDescription('Size')
      .addChoices({ name: 'Square', value: '1024*1024' }, { name: 'Wide', value: '1664*928' }),
  )
  .addIntegerOption((o) => o.setName('seed').setDescription('Seed').setMinValue(0));
const admin = new SlashCommandBuilder()
  .setName('imagine-admin')
  .setDescription('Admin')
  .setDefaultMemberPermissions(PermissionFlagsBits.ManageMessages)
  .addSubcommand((s) =>
    s
      .setName('ban')
      .setDescription('Ban a user')
      .addUserOption((o) => o.setName('who').setDescription('User').setRequired(true)),
  )
  .addSubcommandGroup((g) =>
    g
      .setName('quota')
      .setDescription('Quota')
      .addSubcommand((s) => s.setName('show').setDescription('Show')),
  );

describe('fake Discord: application commands', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('registers global and guild commands (PUT) and returns them with ids', async () => {
    h = await startHarness();
    const { client, discord } = h;
    const global = await client.application!.commands.set([imagine.toJSON(), admin.toJSON()]);
    expect([...global.values()].map((c) => c.name).sort()).toEqual(['imagine', 'imagine-admin']);
    expect(
      discord.commands
        .list()
        .map((c) => c.id)
        .sort(),
    ).toEqual([...global.keys()].sort());
    expect(discord.commands.list().find((c) => c.name === 'imagine-admin')?.default_member_permissions).toBe(
      String(PermissionFlagsBits.ManageMessages),
    );
    // Overwriting keeps the id of an unchanged name, like Discord.
    const again = await client.application!.commands.set([imagine.toJSON()]);
    expect([...again.keys()]).toEqual([[...global.values()].find((c) => c.name === 'imagine')?.id]);
    const fetched = await client.application!.commands.fetch();
    expect(fetched.size).toBe(1);

    const guildCommands = await client.application!.commands.set([admin.toJSON()], discord.guild.id);
    expect(guildCommands.first()?.guildId).toBe(discord.guild.id);
    expect(discord.commands.list(discord.guild.id)).toHaveLength(1);
    expect(discord.errors).toEqual([]);
  });

  it('slash() uses the registered command: its id, option types, subcommands and resolved users', async () => {
    h = await startHarness();
    const { client, discord } = h;
    await client.application!.commands.set([imagine.toJSON(), admin.toJSON()]);
    const seen = deferred<Record<string, unknown>[]>();
    const got: Record<string, unknown>[] = [];
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      got.push({
        commandId: interaction.commandId,
        group: interaction.options.getSubcommandGroup(false),
        sub: interaction.options.getSubcommand(false),
        who: interaction.options.getUser('who')?.username ?? null,
        whoIsMember: interaction.options.getMember('who') !== null,
        seed: interaction.options.getInteger('seed'),
      });
      await interaction.reply({ content: 'ok' });
      if (got.length === 3) seen.resolve(got);
    });
    const registered = discord.commands.list();
    discord.slash('imagine', { prompt: 'cat', seed: 7, size: '1024*1024' });
    discord.slash('imagine-admin ban', { who: 'bob' }, { user: 'mod' });
    discord.slash('imagine-admin quota show', {}, { user: 'mod' });
    const results = await seen.promise;
    expect(results).toEqual([
      {
        commandId: registered.find((c) => c.name === 'imagine')?.id,
        group: null,
        sub: null,
        who: null,
        whoIsMember: false,
        seed: 7,
      },
      {
        commandId: registered.find((c) => c.name === 'imagine-admin')?.id,
        group: null,
        sub: 'ban',
        who: 'bob',
        whoIsMember: true,
        seed: null,
      },
      {
        commandId: registered.find((c) => c.name === 'imagine-admin')?.id,
        group: 'quota',
        sub: 'show',
        who: null,
        whoIsMember: false,
        seed: null,
      },
    ]);
    expect(discord.errors).toEqual([]);
  });

  it("slash() refuses what Discord's client would not send for a registered command", async () => {
    h = await startHarness();
    const { client, discord } = h;
    await client.application!.commands.set([imagine.toJSON()]);
    expect(() => discord.slash('imagine', {})).toThrow(/required option 'prompt'/);
    expect(() => discord.slash('imagine', { prompt: 'x', colour: 'red' })).toThrow(/no option 'colour'/);
    expect(() => discord.slash('imagine', { prompt: 'x', size: '1*1' })).toThrow(/must be one of/);
    expect(() => discord.slash('imagine', { prompt: 'x', seed: 1.5 })).toThrow(/integer/);
  });

  it("registration errors are Discord's 50035", async () => {
    h = await startHarness();
    const { client, discord } = h;
    const upper = await caught(() => client.application!.commands.set([{ name: 'Imagine', description: 'x' }]));
    expect(upper).toBeInstanceOf(DiscordAPIError);
    expect((upper as DiscordAPIError).rawError).toMatchObject({
      code: 50035,
      errors: { 0: { name: { _errors: [{ code: 'APPLICATION_COMMAND_INVALID_NAME' }] } } },
    });
    const order = await caught(() =>
      client.application!.commands.set([
        {
          name: 'x',
          description: 'x',
          options: [
            { type: 3, name: 'a', description: 'a' },
            { type: 3, name: 'b', description: 'b', required: true },
          ],
        },
      ]),
    );
    expect((order as DiscordAPIError).rawError).toMatchObject({
      code: 50035,
      errors: { 0: { options: { _errors: [{ code: 'APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID' }] } } },
    });
    const tooLong = await caught(() => client.application!.commands.set([{ name: 'x', description: 'd'.repeat(101) }]));
    expect((tooLong as DiscordAPIError).code).toBe(50035);
    expect(discord.takeErrors().map((e) => e.code)).toEqual([50035, 50035, 50035]);
  });
});
