import { afterEach, expect, it } from 'vitest';
import { finished, startBotHarness, type BotHarness } from './harness.ts';

let h: BotHarness | undefined;
afterEach(async () => h?.close());

// Real time on purpose: a 30-second task with the production throttle (5 s), polling as in
// production, while the API keeps reporting progress. This file runs in parallel with the rest.
it('keeps progress edits under the throttle during a 30-second task', { timeout: 60_000 }, async () => {
  h = await startBotHarness({
    env: { PROGRESS_EDIT_INTERVAL_MS: '5000', POLL_MIN_INTERVAL_MS: '500', POLL_MAX_INTERVAL_MS: '2000' },
    // The bot expects 20 s: it will show "generating", then "taking longer", then the image.
    seenDurationsMs: 20_000,
    script: () => ({ queuedMs: 2_000, processingMs: 28_000 }),
  });
  const bot = h;
  const it = bot.discord.slash('imagine', { prompt: 'a slow, detailed city map' });
  const message = await it.waitForOriginal(finished, { timeoutMs: 45_000 });
  expect(message.attachments).toHaveLength(1);

  const edits = bot.discord.requests
    .filter((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'))
    .map((r) => r.at);
  const progressEdits = edits.slice(0, -1);
  expect(progressEdits.length).toBeGreaterThanOrEqual(2);
  for (let i = 1; i < progressEdits.length; i++)
    expect(progressEdits[i]! - progressEdits[i - 1]!).toBeGreaterThanOrEqual(4_900);
  // Far fewer edits than polls: the countdown is a Discord timestamp that clients tick themselves.
  const polls = bot.api.requests.filter((r) => r.route === 'result').length;
  expect(progressEdits.length).toBeLessThan(polls);
  const contents = bot.discord.messageHistory(message.id).map((m) => m.content);
  expect(contents.some((c) => /expected <t:\d+:R>/.test(c))).toBe(true);
  expect(contents.some((c) => c.includes('longer than usual'))).toBe(true);
});
