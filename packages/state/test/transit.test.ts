// The transit family: create stores version 1 sealed as given, rotate only as latest + 1, config
// keeps 1 ≤ min ≤ latest, delete only when allowed; the record round-trips through its codec and
// a snapshot, and holds exactly the sealed bytes the commands carried.
import { encodeCommand, listTransitKeys, transitKeyByName, transitKeys, transitRewrapPending, type Command, type SealedValue } from '../src/index.js';
import { bytes, sealed, replica } from './helpers.js';

const T0 = 1_700_000_000_000;
let seq = 0;
const rid = (): string => `req-${++seq}`;

const create = (name: string, s: SealedValue = sealed(1), at = T0): Command => ({ type: 'transit.create', requestId: rid(), at, name, keyType: 'xchacha20-poly1305', sealed: s, actor: 'ops' });
const rotate = (name: string, version: number, s: SealedValue = sealed(version), at = T0 + version): Command => ({ type: 'transit.rotate', requestId: rid(), at, name, version, sealed: s, actor: 'ops' });
const config = (name: string, min: number | null, del: boolean | null): Command => ({ type: 'transit.config', requestId: rid(), at: T0 + 100, name, minDecryptionVersion: min, deletionAllowed: del, actor: 'ops' });
const remove = (name: string): Command => ({ type: 'transit.delete', requestId: rid(), at: T0 + 200, name, actor: 'ops' });

describe('transit.create', () => {
  it('stores version 1 sealed as given, min 1, deletion not allowed', () => {
    const { sm, run } = replica();
    expect(run(create('orders', sealed(9)))).toEqual({ status: 'ok', version: 1, createdAt: T0 });
    const k = transitKeyByName(sm, 'orders');
    expect(k).toMatchObject({ name: 'orders', type: 'xchacha20-poly1305', latestVersion: 1, minDecryptionVersion: 1, deletionAllowed: false, createdAt: T0 });
    expect(k?.versions.get(1)).toEqual({ sealed: sealed(9), createdAt: T0, wrapMarker: '' });
  });

  it('refuses a second create of the same name and keeps the first key', () => {
    const { sm, run } = replica();
    run(create('orders', sealed(1)));
    expect(run(create('orders', sealed(2), T0 + 5)).status).toBe('already_exists');
    expect(transitKeyByName(sm, 'orders')?.versions.get(1)?.sealed).toEqual(sealed(1));
  });
});

describe('transit.rotate', () => {
  it('adds latest + 1 only', () => {
    const { sm, run } = replica();
    run(create('k'));
    expect(run(rotate('k', 3))).toEqual({ status: 'version_conflict', currentVersion: 1 });
    expect(run(rotate('k', 2))).toMatchObject({ status: 'ok', version: 2 });
    expect(run(rotate('k', 2))).toEqual({ status: 'version_conflict', currentVersion: 2 });
    expect(transitKeyByName(sm, 'k')?.latestVersion).toBe(2);
    expect([...(transitKeyByName(sm, 'k')?.versions.keys() ?? [])]).toEqual([1, 2]);
    expect(run(rotate('missing', 2)).status).toBe('not_found');
  });

  it('is refused by the encoder for version < 2', () => {
    expect(() => encodeCommand(rotate('k', 1))).toThrow(/version/);
  });
});

describe('transit.config', () => {
  it('keeps 1 ≤ min ≤ latest and leaves null fields alone', () => {
    const { sm, run } = replica();
    run(create('k'));
    run(rotate('k', 2));
    expect(run(config('k', 3, null)).status).toBe('stale');
    expect(run(config('k', 2, null)).status).toBe('ok');
    expect(transitKeyByName(sm, 'k')).toMatchObject({ minDecryptionVersion: 2, deletionAllowed: false });
    expect(run(config('k', null, true)).status).toBe('ok');
    expect(transitKeyByName(sm, 'k')).toMatchObject({ minDecryptionVersion: 2, deletionAllowed: true });
    expect(() => encodeCommand(config('k', 0, null))).toThrow(/minDecryptionVersion/);
    expect(run(config('nope', 1, null)).status).toBe('not_found');
  });
});

describe('transit.delete', () => {
  it('is refused until deletion is allowed, then removes every version', () => {
    const { sm, run } = replica();
    run(create('k'));
    run(rotate('k', 2));
    expect(run(remove('k')).status).toBe('immutable');
    expect(transitKeyByName(sm, 'k')).toBeDefined();
    run(config('k', null, true));
    expect(run(remove('k'))).toEqual({ status: 'ok', count: 2 });
    expect(transitKeyByName(sm, 'k')).toBeUndefined();
    expect(run(remove('k')).status).toBe('not_found');
    // A re-created key starts again at version 1.
    expect(run(create('k', sealed(30))).status).toBe('ok');
    expect(transitKeyByName(sm, 'k')?.latestVersion).toBe(1);
  });
});

describe('transit.rewrap', () => {
  const rw = (name: string, version: number, createdAt: number, expected: string, marker: string): Command => ({
    type: 'transit.rewrap', requestId: rid(), at: T0 + 500, name, version, versionCreatedAt: createdAt, wrappedDek: bytes(48, 99), kmsKeyId: 'key-2', expectedKmsKeyId: expected, marker,
  });

  it('moves one version onto the new wrapping, keeps the sealed key, and is a no-op when repeated or stale', () => {
    const { sm, run } = replica();
    run(create('k', sealed(1), T0));
    run(rotate('k', 2, sealed(2), T0 + 2));
    expect(transitRewrapPending(sm, 'm1', 10).map((p) => p.version)).toEqual([1, 2]);
    expect(run(rw('k', 1, T0, 'key-1', 'm1'))).toEqual({ status: 'ok', version: 1 });
    const v1 = transitKeyByName(sm, 'k')?.versions.get(1);
    expect(v1?.sealed).toEqual({ ...sealed(1), wrappedDek: bytes(48, 99), kmsKeyId: 'key-2' });
    expect(v1?.wrapMarker).toBe('m1');
    expect(transitRewrapPending(sm, 'm1', 10)).toEqual([{ name: 'k', version: 2, versionCreatedAt: T0 + 2, kmsKeyId: 'key-1' }]);
    // Repeated (already at the marker), wrapped under another key meanwhile, or another incarnation of the key: stale.
    expect(run(rw('k', 1, T0, 'key-2', 'm1')).status).toBe('stale');
    expect(run(rw('k', 2, T0 + 2, 'key-9', 'm1')).status).toBe('stale');
    expect(run(rw('k', 2, T0 + 3, 'key-1', 'm1')).status).toBe('stale');
    expect(run(rw('k', 3, T0, 'key-1', 'm1')).status).toBe('not_found');
    expect(transitRewrapPending(sm, 'm1', 1)).toHaveLength(1);
  });

  it('reads a format-1 record (no wrap markers) as never re-wrapped', () => {
    const { sm, run } = replica();
    run(create('k', sealed(1), T0));
    const v2 = transitKeys.encode(transitKeyByName(sm, 'k') as NonNullable<ReturnType<typeof transitKeyByName>>);
    // Format 1 = format 2 without the trailing marker string (u32 length 0) after each version.
    const v1 = new Uint8Array(v2.subarray(0, v2.length - 4));
    v1[0] = 1;
    expect(transitKeys.decode(v1).versions.get(1)?.wrapMarker).toBe('');
  });
});

describe('transit key record', () => {
  it('round-trips through its codec and refuses inconsistent versions', () => {
    const { sm, run } = replica();
    run(create('k'));
    run(rotate('k', 2));
    run(config('k', 2, true));
    const rec = transitKeyByName(sm, 'k');
    if (rec === undefined) throw new Error('missing');
    const bytes = transitKeys.encode(rec);
    expect(transitKeys.decode(bytes)).toEqual(rec);
    expect(() => transitKeys.decode(transitKeys.encode({ ...rec, latestVersion: 3 }))).toThrow(/versions/);
    expect(() => transitKeys.decode(transitKeys.encode({ ...rec, minDecryptionVersion: 5 }))).toThrow(/policy/);
    expect(() => transitKeys.decode(bytes.subarray(0, bytes.length - 1))).toThrow();
  });

  it('travels in a snapshot: a restored replica holds the same records', () => {
    const a = replica();
    a.run(create('a', sealed(3)));
    a.run(create('b', sealed(4)));
    a.run(rotate('b', 2, sealed(5)));
    const blob = a.sm.createSnapshot();
    const b = replica();
    expect(b.run({ type: 'state.restore', requestId: rid(), at: T0 + 300, snapshot: blob }).status).toBe('ok');
    expect(listTransitKeys(b.sm).map((k) => [k.name, k.latestVersion])).toEqual([['a', 1], ['b', 2]]);
    expect(transitKeyByName(b.sm, 'b')?.versions.get(2)?.sealed).toEqual(sealed(5));
    for (const name of ['a', 'b']) {
      const [ka, kb] = [transitKeyByName(a.sm, name), transitKeyByName(b.sm, name)];
      if (ka === undefined || kb === undefined) throw new Error('missing');
      expect(Buffer.from(transitKeys.encode(kb)).equals(Buffer.from(transitKeys.encode(ka)))).toBe(true);
    }
  });
});
