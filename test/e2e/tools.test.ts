// The image tools through the real bot: Change… and Upscale on results, /imagine-edit on a
// member's own picture; the paths that differ by engine (submit, restart) on both engines.
import { createHash } from 'node:crypto';
import type { APIMessage } from 'discord-api-types/v10';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeCustomId, parseCustomId } from '../../src/discord/custom-id.ts';
import type { FakeTaskScript } from '../fakes/ppinfra.ts';
import { makePicture } from '../fakes/pictures.ts';
import { skipWithoutRedis, startRedis, type FakeRedis } from '../fakes/redis.ts';
import {
  deployCommands,
  ephemeralText,
  finished,
  startBotHarness,
  type BotHarness,
  type HarnessOptions,
} from './harness.ts';

let h: BotHarness | undefined;
let redis: FakeRedis | undefined;
let db = 0;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
afterAll(async () => {
  await redis?.stop();
});

const LONG = { timeoutMs: 20_000 };
const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const labels = (m: APIMessage) =>
  ((m.components ?? []) as unknown as { components: { label?: string }[] }[])
    .flatMap((row) => row.components)
    .map((b) => b.label);
const routes = (bot: BotHarness, route: string) => bot.api.requests.filter((r) => r.route === route);
/** Every image of a batch has its answer: the buttons come with the last one. */
const batchDone = (n: number) => (m: APIMessage) => m.attachments.length === n && (m.components ?? []).length > 0;
const description = (m: APIMessage) => m.embeds[0]?.description ?? '';

const ENGINES = [
  { engine: 'in-process', queue: false },
  { engine: 'BullMQ', queue: true },
] as const;

describe.each(ENGINES)('image tools on $engine', ({ queue }) => {
  beforeAll(async () => {
    if (queue && !skipWithoutRedis) redis ??= await startRedis();
  });
  const start = async (options: HarnessOptions = {}) => {
    await h?.close();
    h = await startBotHarness({
      ...options,
      env: {
        ...(queue ? { STORAGE_URL: `${redis!.url}/${++db}`, QUEUE_LOCK_MS: '10000' } : {}),
        ...options.env,
      },
    });
    await deployCommands(h);
    return h;
  };

  it.skipIf(queue && skipWithoutRedis)(
    'Change… on a result: a form, then the edited image replies with the instruction and its own buttons; edits chain',
    async () => {
      const bot = await start();
      const first = await bot.discord.slash('imagine', { prompt: 'a quiet harbour' }).waitForOriginal(finished, LONG);
      expect(labels(first)).toEqual(['More like this', 'Edit prompt', 'Delete', 'Report', 'Change…', 'Upscale']);
      const click = bot.discord.click(first, 'Change…', { user: 'bob' });
      const modal = await click.modal();
      expect(modal.title).toBe('Change this image');
      const edited = await click
        .submitModal({ instruction: 'make it a snowy evening' })
        .waitForOriginal(finished, LONG);
      expect(edited.id).not.toBe(first.id);
      expect(description(edited)).toContain('make it a snowy evening');
      expect(labels(edited)).toEqual(['Delete', 'Report', 'Change…', 'Upscale']);
      const [edit] = routes(bot, 'edit');
      expect(edit?.body).toMatchObject({ prompt: 'make it a snowy evening', image: first.attachments[0]!.url });
      const task = [...bot.api.tasks.values()].find((t) => t.kind === 'edit')!;
      expect(task.tool?.inputSha256).toBe(sha(bot.discord.files(first)[0]!.bytes));
      expect(sha(bot.discord.files(edited)[0]!.bytes)).toBe(sha(task.tool!.output));
      // And again, on the edit.
      const again = bot.discord.click(edited, 'Change…', { user: 'bob' });
      await again.modal();
      const second = await again.submitModal({ instruction: 'add a lantern' }).waitForOriginal(finished, LONG);
      expect(description(second)).toContain('add a lantern');
      expect(routes(bot, 'edit')[1]?.body).toMatchObject({ image: edited.attachments[0]!.url });
      expect(bot.discord.errors).toEqual([]);
    },
  );

  it.skipIf(queue && skipWithoutRedis)('Change… on image 3 of a batch edits the image shown third', async () => {
    // The images arrive last-asked first: the buttons are numbered as the message shows them.
    let n = 0;
    const bot = await start({ script: (req) => ({ processingMs: req.kind ? 100 : [1_200, 700, 200][n++ % 3]! }) });
    const batch = await bot.discord
      .slash('imagine', { prompt: 'three lanterns', count: 3 })
      .waitForOriginal(batchDone(3), LONG);
    expect(labels(batch)).toEqual([
      'More like this',
      'Edit prompt',
      'Delete',
      'Report',
      'Change… 1',
      'Change… 2',
      'Change… 3',
      'Upscale 1',
      'Upscale 2',
      'Upscale 3',
    ]);
    const third = bot.discord.files(batch)[2]!;
    const click = bot.discord.click(batch, 'Change… 3');
    await click.modal();
    const edited = await click
      .submitModal({ instruction: 'only the third one, in blue' })
      .waitForOriginal(finished, LONG);
    expect(edited.attachments).toHaveLength(1);
    const task = [...bot.api.tasks.values()].find((t) => t.kind === 'edit')!;
    expect(task.tool?.inputSha256).toBe(sha(third.bytes));
    expect(bot.discord.errors).toEqual([]);
  });

  it.skipIf(queue && skipWithoutRedis)(
    '/imagine-edit: a good upload is edited; a text file named .png, a 30 MB image and a GIF are refused privately, nothing sent',
    async () => {
      const bot = await start();
      const png = Buffer.from(await makePicture(7, 96, 'png'));
      const edited = await bot.discord
        .slash('imagine-edit', { image: { file: { name: 'cat.png', bytes: png } }, instruction: 'give it a hat' })
        .waitForOriginal(finished, LONG);
      expect(description(edited)).toContain('give it a hat');
      const task = [...bot.api.tasks.values()].find((t) => t.kind === 'edit')!;
      expect(task.tool?.inputSha256).toBe(sha(png));
      expect(task.prompt).toBe('give it a hat');

      const text = Buffer.from('not a picture at all, just words\n'.repeat(20));
      expect(
        await ephemeralText(
          bot.discord.slash('imagine-edit', {
            image: { file: { name: 'notes.png', bytes: text, contentType: 'application/octet-stream' } },
            instruction: 'x',
          }),
        ),
      ).toBe('That file is not an image. Please attach a PNG, JPEG or WebP picture.');
      const huge = Buffer.concat([png, Buffer.alloc(30 * 1024 * 1024)]);
      expect(
        await ephemeralText(
          bot.discord.slash('imagine-edit', { image: { file: { name: 'big.png', bytes: huge } }, instruction: 'x' }),
        ),
      ).toMatch(/That image is 30\.0 MB; the limit is 10 MB/);
      const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
      expect(
        await ephemeralText(
          bot.discord.slash('imagine-edit', { image: { file: { name: 'a.gif', bytes: gif } }, instruction: 'x' }),
        ),
      ).toBe('I can’t work with GIF images. Please attach a PNG, JPEG or WebP picture.');
      expect(routes(bot, 'edit')).toHaveLength(1);
      expect(bot.discord.errors).toEqual([]);
    },
  );

  it.skipIf(queue && skipWithoutRedis)(
    'an edit running when the bot restarts is finished, not sent again',
    async () => {
      const bot = await start({ script: (req) => (req.kind === 'edit' ? { processingMs: 1_500 } : {}) });
      const first = await bot.discord.slash('imagine', { prompt: 'an old bridge' }).waitForOriginal(finished, LONG);
      const click = bot.discord.click(first, 'Change…');
      await click.modal();
      const it = click.submitModal({ instruction: 'in autumn' });
      await bot.api.waitFor('task-created', (t: { kind: string }) => t.kind === 'edit', 10_000);
      await it.waitForOriginal((m) => m.content.includes('Generating'), LONG);
      await bot.restart();
      const edited = await it.waitForOriginal(finished, LONG);
      expect(edited.attachments).toHaveLength(1);
      expect(description(edited)).toContain('in autumn');
      expect(routes(bot, 'edit')).toHaveLength(1);
    },
  );

  it.skipIf(queue && skipWithoutRedis)('Upscale: 2k by default, and the result says its size', async () => {
    const bot = await start();
    const first = await bot.discord.slash('imagine', { prompt: 'a tiny bird' }).waitForOriginal(finished, LONG);
    const up = await bot.discord.click(first, 'Upscale').waitForOriginal(finished, LONG);
    expect(routes(bot, 'upscale')[0]?.body).toMatchObject({ image: first.attachments[0]!.url, resolution: '2k' });
    expect(description(up)).toBe('🔍 Upscaled to 2048×2048');
    // Already at its target: no Upscale on it.
    expect(labels(up)).toEqual(['Delete', 'Report', 'Change…']);
  });
});

describe('image tools (one engine)', () => {
  const start = async (options: HarnessOptions = {}) => {
    h = await startBotHarness(options);
    await deployCommands(h);
    return h;
  };

  it('a 4k upscale over the upload limit tells its size and offers 2k, which is delivered', async () => {
    // The fake serves an upscale's stand-in; at 4k this one is as large as the real one would be.
    const large: FakeTaskScript = { processingMs: 100, image: new Uint8Array(11 * 1024 * 1024) };
    const bot = await start({
      env: { UPSCALE_RESOLUTION: '4k' },
      script: (req) => (req.kind === 'upscale' && req.size.startsWith('4096') ? large : { processingMs: 100 }),
    });
    const first = await bot.discord.slash('imagine', { prompt: 'a wide valley' }).waitForOriginal(finished, LONG);
    const up = await bot.discord.click(first, 'Upscale').waitForOriginal(finished, LONG);
    expect(up.content).toMatch(/The upscaled image is 11\.0 MB, over this server’s upload limit of 10 MB/);
    expect(labels(up)).toEqual(['Upscale to 2k']);
    const small = await bot.discord.click(up, 'Upscale to 2k').waitForOriginal(finished, LONG);
    expect(description(small)).toBe('🔍 Upscaled to 2048×2048');
    expect(routes(bot, 'upscale').map((r) => (r.body as { resolution: string }).resolution)).toEqual(['4k', '2k']);
    expect(bot.discord.errors).toEqual([]);
  });

  it('the Upscale button of an older upscale message is refused, privately and for free', async () => {
    const bot = await start();
    const first = await bot.discord.slash('imagine', { prompt: 'a tiny bird' }).waitForOriginal(finished, LONG);
    const up = await bot.discord.click(first, 'Upscale').waitForOriginal(finished, LONG);
    // A message posted before upscales lost their Upscale button: it still has one.
    const upscaleJob = /-(\w+)\.\w+$/.exec(up.attachments[0]!.filename)![1]!;
    bot.discord.store.get(up.id)!.data.components = [
      {
        type: 1,
        components: [{ type: 2, style: 2, label: 'Upscale', custom_id: encodeCustomId('upscale', upscaleJob) }],
      },
    ];
    expect(await ephemeralText(bot.discord.click(up, 'Upscale'))).toBe(
      'That image is already 2048×2048: an upscale to 2k would not make it larger. Nothing was charged.',
    );
    expect(routes(bot, 'upscale')).toHaveLength(1);
    expect(bot.discord.errors).toEqual([]);
  });

  it('“Upscale to 2k” on a kept link about to expire: the offer has expired, nothing is spent', async () => {
    const large: FakeTaskScript = { processingMs: 100, image: new Uint8Array(11 * 1024 * 1024) };
    const bot = await start({
      env: { UPSCALE_RESOLUTION: '4k' },
      script: (req) => (req.kind === 'upscale' ? large : { processingMs: 100 }),
    });
    const first = await bot.discord.slash('imagine', { prompt: 'a wide valley' }).waitForOriginal(finished, LONG);
    const up = await bot.discord.click(first, 'Upscale').waitForOriginal(finished, LONG);
    expect(labels(up)).toEqual(['Upscale to 2k']);
    // The link the fake CDN signed for a day, as it reads five minutes before it stops working.
    const offer = (up.components as unknown as { components: { custom_id: string }[] }[])[0]!.components[0]!;
    const job = (await bot.app.jobs.get(parseCustomId(offer.custom_id)!.jobId))!;
    const ex = Math.floor((Date.now() + 5 * 60_000) / 1000).toString(16);
    job.source!.url = job.source!.url.replace(/ex=[0-9a-f]+/, `ex=${ex}`);
    await bot.app.store.save(job);
    expect(await ephemeralText(bot.discord.click(up, 'Upscale to 2k'))).toBe(
      'This offer has expired. Click **Upscale** on the image itself to upscale it again. Nothing was charged.',
    );
    expect(routes(bot, 'upscale')).toHaveLength(1);
    expect(bot.discord.errors).toEqual([]);
  });

  it('EDIT_IMAGE_INPUT=base64 sends the picture’s bytes; a member in Chinese reads the tools in Chinese', async () => {
    const bot = await start({ env: { EDIT_IMAGE_INPUT: 'base64' } });
    const zh = { locale: 'zh-CN' };
    const first = await bot.discord.slash('imagine', { prompt: '一座小桥' }, zh).waitForOriginal(finished, LONG);
    expect(labels(first)).toEqual(['更多类似', '编辑提示词', '删除', '举报', '修改…', '放大']);
    const click = bot.discord.click(first, '修改…', zh);
    expect((await click.modal()).title).toBe('修改这张图片');
    const edited = await click.submitModal({ instruction: '下雪' }, zh).waitForOriginal(finished, LONG);
    expect(description(edited)).toBe('🖌️ 已按指令编辑：下雪');
    const task = [...bot.api.tasks.values()].find((t) => t.kind === 'edit')!;
    expect(task.tool?.via).toBe('base64');
    expect(task.tool?.inputSha256).toBe(sha(bot.discord.files(first)[0]!.bytes));
    expect(bot.discord.errors).toEqual([]);
  });

  it('a 2k upscale over the upload limit: its size and the limit, and nothing more to offer', async () => {
    const large: FakeTaskScript = { processingMs: 100, image: new Uint8Array(12 * 1024 * 1024) };
    const bot = await start({ script: (req) => (req.kind === 'upscale' ? large : { processingMs: 100 }) });
    const first = await bot.discord.slash('imagine', { prompt: 'a long beach' }).waitForOriginal(finished, LONG);
    const up = await bot.discord.click(first, 'Upscale').waitForOriginal(finished, LONG);
    expect(up.content).toMatch(/^❌ The upscaled image is 12\.0 MB, over this server’s upload limit of 10 MB/);
    expect(up.content).toContain('> Upscale to 2k');
    expect(labels(up)).toEqual([]);
  });
});
