// Every way of asking again (More like this, Edit prompt, Imagine this) is checked against the
// terms in force when it is asked, not those of the day the prompt was first accepted; and the
// Edit prompt form shows a prompt only to the member who wrote it. The real bot against the fakes.
import { afterEach, describe, expect, it } from 'vitest';
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

const submits = (bot: BotHarness) => bot.api.requests.filter((r) => r.route === 'submit');
const LONG = { timeoutMs: 15_000 };
const BLOCKED = /contains a term that is not allowed here/;

/** The modal's text inputs by custom id, as the member sees them filled in. */
function modalValues(modal: JsonObject): Record<string, string | undefined> {
  const inputs = (modal.components as { components: { custom_id: string; value?: string }[] }[]).flatMap(
    (row) => row.components,
  );
  return Object.fromEntries(inputs.map((i) => [i.custom_id, i.value]));
}

describe('asking again after the operator blocks a term', () => {
  it('More like this, Edit prompt and Imagine this are refused privately, and nothing is submitted', async () => {
    const bot = await start();
    await deployCommands(bot);
    const first = await bot.discord
      .slash('imagine', { prompt: 'a red dragon over the harbour' }, { user: 'alice' })
      .waitForOriginal(finished, LONG);
    const post = bot.discord.post('a dragon kite on the beach', { user: 'bob' });
    // Allowed today: another round goes through.
    await bot.discord.click(first, 'More like this', { user: 'alice' }).waitForOriginal(finished, LONG);
    expect(submits(bot)).toHaveLength(2);

    // The operator blocks the word, written in their own way, and restarts the bot.
    await bot.restart({ BLOCKED_TERMS: 'kitten, DRAGON' });

    expect(await ephemeralText(bot.discord.click(first, 'More like this', { user: 'alice' }))).toMatch(BLOCKED);
    expect(await ephemeralText(bot.discord.click(first, 'More like this', { user: 'bob' }))).toMatch(BLOCKED);

    const edit = bot.discord.click(first, 'Edit prompt', { user: 'alice' });
    const form = modalValues(await edit.modal());
    expect(form.prompt).toBe('a red dragon over the harbour');
    expect(await ephemeralText(edit.submitModal({ prompt: form.prompt!, size: form.size!, text: '' }))).toMatch(
      BLOCKED,
    );
    // Disguised in the form: the same fold as the operator's terms finds it.
    const disguised = bot.discord.click(first, 'Edit prompt', { user: 'alice' });
    await disguised.modal();
    expect(
      await ephemeralText(disguised.submitModal({ prompt: 'a red Ｄra\u200bgon', size: '1024*1024', text: '' })),
    ).toMatch(BLOCKED);
    const inText = bot.discord.click(first, 'Edit prompt', { user: 'alice' });
    await inText.modal();
    expect(
      await ephemeralText(inText.submitModal({ prompt: 'a kite', size: '1024*1024', text: 'D R A G O N' })),
    ).toMatch(BLOCKED);

    expect(await ephemeralText(bot.discord.messageCommand('Imagine this', post, { user: 'alice' }))).toMatch(BLOCKED);

    // Refusals cost nothing: no submission, no quota used (a fresh request still fits).
    expect(submits(bot)).toHaveLength(2);
    const allowed = await bot.discord
      .slash('imagine', { prompt: 'a paper boat' }, { user: 'alice' })
      .waitForOriginal(finished, LONG);
    expect(allowed.attachments).toHaveLength(1);
    expect(submits(bot)).toHaveLength(3);
    expect(bot.discord.errors).toEqual([]);
  });

  it('a prompt that grew too long for a lowered PROMPT_MAX_LENGTH is refused on More like this', async () => {
    const bot = await start();
    const first = await bot.discord
      .slash('imagine', { prompt: 'a lighthouse on a cliff at dawn' })
      .waitForOriginal(finished, LONG);
    await bot.restart({ PROMPT_MAX_LENGTH: '10' });
    expect(await ephemeralText(bot.discord.click(first, 'More like this'))).toMatch(/31 characters.*10/);
    expect(submits(bot)).toHaveLength(1);
  });
});

describe('Edit prompt form', () => {
  it('shows the prompt and text to the requester only; anyone else gets the size and empty fields', async () => {
    const bot = await start();
    const first = await bot.discord
      .slash('imagine', { prompt: 'my secret garden', text: 'Private', size: 'wide' }, { user: 'alice' })
      .waitForOriginal(finished, LONG);
    const mine = modalValues(await bot.discord.click(first, 'Edit prompt', { user: 'alice' }).modal());
    expect(mine).toEqual({ prompt: 'my secret garden', size: '1536*864', text: 'Private' });
    const modal = await bot.discord.click(first, 'Edit prompt', { user: 'bob' }).modal();
    expect(modalValues(modal)).toEqual({ prompt: undefined, size: '1536*864', text: undefined });
    expect(JSON.stringify(modal)).not.toMatch(/secret garden|Private/);
  });
});

/**
 * A button's custom id is whatever the client sends. A member who swaps in their own job's id
 * on someone else's message (a modified client) must get nothing from it: the handlers check the
 * message the button is on.
 */
describe('a button whose custom id names a job of another message', () => {
  /** What a modified client sends: the button labelled `label` on `message`, with `jobId` in its custom id. */
  function forge(bot: BotHarness, messageId: string, label: string, jobId: string) {
    const stored = bot.discord.store.get(messageId)!;
    const rows = stored.data.components as unknown as { components: { label?: string; custom_id?: string }[] }[];
    const button = rows.flatMap((r) => r.components).find((c) => c.label === label)!;
    button.custom_id = button.custom_id!.replace(/[^:]+$/, jobId);
  }
  const jobIdOf = (message: { components?: unknown }) =>
    /:(\w+)$/.exec((message.components as { components: { custom_id: string }[] }[])[0]!.components[0]!.custom_id)![1]!;

  it('Delete with the member’s own job id does not delete another member’s image', async () => {
    const bot = await start();
    const mine = await bot.discord
      .slash('imagine', { prompt: 'my boat' }, { user: 'alice' })
      .waitForOriginal(finished, LONG);
    const theirs = await bot.discord
      .slash('imagine', { prompt: 'their boat' }, { user: 'bob' })
      .waitForOriginal(finished, LONG);
    forge(bot, theirs.id, 'Delete', jobIdOf(mine));
    expect(await ephemeralText(bot.discord.click(theirs.id, 'Delete', { user: 'alice' }))).toMatch(/.+/);
    expect(bot.discord.message(theirs.id)).toBeDefined();
    expect(bot.discord.message(theirs.id)!.attachments).toHaveLength(1);
    // Their own button on their own message still works.
    bot.discord.click(mine, 'Delete', { user: 'alice' });
    await bot.waitForLog((l) => l.msg === 'interaction handled' && l.outcome === 'deleted:requester');
  });

  it('More like this naming another job does not quote that job’s prompt here, nor submit it', async () => {
    const bot = await start();
    const other = await bot.discord
      .slash('imagine', { prompt: 'a private prompt' }, { user: 'alice' })
      .waitForOriginal(finished, LONG);
    const mine = await bot.discord
      .slash('imagine', { prompt: 'a public prompt' }, { user: 'bob' })
      .waitForOriginal(finished, LONG);
    forge(bot, mine.id, 'More like this', jobIdOf(other));
    expect(await ephemeralText(bot.discord.click(mine.id, 'More like this', { user: 'bob' }))).toMatch(
      /no longer have the details/,
    );
    expect(submits(bot)).toHaveLength(2);
  });
});
