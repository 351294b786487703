// Beyond the command line: Edit prompt, exact text, "Imagine this" and /imagine-history, through
// the fake Discord (the real discord.js client) and the fake PPInfra.
import type { APIMessage } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeInteraction } from '../fakes/discord/interactions.ts';
import type { JsonObject } from '../fakes/discord/types.ts';
import {
  deployCommands,
  ephemeralText,
  finished,
  startBotHarness,
  type BotHarness,
  type HarnessOptions,
} from './harness.ts';

let h: BotHarness | undefined;
const start = async (options: HarnessOptions = {}) => (h = await startBotHarness(options));
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const submitted = (bot: BotHarness) =>
  bot.api.requests.filter((r) => r.route === 'submit').map((r) => r.body as { prompt: string; size: string });
const LONG = { timeoutMs: 15_000 };

/** The modal's text inputs by custom id, as the member sees them filled in. */
function modalValues(modal: JsonObject): Record<string, string | undefined> {
  const inputs = (modal.components as { components: { custom_id: string; value?: string }[] }[]).flatMap(
    (row) => row.components,
  );
  return Object.fromEntries(inputs.map((i) => [i.custom_id, i.value]));
}

describe('Edit prompt', () => {
  it('opens a form filled with the prompt, size and text, and starts one new job with the changes', async () => {
    const bot = await start();
    const first = await bot.discord
      .slash('imagine', { prompt: 'a tea shop sign', size: '1024*1024', text: '茶馆 Tea House' }, { user: 'alice' })
      .waitForOriginal(finished, LONG);
    const own = bot.discord.click(first, 'Edit prompt', { user: 'alice' });
    expect(modalValues(await own.modal())).toEqual({
      prompt: 'a tea shop sign',
      size: '1024*1024',
      text: '茶馆 Tea House',
    });
    // Anyone else starts from the size alone: the requester's words are theirs to show.
    const click = bot.discord.click(first, 'Edit prompt', { user: 'bob' });
    expect(modalValues(await click.modal())).toEqual({ prompt: undefined, size: '1024*1024', text: undefined });

    const edited = click.submitModal({ prompt: 'a bakery sign at dawn', size: '1328*1328', text: '面包 Bread' });
    const second = await edited.waitForOriginal(finished, LONG);
    expect(second.attachments).toHaveLength(1);
    expect(second.id).not.toBe(first.id);
    expect(submitted(bot)).toHaveLength(2);
    expect(submitted(bot)[1]!.prompt).toMatch(/^a bakery sign at dawn\. .*"面包 Bread"/);
    expect(submitted(bot)[1]!.size).toBe('1328*1328');
    // The new image is the one who edited it: bob's.
    expect(JSON.stringify(second.embeds)).toContain(bot.discord.user('bob').id);
    expect(bot.discord.errors).toEqual([]);
  });

  it('answers a form with an invalid size or an empty prompt privately, submitting nothing', async () => {
    const bot = await start();
    const first = await bot.discord.slash('imagine', { prompt: 'a lighthouse' }).waitForOriginal(finished, LONG);
    const badSize = bot.discord.click(first, 'Edit prompt');
    await badSize.modal();
    expect(
      await ephemeralText(badSize.submitModal({ prompt: 'a lighthouse at night', size: '5000*5000', text: '' })),
    ).toMatch(/outside the allowed range/);
    const emptyPrompt = bot.discord.click(first, 'Edit prompt');
    await emptyPrompt.modal();
    expect(await ephemeralText(emptyPrompt.submitModal({ prompt: '   ', size: '1024*1024', text: '' }))).toMatch(
      /describe the image/,
    );
    expect(submitted(bot)).toHaveLength(1);
  });

  it('is offered on a failure caused by the prompt', async () => {
    const bot = await start();
    bot.api.inject('submit', { status: 400, reason: 'ILLEGAL_PROMPT' });
    const failed = await bot.discord.slash('imagine', { prompt: 'something refused' }).waitForOriginal(finished, LONG);
    expect(failed.content).toMatch(/refused this prompt/);
    const click = bot.discord.click(failed, 'Edit prompt');
    expect(modalValues(await click.modal()).prompt).toBe('something refused');
  });
});

describe('exact text', () => {
  it.each([
    ['Chinese', '开业大吉'],
    ['English', 'GRAND OPENING'],
    ['mixed scripts', 'Café 咖啡 ☕ 50% off'],
  ])(
    'puts %s words into the submitted prompt exactly, and shows the member the final prompt',
    async (_label, words) => {
      const bot = await start();
      const message = await bot.discord
        .slash('imagine', { prompt: 'a shop front', text: words, placement: 'top' })
        .waitForOriginal(finished, LONG);
      const prompt = submitted(bot)[0]!.prompt;
      expect(prompt).toContain(`"${words}"`);
      expect(prompt).toMatch(/across the top/);
      expect(message.embeds[0]?.description).toContain(words);
    },
  );

  it('uses other quote marks for words that contain straight quotes', async () => {
    const bot = await start();
    await bot.discord.slash('imagine', { prompt: 'a neon sign', text: 'say "hi"' }).waitForOriginal(finished, LONG);
    expect(submitted(bot)[0]!.prompt).toContain('“say "hi"”');
  });

  it('draws @everyone as words and pings nobody', async () => {
    const bot = await start();
    const message = await bot.discord
      .slash('imagine', { prompt: 'a banner', text: '@everyone party' })
      .waitForOriginal(finished, LONG);
    expect(submitted(bot)[0]!.prompt).toContain('"@everyone party"');
    expect(message.mention_everyone).toBe(false);
    expect(message.mentions).toEqual([]);
  });

  it('refuses text with a mention, a blocked term or too many characters, submitting nothing', async () => {
    const bot = await start({ env: { BLOCKED_TERMS: 'forbidden' } });
    const bob = bot.discord.user('bob').id;
    expect(await ephemeralText(bot.discord.slash('imagine', { prompt: 'a card', text: `hi <@${bob}>` }))).toMatch(
      /mention/,
    );
    expect(await ephemeralText(bot.discord.slash('imagine', { prompt: 'a card', text: 'FORBIDDEN words' }))).toMatch(
      /not allowed/,
    );
    expect(await ephemeralText(bot.discord.slash('imagine', { prompt: 'a card', text: 'x'.repeat(121) }))).toMatch(
      /121 characters.*120/,
    );
    expect(submitted(bot)).toHaveLength(0);
  });
});

describe('Imagine this (message menu)', () => {
  it('imagines the text of a message in that channel', async () => {
    const bot = await start();
    await deployCommands(bot);
    const post = bot.discord.post('a cat astronaut floating over Shanghai', { user: 'bob' });
    const message = await bot.discord
      .messageCommand('Imagine this', post, { user: 'alice' })
      .waitForOriginal(finished, LONG);
    expect(message.attachments).toHaveLength(1);
    expect(message.channel_id).toBe(post.channel_id);
    expect(submitted(bot)).toEqual([{ prompt: 'a cat astronaut floating over Shanghai', size: '1024*1024' }]);
  });

  it('says privately that a message without text has nothing to imagine', async () => {
    const bot = await start();
    await deployCommands(bot);
    const post = bot.discord.post('   ', { user: 'bob' });
    expect(await ephemeralText(bot.discord.messageCommand('Imagine this', post))).toMatch(/no text to imagine/);
    expect(submitted(bot)).toHaveLength(0);
  });
});

describe('/imagine-history', () => {
  /** The history embed's text the member sees. */
  async function historyOf(bot: BotHarness, user: string): Promise<{ text: string; it: FakeInteraction }> {
    const it = bot.discord.slash('imagine-history', {}, { user });
    const callback = await it.waitForCallback();
    expect(it.isEphemeral).toBe(true);
    const data = callback.data as { content: string; embeds?: { description?: string; footer?: { text: string } }[] };
    return { text: `${data.content}${data.embeds?.[0]?.description ?? ''}${data.embeds?.[0]?.footer?.text ?? ''}`, it };
  }

  it('lists the member’s own images after a restart, with links, and not another member’s', async () => {
    const bot = await start();
    const mine: APIMessage[] = [];
    for (const prompt of ['first lantern', 'second lantern'])
      mine.push(await bot.discord.slash('imagine', { prompt }).waitForOriginal(finished, LONG));
    await bot.discord.slash('imagine', { prompt: 'bob’s kite' }, { user: 'bob' }).waitForOriginal(finished, LONG);
    await bot.restart();

    const { text } = await historyOf(bot, 'alice');
    expect(text.indexOf('second lantern')).toBeLessThan(text.indexOf('first lantern'));
    expect(text.indexOf('second lantern')).toBeGreaterThan(-1);
    expect(text).not.toContain('kite');
    for (const m of mine) expect(text).toContain(`/${m.channel_id}/${m.id}`);
    expect((await historyOf(bot, 'mod')).text).toMatch(/no images/);
  });

  it('pages with Older and Newer beyond ten images', async () => {
    const bot = await start({ env: { USER_HOURLY_QUOTA: '20' } });
    for (let i = 1; i <= 11; i++)
      await bot.discord.slash('imagine', { prompt: `lantern number ${i}` }).waitForOriginal(finished, LONG);
    // The record says delivered just after the image is out.
    await expect.poll(() => bot.logs.filter((l) => l.msg === 'job delivered').length).toBe(11);
    const { text, it } = await historyOf(bot, 'alice');
    expect(text).toContain('lantern number 11');
    expect(text).not.toContain('lantern number 1\n');
    expect(text).toMatch(/Page 1 of 2/);
    const reply = await it.waitForOriginal();
    const older = bot.discord.click(reply, 'Older');
    const page2 = await older.waitForOriginal((m) => /Page 2 of 2/.test(m.embeds[0]?.footer?.text ?? ''));
    expect(page2.embeds[0]?.description).toContain('lantern number 1\n');
    expect(page2.embeds[0]?.description).not.toContain('lantern number 11');
  });
});
