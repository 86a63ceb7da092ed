// DEK cache: TTL with an injected clock, LRU bound, copies, keys, hooks.
import { DekCache, type DekEvictReason } from '../src/index.js';

const dek = (fill: number): Uint8Array => new Uint8Array(32).fill(fill);
const ctx = { name: 'a', version: 1 };

function harness(ttlSecs: number, maxEntries = 100) {
  let now = 1_000_000;
  const events = { hit: 0, miss: 0, evict: [] as DekEvictReason[] };
  const cache = new DekCache({
    ttlSecs,
    maxEntries,
    now: () => now,
    onHit: () => events.hit++,
    onMiss: () => events.miss++,
    onEvict: (r) => events.evict.push(r),
  });
  return { cache, events, advance: (ms: number) => { now += ms; } };
}

test('a stored DEK is served until its TTL, then is gone', () => {
  const { cache, events, advance } = harness(300);
  cache.set('k', dek(1));
  advance(299_999);
  expect(cache.get('k')?.[0]).toBe(1);
  advance(1);
  expect(cache.get('k')).toBeUndefined();
  expect(events).toEqual({ hit: 1, miss: 1, evict: ['expired'] });
  expect(cache.size).toBe(0);
});

test('TTL 0 disables the cache entirely', () => {
  const { cache, events } = harness(0);
  expect(cache.enabled).toBe(false);
  cache.set('k', dek(1));
  expect(cache.size).toBe(0);
  expect(cache.get('k')).toBeUndefined();
  expect(events.miss).toBe(1);
});

test('bounded size with least-recently-used eviction', () => {
  const { cache, events } = harness(300, 3);
  cache.set('a', dek(1));
  cache.set('b', dek(2));
  cache.set('c', dek(3));
  expect(cache.get('a')?.[0]).toBe(1); // a is now most recent; b is least
  cache.set('d', dek(4));
  expect(events.evict).toEqual(['lru']);
  expect(cache.get('b')).toBeUndefined();
  expect(cache.get('a')?.[0]).toBe(1);
  expect(cache.get('c')?.[0]).toBe(3);
  expect(cache.get('d')?.[0]).toBe(4);
  expect(cache.size).toBe(3);
  // Many more inserts keep it bounded and evict in LRU order; slots are reused.
  for (let i = 0; i < 5000; i++) cache.set(`x${i}`, dek(i & 0xff));
  expect(cache.size).toBe(3);
  expect(cache.get('x4999')?.[0]).toBe(4999 & 0xff);
  expect(cache.get('x4996')).toBeUndefined();
});

test('stores a copy and hands out copies (callers may zeroize theirs)', () => {
  const { cache } = harness(300);
  const mine = dek(7);
  cache.set('k', mine);
  mine.fill(0);
  const got = cache.get('k')!;
  expect(got.every((b) => b === 7)).toBe(true);
  got.fill(0);
  expect(cache.get('k')!.every((b) => b === 7)).toBe(true);
});

test('replace, delete, prune and clear report their reasons and free the entries', () => {
  const { cache, events, advance } = harness(10);
  cache.set('a', dek(1));
  cache.set('a', dek(2));
  expect(cache.get('a')?.[0]).toBe(2);
  expect(cache.delete('a')).toBe(true);
  expect(cache.delete('a')).toBe(false);
  cache.set('b', dek(3));
  advance(5_000);
  cache.set('c', dek(4));
  advance(5_000);
  expect(cache.prune()).toBe(1); // b expired, c has 5 s left
  cache.clear();
  expect(cache.size).toBe(0);
  expect(events.evict).toEqual(['replaced', 'deleted', 'expired', 'cleared']);
});

test('expired entries are swept on later writes even if never read again', () => {
  const { cache, advance, events } = harness(1);
  for (let i = 0; i < 10; i++) cache.set(`k${i}`, dek(i));
  advance(1_500);
  cache.set('fresh', dek(1));
  expect(cache.size).toBe(1);
  expect(events.evict.filter((r) => r === 'expired')).toHaveLength(10);
});

test('cache keys bind the wrapped DEK, the key id and the context', () => {
  const c = new DekCache({ ttlSecs: 1 });
  const w = new Uint8Array([1, 2, 3]);
  const keys = new Set([
    c.keyFor(w, 'k1', ctx),
    c.keyFor(new Uint8Array([1, 2, 4]), 'k1', ctx),
    c.keyFor(w, 'k2', ctx),
    c.keyFor(w, 'k1', { name: 'a', version: 2 }),
    c.keyFor(w, 'k1', { name: 'b', version: 1 }),
  ]);
  expect(keys.size).toBe(5);
  expect(c.keyFor(w, 'k1', ctx)).toBe(c.keyFor(Uint8Array.from(w), 'k1', { ...ctx }));
  expect(c.keyFor(w, 'k1', ctx)).toMatch(/^[A-Za-z0-9+/]{43}=$/);
});

test('bad options and bad DEKs are programmer errors', () => {
  expect(() => new DekCache({ ttlSecs: -1 })).toThrow(RangeError);
  expect(() => new DekCache({ ttlSecs: 1, maxEntries: 0 })).toThrow(RangeError);
  expect(() => new DekCache({ ttlSecs: 1 }).set('k', new Uint8Array(16))).toThrow(RangeError);
});

test('getInto copies into the caller buffer, counts like get, and leaves the buffer alone on a miss', () => {
  const { cache, events, advance } = harness(300, 2);
  const out = new Uint8Array(32).fill(0xcc);
  cache.set('k', dek(5));
  expect(cache.getInto('k', out)).toBe(true);
  expect(out.every((b) => b === 5)).toBe(true);
  out.fill(0); // the caller's copy: wiping it leaves the cache's own intact
  expect(cache.get('k')?.[0]).toBe(5);
  out.fill(0xcc);
  expect(cache.getInto('nope', out)).toBe(false);
  expect(out.every((b) => b === 0xcc)).toBe(true);
  // It bumps recency like get: 'k' survives the next insertion, 'j' is evicted.
  cache.set('j', dek(6));
  expect(cache.getInto('k', out)).toBe(true);
  cache.set('i', dek(7));
  expect(cache.getInto('j', out)).toBe(false);
  advance(300_000);
  expect(cache.getInto('k', out)).toBe(false);
  expect(events.hit).toBe(3);
  expect(events.miss).toBe(3);
  expect(() => cache.getInto('k', new Uint8Array(31))).toThrow(RangeError);
});
