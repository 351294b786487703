/**
 * A Discord CDN link is signed for a while: its `ex` query parameter is when it stops working, in
 * Unix seconds, hex. A link kept on a record (the upscale's source) is checked before it is handed
 * to the provider, which would fetch it minutes later.
 */
export const LINK_MARGIN_MS = 10 * 60_000;

/** When the link expires (ms), or undefined when it names no expiry (not a signed CDN link). */
export function linkExpiresAt(url: string): number | undefined {
  let ex: string | null;
  try {
    ex = new URL(url).searchParams.get('ex');
  } catch {
    return undefined;
  }
  if (!ex || !/^[0-9a-f]+$/i.test(ex)) return undefined;
  return Number.parseInt(ex, 16) * 1000;
}

/** The link still works for at least the margin: a signed link past it, or near it, is stale. */
export function linkFresh(url: string, now: number, marginMs = LINK_MARGIN_MS): boolean {
  const expires = linkExpiresAt(url);
  return expires === undefined || expires - now > marginMs;
}
