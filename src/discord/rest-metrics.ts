import type { REST } from 'discord.js';
import { restRouteLabel, type Metrics } from '../ops/metrics.ts';

/**
 * Counts Discord REST answers with HTTP >= 400 (every attempt, 429s included) by route template
 * and Discord's JSON error code (the HTTP status when the body has none). The label never holds
 * an id or a token: see `restRouteLabel`. Returns a function that stops listening.
 */
export function watchRestErrors(rest: REST, metrics: Pick<Metrics, 'discordRestError'>): () => void {
  const listener = (
    request: { method: string; route: string },
    response: { status: number; json(): Promise<unknown> },
  ) => {
    if (response.status < 400) return;
    const route = restRouteLabel(request.method, request.route);
    void response
      .json()
      .then(
        (body) => {
          const code = (body as { code?: unknown } | null)?.code;
          return typeof code === 'number' && code > 0 ? String(code) : String(response.status);
        },
        () => String(response.status),
      )
      .then((code) => metrics.discordRestError(route, code));
  };
  rest.on('response', listener);
  return () => void rest.off('response', listener);
}
