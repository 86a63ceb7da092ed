// A deterministic in-process cluster: nodes, a seeded network that drops, duplicates, delays and
// reorders, partitions, crashes that lose everything not yet persisted, and safety checks after
// every step. Used by the unit tests (with a perfect network) and by the seeded simulator runs.
import {
  RawNode,
  MemoryStorage,
  decodeConfChange,
  type Config,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type Ready,
} from '../../src/index';
// The one seeded PRNG of the repository's tests (mulberry32); re-exported for the raft tests.
import { prng } from '../../../cluster-tests/src/prng';
import { raftOf, type RaftInternals } from '../internals';

export { prng };

export class SafetyViolation extends Error {
  override readonly name = 'SafetyViolation';
}

function fail(msg: string): never {
  throw new SafetyViolation(msg);
}

const dec = new TextDecoder();
const enc = new TextEncoder();

function bytesKey(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function entryKey(e: Entry): string {
  return `${e.term}|${e.type}|${bytesKey(e.data)}`;
}

/** The state machine of a simulated node: a chained hash of every applied entry. */
export interface SmState {
  index: number;
  hash: number;
  /** Data of applied normal entries, in order (kept for assertions in unit tests). */
  values: string[];
}

function hashStep(h: number, e: Entry): number {
  let x = (h ^ Math.imul(e.index, 0x9e3779b1) ^ Math.imul(e.term, 0x85ebca6b)) >>> 0;
  for (let i = 0; i < e.data.length; i++) x = Math.imul(x ^ e.data[i]!, 0x01000193) >>> 0;
  return x;
}

export interface SimNode {
  id: NodeId;
  storage: MemoryStorage; // the "disk": written only while handling a Ready
  node: RawNode;
  alive: boolean;
  sm: SmState;
  confState: ConfState; // as of the applied index
  rngSeed: number;
}

export interface NetOptions {
  drop: number;
  duplicate: number;
  maxDelay: number; // in delivery rounds; > 0 reorders
}

export interface ClusterOptions {
  seed: number;
  voters: NodeId[];
  config?: Partial<Config>;
  net?: Partial<NetOptions>;
  /** Record every applied normal entry's data in SmState.values (unit tests). */
  keepValues?: boolean;
}

interface InFlight {
  at: number;
  seq: number;
  m: Message;
}

export class Cluster {
  readonly rng: () => number;
  readonly nodes: Map<NodeId, SimNode> = new Map();
  net: NetOptions;
  readonly blocked: Set<string> = new Set(); // "from>to"
  private queue: InFlight[] = [];
  private seq = 0;
  round = 0;
  private readonly baseConfig: Partial<Config>;
  private readonly keepValues: boolean;

  // ---- global knowledge for the safety checks
  private readonly entryAt: Map<string, string> = new Map(); // "index/term" -> entry key (log matching)
  readonly appliedAt: Map<number, string> = new Map(); // index -> entry key (state machine safety)
  private readonly hashAt: Map<number, number> = new Map(); // index -> state hash after applying it
  private readonly commitTerm: Map<number, number> = new Map(); // index -> lowest term at which a node saw it committed
  maxCommitted = 0;
  private readonly leaderOf: Map<number, NodeId> = new Map(); // term -> leader
  private readonly verifiedLeaders: Set<string> = new Set();
  /** Proposals whose proposer applied them (a client got a success answer). */
  readonly acked: Map<number, string> = new Map(); // index -> entry key
  maxAcked = 0;
  readonly pendingProposals: Map<string, { index: number; term: number; data: string; by: NodeId }> = new Map();
  /** Proposals a follower handed to its leader (MsgProp): data -> that follower (acknowledged when it applies them). */
  readonly handedProposals: Map<string, NodeId> = new Map();
  readonly readResults: { id: NodeId; ctx: string; index: number; minIndex: number }[] = [];
  private readonly pendingReads: Map<string, number> = new Map(); // ctx -> maxAcked at issue
  private proposalSeq = 0;

  constructor(opts: ClusterOptions) {
    this.rng = prng(opts.seed);
    this.net = { drop: 0, duplicate: 0, maxDelay: 0, ...opts.net };
    this.baseConfig = opts.config ?? {};
    this.keepValues = opts.keepValues ?? false;
    for (const id of opts.voters) this.addNode(id, MemoryStorage.bootstrap(opts.voters));
  }

  private makeConfig(id: NodeId, seed: number, applied: number): Config {
    return { electionTicks: 10, heartbeatTicks: 2, ...this.baseConfig, id, rng: prng(seed), applied };
  }

  /** Starts a node on `storage` (an empty MemoryStorage for a joining node). */
  addNode(id: NodeId, storage: MemoryStorage = new MemoryStorage()): SimNode {
    const rngSeed = Math.floor(this.rng() * 2 ** 31);
    const snap = storage.snapshot();
    const sn: SimNode = {
      id,
      storage,
      node: new RawNode(this.makeConfig(id, rngSeed, snap.meta.index), storage),
      alive: true,
      sm: { index: 0, hash: 0, values: [] },
      confState: snap.meta.confState,
      rngSeed,
    };
    this.restoreSm(sn, snap.data, snap.meta.index);
    this.nodes.set(id, sn);
    return sn;
  }

  private restoreSm(sn: SimNode, data: Uint8Array, index: number): void {
    if (index === 0) {
      sn.sm = { index: 0, hash: 0, values: [] };
      return;
    }
    const o = JSON.parse(dec.decode(data)) as SmState;
    if (o.index !== index) fail(`${sn.id}: snapshot data is for ${o.index}, meta says ${index}`);
    sn.sm = { index: o.index, hash: o.hash, values: [...o.values] };
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Crash: everything not persisted (unstable entries, unsent messages, the state machine) is lost. */
  crash(id: NodeId): void {
    const sn = this.node(id);
    sn.alive = false;
  }

  /** Restart from what the "disk" holds. */
  restart(id: NodeId): void {
    const sn = this.node(id);
    const snap = sn.storage.snapshot();
    sn.rngSeed = Math.floor(this.rng() * 2 ** 31);
    sn.node = new RawNode(this.makeConfig(id, sn.rngSeed, snap.meta.index), sn.storage);
    sn.alive = true;
    sn.confState = snap.meta.confState;
    this.restoreSm(sn, snap.data, snap.meta.index);
    // In-flight messages addressed to the crashed process were lost with it.
    this.queue = this.queue.filter((f) => f.m.to !== id);
  }

  // ---------------------------------------------------------------- network

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.blocked.add(`${id}>${other}`);
      this.blocked.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  /** Messages sent, by type (coverage statistics). */
  readonly sent: Map<string, number> = new Map();
  /** Snapshots built on demand (see {@link compact}'s `metaOnly`). */
  snapshotsBuilt = 0;

  private enqueue(m: Message): void {
    this.sent.set(m.type, (this.sent.get(m.type) ?? 0) + 1);
    if (this.blocked.has(`${m.from}>${m.to}`)) return;
    if (this.net.drop > 0 && this.rng() < this.net.drop) return;
    const copies = this.net.duplicate > 0 && this.rng() < this.net.duplicate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.net.maxDelay > 0 ? Math.floor(this.rng() * (this.net.maxDelay + 1)) : 0;
      this.queue.push({ at: this.round + delay, seq: this.seq++, m });
    }
  }

  /** Delivers every message due this round, in a seeded random order. Returns how many. */
  deliver(): number {
    const due: InFlight[] = [];
    const rest: InFlight[] = [];
    for (const f of this.queue) (f.at <= this.round ? due : rest).push(f);
    this.queue = rest;
    if (this.net.maxDelay > 0) {
      for (let i = due.length - 1; i > 0; i--) {
        const j = Math.floor(this.rng() * (i + 1));
        [due[i], due[j]] = [due[j]!, due[i]!];
      }
    }
    for (const f of due) {
      const sn = this.nodes.get(f.m.to);
      if (sn === undefined || !sn.alive) continue;
      if (this.blocked.has(`${f.m.from}>${f.m.to}`)) continue;
      sn.node.step(f.m);
    }
    return due.length;
  }

  pendingMessages(): number {
    return this.queue.length;
  }

  // ---------------------------------------------------------------- ready handling

  /** Handles one Ready of `id` the way a correct driver does: persist, send, apply, advance. */
  handleReady(id: NodeId): boolean {
    const sn = this.node(id);
    // A follower needed a snapshot that was recorded as meta only: build one from the state now.
    if (sn.alive && sn.storage.takeSnapshotRequest()) {
      this.snapshotsBuilt++;
      sn.storage.setSnapshotToSend(sn.sm.index, sn.confState, enc.encode(JSON.stringify(sn.sm)));
    }
    if (!sn.alive || !sn.node.hasReady()) return false;
    const rd: Ready = sn.node.ready();
    // 1. persist
    if (rd.snapshot !== undefined) {
      sn.storage.applySnapshot(rd.snapshot);
    }
    sn.storage.append(rd.entries);
    if (rd.hardState !== undefined) sn.storage.setHardState(rd.hardState);
    for (const e of rd.entries) {
      const k = `${e.index}/${e.term}`;
      const v = entryKey(e);
      const prev = this.entryAt.get(k);
      if (prev === undefined) this.entryAt.set(k, v);
      else if (prev !== v) fail(`log matching: two different entries at index ${e.index} term ${e.term}`);
    }
    if (rd.hardState !== undefined) this.noteCommit(rd.hardState.commit, rd.hardState.term);
    // 2. send
    for (const m of rd.messages) this.enqueue(m);
    // 3. apply
    if (rd.snapshot !== undefined) {
      this.restoreSm(sn, rd.snapshot.data, rd.snapshot.meta.index);
      sn.confState = rd.snapshot.meta.confState;
      const h = this.hashAt.get(rd.snapshot.meta.index);
      if (h !== undefined && h !== sn.sm.hash) fail(`state machine safety: snapshot ${rd.snapshot.meta.index} state differs`);
    }
    for (const e of rd.committedEntries) this.apply(sn, e);
    for (const rs of rd.readStates) {
      const ctx = dec.decode(rs.context);
      const minIndex = this.pendingReads.get(ctx);
      if (minIndex === undefined) continue;
      this.pendingReads.delete(ctx);
      if (rs.index < minIndex) fail(`linearizable read: ${id} got read index ${rs.index} < acknowledged ${minIndex}`);
      this.readResults.push({ id, ctx, index: rs.index, minIndex });
    }
    sn.node.advance();
    return true;
  }

  private noteCommit(commit: number, term: number): void {
    if (commit > this.maxCommitted) {
      for (let i = this.maxCommitted + 1; i <= commit; i++) if (!this.commitTerm.has(i)) this.commitTerm.set(i, term);
      this.maxCommitted = commit;
    }
  }

  private apply(sn: SimNode, e: Entry): void {
    if (e.index !== sn.sm.index + 1) fail(`${sn.id} applied ${e.index} after ${sn.sm.index}`);
    const k = entryKey(e);
    const prev = this.appliedAt.get(e.index);
    if (prev === undefined) this.appliedAt.set(e.index, k);
    else if (prev !== k) fail(`state machine safety: ${sn.id} applied a different entry at index ${e.index}`);
    if (e.type === 'confChange') sn.confState = sn.node.applyConfChange(decodeConfChange(e.data));
    else if (e.data.length > 0 && this.keepValues) sn.sm.values.push(dec.decode(e.data));
    sn.sm.hash = hashStep(sn.sm.hash, e);
    sn.sm.index = e.index;
    const h = this.hashAt.get(e.index);
    if (h === undefined) this.hashAt.set(e.index, sn.sm.hash);
    else if (h !== sn.sm.hash) fail(`state machine safety: ${sn.id} state differs after index ${e.index}`);
    if (e.type === 'normal' && e.data.length > 0) {
      const key = dec.decode(e.data);
      const p = this.pendingProposals.get(key);
      if (p !== undefined && p.by === sn.id) {
        this.pendingProposals.delete(key);
        if (p.index === e.index && p.term === e.term) {
          this.acked.set(e.index, k);
          if (e.index > this.maxAcked) this.maxAcked = e.index;
        }
      }
      // A handed proposal is recognised by its content when its proposer applies it (the first copy:
      // a duplicated MsgProp may append it twice, which the node's state machine deduplicates).
      if (this.handedProposals.get(key) === sn.id) {
        this.handedProposals.delete(key);
        this.acked.set(e.index, k);
        if (e.index > this.maxAcked) this.maxAcked = e.index;
      }
    }
  }

  // ---------------------------------------------------------------- driving

  /** Leader as seen by the nodes themselves (alive, role leader, highest term). */
  leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const sn of this.nodes.values()) {
      if (!sn.alive) continue;
      const s = sn.node.status();
      if (s.raftState === 'leader' && (best === null || s.term > best.node.status().term)) best = sn;
    }
    return best;
  }

  /** Proposes at `id`; returns the proposal key or null when refused. */
  propose(id: NodeId, value?: string): string | null {
    const sn = this.node(id);
    const data = value ?? `p${this.proposalSeq++}`;
    try {
      const { index, term } = sn.node.propose(enc.encode(data));
      this.pendingProposals.set(data, { index, term, data, by: id });
      return data;
    } catch {
      return null;
    }
  }

  /** A follower hands a proposal to its leader over the (faulty) network; returns its key or null when refused. */
  proposeViaLeader(id: NodeId): string | null {
    const sn = this.node(id);
    if (!sn.alive) return null;
    const data = `h${this.proposalSeq++}`;
    try {
      const m = sn.node.proposeViaLeader(enc.encode(data));
      this.handedProposals.set(data, id);
      this.enqueue(m);
      return data;
    } catch {
      return null;
    }
  }

  readIndex(id: NodeId, ctx: string): boolean {
    try {
      this.node(id).node.readIndex(enc.encode(ctx));
      this.pendingReads.set(ctx, this.maxAcked);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Snapshot the state machine at its applied index and compact the log below it. `metaOnly`
   * records the meta alone (a snapshot to send is then built on demand; do not restart the node,
   * whose state this simulator keeps only in memory).
   */
  compact(id: NodeId, keep: number, metaOnly = false): boolean {
    const sn = this.node(id);
    if (!sn.alive) return false;
    const applied = sn.sm.index;
    if (applied <= sn.storage.snapshot().meta.index || applied > sn.storage.lastIndex()) return false;
    const data = enc.encode(JSON.stringify(sn.sm));
    sn.storage.createSnapshot(applied, sn.confState, metaOnly ? null : data);
    const upTo = applied - keep;
    if (upTo >= sn.storage.firstIndex()) sn.storage.compact(upTo);
    return true;
  }

  tick(id: NodeId): void {
    const sn = this.node(id);
    if (sn.alive) sn.node.tick();
  }

  /** One round with a perfect driver: every live node handles its Ready, then messages are delivered. */
  step(): void {
    for (const id of this.nodes.keys()) this.handleReady(id);
    this.deliver();
    this.round++;
    this.check();
  }

  /** Runs rounds until nothing is left to do (no Ready, no message due). */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      let busy = false;
      for (const id of this.nodes.keys()) if (this.handleReady(id)) busy = true;
      if (this.deliver() > 0) busy = true;
      this.round++;
      this.check();
      if (!busy && this.queue.length === 0) return;
    }
    throw new Error('cluster did not stabilize');
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const id of this.nodes.keys()) this.tick(id);
      this.stabilize();
    }
  }

  /** Elects `id` by campaigning and stabilizing. */
  elect(id: NodeId): void {
    this.node(id).node.campaign();
    this.stabilize();
  }

  // ---------------------------------------------------------------- invariants

  /** Election safety and leader completeness, for every live node. Cheap; run after every step. */
  check(): void {
    for (const sn of this.nodes.values()) {
      if (!sn.alive) continue;
      const r = raftOf(sn.node);
      if (r.role !== 'leader') continue;
      const prev = this.leaderOf.get(r.term);
      if (prev === undefined) this.leaderOf.set(r.term, sn.id);
      else if (prev !== sn.id) fail(`election safety: ${prev} and ${sn.id} are both leaders of term ${r.term}`);
      const key = `${sn.id}@${r.term}`;
      if (this.verifiedLeaders.has(key)) continue;
      this.verifiedLeaders.add(key);
      // Leader completeness: every entry committed in an earlier term is in this leader's log.
      const first = r.log.firstIndex();
      for (const [i, ct] of this.commitTerm) {
        if (ct >= r.term || i < first) continue;
        const k = this.appliedAt.get(i);
        const t = r.log.term(i);
        if (t === null) fail(`leader completeness: leader ${sn.id} (term ${r.term}) lacks committed index ${i}`);
        if (k !== undefined && Number(k.slice(0, k.indexOf('|'))) !== t) {
          fail(`leader completeness: leader ${sn.id} (term ${r.term}) has term ${t} at committed index ${i}`);
        }
      }
    }
  }

  /** Log matching across every pair of live nodes: agreeing at (index, term) means agreeing before it. */
  checkLogMatching(): void {
    const logs: { id: NodeId; log: RaftInternals['log'] }[] = [];
    for (const sn of this.nodes.values()) {
      if (sn.alive) logs.push({ id: sn.id, log: raftOf(sn.node).log });
    }
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a]!.log;
        const lb = logs[b]!.log;
        const lo = Math.max(la.firstIndex(), lb.firstIndex());
        const hi = Math.min(la.lastIndex(), lb.lastIndex());
        let agreeFrom = -1;
        for (let i = hi; i >= lo; i--) {
          if (la.term(i) === lb.term(i)) {
            agreeFrom = i;
            break;
          }
        }
        for (let i = agreeFrom - 1; i >= lo; i--) {
          if (la.term(i) !== lb.term(i)) {
            fail(`log matching: ${logs[a]!.id} and ${logs[b]!.id} agree at ${agreeFrom} but differ at ${i}`);
          }
        }
      }
    }
  }
}

/** The bits of the core the checks read (tests may look inside; the package API does not expose them). */
export type { RaftInternals } from '../internals';
