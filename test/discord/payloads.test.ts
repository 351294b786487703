// What a real bot sends must pass the fake's OpenAPI validation and rules (no false positives),
// and come back in Discord's shape.
import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  ContainerBuilder,
  EmbedBuilder,
  MediaGalleryBuilder,
  MessageFlags,
  Routes,
  StringSelectMenuBuilder,
  TextDisplayBuilder,
} from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { caught, deferred, startHarness, type Harness } from './helpers.ts';

const PNG = Buffer.from('89504e470d0a1a0a0000000d494844520000040000000300080200000000000000', 'hex');

describe('realistic discord.js payloads are accepted', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('embeds with attachment:// images, buttons, selects, allowed mentions, edits keeping attachments', async () => {
    h = await startHarness();
    const { discord } = h;
    const done = deferred<unknown>();
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      done.resolve(
        await caught(async () => {
          await interaction.deferReply();
          const file = new AttachmentBuilder(PNG, { name: 'qwen-1.png', description: 'a cat' });
          const embed = new EmbedBuilder()
            .setTitle('a cat')
            .setDescription('Prompt: **a cat**')
            .setColor(0x5865f2)
            .setImage('attachment://qwen-1.png')
            .addFields({ name: 'Size', value: '1024×768', inline: true }, { name: 'Seed', value: '42', inline: true })
            .setFooter({ text: 'Qwen-Image · 3.2 s' })
            .setAuthor({ name: interaction.user.username })
            .setTimestamp(new Date(0));
          const buttons = new ActionRowBuilder<ButtonBuilder>().addComponents(
            new ButtonBuilder()
              .setCustomId('imagine:again:1')
              .setLabel('Again')
              .setStyle(ButtonStyle.Primary)
              .setEmoji('🔁'),
            new ButtonBuilder().setCustomId('imagine:delete:1').setLabel('Delete').setStyle(ButtonStyle.Danger),
            new ButtonBuilder().setURL('https://example.com/x.png').setLabel('Open').setStyle(ButtonStyle.Link),
          );
          const select = new ActionRowBuilder<StringSelectMenuBuilder>().addComponents(
            new StringSelectMenuBuilder()
              .setCustomId('imagine:size')
              .setPlaceholder('Size')
              .addOptions({ label: 'Square', value: '1024*1024', default: true }),
          );
          const message = await interaction.editReply({
            embeds: [embed],
            files: [file],
            components: [buttons, select],
            allowedMentions: { parse: [] },
          });
          // Edit the text only: the attachment is kept (discord.js sends attachments: [{ id }]).
          await interaction.editReply({ content: 'done', attachments: [...message.attachments.values()] });
          await interaction.followUp({
            content: `<@${interaction.user.id}> here`,
            allowedMentions: { users: [interaction.user.id] },
            flags: MessageFlags.SuppressNotifications,
          });
        }),
      );
    });
    const interaction = discord.slash('imagine', { prompt: 'a cat' });
    expect(await done.promise).toBeUndefined();
    expect(discord.errors).toEqual([]);

    const original = interaction.original()!;
    expect(original.content).toBe('done');
    expect(original.attachments).toHaveLength(1);
    expect(original.attachments[0]).toMatchObject({
      filename: 'qwen-1.png',
      description: 'a cat',
      width: 1024,
      height: 768,
    });
    // attachment:// resolved to the uploaded file, as Discord does.
    expect(original.embeds[0]).toMatchObject({
      type: 'rich',
      title: 'a cat',
      image: { url: original.attachments[0]!.url, width: 1024, height: 768 },
    });
    expect(original.components?.[0]).toMatchObject({
      type: 1,
      id: 1,
      components: [{ custom_id: 'imagine:again:1', id: 2 }, {}, { url: 'https://example.com/x.png' }],
    });
    expect(original.edited_timestamp).not.toBeNull();
    const [followup] = interaction.followups();
    expect(followup?.mentions.map((u) => u.id)).toEqual([interaction.user.id]);
    expect(followup?.flags).toBe(MessageFlags.SuppressNotifications);
  });

  it('components v2 (container, text display, media gallery)', async () => {
    h = await startHarness();
    const { discord } = h;
    const done = deferred<unknown>();
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      done.resolve(
        await caught(() =>
          interaction.reply({
            flags: MessageFlags.IsComponentsV2,
            files: [new AttachmentBuilder(PNG, { name: 'a.png' })],
            components: [
              new ContainerBuilder()
                .addTextDisplayComponents(new TextDisplayBuilder().setContent('## a cat'))
                .addMediaGalleryComponents(
                  new MediaGalleryBuilder().addItems((item) => item.setURL('attachment://a.png')),
                ),
            ],
          }),
        ),
      );
    });
    const interaction = discord.slash('imagine', { prompt: 'a cat' });
    expect(await done.promise).toBeUndefined();
    expect(discord.errors).toEqual([]);
    expect(interaction.original()).toMatchObject({ flags: MessageFlags.IsComponentsV2, components: [{ type: 17 }] });
  });

  it('the application and the bot user through discord.js', async () => {
    h = await startHarness();
    const { discord, client } = h;
    const app = await client.application!.fetch();
    expect(app.id).toBe(discord.applicationId);
    expect(app.bot?.id).toBe(discord.botUser.id);
    expect(app.owner?.id).toBe(discord.user('owner').id);
    const me = (await client.rest.get(Routes.user())) as { id: string; bot: boolean };
    expect(me).toMatchObject({ id: discord.botUser.id, bot: true });
    expect(discord.errors).toEqual([]);
  });

  it('guild, member, channel and user lookups through discord.js', async () => {
    h = await startHarness();
    const { discord, client } = h;
    const guild = await client.guilds.fetch({ guild: discord.guild.id, force: true });
    expect(guild.name).toBe('Test Guild');
    const member = await guild.members.fetch({ user: discord.user('mod').id, force: true });
    expect(member.permissions.has('ManageMessages')).toBe(true);
    const alice = await guild.members.fetch({ user: discord.user('alice').id, force: true });
    expect(alice.permissions.has('ManageMessages')).toBe(false);
    const channel = await client.channels.fetch(discord.channel('nsfw').id, { force: true });
    expect(channel && 'nsfw' in channel ? channel.nsfw : null).toBe(true);
    expect(discord.errors).toEqual([]);
  });
});
