import type { Job } from '../domain/job.ts';
import type { PpinfraClient } from '../ppinfra/client.ts';
import { imageInputFor, type EditImageInput } from '../ppinfra/edit.ts';
import { isPpinfraError, PpinfraError } from '../ppinfra/errors.ts';
import { EDIT_INPUT_LIMITS } from '../prompts/image-input.ts';

export interface SubmitDeps {
  client: Pick<PpinfraClient, 'submit' | 'submitEdit' | 'submitUpscale' | 'download'>;
  /** EDIT_IMAGE_INPUT: the source's URL as it is (default), or its bytes as base64. */
  editImageInput?: EditImageInput;
}

/** The picture's bytes for a base64 edit. Nothing was submitted when they cannot be had: the quota goes back. */
async function sourceBytes(client: SubmitDeps['client'], url: string): Promise<Uint8Array> {
  try {
    return (await client.download(url, { maxBytes: EDIT_INPUT_LIMITS.maxBytes })).bytes;
  } catch (e) {
    const kind = isPpinfraError(e) ? e.kind : 'network';
    throw new PpinfraError(kind, 'Fetching the picture to edit failed', { cause: e, notSent: true });
  }
}

/**
 * The one submit of a job, whichever engine runs it and whatever the job does to a picture. Its
 * errors are the client's, so the engines' refund rule (`certainlyNotCreated`) holds for all three.
 */
export async function submitFor(job: Job, deps: SubmitDeps): Promise<string> {
  const { client } = deps;
  const source = job.source;
  if (job.tool === 'edit' && source) {
    const mode = deps.editImageInput ?? 'url';
    // The upload was checked by its bytes before anything was reserved; the limit here only
    // bounds what a CDN answer could make the bot read.
    const bytes = mode === 'base64' ? await sourceBytes(client, source.url) : new Uint8Array();
    return client.submitEdit({
      prompt: job.prompt,
      image: imageInputFor(mode, { url: source.url, bytes }),
      ...(job.seed === undefined ? {} : { seed: job.seed }),
    });
  }
  if (job.tool === 'upscale' && source)
    return client.submitUpscale({ image: source.url, resolution: job.resolution ?? '2k' });
  // A tool's record without its picture cannot be sent as a generation of its instruction.
  if (job.tool) throw new PpinfraError('invalid_request', 'The job has no picture to work on', { notSent: true });
  return client.submit({ prompt: job.prompt, size: job.size });
}
