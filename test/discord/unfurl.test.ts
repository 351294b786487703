// The fake previews links as Discord does, so a test can see a preview the bot let through:
// links in `content` become embeds unless the message has SUPPRESS_EMBEDS, which hides every
// embed, the sender's own too.
import { Routes, type APIMessage } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { validateRequestBody } from '../fakes/discord/validate.ts';
import { startHarness, type Harness } from './helpers.ts';

const SUPPRESS_EMBEDS = 1 << 2;
const RICH = { title: 'Your image', description: 'a party poster https://cdn.example/x.gif' };

describe('link previews in the fake Discord', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  const send = async (body: Record<string, unknown>) => {
    h ??= await startHarness();
    const channel = h.discord.channel('general').id;
    return (await h.client.rest.post(Routes.channelMessages(channel), { body })) as APIMessage;
  };
  const edit = (message: APIMessage, body: Record<string, unknown>) =>
    h!.client.rest.patch(Routes.channelMessage(message.channel_id, message.id), { body }) as Promise<APIMessage>;

  it('previews each link of the content, by what it points at, and nothing in angle brackets or in an embed', async () => {
    const message = await send({
      content:
        'a party poster https://cdn.example/x.gif, see [here](https://evil.example/page) or <https://quiet.example>',
      embeds: [RICH],
    });
    expect(message.embeds.map((e) => [e.type, e.url])).toEqual([
      ['rich', undefined],
      ['image', 'https://cdn.example/x.gif'],
      ['link', 'https://evil.example/page'],
    ]);
    expect(h!.discord.message(message.id)?.embeds).toHaveLength(3);
  });

  it('shows no embed at all on a message with SUPPRESS_EMBEDS, and all of them once an edit clears it', async () => {
    const message = await send({ content: 'a party poster https://cdn.example/x.gif', flags: SUPPRESS_EMBEDS });
    expect(message.embeds).toEqual([]);
    expect((message.flags ?? 0) & SUPPRESS_EMBEDS).toBe(SUPPRESS_EMBEDS);

    // The sender's own embed is hidden too while the flag stays.
    const hidden = await edit(message, { content: '', embeds: [RICH] });
    expect(hidden.embeds).toEqual([]);
    const shown = await edit(message, { flags: 0 });
    expect(shown.embeds.map((e) => e.type)).toEqual(['rich']);

    const previewed = await edit(message, { content: 'now https://tenor.com/view/dance' });
    expect(previewed.embeds.map((e) => e.type)).toEqual(['rich', 'gifv']);
    // Every version is kept, as each one was seen.
    expect(h!.discord.messageHistory(message.id).map((v) => v.embeds.length)).toEqual([0, 0, 1, 2]);
  });

  it('accepts `flags` where the bot sets it, as Discord’s OpenAPI description does', () => {
    for (const [route, method] of [
      ['/channels/{channel_id}/messages', 'POST'],
      ['/channels/{channel_id}/messages/{message_id}', 'PATCH'],
      ['/webhooks/{webhook_id}/{webhook_token}/messages/@original', 'PATCH'],
      ['/webhooks/{webhook_id}/{webhook_token}', 'POST'],
    ] as const) {
      expect(validateRequestBody(route, method, { content: 'x', flags: SUPPRESS_EMBEDS })).toBeNull();
      expect(validateRequestBody(route, method, { content: 'x', flags: 'quiet' })).not.toBeNull();
    }
    expect(
      validateRequestBody('/interactions/{interaction_id}/{interaction_token}/callback', 'POST', {
        type: 4,
        data: { content: 'x', flags: 64 | SUPPRESS_EMBEDS },
      }),
    ).toBeNull();
  });
});
