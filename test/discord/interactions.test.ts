import {
  ActionRowBuilder,
  AttachmentBuilder,
  ButtonBuilder,
  ButtonStyle,
  MessageFlags,
  ModalBuilder,
  StringSelectMenuBuilder,
  TextInputBuilder,
  TextInputStyle,
} from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startHarness, type Harness } from './helpers.ts';

// A small but real PNG (1x1) followed by filler, so the bytes are distinctive.
const PNG = Buffer.concat([
  Buffer.from('89504e470d0a1a0a0000000d49484452000000030000000208060000009d74666a', 'hex'),
  Buffer.from('some image bytes \u0000\u0001\u00ff', 'utf8'),
]);

describe('fake Discord: interactions against the real discord.js client', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('deferReply then editReply with a file: the attachment bytes are kept and served', async () => {
    h = await startHarness();
    const { discord } = h;
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.deferReply();
      await interaction.editReply({ content: 'done', files: [new AttachmentBuilder(PNG, { name: 'x.png' })] });
    });

    const interaction = discord.slash('imagine', { prompt: 'a cat' });
    const callback = await interaction.waitForCallback();
    expect(callback.type).toBe(5);
    const message = await interaction.waitForOriginal((m) => m.attachments.length === 1);

    expect(message.content).toBe('done');
    const [attachment] = message.attachments;
    expect(attachment).toMatchObject({
      filename: 'x.png',
      size: PNG.length,
      content_type: 'image/png',
      width: 3,
      height: 2,
    });
    expect(discord.attachmentBytes(attachment!).equals(PNG)).toBe(true);
    expect(discord.files(message)[0]?.bytes.equals(PNG)).toBe(true);
    // The URL points at the fake and serves the same bytes.
    const served = Buffer.from(await (await fetch(attachment!.url)).arrayBuffer());
    expect(served.equals(PNG)).toBe(true);

    // discord.js sent the edit as multipart: payload_json + files[0], without Authorization.
    const edit = discord.requests.find((r) => r.method === 'PATCH');
    expect(edit?.route).toBe('/webhooks/{webhook_id}/{webhook_token}/messages/@original');
    expect(edit?.headers['content-type']).toMatch(/^multipart\/form-data; boundary=/);
    expect(edit?.headers.authorization).toBeUndefined();
    expect(edit?.files.map((f) => f.field)).toEqual(['files[0]']);
    expect(edit?.body).toMatchObject({ content: 'done', attachments: [{ id: '0' }] });
    const callbackRequest = discord.requests.find((r) => r.route?.endsWith('/callback'));
    expect(callbackRequest?.query).toEqual({ with_response: 'false' });
    expect(callbackRequest?.status).toBe(204);
    expect(callbackRequest?.headers['user-agent']).toMatch(
      /^DiscordBot \(https:\/\/discord\.js\.org, [\d.]+\) discord\.js\//,
    );
    expect(discord.errors).toEqual([]);
    expect(h.handlerErrors).toEqual([]);
  });

  it("the interaction payload looks like Discord's and discord.js reads it", async () => {
    h = await startHarness();
    const { discord } = h;
    const seen: Record<string, unknown>[] = [];
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      seen.push({
        prompt: interaction.options.getString('prompt'),
        steps: interaction.options.getInteger('steps'),
        nsfw: interaction.channel && 'nsfw' in interaction.channel ? interaction.channel.nsfw : null,
        user: interaction.user.username,
        locale: interaction.locale,
        canManage: interaction.memberPermissions?.has('ManageMessages'),
        appCanAttach: interaction.appPermissions.has('AttachFiles'),
      });
      await interaction.reply({ content: 'hi', flags: MessageFlags.Ephemeral });
    });

    const a = discord.slash('imagine', { prompt: 'cat', steps: 20 }, { channel: 'nsfw', user: 'mod', locale: 'fr' });
    await a.waitForCallback();
    const b = discord.slash('imagine', { prompt: 'dog' }, { user: 'bob' });
    await b.waitForCallback();

    expect(seen).toEqual([
      { prompt: 'cat', steps: 20, nsfw: true, user: 'mod', locale: 'fr', canManage: true, appCanAttach: true },
      { prompt: 'dog', steps: null, nsfw: false, user: 'bob', locale: 'en-US', canManage: false, appCanAttach: true },
    ]);
    expect(a.isEphemeral).toBe(true);
    expect(a.original()).toMatchObject({
      content: 'hi',
      flags: 64,
      type: 20,
      interaction_metadata: { id: a.id, type: 2 },
    });
    expect(a.payload).toMatchObject({
      type: 2,
      version: 1,
      context: 0,
      locale: 'fr',
      guild_id: discord.guild.id,
      channel_id: discord.channel('nsfw').id,
      channel: { id: discord.channel('nsfw').id, type: 0, nsfw: true, name: 'nsfw' },
      data: {
        name: 'imagine',
        type: 1,
        options: [
          { name: 'prompt', type: 3, value: 'cat' },
          { name: 'steps', type: 4, value: 20 },
        ],
      },
      entitlements: [],
      authorizing_integration_owners: { 0: discord.guild.id },
    });
    expect(typeof (a.payload.member as { permissions: unknown }).permissions).toBe('string');
    expect(discord.errors).toEqual([]);
  });

  it('reply with withResponse, follow-ups (ephemeral too), fetch and delete', async () => {
    h = await startHarness();
    const { discord } = h;
    const results: Record<string, unknown> = {};
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      const response = await interaction.reply({ content: 'first', withResponse: true });
      results.resourceContent = response.resource?.message?.content;
      results.responseId = response.interaction.responseMessageId;
      await interaction.followUp({ content: 'second', flags: MessageFlags.Ephemeral });
      const third = await interaction.followUp('third');
      results.fetched = (await interaction.fetchReply()).content;
      await interaction.deleteReply(third);
    });
    const interaction = discord.slash('ping');
    await interaction.waitForFollowup((m) => m.content === 'second');
    await discord.waitForMessage((m) => m.content === 'third');
    // Wait until the third follow-up is deleted: then the handler is done.
    await discord.waitForRequest((r) => r.method === 'DELETE' && r.status === 204);

    expect(results.resourceContent).toBe('first');
    expect(results.responseId).toBe(interaction.original()?.id);
    expect(results.fetched).toBe('first');
    expect(interaction.followups().map((m) => [m.content, m.flags])).toEqual([['second', 64]]);
    expect(interaction.followups()[0]?.interaction_metadata?.original_response_message_id).toBe(
      interaction.original()?.id,
    );
    expect(discord.messages('general').map((m) => m.content)).toEqual(['first', 'second']);
    expect(discord.errors).toEqual([]);
    expect(h.handlerErrors).toEqual([]);
  });

  it('deferReply({ withResponse }) gets the interaction callback response with the loading message', async () => {
    h = await startHarness();
    const { discord } = h;
    const got: Record<string, unknown> = {};
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      const response = await interaction.deferReply({ withResponse: true, flags: MessageFlags.Ephemeral });
      got.loading = response.interaction.responseMessageLoading;
      got.ephemeral = response.interaction.responseMessageEphemeral;
      got.flags = response.resource?.message?.flags.toArray();
      await interaction.editReply('ready');
    });
    const interaction = discord.slash('imagine', { prompt: 'x' });
    expect(interaction.original()).toBeUndefined();
    await interaction.waitForOriginal((m) => m.content === 'ready');
    expect(got).toEqual({ loading: true, ephemeral: true, flags: ['Ephemeral', 'Loading'] });
    expect(interaction.isEphemeral).toBe(true);
    expect(interaction.deferred).toBe(true);
    expect(interaction.original()?.flags).toBe(64);
    expect(discord.errors).toEqual([]);
  });

  it('a follow-up after a deferral fills the deferred message, like Discord', async () => {
    h = await startHarness();
    const { discord } = h;
    h.onInteraction(async (interaction) => {
      if (!interaction.isChatInputCommand()) return;
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      await interaction.followUp('result');
    });
    const interaction = discord.slash('imagine', { prompt: 'x' });
    const original = await interaction.waitForOriginal();
    expect(original).toMatchObject({ content: 'result', flags: 64 });
    expect(interaction.followups()).toEqual([]);
  });

  it('buttons: click dispatches a component interaction with the current message; update edits it', async () => {
    h = await startHarness();
    const { discord } = h;
    h.onInteraction(async (interaction) => {
      if (interaction.isChatInputCommand()) {
        const row = new ActionRowBuilder<ButtonBuilder>().addComponents(
          new ButtonBuilder().setCustomId('again').setLabel('Again').setStyle(ButtonStyle.Primary),
          new ButtonBuilder().setURL('https://example.com').setLabel('Docs').setStyle(ButtonStyle.Link),
        );
        await interaction.reply({ content: 'image 1', components: [row] });
      } else if (interaction.isButton()) {
        expect(interaction.message.content).toBe('image 1');
        await interaction.update({ content: `image 2 by ${interaction.user.username}`, components: [] });
      }
    });
    const command = discord.slash('imagine', { prompt: 'x' });
    const message = await command.waitForOriginal();
    expect(() => discord.click(message, 'Docs')).toThrow(/link/);

    const click = discord.click(message, 'Again', { user: 'bob' });
    expect(click.payload).toMatchObject({
      type: 3,
      data: { custom_id: 'again', component_type: 2 },
      message: { id: message.id },
    });
    await click.waitForCallback();
    expect(click.response?.type).toBe(7);
    expect(discord.message(message.id)).toMatchObject({ content: 'image 2 by bob', components: [] });
    expect(command.original()?.content).toBe('image 2 by bob');
    expect(discord.errors).toEqual([]);
    expect(h.handlerErrors).toEqual([]);
  });

  it('select menus and modals', async () => {
    h = await startHarness();
    const { discord } = h;
    const got: unknown[] = [];
    h.onInteraction(async (interaction) => {
      if (interaction.isChatInputCommand()) {
        const select = new StringSelectMenuBuilder()
          .setCustomId('size')
          .addOptions({ label: 'Small', value: 's' }, { label: 'Large', value: 'l' });
        await interaction.reply({
          content: 'pick',
          components: [new ActionRowBuilder<StringSelectMenuBuilder>().addComponents(select)],
        });
      } else if (interaction.isStringSelectMenu()) {
        got.push(interaction.values);
        const modal = new ModalBuilder()
          .setCustomId('details')
          .setTitle('Details')
          .addComponents(
            new ActionRowBuilder<TextInputBuilder>().addComponents(
              new TextInputBuilder().setCustomId('negative').setLabel('Negative prompt').setStyle(TextInputStyle.Short),
            ),
          );
        await interaction.showModal(modal);
      } else if (interaction.isModalSubmit()) {
        got.push(interaction.fields.getTextInputValue('negative'));
        await interaction.reply({ content: 'thanks', flags: MessageFlags.Ephemeral });
      }
    });
    const command = discord.slash('settings');
    const message = await command.waitForOriginal();
    expect(() => discord.select(message, 'size', ['xl'])).toThrow(/not an option/);
    const select = discord.select(message, 'size', ['l']);
    const modal = await select.modal();
    expect(modal).toMatchObject({ custom_id: 'details', title: 'Details' });
    const submit = select.submitModal({ negative: 'blurry' });
    const reply = await submit.waitForOriginal();
    expect(reply.content).toBe('thanks');
    expect(got).toEqual([['l'], 'blurry']);
    expect(discord.errors).toEqual([]);
  });

  it('autocomplete: the focused option is flagged and the choices are captured', async () => {
    h = await startHarness();
    const { discord } = h;
    h.onInteraction(async (interaction) => {
      if (!interaction.isAutocomplete()) return;
      const focused = interaction.options.getFocused(true);
      await interaction.respond([{ name: `${focused.name}:${focused.value}`, value: 'v1' }]);
    });
    const interaction = discord.autocomplete('imagine', { prompt: 'a cat', style: 'ani' }, 'style');
    expect(interaction.payload).toMatchObject({
      type: 4,
      data: { options: [{ name: 'prompt' }, { name: 'style', focused: true, value: 'ani' }] },
    });
    expect(await interaction.autocompleteChoices()).toEqual([{ name: 'style:ani', value: 'v1' }]);
    expect(discord.errors).toEqual([]);
  });

  it('channel messages and DMs through the bot routes', async () => {
    h = await startHarness();
    const { discord, client } = h;
    const general = await client.channels.fetch(discord.channel('general').id);
    if (!general?.isSendable()) throw new Error('general should be sendable');
    const sent = await general.send({
      content: `hello <@${discord.user('alice').id}>`,
      files: [new AttachmentBuilder(PNG, { name: 'a b.png' })],
    });
    const edited = await sent.edit({ content: 'edited', attachments: [] });
    expect(edited.attachments.size).toBe(0);
    expect(discord.message(sent.id)).toMatchObject({ content: 'edited', attachments: [] });
    expect(discord.messageHistory(sent.id)[0]?.attachments[0]?.filename).toBe('a_b.png');
    expect(discord.messageHistory(sent.id)[0]?.mentions.map((u) => u.username)).toEqual(['alice']);

    const alice = await client.users.fetch(discord.user('alice').id);
    const dm = await alice.send('psst');
    expect(discord.message(dm.id)?.channel_id).toBe(dm.channelId);
    await sent.delete();
    expect(discord.message(sent.id)).toBeUndefined();
    const bot = discord.requests.find((r) => r.route === '/channels/{channel_id}/messages');
    expect(bot?.headers.authorization).toBe('Bot [redacted]');
    expect(discord.errors).toEqual([]);
  });
});
