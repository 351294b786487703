/**
 * The baseline: the bot anyone would write first. It submits every request at once, polls each
 * task every second, has no pacing, no queue and no poll cap, then downloads the image. Same
 * PpinfraClient (and so the same retries and timeouts) as the real bot.
 */
import type { PpinfraClient } from '../src/ppinfra/client.ts';
import { sleep } from '../src/ppinfra/retry.ts';

export interface NaiveOutcome {
  taskId: string;
  /** When the image bytes were in hand (the naive bot "delivers" right then). */
  deliveredAt: number;
}

export async function naiveJob(client: PpinfraClient, req: { prompt: string; size: string }, intervalMs: number): Promise<NaiveOutcome> {
  const taskId = await client.submit(req);
  for (;;) {
    await sleep(intervalMs);
    const result = await client.getResult(taskId);
    if (result.status === 'failed') throw new Error(`naive: task ${taskId} failed: ${result.reason}`);
    if (result.status !== 'succeed') continue;
    await client.download(result.images[0]!.url, { maxBytes: 50 * 1024 * 1024 });
    return { taskId, deliveredAt: Date.now() };
  }
}
