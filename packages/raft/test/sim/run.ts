// One seeded simulation run: a chaotic phase (faulty network, partitions, crashes, membership
// changes, transfers, compaction, reads) with safety checks after every round, then a healed
// phase that must elect a leader and commit a new proposal within a bounded number of ticks.
import { Cluster, SafetyViolation } from './cluster';
import type { Config, NodeId } from '../../src/index';

export interface SimOptions {
  seed: number;
  nodes: 3 | 5;
  rounds?: number;
  config?: Partial<Config>;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  error?: string;
  kind?: 'safety' | 'liveness' | 'crash';
  stats: { sent?: Record<string, number>; rounds: number; leaders: number; committed: number; acked: number; reads: number; snapshots: number; confChanges: number; crashes: number };
}

const LIVENESS_TICKS = 400;

/** The command that replays one seed exactly. */
export function replayCommand(seed: number, nodes: number, extra = ''): string {
  return `SEED=${seed} NODES=${nodes}${extra} pnpm exec jest --selectProjects raft -t sim`;
}

export function runSim(opts: SimOptions): SimResult {
  const n = opts.nodes;
  const voters = Array.from({ length: n }, (_, i) => `n${i + 1}`);
  const c = new Cluster({ seed: opts.seed, voters, config: { electionTicks: 10, heartbeatTicks: 2, maxSizePerMsg: 256, maxInflightMsgs: 4, maxSnapshotChunkBytes: 16, maxSnapshotChunksInflight: 2, ...opts.config } });
  const r = c.rng;
  const rounds = opts.rounds ?? 250;
  const stats = { rounds: 0, leaders: 0, committed: 0, acked: 0, reads: 0, snapshots: 0, confChanges: 0, crashes: 0 };
  let nextId = n + 1;
  let readSeq = 0;
  const removed = new Set<NodeId>();
  const pick = <T>(xs: T[]): T | undefined => (xs.length === 0 ? undefined : xs[Math.floor(r() * xs.length)]);
  const alive = (): NodeId[] => [...c.nodes.values()].filter((s) => s.alive && !removed.has(s.id)).map((s) => s.id);
  // Vary the network per run.
  c.net = { drop: r() * 0.15, duplicate: r() * 0.05, maxDelay: Math.floor(r() * 4) };
  const readyProb = 0.5 + r() * 0.5;

  try {
    for (let round = 0; round < rounds; round++) {
      stats.rounds++;
      const ids = [...c.nodes.keys()];
      // Time passes unevenly.
      for (const id of ids) if (r() < 0.7) c.tick(id);
      // Some nodes lag in handling their Ready: a crash then loses it.
      for (const id of ids) if (r() < readyProb) c.handleReady(id);
      c.deliver();
      c.round++;

      const x = r();
      const lead = c.leader();
      if (x < 0.3) {
        if (lead !== null) for (let k = Math.floor(r() * 4); k >= 0; k--) c.propose(lead.id);
        // Followers hand proposals to their leader too (MsgProp).
        const f = pick(alive().filter((id) => id !== lead?.id));
        if (f !== undefined && r() < 0.5) c.proposeViaLeader(f);
      } else if (x < 0.34) {
        // Partition: symmetric or one-way, or heal.
        const y = r();
        if (y < 0.4) c.heal();
        else if (y < 0.7) {
          const v = pick(ids);
          if (v !== undefined) c.isolate(v);
        } else {
          const a = pick(ids);
          const b = pick(ids);
          if (a !== undefined && b !== undefined && a !== b) c.blocked.add(`${a}>${b}`);
        }
      } else if (x < 0.36) {
        const v = pick(alive());
        const down = [...c.nodes.values()].filter((s) => !s.alive).length;
        if (v !== undefined && down < Math.floor((n - 1) / 2) + 1) {
          c.crash(v);
          stats.crashes++;
        }
      } else if (x < 0.39) {
        const d = pick([...c.nodes.values()].filter((s) => !s.alive && !removed.has(s.id)).map((s) => s.id));
        if (d !== undefined) c.restart(d);
      } else if (x < 0.41) {
        const v = pick(alive());
        if (v !== undefined && c.compact(v, Math.floor(r() * 3))) stats.snapshots++;
      } else if (x < 0.42 && lead !== null) {
        const to = pick(lead.node.status().confState.voters);
        if (to !== undefined) lead.node.transferLeadership(to);
      } else if (x < 0.45) {
        const v = pick(alive());
        if (v !== undefined) {
          if (c.readIndex(v, `r${readSeq++}`)) stats.reads++;
        }
      } else if (x < 0.47 && lead !== null) {
        // Membership: add a learner, promote it, or remove a member (possibly the leader).
        const cs = lead.node.status().confState;
        const y = r();
        try {
          if (cs.learners.length > 0 && y < 0.5) {
            const l = cs.learners[0]!;
            lead.node.proposeConfChange({ type: 'addVoter', nodeId: l, context: new Uint8Array([1]) });
            stats.confChanges++;
          } else if (cs.learners.length === 0 && cs.voters.length <= n && y < 0.7) {
            const id = `n${nextId++}`;
            c.addNode(id);
            lead.node.proposeConfChange({ type: 'addLearner', nodeId: id, context: new Uint8Array([2]) });
            stats.confChanges++;
          } else if (cs.voters.length >= n) {
            const v = pick(cs.voters)!;
            lead.node.proposeConfChange({ type: 'remove', nodeId: v, context: new Uint8Array(0) });
            stats.confChanges++;
          }
        } catch {
          // Refused (pending change, not committed in term yet): fine.
        }
      }
      c.check();
      if (round % 25 === 0) c.checkLogMatching();
    }

    // ---- heal and check liveness
    c.heal();
    c.net = { drop: 0, duplicate: 0, maxDelay: 0 };
    for (const s of c.nodes.values()) if (!s.alive) c.restart(s.id);
    let committedAt = -1;
    let proposal: string | null = null;
    let proposer: NodeId | null = null;
    for (let t = 0; t < LIVENESS_TICKS; t++) {
      for (const id of c.nodes.keys()) c.tick(id);
      for (let k = 0; k < 3; k++) {
        for (const id of c.nodes.keys()) c.handleReady(id);
        c.deliver();
        c.round++;
        c.check();
      }
      const lead = c.leader();
      if (lead !== null && proposal === null) {
        proposal = c.propose(lead.id);
        proposer = proposal === null ? null : lead.id;
      }
      if (proposal !== null && !c.pendingProposals.has(proposal)) {
        // Applied by its proposer: acknowledged (or superseded; then propose again).
        if ([...c.acked.values()].some((k) => k.endsWith(`|${proposal}`))) {
          committedAt = t;
          break;
        }
        proposal = null;
      } else if (proposal !== null && proposer !== null && c.node(proposer).node.status().raftState !== 'leader') {
        proposal = null;
      }
    }
    c.checkLogMatching();
    if (committedAt < 0) {
      return { seed: opts.seed, ok: false, kind: 'liveness', error: `no proposal committed within ${LIVENESS_TICKS} ticks after healing`, stats };
    }
    // Every member that is still in the configuration catches up to every acknowledged write.
    for (let k = 0; k < 60; k++) {
      for (const id of c.nodes.keys()) c.tick(id);
      c.stabilize();
    }
    const lead = c.leader();
    const members = lead === null ? [] : [...lead.node.status().confState.voters, ...lead.node.status().confState.learners];
    for (const id of members) {
      const sn = c.node(id);
      if (sn.sm.index < c.maxAcked) {
        return { seed: opts.seed, ok: false, kind: 'liveness', error: `${id} applied ${sn.sm.index} < acknowledged ${c.maxAcked}`, stats };
      }
    }
    stats.committed = c.maxCommitted;
    stats.acked = c.acked.size;
    (stats as SimResult['stats']).sent = Object.fromEntries(c.sent);
    return { seed: opts.seed, ok: true, stats };
  } catch (e) {
    const kind = e instanceof SafetyViolation ? 'safety' : 'crash';
    return { seed: opts.seed, ok: false, kind, error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e), stats };
  }
}
