/**
 * `npm run imagine -- "a prompt" --size 1024*1024 --out cat.jpeg`
 *
 * The operator's end-to-end check of a key, before the bot is invited anywhere: the same client
 * and poller the bot uses, with progress on stderr and one exit code per error kind.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { formatProblems, loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { createPpinfraClient } from '../ppinfra/client.ts';
import { isPpinfraError, type PpinfraErrorKind } from '../ppinfra/errors.ts';
import { checkPrompt } from '../prompts/check.ts';
import { SIZE_PRESETS, parseSize } from '../ppinfra/size.ts';
import { pollTask } from '../jobs/poller.ts';

const HINTS: Record<PpinfraErrorKind, string> = {
  auth: 'The API key was rejected. Check PPINFRA_API_KEY (and PPINFRA_BASE_URL: the key must belong to that host).',
  quota: 'The account balance is exhausted. Top up the PPInfra account.',
  invalid_request: 'The API refused the request as invalid. Check the prompt and size.',
  illegal_prompt: 'The API refused the prompt as inappropriate.',
  task_not_found: 'The API no longer knows this task.',
  rate_limited: 'The API is rate limiting this key. Wait a minute and try again.',
  server: 'The API is failing on its side. Try again later.',
  network: 'The API could not be reached. Check the network and PPINFRA_BASE_URL.',
  timeout: 'The API did not answer in time.',
  task_failed: 'The API could not generate this image.',
  too_large: 'The generated image is larger than IMAGE_MAX_BYTES.',
  aborted: 'Cancelled.',
};
const EXIT: Partial<Record<PpinfraErrorKind, number>> = {
  auth: 3,
  quota: 4,
  invalid_request: 2,
  illegal_prompt: 2,
  timeout: 5,
  aborted: 130,
};

const USAGE = `Usage: npm run imagine -- "prompt" [--size 1024*1024|${SIZE_PRESETS.map((p) => p.name).join('|')}] [--out file.jpeg]`;

function readArgs() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        size: { type: 'string', short: 's' },
        out: { type: 'string', short: 'o' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return undefined;
  }
}

async function main(): Promise<number> {
  dotenv.config({ quiet: true });
  const args = readArgs();
  if (!args) return 2;
  if (args.values.help) {
    console.error(USAGE);
    return 0;
  }
  const loaded = loadConfig(process.env, { discord: false, ppinfra: true });
  if (!loaded.ok) {
    console.error(formatProblems(loaded.problems));
    return 2;
  }
  const { config } = loaded;
  const prompt = checkPrompt(args.positionals.join(' '), {
    maxLength: config.generation.promptMaxLength,
    blockedTerms: [],
  });
  if (!prompt.ok) {
    console.error(
      prompt.problem === 'too_long'
        ? `The prompt is ${prompt.length} characters; the limit is ${prompt.limit}.`
        : `Give a prompt.\n${USAGE}`,
    );
    return 2;
  }
  const size = parseSize(args.values.size ?? config.generation.defaultSize);
  if (!size.ok) {
    console.error(
      `Size must be W*H with each side 256..1536, or one of: ${SIZE_PRESETS.map((p) => `${p.name} (${p.size})`).join(', ')}.`,
    );
    return 2;
  }
  const logger = createLogger({
    level: config.log.level === 'info' ? 'warn' : config.log.level,
    format: 'pretty',
    secrets: [config.ppinfra.apiKey],
    destination: process.stderr,
  });
  const client = createPpinfraClient({ ...config.ppinfra, logger });
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
  try {
    const taskId = await client.submit({ prompt: prompt.prompt, size: size.size }, { signal: controller.signal });
    console.error(`Submitted task ${taskId} (${size.size}).`);
    const result = await pollTask(taskId, {
      client,
      submittedAt: started,
      deadline: started + config.jobs.timeoutMs,
      // A one-off run has no history: a wide estimate polls about once a second from the
      // start, and backs off only for a task slower than about 18 s.
      estimate: { expectedMs: 6_000, spreadMs: 6_000 },
      minIntervalMs: config.jobs.pollMinIntervalMs,
      maxIntervalMs: config.jobs.pollMaxIntervalMs,
      signal: controller.signal,
      onUpdate: (r) => console.error(`  ${r.status} after ${elapsed()}`),
    });
    const image = result.images[0]!;
    if (image.nsfw) console.error('Note: the API flagged this image as possibly NSFW.');
    const { bytes, contentType } = await client.download(image.url, {
      maxBytes: config.generation.imageMaxBytes,
      signal: controller.signal,
    });
    const out = args.values.out ?? `qwen-${taskId.slice(0, 8)}.${image.type || 'jpeg'}`;
    await writeFile(out, bytes);
    console.error(
      `Done in ${elapsed()} (${result.polls} polls): wrote ${bytes.length} bytes (${contentType}) to ${out}.`,
    );
    return 0;
  } catch (e) {
    if (!isPpinfraError(e)) throw e;
    console.error(`Error [${e.kind}]: ${HINTS[e.kind]}\n  ${e.message}`);
    return EXIT[e.kind] ?? 1;
  } finally {
    await client.close();
  }
}

process.exitCode = await main();
