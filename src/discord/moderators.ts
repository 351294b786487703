import { PermissionFlagsBits, type Interaction } from 'discord.js';

/**
 * Whether the member behind an interaction may decide on reviews: Manage Messages in that
 * channel, or the guild's moderator role. Read from the interaction itself on every click, so a
 * role taken away a second ago counts, and no member cache or privileged intent is needed.
 */
export function isModerator(interaction: Interaction, moderatorRoleId: string | undefined): boolean {
  if (interaction.memberPermissions?.has(PermissionFlagsBits.ManageMessages)) return true;
  if (!moderatorRoleId) return false;
  const roles = interaction.member?.roles;
  if (!roles) return false;
  return Array.isArray(roles) ? roles.includes(moderatorRoleId) : roles.cache.has(moderatorRoleId);
}
