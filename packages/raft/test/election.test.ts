import { MemoryStorage, RaftError, type Config } from '../src/index';
import { newNode, raftOf } from './helpers';
import { Cluster, prng } from './sim/cluster';

const ids = ['n1', 'n2', 'n3'];

function roles(c: Cluster): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [id, sn] of c.nodes) out[id] = sn.node.status().raftState;
  return out;
}

describe('leader election (Raft §5.2)', () => {
  test('a campaign with a pre-vote round elects the candidate and bumps the term once', () => {
    const c = new Cluster({ seed: 1, voters: ids });
    c.elect('n1');
    expect(roles(c)).toEqual({ n1: 'leader', n2: 'follower', n3: 'follower' });
    expect(c.node('n1').node.status().term).toBe(2);
    expect(c.node('n2').node.status().lead).toBe('n1');
  });

  test('randomised timeouts: ticking alone elects exactly one leader, and nodes draw different timeouts', () => {
    const c = new Cluster({ seed: 7, voters: ['n1', 'n2', 'n3', 'n4', 'n5'] });
    let ticks = 0;
    while (c.leader() === null && ticks < 100) {
      c.tickAll(1);
      ticks++;
    }
    expect(c.leader()).not.toBeNull();
    expect(Object.values(roles(c)).filter((r) => r === 'leader')).toHaveLength(1);
    expect(ticks).toBeGreaterThanOrEqual(10); // never before the base election timeout
    const timeouts = new Set([...c.nodes.values()].map((s) => raftOf(s.node).randomizedElectionTimeout));
    expect(timeouts.size).toBeGreaterThan(1);
  });

  test('a follower refuses a vote to a candidate whose log is behind (§5.4.1)', () => {
    const c = new Cluster({ seed: 2, voters: ids });
    c.elect('n1');
    c.isolate('n3');
    c.propose('n1', 'x');
    c.stabilize();
    c.heal();
    // n3 lacks 'x': it cannot win even when it starts a real election.
    c.crash('n1');
    for (let i = 0; i < 5; i++) c.node('n3').node.campaign();
    c.stabilize();
    expect(c.node('n3').node.status().raftState).not.toBe('leader');
  });

  test('PreVote: a node partitioned away does not bump its term, and on return does not depose the leader', () => {
    const c = new Cluster({ seed: 3, voters: ids });
    c.elect('n1');
    const term = c.node('n1').node.status().term;
    c.isolate('n3');
    for (let i = 0; i < 100; i++) {
      c.tick('n3');
      c.tick('n1');
      c.tick('n2');
      c.stabilize();
    }
    expect(c.node('n3').node.status().term).toBe(term);
    c.heal();
    c.tickAll(30);
    expect(c.node('n1').node.status().raftState).toBe('leader');
    expect(c.node('n1').node.status().term).toBe(term);
  });

  test('without PreVote the same rejoin disrupts the cluster (why PreVote is on by default)', () => {
    const c = new Cluster({ seed: 3, voters: ids, config: { preVote: false, checkQuorum: false } });
    c.elect('n1');
    const term = c.node('n1').node.status().term;
    c.isolate('n3');
    for (let i = 0; i < 100; i++) {
      c.tick('n3');
      c.stabilize();
    }
    expect(c.node('n3').node.status().term).toBeGreaterThan(term + 2);
    c.heal();
    c.tickAll(30);
    // The returning node's inflated term forces a new election somewhere in the cluster.
    expect(c.node('n1').node.status().term).toBeGreaterThan(term + 2);
  });

  test('CheckQuorum: a leader that cannot hear a quorum steps down within an election timeout', () => {
    const c = new Cluster({ seed: 4, voters: ids });
    c.elect('n1');
    c.isolate('n1');
    let ticks = 0;
    while (c.node('n1').node.status().raftState === 'leader' && ticks < 50) {
      c.tick('n1');
      c.stabilize();
      ticks++;
    }
    expect(c.node('n1').node.status().raftState).toBe('follower');
    expect(ticks).toBe(10); // exactly one election timeout after the last contact
  });

  test('CheckQuorum lease: a follower that hears its leader ignores a vote request', () => {
    const c = new Cluster({ seed: 5, voters: ids, config: { preVote: false } });
    c.elect('n1');
    const term = c.node('n1').node.status().term;
    c.node('n2').node.campaign(); // n2 asks n1 and n3 for votes at term+1
    c.stabilize();
    expect(c.node('n2').node.status().raftState).not.toBe('leader');
    expect(c.node('n3').node.status().vote).not.toBe('n2');
    expect(c.node('n3').node.status().term).toBe(term);
  });

  test('a proposal on a follower fails with RAFT_NOT_LEADER carrying the leader id', () => {
    const c = new Cluster({ seed: 6, voters: ids });
    expect(() => c.node('n2').node.propose(new Uint8Array([1]))).toThrow(RaftError);
    try {
      c.node('n2').node.propose(new Uint8Array([1]));
    } catch (e) {
      expect((e as RaftError).code).toBe('RAFT_NOT_LEADER');
      expect((e as RaftError).leaderId).toBeNull();
    }
    c.elect('n1');
    try {
      c.node('n2').node.propose(new Uint8Array([1]));
      throw new Error('unreachable');
    } catch (e) {
      expect((e as RaftError).code).toBe('RAFT_NOT_LEADER');
      expect((e as RaftError).leaderId).toBe('n1');
    }
  });

  test('a single-voter cluster elects itself and commits alone', () => {
    const c = new Cluster({ seed: 8, voters: ['solo'], keepValues: true });
    c.elect('solo');
    expect(c.node('solo').node.status().raftState).toBe('leader');
    c.propose('solo', 'only');
    c.stabilize();
    expect(c.node('solo').sm.values).toEqual(['only']);
  });
});

describe('electionJitterTicks', () => {
  test('election timeouts fall in [electionTicks, electionTicks + jitter); the default jitter is electionTicks', () => {
    const drawn = (over: Partial<Config>): number[] => {
      const out: number[] = [];
      for (let seed = 1; seed <= 200; seed++) {
        const node = newNode('n1', new MemoryStorage(), { electionTicks: 10, rng: prng(seed), ...over });
        out.push(raftOf(node).randomizedElectionTimeout);
      }
      return out;
    };
    const narrow = drawn({ electionJitterTicks: 5 });
    expect(Math.min(...narrow)).toBe(10);
    expect(Math.max(...narrow)).toBe(14);
    const wide = drawn({});
    expect(Math.min(...wide)).toBe(10);
    expect(Math.max(...wide)).toBe(19);
    expect(() => newNode('n1', new MemoryStorage(), { electionJitterTicks: 0 })).toThrow(RaftError);
  });
});
