import type { Dispatcher } from 'undici';

/** Drops a body we refuse to read. The listener matters: undici reports the destroy as an error event. */
export function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** The body as JSON, or undefined when it is empty or not JSON (a gateway's HTML page). */
export function safeJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}
