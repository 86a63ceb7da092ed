// Unwrapped-DEK cache. Lets reads continue while the KMS is briefly unreachable (until the TTL)
// and keeps the KMS off the hot read path. Holds DEKs only, never plaintext secrets.
import { hash } from 'node:crypto';
import { assertContext, keyBindingLength, writeKeyBinding, type SecretContext } from './context.js';
import { zeroize } from './bytes.js';

/** Why an entry left the cache. */
export type DekEvictReason = 'lru' | 'expired' | 'cleared' | 'deleted' | 'replaced';

/** Options of {@link DekCache}. */
export interface DekCacheOptions {
  /** Lifetime of an entry in seconds from insertion (`COFFER_DEK_CACHE_TTL_SECS`); 0 disables the cache. */
  readonly ttlSecs: number;
  /** Most entries held; the least recently used goes first. Default 10,000. */
  readonly maxEntries?: number;
  /** Clock in milliseconds (default `Date.now`); tests inject a fake one. */
  readonly now?: () => number;
  /** A lookup found a live entry. */
  readonly onHit?: () => void;
  /** A lookup found nothing (or only an expired entry). `Envelopes` skips lookups on a disabled cache. */
  readonly onMiss?: () => void;
  /** An entry was removed (its DEK copy has been zeroized). */
  readonly onEvict?: (reason: DekEvictReason) => void;
}

interface Entry {
  readonly key: string;
  /** Index of this entry's 32-byte slot in the slab. */
  readonly slot: number;
  readonly expiresAt: number;
  // Recency list links; `#head` is the most recently used entry.
  prev: Entry | undefined;
  next: Entry | undefined;
}

const DEK_LENGTH = 32;
const SLOTS_PER_CHUNK = 1024;

const CACHE_LABEL = 'coffer.dek-cache.v1';

// Scratch for the bytes keyFor hashes (key binding || wrapped DEK): neither is secret, and it is
// filled and hashed synchronously, so one growable buffer serves every call without allocating.
let keyScratch = Buffer.allocUnsafe(512);

/**
 * LRU + TTL cache of unwrapped DEKs, keyed by SHA-256 over the wrapped DEK, the key id and the
 * secret context (so an entry is only ever served for the context the KMS released it for).
 * Stores its own copy of each DEK (in a slab) and zeroizes it on eviction, expiry, replacement and `clear()`;
 * `get` returns a fresh copy that the caller zeroizes.
 *
 * @example
 * ```ts
 * const cache = new DekCache({ ttlSecs: 300, maxEntries: 10_000, onHit: () => hits.inc() });
 * const k = cache.keyFor(env.wrappedDek, env.kmsKeyId, ctx);
 * const dek = cache.get(k) ?? (await unwrapAndCache(k));
 * ```
 */
export class DekCache {
  readonly ttlMs: number;
  readonly maxEntries: number;
  readonly #now: () => number;
  readonly #onHit: (() => void) | undefined;
  readonly #onMiss: (() => void) | undefined;
  readonly #onEvict: ((reason: DekEvictReason) => void) | undefined;
  // Recency is a doubly linked list beside the Map. NB: not Map delete+re-insert, which V8 makes
  // pathologically slow on large maps (measured: ~20 µs per bump at 10k entries).
  readonly #entries = new Map<string, Entry>();
  #head: Entry | undefined;
  #tail: Entry | undefined;
  #lastSweep: number;
  // DEK copies live in a few large slab chunks rather than one small ArrayBuffer per entry:
  // thousands of tiny live ArrayBuffers made every GC (and so every request) ~3x slower.
  readonly #chunks: Uint8Array[] = [];
  readonly #freeSlots: number[] = [];

  /**
   * @param opts - TTL, size bound, clock and metric hooks.
   * @throws RangeError when `ttlSecs` or `maxEntries` is negative or not an integer.
   */
  constructor(opts: DekCacheOptions) {
    if (!Number.isFinite(opts.ttlSecs) || opts.ttlSecs < 0) throw new RangeError('DekCache: ttlSecs must be >= 0');
    const max = opts.maxEntries ?? 10_000;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError('DekCache: maxEntries must be an integer >= 1');
    this.ttlMs = opts.ttlSecs * 1000;
    this.maxEntries = max;
    this.#now = opts.now ?? Date.now;
    this.#onHit = opts.onHit;
    this.#onMiss = opts.onMiss;
    this.#onEvict = opts.onEvict;
    this.#lastSweep = this.#now();
  }

  /** @returns false when the TTL is 0 (every lookup misses, nothing is stored). */
  get enabled(): boolean {
    return this.ttlMs > 0;
  }

  /** @returns the number of entries held (expired ones may linger until touched or pruned). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The cache key for a wrapped DEK in a context.
   *
   * @param wrappedDek - the stored wrapped DEK.
   * @param kmsKeyId - the key id that wrapped it.
   * @param ctx - the secret context it was wrapped for.
   * @returns base64 SHA-256 of a length-prefixed encoding of all three.
   */
  keyFor(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): string {
    assertContext(ctx);
    if (!(wrappedDek instanceof Uint8Array)) throw new TypeError('keyFor: wrappedDek must be a Uint8Array');
    const n = keyBindingLength(CACHE_LABEL, kmsKeyId, ctx) + wrappedDek.length;
    if (keyScratch.length < n) keyScratch = Buffer.allocUnsafe(Math.max(n, keyScratch.length * 2));
    const o = writeKeyBinding(keyScratch, 0, CACHE_LABEL, kmsKeyId, ctx);
    keyScratch.set(wrappedDek, o);
    // One-shot digest: no Hash object, no intermediate Buffer (same bytes as SHA-256 of
    // encodeKeyBinding(CACHE_LABEL, kmsKeyId, ctx) || wrappedDek).
    return hash('sha256', keyScratch.subarray(0, n), 'base64');
  }

  /**
   * Looks a DEK up and marks it most recently used.
   *
   * @param key - from {@link DekCache.keyFor}.
   * @returns a copy of the DEK (caller zeroizes it), or undefined.
   */
  get(key: string): Uint8Array | undefined {
    const entry = this.#lookup(key);
    if (!entry) return undefined;
    const out = new Uint8Array(DEK_LENGTH);
    out.set(this.#slotView(entry.slot));
    return out;
  }

  /**
   * Like {@link DekCache.get}, but copies the DEK into `out` (32 bytes) instead of allocating:
   * for callers that keep one scratch buffer and wipe it after each use.
   *
   * @param key - from {@link DekCache.keyFor}.
   * @param out - receives the DEK on a hit; untouched on a miss.
   * @returns whether the DEK was found.
   */
  getInto(key: string, out: Uint8Array): boolean {
    if (!(out instanceof Uint8Array) || out.length !== DEK_LENGTH) throw new RangeError(`DekCache: out must be ${DEK_LENGTH} bytes`);
    const entry = this.#lookup(key);
    if (!entry) return false;
    out.set(this.#slotView(entry.slot));
    return true;
  }

  // Finds a live entry, marks it most recently used and counts the hit or miss.
  #lookup(key: string): Entry | undefined {
    const entry = this.#entries.get(key);
    if (!entry) {
      this.#onMiss?.();
      return undefined;
    }
    if (this.#now() >= entry.expiresAt) {
      this.#remove(key, entry, 'expired');
      this.#onMiss?.();
      return undefined;
    }
    if (entry !== this.#head) {
      this.#unlink(entry);
      this.#pushFront(entry);
    }
    this.#onHit?.();
    return entry;
  }

  /**
   * Stores a copy of `dek` (the caller keeps and zeroizes its own). No-op when disabled.
   *
   * @param key - from {@link DekCache.keyFor}.
   * @param dek - the unwrapped DEK.
   * @returns nothing.
   */
  set(key: string, dek: Uint8Array): void {
    if (!this.enabled) return;
    if (dek.length !== DEK_LENGTH) throw new RangeError(`DekCache: a DEK is ${DEK_LENGTH} bytes`);
    const now = this.#now();
    // Sweep expired entries at most once per second so memory does not hold DEKs past their TTL
    // on a cache that is written but rarely read. O(n), amortised over a second of traffic.
    if (now - this.#lastSweep >= 1000) this.prune();
    const old = this.#entries.get(key);
    if (old) this.#remove(key, old, 'replaced');
    const slot = this.#allocSlot();
    this.#slotView(slot).set(dek);
    const entry: Entry = { key, slot, expiresAt: now + this.ttlMs, prev: undefined, next: undefined };
    this.#entries.set(key, entry);
    this.#pushFront(entry);
    while (this.#entries.size > this.maxEntries && this.#tail) {
      this.#remove(this.#tail.key, this.#tail, 'lru');
    }
  }

  /**
   * Removes one entry.
   *
   * @param key - from {@link DekCache.keyFor}.
   * @returns whether an entry was removed.
   */
  delete(key: string): boolean {
    const entry = this.#entries.get(key);
    if (!entry) return false;
    this.#remove(key, entry, 'deleted');
    return true;
  }

  /**
   * Drops every expired entry now (the node may call this from a timer).
   *
   * @returns how many entries were dropped.
   */
  prune(): number {
    const now = this.#now();
    this.#lastSweep = now;
    let n = 0;
    for (const [key, entry] of this.#entries) {
      if (now >= entry.expiresAt) {
        this.#remove(key, entry, 'expired');
        n++;
      }
    }
    return n;
  }

  /**
   * Zeroizes and drops every entry (e.g. on shutdown or after a KMS key compromise).
   *
   * @returns nothing.
   */
  clear(): void {
    for (const [key, entry] of this.#entries) this.#remove(key, entry, 'cleared');
  }

  #pushFront(entry: Entry): void {
    entry.prev = undefined;
    entry.next = this.#head;
    if (this.#head) this.#head.prev = entry;
    this.#head = entry;
    if (!this.#tail) this.#tail = entry;
  }

  #unlink(entry: Entry): void {
    if (entry.prev) entry.prev.next = entry.next;
    else this.#head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.#tail = entry.prev;
    entry.prev = undefined;
    entry.next = undefined;
  }

  #remove(key: string, entry: Entry, reason: DekEvictReason): void {
    this.#entries.delete(key);
    this.#unlink(entry);
    zeroize(this.#slotView(entry.slot));
    this.#freeSlots.push(entry.slot);
    this.#onEvict?.(reason);
  }

  #allocSlot(): number {
    const free = this.#freeSlots.pop();
    if (free !== undefined) return free;
    const base = this.#chunks.length * SLOTS_PER_CHUNK;
    const slots = Math.min(SLOTS_PER_CHUNK, this.maxEntries + 1 - base);
    this.#chunks.push(new Uint8Array(Math.max(1, slots) * DEK_LENGTH));
    for (let i = Math.max(1, slots) - 1; i > 0; i--) this.#freeSlots.push(base + i);
    return base;
  }

  #slotView(slot: number): Uint8Array {
    const chunk = this.#chunks[Math.floor(slot / SLOTS_PER_CHUNK)]!;
    const o = (slot % SLOTS_PER_CHUNK) * DEK_LENGTH;
    return chunk.subarray(o, o + DEK_LENGTH);
  }
}
