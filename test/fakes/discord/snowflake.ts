// Snowflakes shaped like Discord's: (ms since 2015-01-01) << 22 | worker << 17 | increment.
// Time-based so discord.js' createdTimestamp of fake objects is plausible.
const DISCORD_EPOCH = 1420070400000n;
let increment = 0n;

export function snowflake(at: number = Date.now()): string {
  increment = (increment + 1n) & 0xfffn;
  return (((BigInt(at) - DISCORD_EPOCH) << 22n) | (1n << 17n) | increment).toString();
}

export function isSnowflake(value: string): boolean {
  return /^\d{15,21}$/.test(value);
}

/** Discord's timestamp format: ISO 8601 with microseconds and an explicit +00:00 offset. */
export function discordTimestamp(at: number = Date.now()): string {
  return new Date(at).toISOString().replace('Z', '000+00:00');
}
