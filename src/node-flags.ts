/**
 * The V8 flags the bot runs with: `npm start`, the Dockerfile's CMD and every shard of
 * `start:sharded` (test/ops/container.test.ts keeps the first two equal to this list).
 *
 * Both trade a little CPU, which an I/O-bound bot has to spare, for memory (measured by
 * `npm run bench` with 1,000 jobs in flight):
 * - `--max-semi-space-size=4`: the young generation otherwise grows to ~48 MB in a burst, while
 *   the live heap is ~14 KB per job.
 * - `--optimize-for-size`: without it V8 lets a burst grow the old generation well past the live
 *   heap (~165 MB committed for ~40 MB used) and then keeps ~180 MB of freed 256 KB pages
 *   resident; RSS stayed near 300 MB. With it, about 120 MB.
 */
export const NODE_FLAGS = ['--max-semi-space-size=4', '--optimize-for-size'] as const;
