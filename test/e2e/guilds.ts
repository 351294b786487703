// Guilds for end-to-end tests of moderation and settings.
import type { FakeGuildSpec } from '../fakes/discord/types.ts';

export const REVIEW = '900000000000000001';
export const LOCKED = '900000000000000002';
export const OTHER_REVIEW = '900000000000000003';

/** A server with a private review channel, a channel the bot cannot attach files in, and a Reviewer role with no permissions. */
export const MODERATED_GUILD: FakeGuildSpec = {
  name: 'Moderated Guild',
  roles: [{ name: 'Moderator', permissions: ['ManageMessages'] }, { name: 'Reviewer' }],
  members: [
    { user: 'alice' },
    { user: 'bob' },
    { user: 'mod', roles: ['Moderator'] },
    { user: 'mod2', roles: ['Moderator'] },
    { user: 'rita', roles: ['Reviewer'] },
  ],
  channels: [
    { name: 'general' },
    { name: 'nsfw', nsfw: true },
    {
      name: 'mod-review',
      id: REVIEW,
      overwrites: [
        { role: '@everyone', deny: ['ViewChannel'] },
        { role: 'Moderator', allow: ['ViewChannel'] },
        { role: 'Qwen Imagine', allow: ['ViewChannel'] },
      ],
    },
    { name: 'locked', id: LOCKED, overwrites: [{ role: 'Qwen Imagine', deny: ['AttachFiles'] }] },
    { name: 'other-review', id: OTHER_REVIEW },
  ],
};
