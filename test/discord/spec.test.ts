// Unit checks of the fake's building blocks that need no discord.js client.
import { describe, expect, it } from 'vitest';
import { matches } from '../fakes/discord/http.ts';
import { startFakeDiscord } from '../fakes/discord/server.ts';
import { hasOperation, specExists, validateRequestBody } from '../fakes/discord/validate.ts';

describe('OpenAPI spec', () => {
  it('is carried by the repository, so every clone validates request bodies', () => {
    expect(specExists()).toBe(true);
  });

  it("every REST route the fake serves is an operation of Discord's spec (so its body is validated)", async () => {
    const discord = await startFakeDiscord();
    const missing = discord.routes.filter((r) => !hasOperation(r.route, r.method));
    await discord.stop();
    expect(missing).toEqual([]);
  });

  it('accepts int-parseable strings for integer fields but not other strings', () => {
    const route = '/applications/{application_id}/commands';
    expect(
      validateRequestBody(route, 'PUT', [{ name: 'x', description: 'x', default_member_permissions: '8192' }]),
    ).toBeNull();
    expect(
      validateRequestBody(route, 'PUT', [{ name: 'x', description: 'x', default_member_permissions: 'all' }])?.body,
    ).toMatchObject({
      code: 50035,
      errors: { 0: { default_member_permissions: { _errors: [{ code: 'NUMBER_TYPE_COERCE' }] } } },
    });
    // 0 must not be mistaken for null in oneOf [null, integer].
    expect(
      validateRequestBody(route, 'PUT', [
        { name: 'x', description: 'x', options: [{ type: 4, name: 'n', description: 'n', min_value: 0 }] },
      ]),
    ).toBeNull();
  });

  it('reports the error of the callback type that was sent', () => {
    const route = '/interactions/{interaction_id}/{interaction_token}/callback';
    expect(validateRequestBody(route, 'POST', { type: 5, data: { flags: 64 } })).toBeNull();
    expect(validateRequestBody(route, 'POST', { type: 4, data: { content: 'x'.repeat(2001) } })?.body).toEqual({
      message: 'Invalid Form Body',
      code: 50035,
      errors: {
        data: { content: { _errors: [{ code: 'BASE_TYPE_MAX_LENGTH', message: 'Must be 2000 or fewer in length.' }] } },
      },
    });
    expect(validateRequestBody(route, 'POST', { type: 8 })?.body).toMatchObject({
      errors: { data: { _errors: [{ code: 'BASE_TYPE_REQUIRED' }] } },
    });
  });
});

describe('failNext matchers', () => {
  const path = '/channels/123/messages';
  const route = '/channels/{channel_id}/messages';
  it.each([
    ['/channels/123/messages', true],
    ['/api/v10/channels/123/messages', true],
    ['POST /channels/123/messages', true],
    ['post /channels/{channel_id}/messages', true],
    ['/channels/{channel_id}/messages', true],
    ['GET /channels/{channel_id}/messages', false],
    ['/channels/124/messages', false],
  ])('%s -> %s', (matcher, expected) => {
    expect(matches(matcher, 'POST', path, route)).toBe(expected);
  });
  it('regexps and objects', () => {
    expect(matches(/messages$/, 'POST', path, route)).toBe(true);
    expect(matches(/^POST \/channels/, 'POST', path, route)).toBe(true);
    expect(matches({ method: 'PATCH' }, 'POST', path, route)).toBe(false);
    expect(matches({ method: 'post', path: /\d+\/messages/ }, 'POST', path, route)).toBe(true);
  });
});

describe('OpenAPI leniency Discord has', () => {
  it("accepts integer snowflakes, as in Discord's own upload example (attachments: [{ id: 0 }])", () => {
    const route = '/webhooks/{webhook_id}/{webhook_token}/messages/@original';
    expect(
      validateRequestBody(route, 'PATCH', { content: '', attachments: [{ id: 0, filename: 'x.png' }] }),
    ).toBeNull();
    expect(validateRequestBody(route, 'PATCH', { attachments: [{ id: -1 }] })).not.toBeNull();
    expect(validateRequestBody(route, 'PATCH', { attachments: [{ id: 'abc' }] })).not.toBeNull();
  });
});
