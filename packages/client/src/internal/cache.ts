/** A small TTL cache for secret reads; entries past their TTL are kept for breaker fallback. */

/** One cached value and when it was stored. */
export interface CacheEntry<V> {
  value: V;
  storedAtMs: number;
}

/**
 * Map-backed cache, bounded by entry count (oldest insertion evicted first). Expired entries are
 * not dropped on read: while the breaker is open they are the fallback.
 */
export class ReadCache<V> {
  readonly #entries = new Map<string, CacheEntry<V>>();
  readonly #maxEntries: number;

  /** @param maxEntries - bound on stored entries */
  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  /**
   * @param key - cache key
   * @returns the entry, fresh or not
   */
  get(key: string): CacheEntry<V> | undefined {
    return this.#entries.get(key);
  }

  /**
   * @param key - cache key
   * @param value - value to store
   * @param nowMs - store time
   */
  set(key: string, value: V, nowMs: number): void {
    this.#entries.delete(key);
    this.#entries.set(key, { value, storedAtMs: nowMs });
    while (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next();
      if (oldest.done === true) break;
      this.#entries.delete(oldest.value);
    }
  }

  /**
   * Drop every entry whose key starts with `prefix`.
   *
   * @param prefix - key prefix
   */
  deletePrefix(prefix: string): void {
    for (const k of [...this.#entries.keys()]) if (k.startsWith(prefix)) this.#entries.delete(k);
  }

  /** Drop everything. */
  clear(): void {
    this.#entries.clear();
  }

  /** @returns number of entries */
  get size(): number {
    return this.#entries.size;
  }
}
