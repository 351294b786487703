import type { APIEmbed, APIMessage, APIRole } from 'discord-api-types/v10';
import { afterEach, describe, expect, it } from 'vitest';
import type { Job } from '../../src/domain/job.ts';
import type { FakeTask, FakeTaskScript } from '../fakes/ppinfra.ts';
import {
  ephemeralText,
  finished,
  messageWrites,
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

/**
 * A task that stays PROCESSING until the test calls `finishTask`: a test that needs a job to
 * still be running at some point holds its task, instead of hoping a few seconds are enough.
 */
const HELD: FakeTaskScript = { processingMs: 24 * 3600_000 };
/** The API is done with a held task now: the bot's next poll finds it finished. */
function finishTask(task: FakeTask): void {
  task.completedAt = Date.now();
}
/** The task the fake API created for `prompt` (already, or when it comes). */
const taskFor = (bot: BotHarness, prompt: string): Promise<FakeTask> =>
  bot.api.waitFor('task-created', (t: FakeTask) => t.prompt === prompt, 0);
/** For waits that include a job's whole life: they end on the event, not on a bound. */
const LONG = { timeoutMs: 15_000 };
const _EPHEMERAL = 1 << 6;

describe('/imagine end to end', () => {
  it('defers at once, sends exactly {prompt, size} with the key, and attaches the served bytes', async () => {
    const bot = await start();
    const it = bot.discord.slash('imagine', { prompt: '  a red fox reading a newspaper  ', size: '1024x1024' });
    const callback = await it.waitForCallback();
    expect(callback.type).toBe(5);
    expect(callback.status).toBeLessThan(300);
    expect(it.isEphemeral).toBeFalsy();

    const message = await it.waitForOriginal(finished);
    const [submit] = submits(bot);
    expect(submit?.body).toEqual({ prompt: 'a red fox reading a newspaper', size: '1024*1024' });
    expect(submit?.authOk).toBe(true);
    const task = [...bot.api.tasks.values()][0]!;
    const [file] = bot.discord.files(message);
    expect(file?.bytes.equals(Buffer.from(task.image!))).toBe(true);
    expect(file?.filename).toMatch(/^qwen-image-a-red-fox-reading-a-newspaper-[\w]+\.jpeg$/);
    expect(message.embeds[0]?.description).toBe('a red fox reading a newspaper');
    expect(message.embeds[0]?.image?.url).toContain(`/${file?.filename}?`);
    expect(JSON.stringify(message.embeds[0]?.fields)).toContain('1024×1024');
    const rows = (message.components ?? []) as unknown as { components: { label?: string }[] }[];
    const labels = rows.flatMap((row) => row.components).map((b) => b.label);
    expect(labels).toEqual(['More like this', 'Edit prompt', 'Delete', 'Report', 'Change…', 'Upscale']);
    expect(bot.discord.errors).toEqual([]);
    // One line for the interaction, naming its outcome, for the operator.
    const handled = bot.logs.filter((l) => l.msg === 'interaction handled');
    expect(handled).toEqual([
      expect.objectContaining({ name: 'imagine', outcome: expect.stringMatching(/^started:\w+$/), userId: it.user.id }),
    ]);
  });

  it.each([
    [{ prompt: 'a cat', size: 'huge' }, /not a size I know.*256 to 1536/],
    [{ prompt: 'a cat', size: '2048*2048' }, /2048×2048 is outside the allowed range/],
    [{ prompt: 'a cat', size: '100x100' }, /100×100 is outside/],
    [{ prompt: 'a cat', size: '1024*' }, /not a size I know/],
    [{ prompt: '    ' }, /describe the image/],
    [{ prompt: 'x'.repeat(1001) }, /1001 characters long; the limit is 1000/],
    [{ prompt: 'a Forbidden thing' }, /not allowed here/],
  ])('refuses %o ephemerally without calling the API', async (options, message) => {
    const bot = await start({ env: { BLOCKED_TERMS: 'forbidden' } });
    const content = await ephemeralText(bot.discord.slash('imagine', options));
    expect(content).toMatch(message);
    expect(bot.api.requests).toEqual([]);
  });

  it('names the permissions it lacks in the channel, without calling the API', async () => {
    const bot = await start();
    const it = bot.discord.slash('imagine', { prompt: 'a cat' }, { appPermissions: ['ViewChannel', 'SendMessages'] });
    const content = await ephemeralText(it);
    expect(content).toContain('**Attach Files**');
    expect(content).toContain('**Embed Links**');
    expect(content).not.toContain('Send Messages');
    expect(bot.api.requests).toEqual([]);
  });

  it.each<[string, (bot: BotHarness) => void, RegExp, HarnessOptions?]>([
    [
      'a rejected key',
      () => undefined,
      /rejected this bot’s API key.*operator/,
      { env: { PPINFRA_API_KEY: 'wrong-key-value' } },
    ],
    [
      'an exhausted balance',
      (b) => b.api.inject('submit', { status: 400, reason: 'BILLING_BALANCE_NOT_ENOUGH' }),
      /credit has run out/,
    ],
    [
      'an illegal prompt',
      (b) => b.api.inject('submit', { status: 400, reason: 'ILLEGAL_PROMPT' }),
      /refused this prompt as inappropriate/,
    ],
    [
      'an invalid request',
      (b) => b.api.inject('submit', { status: 400, reason: 'INVALID_REQUEST_BODY' }),
      /could not accept this request/,
    ],
    // A 429 on submit normally sends the job back to the queue; past its queue deadline it fails.
    [
      'a rate limit that outlasts the queue deadline',
      (b) => b.api.inject('submit', { status: 429, retryAfterSec: 1 }, 4),
      /busy right now/,
      { env: { QUEUE_TIMEOUT_MS: '1000', API_IMAGES_PER_MINUTE: '60000' } },
    ],
    [
      'the API being down',
      (b) => b.api.inject('submit', { status: 503, reason: 'SERVICE_NOT_AVAILABLE' }),
      /having trouble right now/,
    ],
    [
      'a failed task',
      () => undefined,
      /could not be generated \(GPU fell over\)/,
      { script: () => ({ processingMs: 100, outcome: 'fail', reason: 'GPU fell over' }) },
    ],
    // JOB_TIMEOUT_MS is also what the others' jobs get (from their submission): 4 s for a 0.1 s task.
    [
      'a timeout',
      () => undefined,
      /took too long/,
      { env: { JOB_TIMEOUT_MS: '4000' }, script: () => ({ processingMs: 60_000 }) },
    ],
  ])('tells the user about %s, then keeps serving others', async (_name, arrange, message, options) => {
    const bot = await start(options);
    arrange(bot);
    const first = bot.discord.slash('imagine', { prompt: 'a cat' });
    const failed = await first.waitForOriginal(finished, LONG);
    expect(failed.content).toMatch(message);
    expect(failed.content.startsWith('❌')).toBe(true);
    expect(failed.attachments).toEqual([]);
    const detail = bot.rawLogs.join('');
    expect(detail).not.toContain(bot.env.PPINFRA_API_KEY);
    if (options?.env?.PPINFRA_API_KEY) return; // the key stays wrong: nothing else can succeed
    if (options?.script) bot.api.setScript(() => ({ processingMs: 100 }));
    const second = bot.discord.slash('imagine', { prompt: 'a dog' }, { user: 'bob' });
    expect((await second.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
  });

  it('logs a rejected key for the operator without printing it', async () => {
    const bot = await start({ env: { PPINFRA_API_KEY: 'sk-wrong-0123456789' } });
    await bot.discord.slash('imagine', { prompt: 'a cat' }).waitForOriginal(finished);
    const failure = bot.logs.find((l) => l.msg === 'job failed');
    expect(failure).toMatchObject({ level: 50, error: { kind: 'auth', status: 403, reason: 'INVALID_API_KEY' } });
    expect(bot.rawLogs.join('')).not.toContain('sk-wrong-0123456789');
  });

  it('still delivers through 3 consecutive 503s and a 429 with Retry-After while polling', async () => {
    const bot = await start({ script: () => ({ processingMs: 200 }) });
    bot.api.inject('result', { status: 503 }, 3);
    bot.api.inject('result', { status: 429, retryAfterSec: 1 });
    const message = await bot.discord
      .slash('imagine', { prompt: 'a lighthouse' })
      .waitForOriginal(finished, { timeoutMs: 15_000 });
    expect(message.attachments).toHaveLength(1);
    const statuses = bot.api.requests.filter((r) => r.route === 'result').map((r) => r.status);
    expect(statuses.slice(0, 4)).toEqual([503, 503, 503, 429]);
  });

  it('refuses the N+1th concurrent job of a user politely', async () => {
    // The first job's task is held, so it is still running when the second request arrives.
    const bot = await start({ env: { USER_MAX_CONCURRENT: '1' }, script: () => HELD });
    const first = bot.discord.slash('imagine', { prompt: 'first' });
    await first.waitForCallback();
    const content = await ephemeralText(bot.discord.slash('imagine', { prompt: 'second' }));
    expect(content).toMatch(/already have 1 image\(s\) in progress/);
    finishTask(await taskFor(bot, 'first'));
    expect((await first.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
    expect(submits(bot)).toHaveLength(1);
  });

  it('shows queue positions that move up as jobs finish', async () => {
    // Every task is held until the test has seen the place it is about: no job ends early.
    const bot = await start({ env: { MAX_JOBS_IN_FLIGHT: '1' }, script: () => HELD });
    const inLine = (position: number) => (m: APIMessage) => m.content.includes(`number **${position}** in line`);
    const a = bot.discord.slash('imagine', { prompt: 'one' }, { user: 'alice' });
    const one = await taskFor(bot, 'one');
    const b = bot.discord.slash('imagine', { prompt: 'two' }, { user: 'bob' });
    await b.waitForOriginal(inLine(1));
    const c = bot.discord.slash('imagine', { prompt: 'three' }, { user: 'mod' });
    await c.waitForOriginal(inLine(2));
    finishTask(one);
    await c.waitForOriginal(inLine(1), LONG);
    finishTask(await taskFor(bot, 'two'));
    finishTask(await taskFor(bot, 'three'));
    for (const it of [a, b, c]) expect((await it.waitForOriginal(finished, LONG)).attachments).toHaveLength(1);
    const seen = bot.discord.messageHistory(c.original()!.id).map((m) => m.content);
    const positions = seen.map((text) => /number \*\*(\d)\*\* in line/.exec(text)?.[1]).filter(Boolean);
    expect(positions).toEqual(['2', '1']);
  });

  it('refuses a user past the hourly quota and a guild past its daily budget', async () => {
    const bot = await start({ env: { USER_HOURLY_QUOTA: '1', GUILD_DAILY_BUDGET: '2' } });
    await bot.discord.slash('imagine', { prompt: 'one' }).waitForOriginal(finished);
    expect(await ephemeralText(bot.discord.slash('imagine', { prompt: 'two' }))).toMatch(
      /limit of 1 images per hour.*<t:\d+:R>/,
    );
    await bot.discord.slash('imagine', { prompt: 'three' }, { user: 'bob' }).waitForOriginal(finished);
    expect(await ephemeralText(bot.discord.slash('imagine', { prompt: 'four' }, { user: 'mod' }))).toMatch(
      /used its 2 images for today/,
    );
    expect(submits(bot)).toHaveLength(2);
  });

  it('keeps quotas across a restart', async () => {
    const bot = await start({ env: { USER_HOURLY_QUOTA: '1' } });
    await bot.discord.slash('imagine', { prompt: 'one' }).waitForOriginal(finished);
    await bot.restart();
    expect(await ephemeralText(bot.discord.slash('imagine', { prompt: 'two' }))).toMatch(/limit of 1 images per hour/);
    expect(submits(bot)).toHaveLength(1);
  });

  it('pauses new requests after repeated API failures and recovers by itself', async () => {
    const bot = await start({ env: { BREAKER_THRESHOLD: '2', BREAKER_COOLDOWN_MS: '3000' } });
    bot.api.inject('submit', { status: 503, reason: 'SERVICE_NOT_AVAILABLE' }, 2);
    for (const user of ['alice', 'bob'])
      await bot.discord.slash('imagine', { prompt: 'x' }, { user }).waitForOriginal(finished);
    // The cool-down opened before the second failure reached the member.
    const cooling = Date.now();
    const refused = await ephemeralText(bot.discord.slash('imagine', { prompt: 'y' }, { user: 'mod' }));
    expect(refused).toMatch(/requests are paused/);
    expect(submits(bot)).toHaveLength(2);
    // The cool-down is wall-clock by design; wait out what is left of it.
    await new Promise((resolve) => setTimeout(resolve, cooling + 3_050 - Date.now()));
    const after = await bot.discord.slash('imagine', { prompt: 'z' }, { user: 'mod' }).waitForOriginal(finished);
    expect(after.attachments).toHaveLength(1);
  });

  it('regenerates with the same prompt and size, and lets only the requester or a moderator delete', async () => {
    const bot = await start();
    const original = await bot.discord
      .slash('imagine', { prompt: 'a paper boat', size: 'wide' })
      .waitForOriginal(finished);

    const regen = bot.discord.click(original, 'More like this', { user: 'bob' });
    const second = await regen.waitForOriginal(finished);
    expect(second.attachments).toHaveLength(1);
    expect(submits(bot).map((r) => r.body)).toEqual([
      { prompt: 'a paper boat', size: '1536*864' },
      { prompt: 'a paper boat', size: '1536*864' },
    ]);

    const refused = bot.discord.click(original, 'Delete', { user: 'bob' });
    expect(((await refused.waitForCallback()).data as { content: string }).content).toMatch(
      /Only the person who asked/,
    );
    expect(refused.isEphemeral).toBe(true);
    expect(bot.discord.message(original.id)).toBeDefined();

    await bot.discord.click(second, 'Delete', { user: 'mod', permissions: ['ManageMessages'] }).waitForCallback();
    await bot.discord.click(original, 'Delete', { user: 'alice' }).waitForCallback();
    await bot.discord.waitForRequest(
      (r) =>
        (r.method === 'DELETE' && r.path.includes(original.id)) ||
        (r.method === 'DELETE' && bot.discord.message(original.id) === undefined),
    );
    await waitGone(bot, original.id);
    await waitGone(bot, second.id);
    expect(bot.discord.errors).toEqual([]);
  });

  // Every message the bot writes (progress edits, the result, a failure, the channel fallback
  // and the retired reply) is checked where mentions can be: the text of the content and the
  // embeds must not carry the prompt's mention syntax intact, and allowed_mentions must let
  // nobody be pinged but the requester. The failure's reason is the API's text, echoing the prompt.
  it.each([
    { name: 'the image, in the reply', outcome: 'succeed', channel: false },
    { name: 'a failure, in the reply', outcome: 'fail', channel: false },
    { name: 'the image, posted in the channel after the token expired', outcome: 'succeed', channel: true },
    { name: 'a failure, posted in the channel after the token expired', outcome: 'fail', channel: true },
  ] as const)('never lets prompt text ping anyone: $name', async ({ outcome, channel }) => {
    const bot = await start({ script: ({ prompt }) => ({ ...HELD, outcome, reason: prompt }) });
    const bob = bot.discord.user('bob').id;
    const role = (bot.discord.guild.roles as APIRole[]).find((r) => r.name === 'Moderator')!.id;
    const pings = ['@everyone', '@here', `<@&${role}>`, `<@${bob}>`, `<@!${bob}>`];
    const prompt = `${pings.join(' ')} **bold** poster`;
    const it = bot.discord.slash('imagine', { prompt }, { user: 'alice' });
    const task = await taskFor(bot, prompt);
    await it.waitForOriginal((m) => m.content.includes('Generating'));
    if (channel) it.expireToken();
    finishTask(task);
    if (channel) {
      await bot.discord.waitForMessage((m) => m.message_reference?.message_id === it.original()!.id, LONG);
      await bot.discord.waitForMessage((m) => m.id === it.original()!.id && m.content.includes('posted below'), LONG);
      // The token was gone: every 401 is one the test caused.
      expect(bot.discord.takeErrors().every((e) => e.code === 50027)).toBe(true);
    } else {
      await it.waitForOriginal(finished, LONG);
    }

    let texts = 0;
    for (const write of messageWrites(bot.discord)) {
      const where = `${write.method} ${write.path}`;
      // Interaction callbacks carry the message in `data`.
      const body = write.body as MessageBody & { data?: MessageBody };
      const message = body.data ?? body;
      const text = textsOf(message);
      if (text.length === 0) continue; // a bare defer, or an edit of components: nothing to ping with
      texts++;
      for (const t of text) for (const ping of pings) expect(t, `${where}: ${t}`).not.toContain(ping);
      expect(message.allowed_mentions?.parse, where).toEqual([]);
      expect(message.allowed_mentions?.roles ?? [], where).toEqual([]);
      expect(message.allowed_mentions?.replied_user ?? false, where).toBe(false);
      // Only the channel fallback pings, and only the requester.
      expect(message.allowed_mentions?.users ?? [], where).toEqual(
        write.route === '/channels/{channel_id}/messages' && write.method === 'POST' ? [it.user.id] : [],
      );
    }
    // Not vacuous: the prompt (escaped) was in what was checked, in progress and in the end.
    const quoted = messageWrites(bot.discord).filter((w) =>
      textsOf(((w.body as { data?: MessageBody }).data ?? w.body) as MessageBody).some((t) => t.includes('poster')),
    );
    expect(quoted.length).toBeGreaterThanOrEqual(2);
    expect(texts).toBeGreaterThanOrEqual(quoted.length);
    if (outcome === 'succeed')
      expect(JSON.stringify(bot.discord.messages().map((m) => m.embeds))).toContain('\\\\*\\\\*bold\\\\*\\\\*');
    // And what Discord made of every version of every message: nobody but the requester mentioned.
    for (const message of bot.discord.messages()) {
      for (const version of bot.discord.messageHistory(message.id)) {
        expect(version.mention_everyone, version.content).toBe(false);
        expect(version.mention_roles, version.content).toEqual([]);
        expect(
          version.mentions.map((u) => u.id),
          version.content,
        ).toEqual(channel && version.id !== it.original()!.id ? [it.user.id] : []);
      }
    }
  });

  it('answers a zh-CN member in Chinese', async () => {
    const bot = await start();
    const content = await ephemeralText(
      bot.discord.slash('imagine', { prompt: '海报', size: '9999x9999' }, { locale: 'zh-CN' }),
    );
    expect(content).toContain('超出允许范围');
    const it = bot.discord.slash('imagine', { prompt: '一张写着“你好”的海报' }, { locale: 'zh-CN' });
    await it.waitForOriginal((m) => m.content.includes('正在'));
    const done = await it.waitForOriginal(finished);
    expect(done.embeds[0]?.fields?.map((f) => f.name)).toEqual(['尺寸', '用时', '请求者']);
  });

  it('says clearly when the image is above the server’s upload limit', async () => {
    const bot = await start({ imageSizeBytes: 11 * 1024 * 1024 });
    const message = await bot.discord
      .slash('imagine', { prompt: 'a huge mural' })
      .waitForOriginal(finished, { timeoutMs: 10_000 });
    expect(message.content).toMatch(/^❌ The image is 11\.0 MB, more than this server’s upload limit of 10 MB/);
    expect(message.attachments).toEqual([]);
    expect(bot.discord.errors).toEqual([]);
  });

  it('costs nothing when Discord says the interaction expired before the defer', async () => {
    const bot = await start({ discord: { callbackDeadlineMs: 0 }, env: { USER_MAX_CONCURRENT: '1' } });
    bot.discord.expectError(10062, 2);
    const it = bot.discord.slash('imagine', { prompt: 'too late' });
    // The defer is refused, then so is the apology: both callbacks get 10062.
    const lateCallbacks = () =>
      bot.discord.requests.filter((r) => r.status === 404 && r.path.includes('/callback')).length;
    await bot.discord.waitForRequest(() => lateCallbacks() === 2);
    expect(it.acknowledged).toBe(false);
    expect(bot.api.requests).toEqual([]);
    expect(bot.logs.some((l) => l.msg === 'interaction failed')).toBe(true);
    // The reservation was released: the same user can ask again at once.
    expect(
      (
        await bot.app.jobs.reserve({
          prompt: 'x',
          size: '1024*1024',
          userId: it.user.id,
          userName: 'alice',
          guildId: it.guildId,
          channelId: it.channelId,
          channelNsfw: false,
          locale: 'en-US',
        })
      ).ok,
    ).toBe(true);
  });

  it('offers presets in autocomplete and echoes a valid typed size', async () => {
    const bot = await start();
    const all = await bot.discord.autocomplete('imagine', { prompt: 'x', size: '' }, 'size').autocompleteChoices();
    expect(all.map((c) => c.value)).toContain('1536*864');
    const typed = await bot.discord
      .autocomplete('imagine', { prompt: 'x', size: '800x600' }, 'size')
      .autocompleteChoices();
    expect(typed[0]).toEqual({ name: 'custom · 800×600', value: '800*600' });
    const zh = await bot.discord
      .autocomplete('imagine', { prompt: 'x', size: 'wi' }, 'size', { locale: 'zh-CN' })
      .autocompleteChoices();
    expect(zh).toEqual([{ name: '宽屏 · 1536×864 (16:9)', value: '1536*864' }]);
  });

  it('delivers in the channel when the interaction token has expired', async () => {
    // Held until the token has expired, so the image cannot slip out through the reply first.
    const bot = await start({ script: () => HELD });
    const it = bot.discord.slash('imagine', { prompt: 'a slow kite' });
    const task = await taskFor(bot, 'a slow kite');
    await it.waitForOriginal((m) => m.content.includes('Generating'));
    it.expireToken();
    bot.discord.expectError(50027, 5);
    finishTask(task);
    const fallback = await bot.discord.waitForMessage(
      (m) => m.attachments.length > 0 && m.content.includes('your image is ready'),
      LONG,
    );
    expect(fallback.content).toContain(`<@${it.user.id}>`);
    const post = bot.discord.requests.find((r) => r.method === 'POST' && r.route === '/channels/{channel_id}/messages');
    expect((post!.body as { allowed_mentions: unknown }).allowed_mentions).toEqual({ parse: [], users: [it.user.id] });
    expect(fallback.message_reference?.message_id).toBe(it.original()!.id);
    // The stale "generating" reply no longer pretends to be working.
    await bot.discord.waitForMessage((m) => m.id === it.original()!.id && m.content.includes('posted below'));
  });

  it('resumes a job after a restart without submitting it again', async () => {
    // Held across the restart: the first process cannot finish the job, only the second can.
    const bot = await start({ script: () => HELD });
    const it = bot.discord.slash('imagine', { prompt: 'survives restarts' });
    const task = await taskFor(bot, 'survives restarts');
    await it.waitForOriginal((m) => m.content.includes('Generating'));
    const { jobId } = await bot.waitForLog((l) => l.msg === 'task submitted' && l.taskId === task.id);
    const ofJob = (l: Record<string, unknown>) => l.jobId === jobId;
    const logsBefore = bot.logs.length;

    await bot.restart();
    // The first process let go of the job (paused, not failed, not delivered) as it stopped ...
    const stopping = bot.logs.slice(logsBefore);
    expect(stopping.filter(ofJob).map((l) => l.msg)).toContain('job paused for shutdown; it resumes on the next start');
    expect(
      bot.logs.slice(0, logsBefore).filter((l) => ofJob(l) && (l.msg === 'job failed' || l.msg === 'job delivered')),
    ).toEqual([]);
    // ... and the second picked it up from storage as it started.
    const startedAt = stopping.findIndex((l) => l.msg === 'qwen-imagine is running');
    expect(stopping[startedAt]).toMatchObject({ resumed: 1 });
    expect(stopping.slice(0, startedAt).find((l) => l.msg === 'resuming job')).toMatchObject({
      jobId,
      taskId: task.id,
      state: 'polling',
    });
    // restart() closed the first process's HTTP client: every request from here is the second's.
    const requestsBefore = bot.api.requests.length;

    finishTask(task);
    const message = await it.waitForOriginal(finished, LONG);
    expect(message.attachments).toHaveLength(1);
    expect(bot.discord.files(message)[0]!.bytes.equals(Buffer.from(task.image!))).toBe(true);
    const delivered = await bot.waitForLog((l) => ofJob(l) && l.msg === 'job delivered');
    expect(bot.logs.indexOf(delivered)).toBeGreaterThan(logsBefore + startedAt);
    // The second process polled the same task, and delivered on its own polls.
    const polls = bot.api.requests.slice(requestsBefore).filter((r) => r.route === 'result');
    expect(polls.length).toBeGreaterThanOrEqual(1);
    expect(polls.every((r) => r.query.task_id === task.id)).toBe(true);
    expect(delivered.polls).toBe(polls.length);
    expect(submits(bot)).toHaveLength(1);
  });
});

describe('after a crash', () => {
  it('tells the member instead of resubmitting a job that was cut off mid-submit (no double billing)', async () => {
    const bot = await start();
    // An interaction to report to (refused at once, so it starts no job of its own).
    const it = bot.discord.slash('imagine', { prompt: 'cut off', size: 'bad' });
    await it.waitForCallback();
    // What a crash between "submit sent" and "task id saved" leaves behind: a job in 'submitting'.
    const job: Job = {
      id: 'crashed1',
      prompt: 'cut off',
      size: '1024*1024',
      userId: it.user.id,
      userName: 'alice',
      guildId: it.guildId,
      channelId: it.channelId,
      channelNsfw: false,
      locale: 'en-US',
      state: 'submitting',
      reply: { applicationId: bot.discord.applicationId, token: it.token, createdAt: Date.now() },
      createdAt: Date.now(),
      polls: 0,
    };
    await bot.app.store.save(job);
    await bot.restart();
    const told = await it.waitForOriginal((m) => m.content.startsWith('❌'));
    expect(told.content).toMatch(/restarted while sending your prompt.*avoid charging twice/);
    expect(bot.api.requests).toEqual([]);
    expect((await bot.app.jobs.get('crashed1'))?.state).toBe('failed');
    expect(await bot.app.store.listActive()).toEqual([]);
  });
});

async function waitGone(bot: BotHarness, id: string): Promise<void> {
  await bot.discord.waitForRequest((r) => r.method === 'DELETE' && bot.discord.message(id) === undefined);
}

interface MessageBody {
  content?: string;
  embeds?: APIEmbed[];
  allowed_mentions?: { parse?: string[]; roles?: string[]; users?: string[]; replied_user?: boolean };
}

/** Every piece of text of a message body where a mention could be written. */
function textsOf(body: MessageBody): string[] {
  const embedTexts = (e: APIEmbed) => [
    e.title,
    e.description,
    e.footer?.text,
    e.author?.name,
    ...(e.fields ?? []).flatMap((f) => [f.name, f.value]),
  ];
  return [body.content, ...(body.embeds ?? []).flatMap(embedTexts)].filter(
    (t): t is string => typeof t === 'string' && t.length > 0,
  );
}
