import { ClassicLevel } from 'classic-level';
import {
  StateError,
  StateMachine,
  encodeCommand,
  openNodeStore,
  readSavedSnapshot,
  type Command,
  type SecretPutCommand,
  type LogEntry,
  type NodeStore,
} from '../src/index.js';
import { TEST_INTEGRITY, sealed, tempDir } from './helpers.js';

const T0 = 1_700_000_000_000;
const ent = (index: number, term: number, tag = 0): LogEntry => ({ index, term, type: 'normal', data: Uint8Array.of(index & 0xff, term & 0xff, tag) });
const put = (name: string, version: number, requestId = `${name}@${version}`): SecretPutCommand => ({
  type: 'secret.put',
  requestId,
  at: T0 + version,
  name,
  version,
  cas: null,
  sealed: sealed(version),
  format: 'raw',
  description: null,
  rotation: null,
  actor: 't',
});

let tmp: ReturnType<typeof tempDir>;
let stores: NodeStore[] = [];
async function open(sub = 'a'): Promise<NodeStore> {
  const s = await openNodeStore(`${tmp.dir}/${sub}`, TEST_INTEGRITY);
  stores.push(s);
  return s;
}
async function reopen(s: NodeStore, sub = 'a'): Promise<NodeStore> {
  await s.close();
  return open(sub);
}

beforeEach(() => {
  tmp = tempDir();
  stores = [];
});
afterEach(async () => {
  for (const s of stores) await s.close().catch(() => undefined);
  tmp.cleanup();
});

describe('Raft log', () => {
  test('append + hard state survive a reopen; a conflicting suffix is truncated', async () => {
    let s = await open();
    await s.log.append([ent(1, 1), ent(2, 1), ent(3, 1), ent(4, 1)], { term: 1, vote: 'n1', commit: 2 }, { sync: true });
    await s.log.append([ent(3, 2, 9)], { term: 2, vote: 'n2', commit: 2 }, { sync: true });
    expect(s.log.lastIndex).toBe(3);
    s = await reopen(s);
    const boot = s.load();
    expect(boot.hardState).toEqual({ term: 2, vote: 'n2', commit: 2 });
    expect(boot.snapshot).toBeNull();
    expect(boot.entries).toEqual([ent(1, 1), ent(2, 1), ent(3, 2, 9)]);
    await expect(s.log.append([ent(9, 2)])).rejects.toMatchObject({ code: 'SM_INVARIANT' });
  });

  test('group commit: 64 concurrent synced appends share far fewer synced writes', async () => {
    const s = await open();
    const before = { ...s.writerStats };
    await Promise.all(Array.from({ length: 64 }, (_, i) => s.log.setHardState({ term: 1, vote: null, commit: i }, { sync: true })));
    const writes = s.writerStats.syncedWrites - before.syncedWrites;
    expect(s.writerStats.requests - before.requests).toBe(64);
    expect(writes).toBeGreaterThanOrEqual(1);
    expect(writes).toBeLessThanOrEqual(2);
    const r = await reopen(s);
    expect(r.load().hardState.commit).toBe(63); // call order preserved inside the merged batch
  });

  test('snapshot + compaction: only durably applied entries covered by the snapshot go', async () => {
    let s = await open();
    const entries = [1, 2, 3, 4, 5].map((i) => ({ index: i, term: 1, type: 'normal' as const, data: encodeCommand(put('x', i)) }));
    await s.log.append(entries, undefined, { sync: true });
    await expect(s.log.compact(2)).rejects.toMatchObject({ code: 'SM_COMPACTION_UNSAFE' }); // no snapshot yet
    await s.applyEntries(entries.slice(0, 4));
    const snap = await s.createSnapshot();
    expect(snap.index).toBe(4);
    await s.log.saveSnapshot({ index: 4, term: 1, confState: { voters: ['n1'], learners: [] } }, snap.data);
    await expect(s.log.compact(5)).rejects.toBeInstanceOf(StateError);
    await s.log.compact(4);
    expect(s.log.firstIndex).toBe(5);
    s = await reopen(s);
    const boot = s.load();
    expect(boot.snapshot?.index).toBe(4);
    expect(boot.entries.map((e) => e.index)).toEqual([5]);
    expect(s.applied).toBe(4);
    expect(await readSavedSnapshot(s)).toEqual(snap.data);
  });

  test('an installed snapshot newer than the log discards the log; boot restores state from it', async () => {
    const leader = await open('leader');
    await leader.applyEntries([1, 2, 3].map((i) => ({ index: i, term: 1, type: 'normal' as const, data: encodeCommand(put('y', i)) })));
    const snap = await leader.createSnapshot();
    let f = await open('f');
    await f.log.append([ent(1, 1), ent(2, 1)], undefined, { sync: true });
    // Crash after saving the snapshot but before installing it into the state:
    await f.log.saveSnapshot({ index: 3, term: 1, confState: { voters: [], learners: [] } }, snap.data);
    expect(f.log.lastIndex).toBe(3);
    expect(f.log.firstIndex).toBe(4);
    f = await reopen(f, 'f');
    expect(f.load().entries).toEqual([]);
    expect(f.applied).toBe(3);
    expect(f.state.stateDigest()).toBe(leader.state.stateDigest());
  });
});

describe('state persistence', () => {
  test('apply persists state and applied index atomically; reopen sees the same digest and values', async () => {
    let s = await open();
    const cmds = [put('a', 1), put('a', 2), put('b', 1), { type: 'secret.destroy', requestId: 'd', at: T0, name: 'a', versions: [1], actor: 't' } as Command];
    const res = await s.applyEntries(cmds.map((c, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data: encodeCommand(c) })));
    expect(res.map((r) => r.result.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    const digest = s.state.stateDigest();
    expect(await s.readSealed('a', 2)).toEqual(sealed(2));
    s = await reopen(s);
    expect(s.applied).toBe(4);
    expect(s.state.stateDigest()).toBe(digest);
    expect(await s.readSealed('a', 1)).toBeUndefined();
    expect(await s.readSealed('a', 2)).toEqual(sealed(2));
    expect(await s.readSealed('b', 1)).toEqual(sealed(1));
    // replays of already-applied entries are ignored
    expect(await s.applyEntries([{ index: 4, term: 1, type: 'normal', data: encodeCommand(put('b', 2)) }])).toEqual([]);
    expect(s.state.latestVersion('b')).toBe(1);
    // erased blobs are gone from disk too
    await s.close();
    const raw = new ClassicLevel<string, Uint8Array>(`${tmp.dir}/a`, { valueEncoding: 'view' });
    const keys: string[] = [];
    for await (const k of raw.keys({ gte: 'b', lt: 'c' })) keys.push(k);
    await raw.close();
    expect(keys.sort()).toEqual(['bca\u00002', 'bcb\u00001']);
  });

  test('a KMS re-wrap persists the new wrapped DEK beside the untouched ciphertext; destroy erases both', async () => {
    let s = await open();
    const rewrap: Command = { type: 'kms.rewrap', requestId: 'rw', at: T0, name: 'a', version: 1, wrappedDek: Uint8Array.of(1, 2, 3), kmsKeyId: 'key-2', expectedKmsKeyId: 'key-1', marker: 'm1' };
    await s.applyEntries([put('a', 1), rewrap].map((c, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data: encodeCommand(c) })));
    s = await reopen(s);
    expect(await s.readSealed('a', 1)).toEqual({ ...sealed(1), wrappedDek: Uint8Array.of(1, 2, 3), kmsKeyId: 'key-2' });
    await s.applyEntries([{ index: 3, term: 1, type: 'normal', data: encodeCommand({ type: 'secret.destroy', requestId: 'd', at: T0, name: 'a', versions: [1], actor: 't' }) }]);
    await s.close();
    const raw = new ClassicLevel<string, Uint8Array>(`${tmp.dir}/a`, { valueEncoding: 'view' });
    const keys: string[] = [];
    for await (const k of raw.keys({ gte: 'b', lt: 'c' })) keys.push(k);
    await raw.close();
    expect(keys).toEqual([]);
  });

  test('the in-memory blob cache never serves a blob a later command changed or removed', async () => {
    const s = await open();
    const e = (index: number, c: Command): LogEntry => ({ index, term: 1, type: 'normal', data: encodeCommand(c) });
    await s.applyEntries([e(1, put('a', 1))]);
    expect(await s.readSealed('a', 1)).toEqual(sealed(1)); // from LevelDB, now cached
    expect(await s.readSealed('a', 1)).toEqual(sealed(1)); // from the cache
    // Re-wrap changes the wrapped DEK blob: the next read must see the new one.
    const rewrap: Command = { type: 'kms.rewrap', requestId: 'rw', at: T0, name: 'a', version: 1, wrappedDek: Uint8Array.of(7, 7), kmsKeyId: 'key-2', expectedKmsKeyId: 'key-1', marker: 'm1' };
    await s.applyEntries([e(2, rewrap)]);
    expect(await s.readSealed('a', 1)).toEqual({ ...sealed(1), wrappedDek: Uint8Array.of(7, 7), kmsKeyId: 'key-2' });
    // Reads racing a batch that changes the blob (version 2 is not cached yet, so they go to
    // LevelDB while the batch is written): each sees the old or the new value, and the cache is
    // not left holding the old one.
    await s.applyEntries([e(3, put('a', 2))]);
    const rewrap2: Command = { ...rewrap, requestId: 'rw2', version: 2, wrappedDek: Uint8Array.of(8, 8, 8), kmsKeyId: 'key-3', expectedKmsKeyId: 'key-1', marker: 'm2' };
    const racing = Promise.all(Array.from({ length: 20 }, () => s.readSealed('a', 2)));
    await s.applyEntries([e(4, rewrap2)]);
    for (const r of await racing) expect([sealed(2).wrappedDek, Uint8Array.of(8, 8, 8)]).toContainEqual(r?.wrappedDek);
    expect((await s.readSealed('a', 2))?.wrappedDek).toEqual(Uint8Array.of(8, 8, 8));
    // Destroy: gone, also from the cache.
    await s.applyEntries([e(5, { type: 'secret.destroy', requestId: 'd', at: T0, name: 'a', versions: [1], actor: 't' })]);
    expect(await s.readSealed('a', 1)).toBeUndefined();
    // A restore replaces everything: nothing cached from before survives it.
    await s.applyEntries([e(6, put('b', 1))]);
    expect(await s.readSealed('b', 1)).toEqual(sealed(1));
    const other = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
    other.apply({ index: 1, term: 1, type: 'normal', data: encodeCommand({ ...put('b', 1), sealed: sealed(42) }) });
    await s.restoreSnapshot(other.createSnapshot());
    expect(await s.readSealed('b', 1)).toEqual(sealed(42));
  });

  test('onApplied hands over the results once the batch is applied in memory and queued: reads already see it, the write is not yet done', async () => {
    const s = await open();
    const entries = [put('a', 1), put('b', 1)].map((c, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data: encodeCommand(c) }));
    let early: { statuses: string[]; latest: number | undefined; persisted: boolean; read: Promise<unknown> } | undefined;
    let persisted = false;
    const done = s
      .applyEntries(entries, (results) => {
        early = { statuses: results.map((r) => r.result.status), latest: s.state.latestVersion('b'), persisted, read: s.readSealed('b', 1) };
      })
      .then((r) => {
        persisted = true;
        return r;
      });
    const res = await done;
    expect(early).toBeDefined();
    expect(early?.statuses).toEqual(['ok', 'ok']);
    expect(early?.latest).toBe(1);
    expect(early?.persisted).toBe(false);
    expect(await early?.read).toEqual(sealed(1)); // a read started before the write finished
    expect(res.map((r) => r.index)).toEqual([1, 2]);
    // A batch whose entry fails gets no early results (the node stops).
    const calls: number[] = [];
    await expect(s.applyEntries([{ index: 3, term: 1, type: 'normal', data: Uint8Array.of(1, 99) }], () => calls.push(1))).rejects.toMatchObject({ code: 'SM_UNKNOWN_COMMAND' });
    expect(calls).toEqual([]);
  });

  test('a bad entry stops the batch: earlier entries are persisted, the bad one is not applied', async () => {
    let s = await open();
    const good = { index: 1, term: 1, type: 'normal' as const, data: encodeCommand(put('a', 1)) };
    const bad = { index: 2, term: 1, type: 'normal' as const, data: Uint8Array.of(1, 99) };
    await expect(s.applyEntries([good, bad, { ...good, index: 3 }])).rejects.toMatchObject({ code: 'SM_UNKNOWN_COMMAND', index: 2 });
    expect(s.applied).toBe(1);
    s = await reopen(s);
    expect(s.applied).toBe(1);
    expect(s.state.latestVersion('a')).toBe(1);
  });

  test('restoreSnapshot replaces everything atomically, including members; corrupt blobs change nothing', async () => {
    const a = await open('a');
    await a.applyEntries([
      { index: 1, term: 1, type: 'normal', data: encodeCommand(put('one', 1)) },
      { index: 2, term: 1, type: 'normal', data: encodeCommand({ type: 'member.upsert', requestId: 'm', at: T0, id: 'n1', raftAddr: 'r', apiAddr: 'a' }) },
    ]);
    const snap = await a.createSnapshot();
    let b = await open('b');
    await b.applyEntries([1, 2, 3].map((i) => ({ index: i, term: 1, type: 'normal' as const, data: encodeCommand(put('other', i)) })));
    const before = b.state.stateDigest();
    const broken = snap.data.slice();
    broken[20] = (broken[20] as number) ^ 1;
    await expect(b.restoreSnapshot(broken)).rejects.toMatchObject({ code: 'SM_SNAPSHOT_NOT_AUTHENTIC' });
    expect(b.state.stateDigest()).toBe(before);
    await expect(b.restoreSnapshot(Uint8Array.of(0x43, 0x46, 0x53, 0x4e, 9, ...new Uint8Array(40)))).rejects.toMatchObject({ code: 'SM_UNSUPPORTED_SNAPSHOT' });
    expect(await b.restoreSnapshot(snap.data)).toEqual({ index: 2, term: 1 });
    expect(b.state.stateDigest()).toBe(a.state.stateDigest());
    expect(b.state.listMembers().map((m) => m.id)).toEqual(['n1']);
    expect(await b.readSealed('other', 1)).toBeUndefined();
    b = await reopen(b, 'b');
    expect(b.applied).toBe(2);
    expect(b.state.stateDigest()).toBe(a.state.stateDigest());
    expect(await b.readSealed('one', 1)).toEqual(sealed(1));
  });

  test('state.restore through the log keeps the address book and rewrites the rest on disk', async () => {
    const src = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
    src.apply({ index: 1, term: 1, type: 'normal', data: encodeCommand(put('from-backup', 1)) });
    const blob = src.createSnapshot();
    let s = await open();
    await s.applyEntries([
      { index: 1, term: 1, type: 'normal', data: encodeCommand(put('local', 1)) },
      { index: 2, term: 1, type: 'normal', data: encodeCommand({ type: 'member.upsert', requestId: 'm', at: T0, id: 'n9', raftAddr: 'r', apiAddr: 'a' }) },
      { index: 3, term: 1, type: 'normal', data: encodeCommand({ type: 'state.restore', requestId: 'restore-1', at: T0, snapshot: blob }) },
    ]);
    const digest = s.state.stateDigest();
    expect(s.state.listNames('')).toEqual(['from-backup']);
    s = await reopen(s);
    expect(s.state.stateDigest()).toBe(digest);
    expect(s.state.listNames('')).toEqual(['from-backup']);
    expect(s.state.listMembers().map((m) => m.id)).toEqual(['n9']);
    expect(await s.readSealed('from-backup', 1)).toEqual(sealed(1));
    expect(await s.readSealed('local', 1)).toBeUndefined();
  });

  test('durable snapshot and in-memory snapshot of the same history restore to the same digest', async () => {
    const s = await open();
    const mem = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
    const entries = [put('a', 1), put('a', 2), put('c/d', 1)].map((c, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data: encodeCommand(c) }));
    await s.applyEntries(entries);
    for (const e of entries) mem.apply(e);
    const durable = await s.createSnapshot();
    const r1 = await open('r1');
    await r1.restoreSnapshot(durable.data);
    const r2 = await open('r2');
    await r2.restoreSnapshot(mem.createSnapshot());
    expect(r1.state.stateDigest()).toBe(mem.stateDigest());
    expect(r2.state.stateDigest()).toBe(mem.stateDigest());
  });

  test('a snapshot taken while applies continue is consistent with its applied index', async () => {
    const s = await open();
    const entries = Array.from({ length: 60 }, (_, i) => ({ index: i + 1, term: 1, type: 'normal' as const, data: encodeCommand(put(`n${i % 7}`, Math.floor(i / 7) + 1)) }));
    await s.applyEntries(entries.slice(0, 20));
    const snapP = s.createSnapshot();
    const rest = [s.applyEntries(entries.slice(20, 40)), s.applyEntries(entries.slice(40))];
    const [snap] = await Promise.all([snapP, ...rest]);
    const ref = new StateMachine({ integrity: TEST_INTEGRITY });
    for (const e of entries.slice(0, snap.index)) ref.apply(e);
    const r = await open('r');
    await r.restoreSnapshot(snap.data);
    expect(r.state.stateDigest()).toBe(ref.stateDigest());
    expect(s.applied).toBe(60);
  });

  test('closed store refuses use', async () => {
    const s = await open();
    await s.close();
    expect(() => s.applyEntries([])).toThrow(expect.objectContaining({ code: 'SM_STORE_CLOSED' }));
  });
});
