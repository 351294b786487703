import { ChannelType, Routes, type REST } from 'discord.js';
import type { Logger } from '../logger.ts';
import type { ChannelAgeCheck } from '../moderation/review-types.ts';

/** A thread carries no age restriction of its own: it has its parent's. */
const THREAD_TYPES: ReadonlySet<number> = new Set([
  ChannelType.AnnouncementThread,
  ChannelType.PublicThread,
  ChannelType.PrivateThread,
]);

/**
 * Long enough that the images of one request, finishing together, share one read; short enough
 * that a channel changed a moment ago is read as it is now.
 */
const CHANNEL_CACHE_MS = 10_000;

/** What `GET /channels/{id}` tells that matters here. */
interface ChannelFacts {
  type: number;
  nsfw?: boolean;
  parent_id?: string | null;
}

/**
 * The age check over REST (`GET /channels/{id}`), so it works from any process, for any channel,
 * cached or not in this one's gateway cache. A thread is read, then its parent. Any failure
 * (no access, Discord unavailable, a deleted channel) answers false: not age-restricted, so a
 * flagged image is spoilered or reviewed, never shown openly.
 */
export function createChannelAgeCheck(deps: {
  rest: REST;
  logger: Logger;
  now?: () => number;
  cacheMs?: number;
}): ChannelAgeCheck {
  const now = deps.now ?? Date.now;
  const cacheMs = deps.cacheMs ?? CHANNEL_CACHE_MS;
  // Reads in flight are shared too; a failed one is forgotten at once.
  const cache = new Map<string, { at: number; facts: Promise<ChannelFacts> }>();

  function read(channelId: string, fresh: boolean): Promise<ChannelFacts> {
    const cached = cache.get(channelId);
    if (cached && !fresh && now() - cached.at < cacheMs) return cached.facts;
    for (const [id, entry] of cache) if (now() - entry.at >= cacheMs) cache.delete(id);
    const facts = deps.rest.get(Routes.channel(channelId)) as Promise<ChannelFacts>;
    const entry = { at: now(), facts };
    cache.set(channelId, entry);
    facts.catch(() => cache.get(channelId) === entry && cache.delete(channelId));
    return facts;
  }

  return async (channelId, options = {}) => {
    const fresh = options.fresh ?? false;
    try {
      const channel = await read(channelId, fresh);
      if (!THREAD_TYPES.has(channel.type)) return channel.nsfw === true;
      if (!channel.parent_id) return false;
      return (await read(channel.parent_id, fresh)).nsfw === true;
    } catch (err) {
      deps.logger.warn(
        { err, channelId },
        'could not read whether the channel is age-restricted; treating it as not age-restricted',
      );
      return false;
    }
  };
}
