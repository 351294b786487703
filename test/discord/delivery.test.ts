// The Discord delivery driven directly against the fake's REST API. With jobs on Redis a step can
// run twice (stall recovery, a crash between posting and saving): whatever is delivered twice
// must still show once.
import type { APIMessage } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import { createDiscordDelivery } from '../../src/discord/delivery.ts';
import type { Job } from '../../src/domain/job.ts';
import { silentLogger } from '../../src/logger.ts';
import { makeFakeImage } from '../fakes/images.ts';
import type { FakeInteraction } from '../fakes/discord/interactions.ts';
import { startHarness, type Harness } from './helpers.ts';

const MIB = 1024 * 1024;
const image = (tag: string) => ({ bytes: makeFakeImage('png', tag), contentType: 'image/png', extension: 'png' });

describe('delivering the same thing twice shows it once', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  /** A deferred /imagine, as the command leaves it: "thinking…" in #general. */
  async function deferred(harness: Harness): Promise<FakeInteraction> {
    harness.onInteraction(async (interaction) => {
      if (interaction.isChatInputCommand()) await interaction.deferReply();
    });
    const it = harness.discord.slash('imagine', { prompt: 'a lighthouse' }, { user: 'alice' });
    await it.waitForCallback();
    return it;
  }

  function jobFor(harness: Harness, it: FakeInteraction, id: string, extra: Partial<Job> = {}): Job {
    return {
      id,
      prompt: 'a lighthouse',
      size: '1024*1024',
      userId: it.user.id,
      userName: 'alice',
      guildId: harness.discord.guild.id,
      channelId: harness.discord.channel('general').id,
      channelNsfw: false,
      locale: 'en-US',
      state: 'delivering',
      reply: { applicationId: harness.discord.applicationId, token: it.token, createdAt: Date.now() },
      createdAt: Date.now(),
      polls: 0,
      messageId: it.original()!.id,
      ...extra,
    };
  }

  const deliveryFor = (harness: Harness, jobs?: Map<string, Job>) =>
    createDiscordDelivery({
      rest: harness.client.rest,
      uploadLimit: () => 10 * MIB,
      logger: silentLogger,
      ...(jobs ? { jobs: async (ids: readonly string[]) => ids.map((id) => jobs.get(id)) } : {}),
    });

  /** The job's reply is older than the interaction token: Discord refuses the webhook. */
  async function expired(harness: Harness): Promise<{ it: FakeInteraction; job: Job }> {
    const it = await deferred(harness);
    it.expireToken();
    const job = jobFor(harness, it, '0123456789ab', {
      reply: { applicationId: harness.discord.applicationId, token: it.token, createdAt: Date.now() - 20 * 60_000 },
    });
    return { it, job };
  }

  const posted = (harness: Harness, it: FakeInteraction): APIMessage[] =>
    harness.discord.messages('general').filter((m) => m.id !== it.original()?.id);

  it('an image delivered twice after the token expired is posted in the channel once', async () => {
    h = await startHarness();
    const { it, job } = await expired(h);
    const delivery = deliveryFor(h);

    expect(await delivery.deliver(job, image('first'))).toBe('delivered');
    const first = job.published?.messageId;
    expect(await delivery.deliver(job, image('first'))).toBe('delivered');

    const messages = posted(h, it);
    expect(messages).toHaveLength(1);
    expect(messages[0]?.attachments.map((a) => a.filename)).toEqual(['qwen-image-a-lighthouse-0123456789ab.png']);
    expect(messages[0]?.content).toContain('your image is ready');
    expect(job.published?.messageId).toBe(first);
    expect(h.discord.errors).toEqual([]);
  });

  it('a notice, a failure and the image each appear once in the channel, however often sent', async () => {
    h = await startHarness();
    const { it, job } = await expired(h);
    const delivery = deliveryFor(h);

    await delivery.notice(job, 'awaiting_review');
    await delivery.notice(job, 'awaiting_review');
    // A moderator approved it: the image follows the notice, it does not replace it.
    await delivery.deliver(job, image('approved'));
    await delivery.deliver(job, image('approved'));
    await delivery.fail(job, { kind: 'internal' });
    await delivery.fail(job, { kind: 'internal' });

    const messages = posted(h, it);
    expect(messages.map((m) => [m.content, m.attachments.length])).toEqual([
      [expect.stringContaining('A moderator will review it'), 0],
      [expect.stringContaining('your image is ready'), 1],
      [expect.stringContaining('❌'), 0],
    ]);
    expect(h.discord.errors).toEqual([]);
  });

  it('an image of a batch delivered twice is in the batch message once', async () => {
    h = await startHarness();
    const it = await deferred(h);
    const ids = ['aaaaaaaaaaaa', 'bbbbbbbbbbbb'];
    const jobs = new Map(
      ids.map((id, index) => [id, jobFor(h!, it, id, { batch: { id: ids[0]!, index, count: 2, jobIds: ids } })]),
    );
    const delivery = deliveryFor(h, jobs);
    const [a, b] = [jobs.get(ids[0]!)!, jobs.get(ids[1]!)!];

    await delivery.deliver(a, image('a'));
    const attachmentId = a.published?.attachmentId;
    await delivery.deliver(a, image('a'));
    expect(a.published?.attachmentId).toBe(attachmentId);
    a.state = 'delivered';
    await delivery.deliver(b, image('b'));

    const message = it.original()!;
    expect(message.attachments.map((x) => x.filename)).toEqual([
      'qwen-image-a-lighthouse-aaaaaaaaaaaa.png',
      'qwen-image-a-lighthouse-bbbbbbbbbbbb.png',
    ]);
    expect(message.attachments[0]?.id).toBe(attachmentId);
    expect(message.content).toContain('**2 of 2** images ready');
    expect(h.discord.errors).toEqual([]);
  });
});
