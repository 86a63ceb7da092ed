import { MemoryStorage, type Message } from '../src/index';
import { Cluster } from './sim/cluster';
import { enc, msg, newNode, persist, raftOf } from './helpers';

describe('log replication (Raft §5.3)', () => {
  test('proposals commit and apply on every node in order', () => {
    const c = new Cluster({ seed: 1, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    for (const v of ['a', 'b', 'c']) c.propose('n1', v);
    c.stabilize();
    for (const id of ['n1', 'n2', 'n3']) expect(c.node(id).sm.values).toEqual(['a', 'b', 'c']);
  });

  test('propose returns the index and term of the appended entry', () => {
    const c = new Cluster({ seed: 1, voters: ['n1', 'n2', 'n3'] });
    c.elect('n1');
    const s = c.node('n1').node.status();
    const r = c.node('n1').node.propose(enc.encode('x'));
    expect(r).toEqual({ index: s.lastIndex + 1, term: s.term });
  });

  test('many proposals between two Readys travel in one MsgApp per follower (batching)', () => {
    const c = new Cluster({ seed: 1, voters: ['n1', 'n2', 'n3'] });
    c.elect('n1');
    const leader = c.node('n1');
    for (let i = 0; i < 100; i++) leader.node.propose(enc.encode(`v${i}`));
    const rd = persist(leader.node, leader.storage);
    const apps = rd.messages.filter((m) => m.type === 'MsgApp');
    expect(apps.map((m) => m.to).sort()).toEqual(['n2', 'n3']);
    for (const m of apps) expect(m.entries).toHaveLength(100);
  });

  test('in-flight MsgApp per follower are bounded by count and bytes', () => {
    for (const over of [{ maxInflightMsgs: 3 }, { maxInflightMsgs: 100, maxInflightBytes: 40, maxSizePerMsg: 10 }]) {
      const c = new Cluster({ seed: 1, voters: ['n1', 'n2'], config: { maxSizePerMsg: 10, ...over } });
      c.elect('n1');
      const leader = c.node('n1');
      const sent: Message[] = [];
      for (let i = 0; i < 30; i++) {
        leader.node.propose(enc.encode(`value-${i}`)); // 7-8 bytes: one entry per message
        sent.push(...persist(leader.node, leader.storage).messages.filter((m) => m.type === 'MsgApp' && m.entries.length > 0));
      }
      // Nothing was acknowledged (messages not delivered), so the window caps what went out.
      // By bytes: the window closes once 40 bytes are out, i.e. after the sixth 7-byte entry.
      expect(sent.length).toBe(over.maxInflightMsgs === 3 ? 3 : 6);
    }
  });

  test('fast back-off skips a whole conflicting term per round trip', () => {
    // The follower holds 50 entries of a term that never committed; the leader's log diverges right
    // after the bootstrap entries. One rejection must be enough to find the match point.
    const fs = MemoryStorage.bootstrap(['n1', 'n2']);
    fs.append(Array.from({ length: 50 }, (_, i) => ({ term: 2, index: 3 + i, type: 'normal' as const, data: enc.encode('stale') })));
    fs.setHardState({ term: 2, vote: null, commit: 2 });
    const ls = MemoryStorage.bootstrap(['n1', 'n2']);
    ls.append([{ term: 3, index: 3, type: 'normal', data: enc.encode('fresh') }]);
    ls.setHardState({ term: 3, vote: 'n1', commit: 2 });
    const leader = newNode('n1', ls);
    const follower = newNode('n2', fs);
    leader.campaign();
    // n2's log is longer but of an older last term, so it grants its vote.
    let rejections = 0;
    let inbox: Message[] = persist(leader, ls).messages;
    const drain = (): void => {
      for (let round = 0; round < 20; round++) {
        const out: Message[] = [];
        if (leader.hasReady()) out.push(...persist(leader, ls).messages);
        if (follower.hasReady()) out.push(...persist(follower, fs).messages);
        out.push(...inbox);
        inbox = [];
        if (out.length === 0) return;
        for (const m of out) {
          if (m.type === 'MsgAppResp' && m.reject) rejections++;
          (m.to === 'n1' ? leader : follower).step(m);
        }
      }
    };
    drain();
    expect(leader.status().raftState).toBe('leader');
    expect(rejections).toBeLessThanOrEqual(1);
    expect(raftOf(follower).log.term(3)).toBe(3);
    expect(raftOf(follower).log.lastIndex()).toBe(raftOf(leader).log.lastIndex());
    expect(follower.status().commit).toBe(leader.status().commit);
  });
});

describe('the Raft paper scenarios, in our words', () => {
  test('figure 7: a new leader brings followers with missing and extra entries into agreement', () => {
    // Logs by term, after the bootstrap entries 1..3 (term 1). The leader has the longest
    // last term; the others miss entries or hold extra ones from terms that never committed.
    const tails: Record<string, number[]> = {
      n1: [1, 4, 4, 5, 5, 6, 6, 6], // leader-to-be (figure 7 top row, shifted)
      n2: [1, 4, 4, 5, 5, 6, 6], // missing the last entry (a)
      n3: [1, 4], // missing many (b)
      n4: [1, 4, 4, 5, 5, 6, 6, 6, 6], // an extra uncommitted entry (c)
      n5: [1, 4, 4, 4, 4], // extra entries of term 4 (e)
      n6: [1, 2, 2, 2, 3, 3, 3, 3], // extra entries from terms 2-3 (f)
    };
    const ids = Object.keys(tails);
    const c = new Cluster({ seed: 11, voters: ids, keepValues: true });
    for (const id of ids) {
      const st = c.node(id).storage;
      const n = ids.length;
      st.append(tails[id]!.slice(1).map((t, i) => ({ term: t, index: n + 1 + i, type: 'normal' as const, data: enc.encode(`${t}@${n + 1 + i}`) })));
      st.setHardState({ term: 6, vote: null, commit: n });
      c.restart(id);
    }
    // n4 has a longer log of the same last term; n1 still wins with votes from n2, n3, n5, n6.
    c.elect('n1');
    expect(c.node('n1').node.status().raftState).toBe('leader');
    c.propose('n1', 'after');
    c.stabilize();
    c.tickAll(3);
    const want = raftOf(c.node('n1').node).log;
    for (const id of ids) {
      const l = raftOf(c.node(id).node).log;
      expect(l.lastIndex()).toBe(want.lastIndex());
      for (let i = 1; i <= want.lastIndex(); i++) expect(l.term(i)).toBe(want.term(i));
      expect(c.node(id).sm.values.at(-1)).toBe('after');
    }
  });

  test('figure 8: a leader does not commit an entry of an earlier term by counting replicas', () => {
    // n1 holds index 4 from its own old term 2; it becomes leader of term 3.
    const stores = { n1: MemoryStorage.bootstrap(['n1', 'n2', 'n3']), n2: MemoryStorage.bootstrap(['n1', 'n2', 'n3']) };
    stores.n1.append([{ term: 2, index: 4, type: 'normal', data: enc.encode('old') }]);
    stores.n1.setHardState({ term: 2, vote: 'n1', commit: 3 });
    const n1 = newNode('n1', stores.n1, { preVote: false });
    n1.campaign();
    persist(n1, stores.n1);
    n1.step(msg({ type: 'MsgVoteResp', from: 'n2', to: 'n1', term: 3 }));
    expect(n1.status().raftState).toBe('leader');
    persist(n1, stores.n1); // the empty entry (index 5, term 3) is now durable on n1
    // n2 acknowledges index 4 only: the old-term entry is on a majority, yet it must not commit.
    n1.step(msg({ type: 'MsgAppResp', from: 'n2', to: 'n1', term: 3, index: 4 }));
    expect(n1.status().commit).toBe(3);
    // Once the leader's own entry is on a majority, both commit together.
    n1.step(msg({ type: 'MsgAppResp', from: 'n2', to: 'n1', term: 3, index: 5 }));
    expect(n1.status().commit).toBe(5);
  });
});

describe('persistence contract', () => {
  test('a vote travels in the same Ready as the hard state that records it, flagged mustSync', () => {
    const s = MemoryStorage.bootstrap(['n1', 'n2', 'n3']);
    const n2 = newNode('n2', s, { preVote: false });
    persist(n2, s);
    n2.step(msg({ type: 'MsgVote', from: 'n1', to: 'n2', term: 2, index: 3, logTerm: 1 }));
    const rd = n2.ready();
    expect(rd.hardState).toEqual({ term: 2, vote: 'n1', commit: 3 });
    expect(rd.mustSync).toBe(true);
    expect(rd.messages).toEqual([expect.objectContaining({ type: 'MsgVoteResp', to: 'n1', reject: false })]);
  });

  test('a node restarted from its persisted state keeps its vote and refuses a second candidate', () => {
    const s = MemoryStorage.bootstrap(['n1', 'n2', 'n3']);
    const n2 = newNode('n2', s, { preVote: false });
    n2.step(msg({ type: 'MsgVote', from: 'n1', to: 'n2', term: 2, index: 3, logTerm: 1 }));
    persist(n2, s);
    const again = newNode('n2', s, { preVote: false });
    expect(again.status()).toMatchObject({ term: 2, vote: 'n1' });
    again.step(msg({ type: 'MsgVote', from: 'n3', to: 'n2', term: 2, index: 3, logTerm: 1 }));
    expect(again.ready().messages).toEqual([expect.objectContaining({ type: 'MsgVoteResp', to: 'n3', reject: true })]);
  });

  test('a crash that loses an unpersisted Ready and a restart leave the cluster consistent', () => {
    const c = new Cluster({ seed: 21, voters: ['n1', 'n2', 'n3'], keepValues: true });
    c.elect('n1');
    c.propose('n1', 'a');
    c.stabilize();
    c.propose('n1', 'b');
    c.handleReady('n1'); // leader persisted and sent 'b'
    c.deliver(); // followers stepped it but never persisted it
    c.crash('n2');
    c.crash('n3');
    c.restart('n2');
    c.restart('n3');
    c.tickAll(40);
    c.propose(c.leader()!.id, 'c');
    c.stabilize();
    c.tickAll(3);
    for (const id of ['n1', 'n2', 'n3']) {
      expect(c.node(id).sm.values.filter((v) => v !== 'b')).toEqual(['a', 'c']);
    }
    // Restarted nodes re-applied from their own logs, so all three states agree.
    expect(new Set(['n1', 'n2', 'n3'].map((id) => c.node(id).sm.hash)).size).toBe(1);
  });
});
