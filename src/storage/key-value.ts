/** The subset of Keyv the job store and the shared state need, so tests and other backends can stand in. */
export interface KeyValue {
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, ttl?: number): Promise<unknown>;
  delete(key: string): Promise<unknown>;
}

/** An in-memory KeyValue for tests and for `STORAGE_URL=memory://`. */
export function createMemoryKeyValue(): KeyValue {
  const map = new Map<string, { value: unknown; expires: number }>();
  return {
    async get(key) {
      const entry = map.get(key);
      if (!entry) return undefined;
      if (entry.expires < Date.now()) return void map.delete(key);
      return structuredClone(entry.value);
    },
    async set(key, value, ttl) {
      map.set(key, { value: structuredClone(value), expires: ttl ? Date.now() + ttl : Infinity });
      return true;
    },
    async delete(key) {
      return map.delete(key);
    },
  };
}
