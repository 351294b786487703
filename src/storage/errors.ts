import { dirname } from 'node:path';
import { isRedisUrl, makeFolder, redactStorageUrl, sqlitePath, storageBackend } from './open.ts';

export class StorageUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StorageUnavailableError';
  }
}

export const errorCode = (err: unknown): string | undefined => {
  const e = err as { code?: unknown; errors?: { code?: unknown }[]; cause?: unknown } | undefined;
  if (typeof e?.code === 'string') return e.code;
  const inner = e?.errors?.find((x) => typeof x?.code === 'string')?.code;
  if (typeof inner === 'string') return inner;
  return e?.cause ? errorCode(e.cause) : undefined;
};
export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

const CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'the connection was reset',
  ETIMEDOUT: 'the connection timed out',
  EHOSTUNREACH: 'the host cannot be reached',
  ENETUNREACH: 'the network cannot be reached',
  ENOTFOUND: 'the host name is unknown',
  EAI_AGAIN: 'the host name could not be resolved',
  ENOTDIR: 'part of the path is a file, not a folder',
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
  SQLITE_CANTOPEN: 'the database file cannot be opened or created',
  SQLITE_READONLY: 'the database file is read-only',
  SQLITE_FULL: 'the disk is full',
  SQLITE_NOTADB: 'the file is not an SQLite database',
  SQLITE_CORRUPT: 'the database file is damaged',
  SQLITE_PERM: 'permission denied',
};

/** A few words for people: what went wrong with the storage, never a password. */
export function describeStorageError(err: unknown): string {
  const code = errorCode(err);
  if (code && CODES[code]) return CODES[code]!;
  const text = errorText(err);
  if (/WRONGPASS|NOAUTH|invalid password|AUTH/i.test(text))
    return 'authentication failed (check the user and password in the URL)';
  if (/Connection timeout/i.test(text)) return 'the connection timed out';
  if (/Socket closed unexpectedly/i.test(text)) return 'the connection was closed';
  if (/client is offline|not connected or has failed to connect/i.test(text)) return 'the connection is lost';
  return redactStorageUrl(text.replace(/\s+/g, ' ').trim()).replace(/:\/\/[^@\s/]*@/g, '://***@') || 'unknown error';
}

/**
 * The one line `npm start` prints when the storage does not work, e.g. "the Redis storage at
 * STORAGE_URL (redis://***@db:6379) cannot be reached: connection refused. Check …".
 */
export function storageFailureMessage(storageUrl: string, err: unknown): string {
  const shown = redactStorageUrl(storageUrl);
  const backend = storageBackend(storageUrl);
  if (isRedisUrl(storageUrl)) {
    return `the ${backend} storage at STORAGE_URL (${shown}) cannot be reached: ${describeStorageError(err)}. Check STORAGE_URL in .env, start Redis, or use the default SQLite file (remove STORAGE_URL).`;
  }
  let reason = describeStorageError(err);
  if (backend === 'SQLite') {
    // The most common cause, named precisely: a folder that cannot be created.
    const folder = dirname(sqlitePath(storageUrl));
    try {
      makeFolder(folder);
    } catch (e) {
      reason = `the folder ${folder} cannot be created (${describeStorageError(e)})`;
    }
  }
  return `the ${backend} storage at STORAGE_URL (${shown}) cannot be opened or written: ${reason}. Check STORAGE_URL in .env: it must name an SQLite file in a folder the bot can create and write to.`;
}

/** What the application gets: the health, and namespaces that keep their writes through an outage. */
