/**
 * The NSFW model's thread (started by `createNsfwClassifier` in `nsfw-classifier.ts`): decoding, resizing
 * and inference all happen here, so the bot's event loop never waits on them. One model, loaded
 * once; requests are run one at a time in arrival order (the wasm backend is single-threaded in
 * Node, so running two at once would only interleave them).
 *
 * The protocol is `WorkerRequest` in, `WorkerReply` out. Nothing here writes to stdout: console
 * output of the libraries is forwarded to the parent, which logs it through pino.
 */
import { createRequire } from 'node:module';
import { getPriority, setPriority } from 'node:os';
import { dirname } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import type { NsfwScores } from '../domain/job.ts';

export interface WorkerOptions {
  /** The nsfwjs model name (default MobileNetV2); a name nsfwjs does not know fails the load. */
  model: string;
  /** Linux only: how much lower than the bot's this thread's CPU priority is (0-19; 0 leaves it). */
  niceness: number;
}

export type WorkerRequest =
  | {
      type: 'classify';
      id: number;
      image: Uint8Array /** Epoch ms after which the caller no longer waits. */;
      deadline: number;
    }
  | { type: 'debug'; id: number };

export type WorkerReply =
  | { type: 'ready'; loadMs: number }
  | { type: 'failed'; message: string }
  | { type: 'scores'; id: number; scores: NsfwScores }
  | { type: 'error'; id: number; reason: 'decode' | 'model' | 'expired'; message: string }
  | { type: 'debug'; id: number; tensors: number }
  | { type: 'log'; level: 'debug' | 'warn'; message: string };

/** nsfwjs' class names, as `NsfwScores` keys. */
const CLASSES: Record<string, keyof NsfwScores> = {
  Drawing: 'drawing',
  Hentai: 'hentai',
  Neutral: 'neutral',
  Porn: 'porn',
  Sexy: 'sexy',
};
/** MobileNetV2's input side: resizing here (in libvips) is cheaper than in the model. */
const SIDE = 224;
/**
 * The most pixels an image may declare to be decoded at all. The API makes images of at most
 * 1536 pixels a side (`MAX_SIDE` in src/ppinfra/size.ts); this leaves room for more than double
 * that. sharp's own default (about 16384²) lets a few-megabyte interlaced 16-bit RGBA PNG, which
 * libvips must decode whole, take over 2 GB of this process and seconds of a core: enough for a
 * container's memory limit to kill the bot. A larger image is a `decode` failure, so it is held.
 */
const MAX_INPUT_PIXELS = 4096 * 4096;

const port = parentPort;
if (!port) throw new Error('classifier-worker.ts runs as a worker thread (see createNsfwClassifier)');
const post = (reply: WorkerReply) => port.postMessage(reply);

// nsfwjs announces its model with console.info and emscripten prints through console.log: both
// would land on the bot's stdout beside pino's JSON. They go to the parent's logger instead.
const forward =
  (level: 'debug' | 'warn') =>
  (...args: unknown[]) =>
    post({
      type: 'log',
      level,
      message: args
        .filter((a) => typeof a !== 'string' || !a.startsWith('color:'))
        .map(String)
        .join(' ')
        .replace(/%c/g, ''),
    });
console.log = console.info = console.debug = forward('debug');
console.warn = console.error = forward('warn');

const options = workerData as WorkerOptions;

// On Linux a thread has a nice value of its own, and setpriority on "this process" from a thread
// changes that thread alone: classifications yield the CPU to the bot's event loop when both want
// it. Elsewhere the same call would renice the whole bot, so it is not made.
if (process.platform === 'linux' && options.niceness) {
  try {
    setPriority(Math.min(19, getPriority() + options.niceness));
  } catch {
    // Not allowed (some containers): the thread runs at the bot's priority.
  }
}

async function loadModel() {
  const started = performance.now();
  const tf = await import('@tensorflow/tfjs');
  const { setWasmPaths } = await import('@tensorflow/tfjs-backend-wasm');
  const { load } = await import('nsfwjs/core');
  const { MobileNetV2Model } = await import('nsfwjs/models/mobilenet_v2');
  const { default: sharp } = await import('sharp');
  // One libvips thread per image: the image is small work, and the cores are the bot's too.
  sharp.concurrency(1);
  // The .wasm files ship inside the package; tfjs would otherwise look for them next to the page.
  const require = createRequire(import.meta.url);
  setWasmPaths(`${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))}/`);
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend did not initialise');
  const model = await load(options.model, { modelDefinitions: [MobileNetV2Model] });
  // One classification of a blank image compiles the kernels, so the first real one is not slow.
  const blank = tf.zeros([SIDE, SIDE, 3], 'int32') as import('@tensorflow/tfjs').Tensor3D;
  try {
    await model.classify(blank, 5);
  } finally {
    blank.dispose();
  }
  return { tf, model, sharp, loadMs: performance.now() - started };
}

type Loaded = Awaited<ReturnType<typeof loadModel>>;

async function classify(
  { tf, model, sharp }: Loaded,
  image: Uint8Array,
): Promise<NsfwScores | { reason: 'decode' | 'model'; message: string }> {
  let pixels: { data: Buffer; info: { width: number; height: number } };
  try {
    pixels = await sharp(image, { limitInputPixels: MAX_INPUT_PIXELS })
      .removeAlpha()
      .toColourspace('srgb')
      .resize(SIDE, SIDE, { fit: 'fill' })
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    return { reason: 'decode', message: err instanceof Error ? err.message : String(err) };
  }
  const input = tf.tensor3d(
    new Uint8Array(pixels.data.buffer, pixels.data.byteOffset, pixels.data.length),
    [pixels.info.height, pixels.info.width, 3],
    'int32',
  );
  try {
    const predictions = await model.classify(input, 5);
    const scores: NsfwScores = { drawing: 0, hentai: 0, neutral: 0, porn: 0, sexy: 0 };
    for (const p of predictions) {
      const key = CLASSES[p.className];
      if (key) scores[key] = p.probability;
    }
    return scores;
  } catch (err) {
    return { reason: 'model', message: err instanceof Error ? err.message : String(err) };
  } finally {
    input.dispose();
  }
}

const loading = loadModel();
loading.then(
  (loaded) => post({ type: 'ready', loadMs: loaded.loadMs }),
  (err: unknown) => post({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
);

async function handle(request: WorkerRequest) {
  const loaded = await loading.catch(() => undefined);
  if (!loaded) return; // the parent was told 'failed' and answers its callers itself
  if (request.type === 'debug') return post({ type: 'debug', id: request.id, tensors: loaded.tf.memory().numTensors });
  // A caller that gave up (its timeout) is not worth a classification the queue behind it waits for.
  if (Date.now() > request.deadline)
    return post({ type: 'error', id: request.id, reason: 'expired', message: 'the caller stopped waiting' });
  const result = await classify(loaded, request.image);
  if ('reason' in result) post({ type: 'error', id: request.id, reason: result.reason, message: result.message });
  else post({ type: 'scores', id: request.id, scores: result });
}

// Requests wait for the model and for each other: one chain, in arrival order. A request that
// throws is answered as failed and the chain goes on: left rejected, the rejection would end the
// thread, and every request queued behind it would fail with it.
let chain: Promise<unknown> = loading.catch(() => undefined);
port.on('message', (request: WorkerRequest) => {
  chain = chain
    .then(() => handle(request))
    .catch((err: unknown) => {
      const id = (request as { id?: unknown } | null)?.id;
      const message = err instanceof Error ? err.message : String(err);
      if (typeof id === 'number') post({ type: 'error', id, reason: 'model', message });
      else post({ type: 'log', level: 'warn', message: `a request the thread could not read: ${message}` });
    });
});
