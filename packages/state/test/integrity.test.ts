// Storage below the barrier: every record the store writes is tagged with a key the disk does not
// hold, and snapshots carry a keyed tag. A disk writer who edits, forges or moves a record — or a
// backup holder who edits a snapshot and recomputes its checksum — is refused and reported.
import { createHash } from 'node:crypto';
import { ClassicLevel } from 'classic-level';
import {
  INTEGRITY_MARKER_KEY,
  Integrity,
  RECORD_TAG_BYTES,
  SNAPSHOT_FORMAT_VERSION,
  StateMachine,
  decodeSnapshotBlob,
  encodeCommand,
  encodeSnapshotBlob,
  openNodeStore,
  readSavedSnapshot,
  type Command,
  type IntegrityFailure,
  type LogEntry,
  type NodeStore,
} from '../src/index.js';
import { encodeEntry } from '../src/raft-log.js';
import { CHECK_CHUNK_RECORDS } from '../src/record-checker.js';
import { encodeSecret, sha256Digest, type SecretRecord } from '../src/records.js';
import { TEST_INTEGRITY, bytes, sealed, tempDir } from './helpers.js';

const T0 = 1_700_000_000_000;
const hash = (n: number): Uint8Array => bytes(32, 200 + n);
const cmds: Command[] = [
  { type: 'bootstrap', requestId: 'boot', at: T0, tokenHash: hash(0), cidrs: ['127.0.0.1/32'] },
  { type: 'role.put', requestId: 'role', at: T0, name: 'reader', rules: [{ paths: ['app/**'], actions: ['secret.read'] }], rateLimit: null, actor: 't', maxTtlSecs: null },
  { type: 'token.create', requestId: 'tok', at: T0, name: 'ci', role: 'reader', tokenHash: hash(1), expiresAt: null, actor: 't' },
  { type: 'secret.put', requestId: 'p1', at: T0, name: 'app/db', version: 1, cas: null, sealed: sealed(1), format: 'raw', description: null, rotation: null, actor: 't' },
  { type: 'secret.put', requestId: 'p2', at: T0, name: 'app/other', version: 1, cas: null, sealed: sealed(2), format: 'raw', description: null, rotation: null, actor: 't' },
];
const entries = (list: Command[], from = 1, term = 1): LogEntry[] => list.map((c, i) => ({ index: from + i, term, type: 'normal' as const, data: encodeCommand(c) }));

/** An integrity object like TEST_INTEGRITY that records what it refuses. */
function recording(keys: { record: Uint8Array; snapshot: Uint8Array } = { record: bytes(32, 101), snapshot: bytes(32, 102) }): { integrity: Integrity; failures: IntegrityFailure[] } {
  const failures: IntegrityFailure[] = [];
  return { integrity: new Integrity(keys, { onFailure: (f) => failures.push(f) }), failures };
}

let tmp: ReturnType<typeof tempDir>;
let open: NodeStore[] = [];
beforeEach(() => {
  tmp = tempDir('coffer-integrity-');
  open = [];
});
afterEach(async () => {
  for (const s of open) await s.close().catch(() => undefined);
  tmp.cleanup();
});

async function store(integrity: Integrity = TEST_INTEGRITY): Promise<NodeStore> {
  const s = await openNodeStore(`${tmp.dir}/s`, integrity);
  open.push(s);
  return s;
}

/** A store with the sample history applied (entries 1..5 in the log, committed and applied). */
async function populated(): Promise<{ digest: string }> {
  const s = await store();
  const es = entries(cmds);
  await s.log.append(es, { term: 1, vote: 'n1', commit: es.length }, { sync: true });
  await s.applyEntries(es);
  const digest = s.state.stateDigest();
  await s.close();
  return { digest };
}

/** Edits the closed store's LevelDB directly, as a disk writer would. */
async function onDisk(fn: (db: ClassicLevel<string, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new ClassicLevel<string, Uint8Array>(`${tmp.dir}/s`, { valueEncoding: 'view' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

async function flipLastValueByte(key: string, at = 3): Promise<void> {
  await onDisk(async (db) => {
    const v = await db.get(key);
    if (v === undefined) throw new Error(`no record ${key}`);
    const copy = v.slice();
    const i = Math.min(at, copy.length - RECORD_TAG_BYTES - 1);
    copy[i] = (copy[i] as number) ^ 0x01;
    await db.put(key, copy);
  });
}

async function allKeys(): Promise<string[]> {
  const keys: string[] = [];
  await onDisk(async (db) => {
    for await (const k of db.keys()) keys.push(k);
  });
  return keys;
}

describe('records on disk', () => {
  test('round trip: every record written carries a tag; a reopen reports nothing and sees the same state', async () => {
    const { digest } = await populated();
    await onDisk(async (db) => {
      for await (const [k, v] of db.iterator()) {
        if (k === 'rd') continue;
        expect(TEST_INTEGRITY.openRecord(k, v)).not.toBeNull();
      }
    });
    const { integrity, failures } = recording();
    const s = await store(integrity);
    expect(failures).toEqual([]);
    expect(s.adoption).toBeNull();
    expect(s.state.stateDigest()).toBe(digest);
    expect(await s.readSealed('app/db', 1)).toEqual(sealed(1));
  });

  test('a flipped byte in any metadata record: that record is refused and reported, the rest is served', async () => {
    const { digest } = await populated();
    const meta = (await allKeys()).filter((k) => k.startsWith('m'));
    expect(meta.length).toBeGreaterThanOrEqual(8);
    for (const key of meta) {
      await flipLastValueByte(key);
      const { integrity, failures } = recording();
      const s = await store(integrity);
      expect(failures).toEqual([{ kind: 'record', key, action: 'ignored' }]);
      expect(s.state.stateDigest()).not.toBe(digest);
      if (key !== 'msapp/other') expect(s.state.getSecret('app/other')).toBeDefined();
      if (key !== 'mtci') expect(s.state.tokenByName('ci')).toBeDefined();
      // a snapshot made now leaves the refused record out rather than vouching for it
      const snap = decodeSnapshotBlob((await s.createSnapshot()).data, integrity);
      expect(snap.records.map(([k]) => k)).not.toContain(key);
      await s.close();
      await flipLastValueByte(key); // put it back for the next round
      const again = await store(recording().integrity);
      expect(again.state.stateDigest()).toBe(digest);
      await again.close();
    }
  });

  test('a forged admin token record (untagged, tagged under another key, or moved from another name) is not loaded', async () => {
    await populated();
    let real: Uint8Array | undefined;
    await onDisk(async (db) => {
      real = await db.get('mtci');
    });
    const other = new Integrity({ record: bytes(32, 7), snapshot: bytes(32, 8) });
    const value = (real as Uint8Array).subarray(0, (real as Uint8Array).length - RECORD_TAG_BYTES);
    await onDisk(async (db) => {
      await db.put('mtforged-untagged', value);
      await db.put('mtforged-otherkey', other.sealRecord('mtforged-otherkey', value));
      await db.put('mtforged-moved', real as Uint8Array);
    });
    const { integrity, failures } = recording();
    const s = await store(integrity);
    expect(failures.map((f) => f.key).sort()).toEqual(['mtforged-moved', 'mtforged-otherkey', 'mtforged-untagged']);
    expect(s.state.listTokens().map((t) => t.name).sort()).toEqual(['bootstrap-admin', 'ci']);
  });

  test('a flipped byte in a sealed blob, or a blob moved under another name: the read is refused with SM_INTEGRITY and reported', async () => {
    await populated();
    await flipLastValueByte('bcapp/db\u00001', 10);
    await onDisk(async (db) => {
      await db.put('bcapp/other\u00001', (await db.get('bcapp/db\u00001')) as Uint8Array);
    });
    const { integrity, failures } = recording();
    const s = await store(integrity);
    await expect(s.readSealed('app/db', 1)).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
    await expect(s.readSealed('app/other', 1)).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
    expect(failures).toEqual([
      { kind: 'blob', key: 'bcapp/db\u00001', action: 'refused' },
      { kind: 'blob', key: 'bcapp/other\u00001', action: 'refused' },
    ]);
    const snap = decodeSnapshotBlob((await s.createSnapshot()).data, integrity);
    expect(snap.records.map(([k]) => k)).not.toContain('bcapp/db\u00001');
  });

  test('the applied position, hard state and snapshot meta cannot be done without: a bad one stops the open', async () => {
    await populated();
    for (const key of ['a', 'rh']) {
      await flipLastValueByte(key, 2);
      const { integrity, failures } = recording();
      await expect(openNodeStore(`${tmp.dir}/s`, integrity)).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
      expect(failures.map((f) => f.key)).toEqual([key]);
      await flipLastValueByte(key, 2);
    }
  });

  test('a data dir written under another key is refused as a whole', async () => {
    await populated();
    const other = new Integrity({ record: bytes(32, 7), snapshot: bytes(32, 8) });
    await expect(openNodeStore(`${tmp.dir}/s`, other)).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
  });
});

describe('records of a large store (tags checked on a worker thread)', () => {
  const N = 3 * CHECK_CHUNK_RECORDS + 17;
  const name = (i: number): string => `bulk/k${String(i).padStart(6, '0')}`;
  const secret = (i: number): SecretRecord => ({
    name: name(i), createdAt: T0, updatedAt: T0, currentVersion: 1, maxVersions: 10, casRequired: false, deleteVersionAfterSecs: 0, description: null, rotation: null, customMetadata: [],
    versions: [{ version: 1, createdAt: T0, createdBy: 't', format: 'raw', deletedAt: null, destroyed: false, formatVersion: 1, alg: 'xchacha20poly1305', kmsKeyId: 'k', wrapMarker: '', sizeBytes: 3, ctDigest: sha256Digest(bytes(3, i)), dekDigest: sha256Digest(bytes(4, i)) }],
  });
  /** Flipped in the first chunk, in a worker-checked chunk, in the last (partial) chunk; one moved. */
  const flipped = [10, CHECK_CHUNK_RECORDS + 500, N - 2];
  const moved = 'msbulk/k999999';

  async function bulk(): Promise<void> {
    await (await store()).close();
    await onDisk(async (db) => {
      const batch = db.batch();
      for (let i = 0; i < N; i++) {
        const key = `ms${name(i)}`;
        const stored = TEST_INTEGRITY.sealRecord(key, encodeSecret(secret(i)));
        if (flipped.includes(i)) stored[5] = (stored[5] as number) ^ 0x01;
        batch.put(key, stored);
        if (i === 7) batch.put(moved, stored); // a valid record under another name
      }
      await batch.write();
    });
  }

  test('a flipped byte or a moved record anywhere is refused and reported in key order, the rest is loaded', async () => {
    await bulk();
    const { integrity, failures } = recording();
    const spawned = jest.spyOn(integrity, 'recordChecker');
    const s = await store(integrity);
    expect(spawned).toHaveBeenCalledTimes(1);
    expect(failures).toEqual([...flipped.map((i) => `ms${name(i)}`), moved].map((key) => ({ kind: 'record', key, action: 'ignored' })));
    expect(s.state.listNames('bulk/')).toHaveLength(N - flipped.length);
    expect(s.state.getSecret(name(N - 1))).toEqual(secret(N - 1));
    expect(s.state.getSecret(name(CHECK_CHUNK_RECORDS + 501))).toEqual(secret(CHECK_CHUNK_RECORDS + 501));
  });

  test('should the worker fail, its records are checked on the main thread instead: same result', async () => {
    await bulk();
    const { integrity, failures } = recording();
    const real = integrity.recordChecker.bind(integrity);
    // A checker whose worker is gone by the time the first records reach it.
    jest.spyOn(integrity, 'recordChecker').mockImplementation(() => {
      const checker = real();
      void checker.close();
      return checker;
    });
    const s = await store(integrity);
    expect(failures.map((f) => f.key)).toEqual([...flipped.map((i) => `ms${name(i)}`), moved]);
    expect(s.state.listNames('bulk/')).toHaveLength(N - flipped.length);
  });
});

describe('Raft log on disk', () => {
  test('an entry injected past the end, or an edited unapplied entry, is cut off with everything after it and never applied', async () => {
    const s = await store();
    const es = entries(cmds);
    await s.log.append(es, { term: 1, vote: 'n1', commit: 5 }, { sync: true });
    await s.applyEntries(es.slice(0, 3)); // 4 and 5 committed, not yet applied
    await s.close();
    await onDisk(async (db) => {
      // untagged entry at 6 (an attacker cannot compute the tag) and an edited entry 5
      await db.put('rl0000000000000006', Uint8Array.of(1, ...new Uint8Array(7), 0, 0, 0, 0, 0));
      const e5 = (await db.get('rl0000000000000005')) as Uint8Array;
      const edited = e5.slice();
      const i = e5.length - RECORD_TAG_BYTES - 2;
      edited[i] = (edited[i] as number) ^ 0x01;
      await db.put('rl0000000000000005', edited);
    });
    const { integrity, failures } = recording();
    const r = await store(integrity);
    expect(failures).toEqual([{ kind: 'raft_entry', key: 'rl0000000000000005', action: 'log cut here' }]);
    const boot = r.load();
    expect(boot.entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(boot.hardState.commit).toBe(4);
    expect(r.log.lastIndex).toBe(4);
    await r.applyEntries(boot.entries);
    expect(r.state.getSecret('app/other')).toBeUndefined();
    await r.close();
    // the cut is durable: the next open is clean
    const { integrity: i2, failures: f2 } = recording();
    const again = await store(i2);
    expect(f2).toEqual([]);
    expect(again.load().hardState.commit).toBe(4);
    await again.close();
    expect(await allKeys()).not.toContain('rl0000000000000006');
  });

  test('an injected entry with a forged admin token is not replayed', async () => {
    const s = await store();
    const es = entries(cmds.slice(0, 3));
    await s.log.append(es, { term: 1, vote: 'n1', commit: 3 }, { sync: true });
    await s.applyEntries(es);
    await s.close();
    const forged = entries([{ type: 'token.create', requestId: 'evil', at: T0, name: 'evil', role: 'admin', tokenHash: hash(9), expiresAt: null, actor: 'x' }], 4)[0] as LogEntry;
    const other = new Integrity({ record: bytes(32, 7), snapshot: bytes(32, 8) });
    await onDisk(async (db) => {
      // a well-formed entry record, tagged under a key that is not the cluster's, and one untagged
      await db.put('rl0000000000000004', other.sealRecord('rl0000000000000004', encodeEntry(forged)));
      await db.put('rl0000000000000005', encodeEntry({ ...forged, index: 5 }));
    });
    const { integrity, failures } = recording();
    const r = await store(integrity);
    expect(failures.map((f) => f.key)).toEqual(['rl0000000000000004']);
    expect(r.load().entries.map((e) => e.index)).toEqual([1, 2, 3]);
    expect(r.state.tokenByName('evil')).toBeUndefined();
  });

  test('an applied entry that fails its tag stops the open (the log cannot be cut below the applied index)', async () => {
    await populated();
    await flipLastValueByte('rl0000000000000002', 5);
    const { integrity, failures } = recording();
    await expect(openNodeStore(`${tmp.dir}/s`, integrity)).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
    expect(failures.map((f) => f.key)).toEqual(['rl0000000000000002']);
  });

  test('the saved Raft snapshot is checked when read', async () => {
    const s = await store();
    const es = entries(cmds);
    await s.log.append(es, { term: 1, vote: 'n1', commit: 5 }, { sync: true });
    await s.applyEntries(es);
    const snap = await s.createSnapshot();
    await s.log.saveSnapshot({ index: snap.index, term: snap.term, confState: { voters: ['n1'], learners: [] } }, snap.data);
    expect(await readSavedSnapshot(s)).toEqual(snap.data);
    await s.close();
    await onDisk(async (db) => {
      const v = ((await db.get('rd')) as Uint8Array).slice();
      v[30] = (v[30] as number) ^ 0x01;
      await db.put('rd', v);
    });
    const { integrity, failures } = recording();
    const r = await store(integrity);
    await expect(readSavedSnapshot(r)).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
    expect(failures).toEqual([{ kind: 'snapshot', key: 'rd', action: 'refused' }]);
  });
});

function u32(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** What the previous build wrote: format 1, sha256 over everything before it. */
function legacyBlob(index: number, term: number, records: [string, Uint8Array][]): Uint8Array {
  const parts: number[] = [0x43, 0x46, 0x53, 0x4e, 1];
  const u53 = (n: number): void => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    parts.push(...b);
  };
  u53(index);
  u53(term);
  parts.push(...u32(records.length));
  for (const [k, v] of records) {
    const kb = Buffer.from(k, 'utf8');
    parts.push(...u32(kb.length), ...kb, ...u32(v.length), ...v);
  }
  const body = Uint8Array.from(parts);
  return new Uint8Array(Buffer.concat([body, createHash('sha256').update(body).digest()]));
}

describe('snapshots', () => {
  function sample(): StateMachine {
    const sm = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
    entries(cmds).forEach((e) => sm.apply(e));
    return sm;
  }

  test('round trip: a tagged snapshot decodes and restores to the same state', async () => {
    const sm = sample();
    const blob = sm.createSnapshot();
    expect(blob[4]).toBe(SNAPSHOT_FORMAT_VERSION);
    const s = await store();
    await s.restoreSnapshot(blob);
    expect(s.state.stateDigest()).toBe(sm.stateDigest());
    expect(await s.readSealed('app/db', 1)).toEqual(sealed(1));
  });

  test('a snapshot edited and re-checksummed as the old format allowed is refused; nothing changes', async () => {
    const sm = sample();
    const blob = sm.createSnapshot();
    const contents = decodeSnapshotBlob(blob, TEST_INTEGRITY);
    // The attacker swaps the ci token's hash for one they know the preimage of…
    const records = contents.records.map(([k, v]): [string, Uint8Array] => {
      if (k !== 'mtci') return [k, v];
      const edited = v.slice();
      const at = Buffer.from(edited).indexOf(Buffer.from(hash(1)));
      expect(at).toBeGreaterThan(0);
      edited.set(hash(5), at);
      return [k, edited];
    });
    // …then recomputes the unkeyed sha256 as format 1 had it, or puts one where the tag goes.
    const v1 = legacyBlob(contents.index, contents.term, records);
    const v2 = v1.slice();
    v2[4] = SNAPSHOT_FORMAT_VERSION;
    v2.set(createHash('sha256').update(v2.subarray(0, v2.length - 32)).digest(), v2.length - 32);
    const s = await store();
    await s.restoreSnapshot(blob);
    const before = s.state.stateDigest();
    await expect(s.restoreSnapshot(v1)).rejects.toMatchObject({ code: 'SM_UNSUPPORTED_SNAPSHOT' });
    await expect(s.restoreSnapshot(v2)).rejects.toMatchObject({ code: 'SM_SNAPSHOT_NOT_AUTHENTIC' });
    expect(s.state.stateDigest()).toBe(before);
    // and through the log (POST /v1/cluster/restore): refused, state unchanged
    const target = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
    expect(target.applyCommand({ type: 'state.restore', requestId: 'r1', at: T0, snapshot: v2 }).result).toEqual({ status: 'invalid_snapshot' });
    expect(target.applyCommand({ type: 'state.restore', requestId: 'r2', at: T0, snapshot: v1 }).result).toEqual({ status: 'invalid_snapshot' });
    expect(() => target.checkSnapshot(v2)).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_NOT_AUTHENTIC' }));
  });

  test('a snapshot made under another key is refused', async () => {
    const otherKeys = new Integrity({ record: bytes(32, 101), snapshot: bytes(32, 7) });
    const foreign = new StateMachine({ keepBlobs: true, integrity: otherKeys });
    entries(cmds).forEach((e) => foreign.apply(e));
    const blob = foreign.createSnapshot();
    const s = await store();
    await expect(s.restoreSnapshot(blob)).rejects.toMatchObject({ code: 'SM_SNAPSHOT_NOT_AUTHENTIC' });
    expect(() => decodeSnapshotBlob(blob, TEST_INTEGRITY)).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_NOT_AUTHENTIC' }));
    expect(sample().applyCommand({ type: 'state.restore', requestId: 'r', at: T0, snapshot: blob }).result).toEqual({ status: 'invalid_snapshot' });
    // encodeSnapshotBlob under the right key is accepted (the tag is the only difference)
    const ok = encodeSnapshotBlob(1, 1, decodeSnapshotBlob(blob, otherKeys).records, TEST_INTEGRITY);
    await expect(s.restoreSnapshot(ok)).resolves.toEqual({ index: 1, term: 1 });
  });

  test('a state machine without integrity keys neither makes nor accepts snapshots', () => {
    const bare = new StateMachine({ keepBlobs: true });
    expect(() => bare.createSnapshot()).toThrow(expect.objectContaining({ code: 'SM_INVARIANT' }));
    expect(bare.applyCommand({ type: 'state.restore', requestId: 'r', at: T0, snapshot: sample().createSnapshot() }).result).toEqual({ status: 'invalid_snapshot' });
  });
});

describe('upgrade of a data dir written before record tags', () => {
  /** Rewrites the populated store the way the previous build left it: no tags, no marker, a v1 saved snapshot. */
  async function makeLegacy(): Promise<void> {
    await onDisk(async (db) => {
      const batch = db.batch();
      for await (const [k, v] of db.iterator()) {
        if (k === INTEGRITY_MARKER_KEY) batch.del(k);
        else if (k === 'rd') {
          const snap = decodeSnapshotBlob(v, TEST_INTEGRITY);
          batch.put(k, legacyBlob(snap.index, snap.term, snap.records));
        } else batch.put(k, v.subarray(0, v.length - RECORD_TAG_BYTES));
      }
      await batch.write();
    });
  }

  test('the first open adopts it once (tags every record, re-encodes the saved snapshot), later opens are normal', async () => {
    const s = await store();
    const es = entries(cmds);
    await s.log.append(es, { term: 1, vote: 'n1', commit: 5 }, { sync: true });
    await s.applyEntries(es);
    const snap = await s.createSnapshot();
    await s.log.saveSnapshot({ index: snap.index, term: snap.term, confState: { voters: ['n1'], learners: [] } }, snap.data);
    const digest = s.state.stateDigest();
    await s.close();
    await makeLegacy();

    // Refused unless the operator asks for the one-time adoption.
    await expect(openNodeStore(`${tmp.dir}/s`, TEST_INTEGRITY)).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
    const { integrity, failures } = recording();
    const a = await openNodeStore(`${tmp.dir}/s`, integrity, { adoptUntagged: true });
    open.push(a);
    expect(a.adoption).toEqual({ from: 'untagged', records: expect.any(Number), snapshotReencoded: true });
    expect(failures).toEqual([]);
    expect(a.state.stateDigest()).toBe(digest);
    expect(a.log.lastIndex).toBe(5);
    expect(a.load().snapshot?.index).toBe(5);
    expect(await a.readSealed('app/db', 1)).toEqual(sealed(1));
    expect(decodeSnapshotBlob((await readSavedSnapshot(a)) as Uint8Array, integrity).index).toBe(5);
    await a.close();
    const b = await store(recording().integrity);
    expect(b.adoption).toBeNull();
    expect(b.state.stateDigest()).toBe(digest);
  });

  test('removing the marker from a tagged data dir does not get forged records adopted', async () => {
    await populated();
    await onDisk(async (db) => {
      await db.del(INTEGRITY_MARKER_KEY);
      await db.put('mtforged', Uint8Array.of(1, 2, 3));
    });
    await expect(openNodeStore(`${tmp.dir}/s`, recording().integrity, { adoptUntagged: true })).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
  });
});

describe('cluster-key rotation', () => {
  test('a data dir tagged under the previous keys is re-tagged once; a record forged under neither stays refused', async () => {
    const s = await store();
    const es = entries(cmds);
    await s.log.append(es, { term: 1, vote: 'n1', commit: 5 }, { sync: true });
    await s.applyEntries(es);
    const snap = await s.createSnapshot();
    await s.log.saveSnapshot({ index: snap.index, term: snap.term, confState: { voters: ['n1'], learners: [] } }, snap.data);
    const digest = s.state.stateDigest();
    await s.close();
    await onDisk(async (db) => {
      await db.put('mtforged', Uint8Array.of(1, 2, 3));
    });
    const next = { record: bytes(32, 301), snapshot: bytes(32, 302) };
    // Without the previous keys the data dir is refused as a whole.
    await expect(openNodeStore(`${tmp.dir}/s`, new Integrity(next))).rejects.toMatchObject({ code: 'SM_INTEGRITY' });
    const { integrity, failures } = recording(next);
    const r = await openNodeStore(`${tmp.dir}/s`, integrity, { previous: TEST_INTEGRITY });
    open.push(r);
    expect(r.adoption).toEqual({ from: 'rekeyed', records: expect.any(Number), snapshotReencoded: true });
    expect(failures).toEqual([{ kind: 'record', key: 'mtforged', action: 'ignored' }]);
    expect(r.state.stateDigest()).toBe(digest);
    expect(await r.readSealed('app/db', 1)).toEqual(sealed(1));
    expect(decodeSnapshotBlob((await readSavedSnapshot(r)) as Uint8Array, integrity).index).toBe(5);
    await r.close();
    // Re-tagged for good: the next open needs only the new keys.
    const again = await store(recording(next).integrity);
    expect(again.adoption).toBeNull();
    expect(again.state.stateDigest()).toBe(digest);
  });
});

describe('Integrity', () => {
  test('a tag binds the key: the same value under another key does not verify; destroy() makes it unusable', () => {
    const i = new Integrity({ record: bytes(32, 1), snapshot: bytes(32, 2) });
    const v = bytes(20, 3);
    const stored = i.sealRecord('mtci', v);
    expect(i.openRecord('mtci', stored)).toEqual(v);
    expect(i.openRecord('mtcj', stored)).toBeNull();
    expect(i.openRecord('mtci', stored.subarray(0, 10))).toBeNull();
    expect(() => new Integrity({ record: bytes(31, 1), snapshot: bytes(32, 2) })).toThrow(RangeError);
    i.destroy();
    expect(() => i.sealRecord('mtci', v)).toThrow(TypeError);
  });
});
