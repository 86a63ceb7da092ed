import { MemoryStorage, RaftError, decodeConfChange, type Message } from '../src/index';
import { Cluster } from './sim/cluster';
import { enc, raftOf } from './helpers';

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof RaftError ? e.code : `not a RaftError: ${String(e)}`;
  }
  return undefined;
}

describe('snapshots and compaction', () => {
  test('a follower too far behind receives the snapshot in chunks and converges', () => {
    const c = new Cluster({ seed: 1, voters: ['n1', 'n2', 'n3'], keepValues: true, config: { maxSnapshotChunkBytes: 32 } });
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 20; i++) c.propose('n1', `v${i}`);
    c.stabilize();
    expect(c.compact('n1', 0)).toBe(true);
    expect(raftOf(c.node('n1').node).log.firstIndex()).toBeGreaterThan(raftOf(c.node('n3').node).log.lastIndex() + 1);
    c.heal();
    const before = c.sent.get('MsgSnap') ?? 0;
    c.tickAll(5);
    const chunks = (c.sent.get('MsgSnap') ?? 0) - before;
    const snapBytes = c.node('n1').storage.snapshot().data.length;
    expect(chunks).toBeGreaterThanOrEqual(Math.ceil(snapBytes / 32));
    expect(chunks).toBeGreaterThan(1);
    expect(c.node('n3').sm.values).toEqual(c.node('n1').sm.values);
    expect(c.node('n3').storage.snapshot().meta.index).toBe(c.node('n1').storage.snapshot().meta.index);
    c.propose('n1', 'after');
    c.stabilize();
    expect(c.node('n3').sm.values.at(-1)).toBe('after');
  });

  test('a lost chunk makes the follower ask for a resend; the transfer still completes', () => {
    const c = new Cluster({ seed: 2, voters: ['n1', 'n2', 'n3'], keepValues: true, config: { maxSnapshotChunkBytes: 16 } });
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 10; i++) c.propose('n1', `value-${i}`);
    c.stabilize();
    c.compact('n1', 0);
    c.heal();
    // Drop the second chunk the first time it is sent.
    const n3 = c.node('n3');
    const realStep = n3.node.step.bind(n3.node);
    let seen = 0;
    let rejected = false;
    n3.node.step = (m: Message): void => {
      if (m.type === 'MsgSnap' && ++seen === 2) return;
      realStep(m);
    };
    const n1 = c.node('n1');
    const leaderStep = n1.node.step.bind(n1.node);
    n1.node.step = (m: Message): void => {
      if (m.type === 'MsgSnapResp' && m.reject) rejected = true;
      leaderStep(m);
    };
    c.tickAll(10);
    expect(rejected).toBe(true);
    expect(n3.sm.values).toEqual(c.node('n1').sm.values);
  });

  test('a snapshot recorded as meta only is built when a follower needs one, and only then', () => {
    const c = new Cluster({ seed: 4, voters: ['n1', 'n2', 'n3'], keepValues: true, config: { maxSnapshotChunkBytes: 64 } });
    c.elect('n1');
    c.isolate('n3');
    for (let i = 0; i < 20; i++) c.propose('n1', `v${i}`);
    c.stabilize();
    expect(c.compact('n1', 0, true)).toBe(true);
    expect(c.node('n1').storage.snapshot().data.length).toBe(0);
    c.propose('n1', 'v20');
    c.stabilize();
    expect(c.snapshotsBuilt).toBe(0);
    c.heal();
    c.tickAll(10);
    // Built once, at the leader's applied index then (past the compaction point), and sent.
    expect(c.snapshotsBuilt).toBe(1);
    expect(c.sent.get('MsgSnap') ?? 0).toBeGreaterThan(1);
    expect(c.node('n3').sm.values).toEqual(c.node('n1').sm.values);
    expect(c.node('n3').storage.snapshot().meta.index).toBe(c.node('n1').sm.index);
    c.propose('n1', 'after');
    c.stabilize();
    expect(c.node('n3').sm.values.at(-1)).toBe('after');
  });

  test('a node restarted from a compacted log and snapshot rebuilds its state', () => {
    const c = new Cluster({ seed: 3, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    for (let i = 0; i < 5; i++) c.propose('n1', `v${i}`);
    c.stabilize();
    c.compact('n2', 1);
    c.propose('n1', 'v5');
    c.stabilize();
    c.crash('n2');
    c.restart('n2');
    c.tickAll(3);
    expect(c.node('n2').sm.values).toEqual(['v0', 'v1', 'v2', 'v3', 'v4', 'v5']);
  });
});

describe('ReadIndex (Raft thesis §6.4)', () => {
  test('the leader answers after a heartbeat round with its commit index', () => {
    const c = new Cluster({ seed: 1, voters: ['n1', 'n2', 'n3'] });
    c.elect('n1');
    c.propose('n1', 'w');
    c.stabilize();
    const committed = c.node('n1').node.status().commit;
    const hbBefore = c.sent.get('MsgHeartbeat') ?? 0;
    expect(c.readIndex('n1', 'read-1')).toBe(true);
    c.stabilize();
    expect(c.sent.get('MsgHeartbeat')! - hbBefore).toBe(2);
    expect(c.readResults).toEqual([expect.objectContaining({ id: 'n1', ctx: 'read-1', index: committed })]);
  });

  test('a follower obtains a read index from the leader', () => {
    const c = new Cluster({ seed: 2, voters: ['n1', 'n2', 'n3'] });
    c.elect('n1');
    c.propose('n1', 'w');
    c.stabilize();
    expect(c.readIndex('n3', 'read-f')).toBe(true);
    c.stabilize();
    expect(c.readResults).toEqual([expect.objectContaining({ id: 'n3', ctx: 'read-f', index: c.node('n1').node.status().commit })]);
  });

  test('a leader cut off from the quorum never confirms a read (no stale reads)', () => {
    const c = new Cluster({ seed: 3, voters: ['n1', 'n2', 'n3'] });
    c.elect('n1');
    c.isolate('n1');
    c.readIndex('n1', 'stale?');
    for (let i = 0; i < 30; i++) {
      c.tick('n1');
      c.stabilize();
    }
    expect(c.readResults).toEqual([]);
  });

  test('with no known leader, readIndex throws RAFT_NOT_LEADER instead of hanging', () => {
    const c = new Cluster({ seed: 4, voters: ['n1', 'n2', 'n3'] });
    expect(code(() => c.node('n2').node.readIndex(enc.encode('x')))).toBe('RAFT_NOT_LEADER');
  });
});

describe('proposals a follower hands to the leader (MsgProp)', () => {
  test('the leader appends it in its term and every node applies it once', () => {
    const c = new Cluster({ seed: 5, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    const m = c.node('n3').node.proposeViaLeader(enc.encode('from-n3'));
    expect([m.type, m.from, m.to, m.term]).toEqual(['MsgProp', 'n3', 'n1', 0]);
    c.node('n1').node.step(m);
    c.stabilize();
    for (const id of ['n1', 'n2', 'n3']) expect(c.node(id).sm.values).toEqual(['from-n3']);
    const term = c.node('n1').node.status().term;
    const last = c.node('n3').storage.lastIndex();
    expect(c.node('n3').storage.entries(last, last + 1, Infinity)[0]).toMatchObject({ term, type: 'normal' });
  });

  test('with no leader known, or on the leader itself, it is refused at once (RAFT_PROPOSAL_DROPPED)', () => {
    const c = new Cluster({ seed: 6, voters: ['n1', 'n2', 'n3'] });
    expect(code(() => c.node('n2').node.proposeViaLeader(enc.encode('x')))).toBe('RAFT_PROPOSAL_DROPPED');
    c.elect('n1');
    expect(code(() => c.node('n1').node.proposeViaLeader(enc.encode('x')))).toBe('RAFT_PROPOSAL_DROPPED');
  });

  test('dropped while the leader transfers leadership, from a non-voter, and when it holds a membership change', () => {
    const c = new Cluster({ seed: 7, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    const leader = c.node('n1').node;
    const lastBefore = c.node('n1').storage.lastIndex();
    const prop = (from: string, type: 'normal' | 'confChange' = 'normal'): Message => ({
      type: 'MsgProp', from, to: 'n1', term: 0, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0),
      entries: [{ term: 0, index: 0, type, data: enc.encode(`${from}-${type}`) }],
    });
    leader.step(prop('n9'));
    leader.step(prop('n2', 'confChange'));
    c.stabilize();
    expect(c.node('n1').storage.lastIndex()).toBe(lastBefore);
    c.isolate('n3');
    leader.transferLeadership('n3');
    leader.step(prop('n2'));
    expect(raftOf(leader).log.lastIndex()).toBe(lastBefore);
    c.tickAll(10); // the transfer is abandoned: proposals are taken again
    c.heal();
    leader.step(prop('n2'));
    c.stabilize();
    expect(c.node('n2').sm.values).toEqual(['n2-normal']);
  });

  test('a stale MsgProp that reaches a follower (it lost leadership meanwhile) is dropped', () => {
    const c = new Cluster({ seed: 8, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    const last = c.node('n2').storage.lastIndex();
    c.node('n2').node.step({ type: 'MsgProp', from: 'n3', to: 'n2', term: 0, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, context: new Uint8Array(0), entries: [{ term: 0, index: 0, type: 'normal', data: enc.encode('lost') }] });
    c.stabilize();
    expect(c.node('n2').storage.lastIndex()).toBe(last);
    expect(c.node('n1').sm.values).toEqual([]);
  });
});

describe('leadership transfer', () => {
  test('the target catches up, then campaigns at once; proposals are dropped meanwhile', () => {
    const c = new Cluster({ seed: 1, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'x');
    c.stabilize();
    c.heal();
    const term = c.node('n1').node.status().term;
    c.node('n1').node.transferLeadership('n3');
    expect(code(() => c.node('n1').node.propose(enc.encode('y')))).toBe('RAFT_PROPOSAL_DROPPED');
    c.stabilize();
    expect(c.node('n3').node.status().raftState).toBe('leader');
    expect(c.node('n3').node.status().term).toBe(term + 1);
    expect(c.node('n3').sm.values).toEqual(['x']);
  });

  test('a transfer that cannot finish is abandoned after an election timeout', () => {
    const c = new Cluster({ seed: 2, voters: ['n1', 'n2', 'n3'] });
    c.elect('n1');
    c.crash('n3');
    c.node('n1').node.transferLeadership('n3');
    expect(c.node('n1').node.status().leadTransferee).toBe('n3');
    c.tickAll(10);
    expect(c.node('n1').node.status().leadTransferee).toBeNull();
    expect(c.node('n1').node.status().raftState).toBe('leader');
    expect(code(() => c.node('n1').node.propose(enc.encode('y')))).toBeUndefined();
  });

  test('a follower forwards the request to the leader', () => {
    const c = new Cluster({ seed: 3, voters: ['n1', 'n2', 'n3'] });
    c.elect('n1');
    c.node('n2').node.transferLeadership('n2');
    c.stabilize();
    expect(c.node('n2').node.status().raftState).toBe('leader');
  });
});

describe('membership changes (single-server, learners first)', () => {
  test('add a learner that joins with empty storage, let it catch up, promote it, keep the context', () => {
    const c = new Cluster({ seed: 1, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    for (let i = 0; i < 5; i++) c.propose('n1', `v${i}`);
    c.stabilize();
    c.addNode('n4', new MemoryStorage());
    const ctx = enc.encode('{"raft":"127.0.0.1:8231"}');
    c.node('n1').node.proposeConfChange({ type: 'addLearner', nodeId: 'n4', context: ctx });
    c.stabilize();
    c.tickAll(3);
    const st = c.node('n1').node.status();
    expect(st.confState).toEqual({ voters: ['n1', 'n2', 'n3'], learners: ['n4'] });
    expect(st.progress!.n4).toMatchObject({ isLearner: true, matchIndex: st.lastIndex });
    expect(c.node('n4').sm.values).toEqual(c.node('n1').sm.values);
    // The committed entry carries the context back to every node.
    const l = raftOf(c.node('n4').node).log;
    const ccs = l.slice(1, st.lastIndex + 1, 1e9).filter((e) => e.type === 'confChange').map((e) => decodeConfChange(e.data));
    expect(ccs.at(-1)).toEqual({ type: 'addLearner', nodeId: 'n4', context: ctx });
    // A learner never campaigns.
    c.node('n4').node.campaign();
    c.stabilize();
    expect(c.node('n4').node.status().raftState).toBe('follower');
    c.node('n1').node.proposeConfChange({ type: 'addVoter', nodeId: 'n4', context: ctx });
    // In force on the leader at once (appended), but not yet applied.
    expect(c.node('n1').node.status().confState.voters).toContain('n4');
    expect(c.node('n1').node.appliedConfState().voters).not.toContain('n4');
    c.stabilize();
    expect(c.node('n1').node.appliedConfState()).toEqual({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
    expect(c.node('n4').node.status().confState.voters).toContain('n4');
    expect(c.node('n4').confState).toEqual({ voters: ['n1', 'n2', 'n3', 'n4'], learners: [] });
  });

  test('a learner does not count toward the commit quorum', () => {
    const c = new Cluster({ seed: 2, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    c.addNode('n4');
    c.node('n1').node.proposeConfChange({ type: 'addLearner', nodeId: 'n4', context: new Uint8Array() });
    c.stabilize();
    c.crash('n2');
    c.crash('n3');
    c.propose('n1', 'needs-a-voter');
    c.tickAll(3);
    expect(c.node('n1').sm.values).not.toContain('needs-a-voter');
  });

  test('only one change may be pending at a time', () => {
    const c = new Cluster({ seed: 3, voters: ['n1', 'n2', 'n3'] });
    c.elect('n1');
    c.addNode('n4');
    c.addNode('n5');
    c.node('n1').node.proposeConfChange({ type: 'addLearner', nodeId: 'n4', context: new Uint8Array() });
    expect(code(() => c.node('n1').node.proposeConfChange({ type: 'addLearner', nodeId: 'n5', context: new Uint8Array() }))).toBe('RAFT_CONF_CHANGE_PENDING');
    c.stabilize();
    expect(code(() => c.node('n1').node.proposeConfChange({ type: 'addLearner', nodeId: 'n5', context: new Uint8Array() }))).toBeUndefined();
  });

  test('invalid changes are refused with RAFT_INVALID_CONF_CHANGE', () => {
    const c = new Cluster({ seed: 4, voters: ['n1'] });
    c.elect('n1');
    const n1 = c.node('n1').node;
    expect(code(() => n1.proposeConfChange({ type: 'addVoter', nodeId: 'n1', context: new Uint8Array() }))).toBe('RAFT_INVALID_CONF_CHANGE');
    expect(code(() => n1.proposeConfChange({ type: 'remove', nodeId: 'n9', context: new Uint8Array() }))).toBe('RAFT_INVALID_CONF_CHANGE');
    expect(code(() => n1.proposeConfChange({ type: 'remove', nodeId: 'n1', context: new Uint8Array() }))).toBe('RAFT_INVALID_CONF_CHANGE');
    expect(code(() => c.node('n1').node.proposeConfChange({ type: 'addLearner', nodeId: 'n1', context: new Uint8Array() }))).toBe('RAFT_INVALID_CONF_CHANGE');
  });

  test('remove a follower: the rest keep committing without it', () => {
    const c = new Cluster({ seed: 5, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    c.node('n1').node.proposeConfChange({ type: 'remove', nodeId: 'n3', context: new Uint8Array() });
    c.stabilize();
    c.crash('n3');
    c.propose('n1', 'two-voters');
    c.stabilize();
    expect(c.node('n2').sm.values).toEqual(['two-voters']);
    expect(c.node('n1').node.status().confState.voters).toEqual(['n1', 'n2']);
  });

  test('remove the leader itself: it steps down once the removal commits and another voter leads', () => {
    const c = new Cluster({ seed: 6, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    c.propose('n1', 'before');
    c.stabilize();
    c.node('n1').node.proposeConfChange({ type: 'remove', nodeId: 'n1', context: new Uint8Array() });
    c.stabilize();
    expect(c.node('n1').node.status().raftState).toBe('follower');
    c.tickAll(25);
    const lead = c.leader();
    expect(lead).not.toBeNull();
    expect(['n2', 'n3']).toContain(lead!.id);
    c.propose(lead!.id, 'after');
    c.stabilize();
    expect(c.node('n2').sm.values).toEqual(['before', 'after']);
    expect(c.node('n3').sm.values).toEqual(['before', 'after']);
  });
});
