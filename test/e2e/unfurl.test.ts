// A prompt ending in a link must not make the bot show what the link shows. Discord previews
// links in a message's content, under the bot's name, and the fake Discord does the same: a
// preview is an embed that is not the bot's own ('rich'). And a prompt shown to moderators reads
// as typed: no "Approve here" link, no heading. The real bot against the fakes.
import type { APIMessage } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import type { FakeTask, FakeTaskScript } from '../fakes/ppinfra.ts';
import { MODERATED_GUILD, REVIEW } from './guilds.ts';
import { startBotHarness, type BotHarness, type HarnessOptions } from './harness.ts';

let h: BotHarness | undefined;
const start = async (options: HarnessOptions = {}) => (h = await startBotHarness(options));
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const LINK = 'https://cdn.example/explicit.gif';
const PROMPT = `a party poster ${LINK}`;
const SUPPRESS_EMBEDS = 1 << 2;
const LONG = { timeoutMs: 15_000 };
/** A task that stays PROCESSING until the test finishes it, so the progress message is seen. */
const HELD: FakeTaskScript = { processingMs: 24 * 3600_000 };
const taskFor = (bot: BotHarness, prompt: string): Promise<FakeTask> =>
  bot.api.waitFor('task-created', (t: FakeTask) => t.prompt === prompt, 0);
const finishTask = (task: FakeTask) => {
  task.completedAt = Date.now();
};
const labels = (m: APIMessage) =>
  ((m.components ?? []) as unknown as { components: { label?: string }[] }[]).flatMap((r) =>
    r.components.map((c) => c.label),
  );

/** Every version of every message the bot wrote, as members saw each one. */
const versions = (bot: BotHarness) =>
  bot.discord
    .messages()
    .filter((m) => m.author.id === bot.discord.botUser.id)
    .flatMap((m) => bot.discord.messageHistory(m.id));
const suppressed = (m: APIMessage) => ((m.flags ?? 0) & SUPPRESS_EMBEDS) !== 0;

/**
 * No version of any message of the bot ever showed a preview of a link. Not vacuous: at least
 * `quoting` versions showed the prompt's link in their text, each with previews off.
 */
function expectNoPreview(bot: BotHarness, quoting: number) {
  const previews = versions(bot).flatMap((v) =>
    v.embeds.filter((e) => e.type !== 'rich').map((e) => `${e.type} ${e.url} under “${v.content}”`),
  );
  expect(previews).toEqual([]);
  const withLink = versions(bot).filter((v) => v.content.includes(LINK));
  expect(withLink.length).toBeGreaterThanOrEqual(quoting);
  for (const version of withLink) expect(suppressed(version), version.content).toBe(true);
}

describe('a prompt with a link', () => {
  it('shows no preview while the image is made, and the image keeps its own embed', async () => {
    const bot = await start({ script: () => HELD });
    const it = bot.discord.slash('imagine', { prompt: PROMPT });
    const task = await taskFor(bot, PROMPT);
    await it.waitForOriginal((m) => m.content.includes('Generating'));
    finishTask(task);
    const result = await it.waitForOriginal((m) => m.attachments.length > 0, LONG);

    expectNoPreview(bot, 1);
    expect(
      bot.discord.messageHistory(result.id).some((v) => v.content.includes('Generating') && v.content.includes(LINK)),
    ).toBe(true);
    // The prompt is in the embed, which Discord never previews links of, and the image shows.
    expect(result.content).not.toContain(LINK);
    expect(suppressed(result)).toBe(false);
    expect(result.embeds).toHaveLength(1);
    expect(result.embeds[0]?.description).toBe(PROMPT);
    expect(result.embeds[0]?.image?.url).toContain(`/${result.attachments[0]!.filename}?`);
    expect(bot.discord.errors).toEqual([]);
  });

  it('shows no preview on a failure, which stays', async () => {
    const bot = await start({ script: () => ({ processingMs: 100, outcome: 'fail', reason: 'GPU fell over' }) });
    const it = bot.discord.slash('imagine', { prompt: PROMPT });
    const failed = await it.waitForOriginal((m) => m.content.startsWith('❌'), LONG);
    expect(failed.content).toContain(LINK);
    expectNoPreview(bot, 1);
  });

  it('shows no preview in the one message of a batch, whose images still show', async () => {
    const bot = await start();
    const it = bot.discord.slash('imagine', { prompt: PROMPT, count: 2 });
    const batch = await it.waitForOriginal((m) => m.attachments.length === 2 && labels(m).length > 0, LONG);
    expect(batch.content).toContain(LINK);
    expect(bot.discord.files(batch)).toHaveLength(2);
    expectNoPreview(bot, 2);
  });

  it('shows no preview in a refusal that repeats what was typed', async () => {
    const bot = await start();
    const it = bot.discord.slash('imagine', { prompt: 'a cat', size: LINK });
    expect((await it.waitForCallback()).type).toBe(4);
    expect(it.original()?.content).toMatch(/not a size I know/);
    expectNoPreview(bot, 1);
  });

  it.each([
    { name: 'a failure', outcome: 'fail', posted: (m: APIMessage) => m.content.includes('❌') },
    { name: 'the image', outcome: 'succeed', posted: (m: APIMessage) => m.attachments.length > 0 },
  ] as const)(
    'shows no preview when $name is posted in the channel after the token expired',
    async ({ outcome, posted }) => {
      const bot = await start({ script: () => ({ ...HELD, outcome }) });
      const it = bot.discord.slash('imagine', { prompt: PROMPT });
      const task = await taskFor(bot, PROMPT);
      await it.waitForOriginal((m) => m.content.includes('Generating'));
      it.expireToken();
      bot.discord.expectError(50027, 5);
      finishTask(task);
      const message = await bot.discord.waitForMessage(
        (m) => m.message_reference?.message_id === it.original()!.id && posted(m),
        LONG,
      );
      await bot.discord.waitForMessage((m) => m.id === it.original()!.id && m.content.includes('posted below'), LONG);
      expectNoPreview(bot, outcome === 'fail' ? 2 : 1);
      if (outcome === 'succeed')
        expect(message.embeds[0]?.image?.url).toContain(`/${message.attachments[0]!.filename}?`);
    },
  );
});

describe('a flagged prompt, for the moderators', () => {
  const TRAP = `# HEADING [Approve here](https://evil.example) ${LINK}`;
  const SHOWN = `\\# HEADING \\[Approve here\\](https://evil.example) ${LINK}`;

  it('is held without a preview, and reads as typed in the review message, the pending list, the approved image and the history', async () => {
    const bot = await start({
      script: () => ({ processingMs: 100, nsfw: true }),
      discord: { guilds: [MODERATED_GUILD] },
      env: { REVIEW_CHANNEL_ID: REVIEW },
    });
    const it = bot.discord.slash('imagine', { prompt: TRAP }, { user: 'alice' });
    const held = await it.waitForOriginal((m) => m.content.startsWith('🔞'), LONG);
    expect(held.content).toContain(`> ${SHOWN}`);

    const review = await bot.discord.waitForMessage(
      (m) => m.channel_id === REVIEW && labels(m).includes('Approve'),
      LONG,
    );
    expect(review.embeds).toHaveLength(1);
    expect(review.embeds[0]?.description).toBe(SHOWN);

    const pending = bot.discord.slash('imagine-review pending', {}, { user: 'mod' });
    expect((await pending.waitForCallback()).type).toBe(4);
    const list = pending.original()!;
    // The list shortens prompts; the trap is at the start.
    expect(list.content).toContain('“\\# HEADING \\[Approve here\\](https://evil.example) ');
    expect(suppressed(list)).toBe(true);

    // Approved, the held notice becomes the image, whose embed shows again.
    bot.discord.click(review, 'Approve', { user: 'mod' });
    const approved = await it.waitForOriginal((m) => m.attachments.length > 0, LONG);
    expect(suppressed(approved)).toBe(false);
    expect(approved.embeds[0]?.description).toBe(SHOWN);

    // The history lists delivered images only: the approval is recorded just after the image is shown.
    await bot.waitForLog((l) => l.msg === 'moderation decision');
    const history = bot.discord.slash('imagine-history', {}, { user: 'alice' });
    await history.waitForCallback();
    expect(history.original()?.embeds[0]?.description).toContain(SHOWN);

    expectNoPreview(bot, 2);
  });
});
