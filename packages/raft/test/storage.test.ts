import fc from 'fast-check';
import { MemoryStorage, RaftError, decodeConfChange, validateConfig, type Entry } from '../src/index';

const e = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: new Uint8Array([index & 0xff]) });

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof RaftError ? err.code : String(err);
  }
  return undefined;
}

describe('MemoryStorage', () => {
  test('bootstrap writes one committed addVoter entry per founder', () => {
    const s = MemoryStorage.bootstrap(['a', 'b']);
    expect(s.initialState().hardState).toEqual({ term: 1, vote: null, commit: 2 });
    expect(s.entries(1, 3, 1e9).map((x) => decodeConfChange(x.data))).toEqual([
      { type: 'addVoter', nodeId: 'a', context: new Uint8Array() },
      { type: 'addVoter', nodeId: 'b', context: new Uint8Array() },
    ]);
    expect(() => MemoryStorage.bootstrap([])).toThrow(TypeError);
  });

  test('append replaces a conflicting suffix', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 1)]);
    s.append([e(2, 2)]);
    expect(s.lastIndex()).toBe(2);
    expect(s.term(2)).toBe(2);
  });

  test('snapshot, compact and the errors around them', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2)]);
    const snap = s.createSnapshot(3, { voters: ['a'], learners: [] }, new Uint8Array([9]));
    expect(snap.meta).toEqual({ index: 3, term: 2, confState: { voters: ['a'], learners: [] } });
    s.compact(3);
    expect(s.firstIndex()).toBe(4);
    expect(s.term(3)).toBe(2);
    expect(code(() => s.term(2))).toBe('RAFT_COMPACTED');
    expect(code(() => s.term(5))).toBe('RAFT_UNAVAILABLE');
    expect(code(() => s.entries(3, 5, 1e9))).toBe('RAFT_COMPACTED');
    expect(code(() => s.compact(2))).toBe('RAFT_COMPACTED');
    expect(code(() => s.createSnapshot(2, { voters: [], learners: [] }, new Uint8Array()))).toBe('RAFT_SNAPSHOT_OUT_OF_DATE');
    expect(code(() => s.applySnapshot(snap))).toBe('RAFT_SNAPSHOT_OUT_OF_DATE');
    s.applySnapshot({ meta: { index: 10, term: 4, confState: { voters: ['a'], learners: [] } }, data: new Uint8Array() });
    expect([s.firstIndex(), s.lastIndex(), s.term(10)]).toEqual([11, 10, 4]);
  });

  test('a meta-only snapshot is asked for once, built, held until compaction passes it', () => {
    const s = new MemoryStorage();
    s.append([e(1, 1), e(2, 1), e(3, 2), e(4, 2), e(5, 2), e(6, 3)]);
    const cs = { voters: ['a'], learners: [] };
    s.createSnapshot(3, cs, null);
    s.compact(2);
    expect(s.snapshot().meta.index).toBe(3);
    expect(s.snapshot().data.length).toBe(0);
    expect(s.takeSnapshotRequest()).toBe(false);
    expect(s.snapshotToSend()).toBeNull();
    expect(s.takeSnapshotRequest()).toBe(true);
    expect(s.takeSnapshotRequest()).toBe(false);
    // Below the compaction point, or past the log: useless to a follower, refused.
    expect(s.setSnapshotToSend(1, cs, new Uint8Array([1]))).toBe(false);
    expect(s.setSnapshotToSend(7, cs, new Uint8Array([1]))).toBe(false);
    expect(s.setSnapshotToSend(5, cs, new Uint8Array([5]))).toBe(true);
    expect(s.snapshotToSend()).toEqual({ meta: { index: 5, term: 2, confState: cs }, data: new Uint8Array([5]) });
    // Not replaced by an older build; kept across a compaction that does not pass it.
    expect(s.setSnapshotToSend(4, cs, new Uint8Array([4]))).toBe(false);
    s.compact(4);
    expect(s.snapshotToSend()?.meta.index).toBe(5);
    s.createSnapshot(6, cs, null);
    s.compact(6);
    expect(s.snapshotToSend()).toBeNull();
    // A snapshot with its data (received from the leader) is sent as it is.
    s.applySnapshot({ meta: { index: 10, term: 4, confState: cs }, data: new Uint8Array([10]) });
    expect(s.snapshotToSend()?.meta.index).toBe(10);
    s.applySnapshot({ meta: { index: 11, term: 4, confState: cs }, data: new Uint8Array() }, false);
    expect(s.snapshotToSend()).toBeNull();
  });

  test('entries respects maxSize but always returns at least one entry', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 30 }), fc.nat({ max: 200 }), (n, maxSize) => {
        const s = new MemoryStorage();
        s.append(Array.from({ length: n }, (_, i) => e(i + 1, 1)));
        const got = s.entries(1, n + 1, maxSize);
        expect(got.length).toBeGreaterThanOrEqual(1);
        expect(got.map((x) => x.index)).toEqual(Array.from({ length: got.length }, (_, i) => i + 1));
        if (got.length > 1) expect(got.length * 17).toBeLessThanOrEqual(Math.max(maxSize, 17));
      }),
    );
  });
});

describe('config validation', () => {
  const ok = { id: 'n1', electionTicks: 10, heartbeatTicks: 1, rng: () => 0.5 };
  test.each([
    [{ id: '' }, 'cannot use an empty string as id'],
    [{ heartbeatTicks: 0 }, 'heartbeat tick must be a positive integer'],
    [{ electionTicks: 1 }, 'election tick must be greater than heartbeat tick'],
    [{ maxInflightMsgs: 0 }, 'max inflight messages must be a positive integer'],
    [{ maxInflightBytes: 10, maxSizePerMsg: 100 }, 'max inflight bytes must be >= max message size'],
    [{ applied: -1 }, 'applied must be a non-negative integer'],
  ])('%o is refused: %s', (over, message) => {
    expect(() => validateConfig({ ...ok, ...over })).toThrow(expect.objectContaining({ code: 'RAFT_CONFIG', message }));
  });

  test('defaults: PreVote and CheckQuorum on', () => {
    expect(validateConfig(ok)).toMatchObject({ preVote: true, checkQuorum: true, applied: 0 });
  });
});
