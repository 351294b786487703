import type { DurationEstimator } from './estimator.ts';
import type { JobService } from './service.ts';

/**
 * When an image asked for now would likely be ready (ms): the jobs ahead of it in waves of
 * `maxInFlight`, or the images-per-minute pace if that is slower, then its own expected duration.
 * Coarse on purpose: it only decides, where the 15-minute interaction token is the one way to
 * answer, whether asking now is hopeless, so it leans on typical durations, not the tails.
 */
export function createReadyBy(deps: {
  jobs: Pick<JobService, 'counts'>;
  estimator: Pick<DurationEstimator, 'estimate'>;
  maxInFlight: number;
  imagesPerMinute: number;
  now?: () => number;
}): (key: string) => Promise<number> {
  const now = deps.now ?? Date.now;
  // By duration key (`durationKey`): an upscale's own time, not that of a picture of its size.
  return async (key) => {
    const { queued, inFlight } = await deps.jobs.counts();
    const { expectedMs } = deps.estimator.estimate(key);
    const waves = Math.floor((queued + inFlight) / Math.max(1, deps.maxInFlight));
    const paced = deps.imagesPerMinute > 0 ? (queued / deps.imagesPerMinute) * 60_000 : 0;
    return now() + Math.max(waves * expectedMs, paced) + expectedMs;
  };
}
