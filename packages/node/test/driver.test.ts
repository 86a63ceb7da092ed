/**
 * Unit tests of the Raft driver (packages/node/src/raft/driver.ts) with a fake durable log, a fake
 * transport and a fake clock: three real drivers over the real @coffer/raft core, wired by an
 * in-memory network this file controls (deliver, hold, partition). Nothing touches a disk or a
 * socket, so each ordering the driver promises can be checked step by step:
 *
 * - a follower sends nothing (acks, votes) before what those messages promise is on its disk;
 * - a leader sends its appends before its own fsync completes (Raft thesis §10.2.1);
 * - proposals are matched by (index, term): a proposal whose index a new leader overwrote fails;
 * - reads are coalesced: one ReadIndex round serves every read that arrived before it was sent;
 * - a leader that loses leadership fails its reads and writes with typed DriverErrors;
 * - a follower's proposal handed to the leader (MsgProp) leaves at once, is answered when applied
 *   here, and fails with a typed error when its leader goes away.
 *
 * The clock: the driver takes no clock parameter; it calls setInterval/setTimeout itself. The tests
 * fake those with jest's fake timers (setImmediate stays real: it is "later in this turn of the
 * event loop", which the driver uses to gather reads, not time).
 */
import { encodeConfChange, type ConfChange, type Entry, type HardState, type Message, type NodeId, type SnapshotMeta } from '@coffer/raft';
import { DriverError, loadStorage, RaftDriver, type Applier, type ApplyOutcome, type DurableLog } from '../src/raft/driver';
// The shared seeded PRNG (a leaf module with no imports): elections here are deterministic.
import { prng } from '../../cluster-tests/src/prng';

const TICK_MS = 10;
const ELECTION_TICKS = 10;
const IDS: readonly NodeId[] = ['n1', 'n2', 'n3'];

/** What happened, in order, across all nodes: the orderings under test are read off this. */
type Event =
  | { kind: 'append-start'; node: NodeId; entries: Entry[]; hardState: HardState | undefined }
  | { kind: 'append-done'; node: NodeId; entries: Entry[]; hardState: HardState | undefined }
  | { kind: 'send'; node: NodeId; msg: Message }
  | { kind: 'apply'; node: NodeId; entries: Entry[] };

/** A durable log in memory whose appends can be held (an fsync that has not returned yet). */
class FakeLog implements DurableLog {
  held = false;
  /** Holds only appends without entries (a Ready that persists just the commit index). */
  holdCommitOnly = false;
  private readonly waiting: (() => void)[] = [];
  readonly id: NodeId;
  private readonly events: Event[];

  constructor(id: NodeId, events: Event[]) {
    this.id = id;
    this.events = events;
  }

  async append(entries: Entry[], hardState: HardState | undefined, _sync: boolean): Promise<void> {
    const copy = entries.map((e) => ({ ...e }));
    this.events.push({ kind: 'append-start', node: this.id, entries: copy, hardState });
    if (this.held || (this.holdCommitOnly && entries.length === 0)) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.events.push({ kind: 'append-done', node: this.id, entries: copy, hardState });
  }

  /** Lets every held append complete, and stops holding. */
  release(): void {
    this.held = false;
    this.holdCommitOnly = false;
    for (const w of this.waiting.splice(0)) w();
  }

  pendingAppends(): number {
    return this.waiting.length;
  }

  /** Indexes of the snapshots saved (with data: received ones), and the indexes compacted to. */
  readonly snapshots: number[] = [];
  readonly snapshotsWithData: number[] = [];
  readonly compactions: number[] = [];

  async saveSnapshot(meta: SnapshotMeta, data: Uint8Array | null, _replaceLog: boolean): Promise<void> {
    this.snapshots.push(meta.index);
    if (data !== null) this.snapshotsWithData.push(meta.index);
  }

  async compact(index: number): Promise<void> {
    this.compactions.push(index);
  }
}

/** A state machine that answers each command entry with "<node>:<index>@<term>:<data>". */
class FakeApplier implements Applier {
  private applied = 0;
  readonly id: NodeId;
  private readonly events: Event[];

  constructor(id: NodeId, events: Event[]) {
    this.id = id;
    this.events = events;
  }

  appliedIndex(): number {
    return this.applied;
  }

  /** While set, apply hands its outcomes over early, then waits for it (its state write is slow). */
  persistGate: Promise<void> | undefined;

  async apply(entries: readonly Entry[], _confChanges: ReadonlyMap<number, ConfChange>, early?: (outcomes: ReadonlyMap<number, ApplyOutcome>) => void): Promise<ApplyOutcome[]> {
    this.events.push({ kind: 'apply', node: this.id, entries: [...entries] });
    // Data "req:<id>" stands for a command with a request id: its outcome carries it, as the state machine's does.
    const out = entries.map((e): ApplyOutcome => {
      if (e.type !== 'normal' || e.data.length === 0) return undefined;
      const data = new TextDecoder().decode(e.data);
      const text = `${this.id}:${e.index}@${e.term}:${data}`;
      return data.startsWith('req:') ? { requestId: data.slice(4), text } : text;
    });
    const last = entries[entries.length - 1];
    if (last !== undefined) this.applied = last.index;
    if (this.persistGate !== undefined) {
      early?.(new Map(entries.map((e, i) => [e.index, out[i]])));
      await this.persistGate;
    }
    return out;
  }

  /** While set, a snapshot being taken waits for it (a large state takes seconds to read). */
  snapshotGate: Promise<void> | undefined;
  snapshotsStarted = 0;

  async snapshot(): Promise<{ index: number; data: Uint8Array }> {
    const index = this.applied;
    this.snapshotsStarted++;
    if (this.snapshotGate !== undefined) await this.snapshotGate;
    return { index, data: new Uint8Array(0) };
  }

  async restore(index: number, _data: Uint8Array): Promise<void> {
    this.applied = index;
  }
}

interface Member {
  id: NodeId;
  driver: RaftDriver;
  log: FakeLog;
  applier: FakeApplier;
}

/** Three drivers, an in-memory network between them, and the fake clock. */
class Cluster {
  readonly events: Event[] = [];
  readonly members = new Map<NodeId, Member>();
  private queue: Message[] = [];
  /** Pairs that cannot talk (both directions), as "a|b". */
  private readonly cut = new Set<string>();
  /** While set, sent messages wait in the queue instead of being delivered. */
  holdNetwork = false;
  readonly fatal: unknown[] = [];

  constructor(seed: number, opts: { snapshotEntries?: number; snapshotCatchUpEntries?: number } = {}) {
    const founding: Entry[] = IDS.map((id, i) => ({ term: 1, index: i + 1, type: 'confChange', data: encodeConfChange({ type: 'addVoter', nodeId: id, context: new Uint8Array(0) }) }));
    for (const [i, id] of IDS.entries()) {
      const { storage } = loadStorage({ hardState: undefined, snapshot: undefined, entries: [] }, { entries: founding, hardState: { term: 1, vote: null, commit: founding.length } });
      const log = new FakeLog(id, this.events);
      const applier = new FakeApplier(id, this.events);
      const driver = new RaftDriver(
        { nodeId: id, tickMs: TICK_MS, electionTicks: ELECTION_TICKS, heartbeatTicks: 1, snapshotEntries: opts.snapshotEntries ?? 1_000_000, snapshotCatchUpEntries: opts.snapshotCatchUpEntries ?? 0, proposalTimeoutMs: 60_000, readTimeoutMs: 60_000, rng: prng(seed * 31 + i) },
        storage,
        log,
        applier,
        (msgs) => {
          for (const msg of msgs) {
            this.events.push({ kind: 'send', node: id, msg });
            this.queue.push(msg);
          }
        },
        { onFatal: (err) => this.fatal.push(err) },
      );
      this.members.set(id, { id, driver, log, applier });
    }
  }

  member(id: NodeId): Member {
    const m = this.members.get(id);
    if (m === undefined) throw new Error(`no member ${id}`);
    return m;
  }

  start(): void {
    for (const m of this.members.values()) m.driver.start();
  }

  stop(): void {
    for (const m of this.members.values()) m.driver.stop();
  }

  partition(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}|${b}`).add(`${b}|${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  /** Isolates `id` from everyone else. */
  isolate(id: NodeId): void {
    for (const other of IDS) if (other !== id) this.partition(id, other);
  }

  /** Runs what is ready now: delivers queued messages (unless held) until nothing moves. */
  async flush(): Promise<void> {
    for (let quiet = 0, round = 0; quiet < 3 && round < 1_000; round++) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.holdNetwork || this.queue.length === 0) {
        quiet++;
        continue;
      }
      quiet = 0;
      const batch = this.queue;
      this.queue = [];
      for (const msg of batch) {
        if (this.cut.has(`${msg.from}|${msg.to}`)) continue;
        this.members.get(msg.to)?.driver.step([msg]);
      }
    }
  }

  /** Advances the fake clock by `ms`, one tick at a time, running what each tick causes. */
  async advance(ms: number): Promise<void> {
    for (let t = 0; t < ms; t += TICK_MS) {
      jest.advanceTimersByTime(TICK_MS);
      await this.flush();
    }
  }

  leader(): Member | undefined {
    return [...this.members.values()].find((m) => m.driver.isLeader());
  }

  /** Ticks until one member leads and every member knows it, and the leader's term has a committed entry. */
  async electLeader(): Promise<Member> {
    for (let i = 0; i < 100; i++) {
      await this.advance(TICK_MS * 5);
      const l = this.leader();
      if (l !== undefined && [...this.members.values()].every((m) => m.driver.leader() === l.id) && l.driver.status().commit >= l.driver.status().lastIndex) return l;
    }
    throw new Error('no leader elected');
  }

  sentBy(id: NodeId, type?: Message['type']): Message[] {
    const out: Message[] = [];
    for (const e of this.events) if (e.kind === 'send' && e.node === id && (type === undefined || e.msg.type === type)) out.push(e.msg);
    return out;
  }
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Settles `p` without an unhandled rejection, so a test can look at its outcome later. */
function outcomeOf<T>(p: Promise<T>): { readonly settled: boolean; readonly value?: T; readonly error?: unknown } {
  const o: { settled: boolean; value?: T; error?: unknown } = { settled: false };
  p.then(
    (v) => {
      o.settled = true;
      o.value = v;
    },
    (e: unknown) => {
      o.settled = true;
      o.error = e;
    },
  );
  return o;
}

/** Advances the fake clock a tick at a time until `o` settles or `maxMs` pass; returns the time waited. */
async function advanceUntilSettled(o: { readonly settled: boolean }, maxMs: number): Promise<number> {
  let waitedMs = 0;
  while (!o.settled && waitedMs < maxMs) {
    await cluster.advance(TICK_MS);
    waitedMs += TICK_MS;
  }
  return waitedMs;
}

function driverCode(err: unknown): string {
  if (!(err instanceof DriverError)) throw new Error(`expected a DriverError, got ${String(err)}`);
  return err.code;
}

let cluster: Cluster;

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['setImmediate', 'clearImmediate', 'nextTick', 'queueMicrotask'] });
  cluster = new Cluster(7);
  cluster.start();
});

afterEach(async () => {
  cluster.stop();
  await cluster.flush();
  expect(cluster.fatal).toEqual([]);
  jest.useRealTimers();
});

describe('persist before send', () => {
  test('a follower acknowledges an append only after the entries are on its disk', async () => {
    const leader = await cluster.electLeader();
    const follower = cluster.member(IDS.find((id) => id !== leader.id) as NodeId);
    follower.log.held = true;
    const sentBefore = cluster.sentBy(follower.id, 'MsgAppResp').length;

    const write = outcomeOf(leader.driver.propose(enc('x')));
    await cluster.advance(TICK_MS * 3);

    // The follower received the entry and is writing it; it has said nothing about it yet.
    expect(follower.log.pendingAppends()).toBeGreaterThan(0);
    const acksWhileHeld = cluster.sentBy(follower.id, 'MsgAppResp').slice(sentBefore);
    const entryIndex = leader.driver.status().lastIndex;
    expect(acksWhileHeld.filter((m) => !m.reject && m.index >= entryIndex)).toEqual([]);

    follower.log.release();
    await cluster.advance(TICK_MS * 3);
    expect(write.settled).toBe(true);
    expect(write.value).toBe(`${leader.id}:${entryIndex}@${leader.driver.status().term}:x`);

    // Over the whole run: every ack of a follower comes after the append that made it true.
    for (const id of IDS.filter((i) => i !== leader.id)) {
      let durable = IDS.length; // the founding entries, on disk before the driver started
      for (const e of cluster.events) {
        if (e.node !== id) continue;
        if (e.kind === 'append-done') for (const en of e.entries) durable = Math.max(durable, en.index);
        if (e.kind === 'send' && e.msg.type === 'MsgAppResp' && !e.msg.reject) expect([id, e.msg.index <= durable]).toEqual([id, true]);
      }
    }
  });

  test('a candidate asks for votes only after its new term and vote are on disk', async () => {
    await cluster.electLeader();
    for (const id of IDS) {
      let durableTerm = 1;
      for (const e of cluster.events) {
        if (e.node !== id) continue;
        if (e.kind === 'append-done' && e.hardState !== undefined) durableTerm = Math.max(durableTerm, e.hardState.term);
        if (e.kind === 'send' && (e.msg.type === 'MsgVote' || e.msg.type === 'MsgVoteResp') && !e.msg.reject) expect([id, e.msg.type, e.msg.term <= durableTerm]).toEqual([id, e.msg.type, true]);
      }
    }
    expect(cluster.events.some((e) => e.kind === 'send' && e.msg.type === 'MsgVote')).toBe(true);
  });
});

describe("the leader's early send", () => {
  test('the leader sends its appends before its own fsync completes, and answers only after it', async () => {
    const leader = await cluster.electLeader();
    leader.log.held = true;
    const sendsBefore = cluster.sentBy(leader.id, 'MsgApp').length;

    const write = outcomeOf(leader.driver.propose(enc('early')));
    await cluster.advance(TICK_MS * 3);

    const index = leader.driver.status().lastIndex;
    // Its own write of the entry is still in flight ...
    expect(leader.log.pendingAppends()).toBeGreaterThan(0);
    const ownDone = cluster.events.some((e) => e.kind === 'append-done' && e.node === leader.id && e.entries.some((en) => en.index === index));
    expect(ownDone).toBe(false);
    // ... and the followers already have it: the leader did not wait for its own disk to send.
    const apps = cluster.sentBy(leader.id, 'MsgApp').slice(sendsBefore);
    expect(apps.some((m) => m.entries.some((en) => en.index === index))).toBe(true);
    for (const id of IDS.filter((i) => i !== leader.id)) {
      expect(cluster.events.some((e) => e.kind === 'append-done' && e.node === id && e.entries.some((en) => en.index === index))).toBe(true);
    }
    // The write is not answered while the leader's own fsync is pending (nor applied there).
    expect(write.settled).toBe(false);

    leader.log.release();
    await cluster.advance(TICK_MS * 3);
    expect(write.settled).toBe(true);
    expect(write.value).toBe(`${leader.id}:${index}@${leader.driver.status().term}:early`);
  });
});

describe('applying while the log write is in flight', () => {
  test('committed entries are applied during the Ready\'s own log write, which is queued first; a write is answered only once a quorum has it on disk', async () => {
    const leader = await cluster.electLeader();
    // The leader's entry goes to its disk, then its write of the commit index is held.
    cluster.holdNetwork = true;
    const write = outcomeOf(leader.driver.propose(enc('overlap')));
    let durableAtAnswer = -1;
    const index = leader.driver.status().lastIndex;
    const countDurable = (): number => IDS.filter((id) => cluster.events.some((e) => e.kind === 'append-done' && e.node === id && e.entries.some((en) => en.index === index))).length;
    void leader.driver.propose(enc('probe')).catch(() => undefined);
    await cluster.flush();
    leader.log.holdCommitOnly = true;
    cluster.holdNetwork = false;
    // Counts the disks holding the entry at the moment the answer comes (polled every turn).
    let polls = 0;
    const poll = (): void => {
      if (write.settled) durableAtAnswer = countDurable();
      else if (polls++ < 10_000) setImmediate(poll);
    };
    poll();
    await cluster.advance(TICK_MS * 3);
    expect(write.settled).toBe(true);

    // Answered while the leader's commit-index write is still pending ...
    expect(write.value).toBe(`${leader.id}:${index}@${leader.driver.status().term}:overlap`);
    expect(leader.log.pendingAppends()).toBeGreaterThan(0);
    // ... but only once a quorum had the entry on disk.
    expect(durableAtAnswer).toBeGreaterThanOrEqual(2);
    // The apply was started after the Ready's log write was queued (a shared group writer keeps
    // that order on disk: applied state never lands ahead of the log).
    const applyAt = cluster.events.findIndex((e) => e.kind === 'apply' && e.node === leader.id && e.entries.some((en) => en.index === index));
    const commitWriteAt = cluster.events.findIndex((e) => e.kind === 'append-start' && e.node === leader.id && e.entries.length === 0 && (e.hardState?.commit ?? 0) >= index);
    expect(commitWriteAt).toBeGreaterThanOrEqual(0);
    expect(applyAt).toBeGreaterThan(commitWriteAt);
    // The next Ready waits for the held write: nothing is applied twice or out of order.
    leader.log.release();
    await cluster.advance(TICK_MS * 3);
    const applied = cluster.events.filter((e) => e.kind === 'apply' && e.node === leader.id).flatMap((e) => (e.kind === 'apply' ? e.entries.map((en) => en.index) : []));
    expect(applied).toEqual([...applied].sort((a, b) => a - b));
    expect(new Set(applied).size).toBe(applied.length);
  });

  test('a follower answers in a Ready that persists only the commit index without waiting for that write, and still acknowledges entries only once on disk', async () => {
    const leader = await cluster.electLeader();
    const follower = cluster.member(IDS.find((id) => id !== leader.id) as NodeId);
    follower.log.holdCommitOnly = true;
    const write = outcomeOf(leader.driver.propose(enc('c')));
    await cluster.advance(TICK_MS * 3);
    const index = leader.driver.status().lastIndex;
    expect(write.settled).toBe(true);
    // The follower is writing the new commit index, and has already answered the leader's update.
    expect(follower.log.pendingAppends()).toBeGreaterThan(0);
    const heldAt = cluster.events.findIndex((e) => e.kind === 'append-start' && e.node === follower.id && e.entries.length === 0 && (e.hardState?.commit ?? 0) >= index);
    expect(heldAt).toBeGreaterThanOrEqual(0);
    // Since its last completed write the follower answered twice: the ack of the entry (after it
    // was on disk) and, without waiting for the held write, the answer to the commit update.
    const lastDone = cluster.events.slice(0, heldAt).map((e) => e.kind === 'append-done' && e.node === follower.id).lastIndexOf(true);
    const answers = cluster.events.slice(lastDone).filter((e) => e.kind === 'send' && e.node === follower.id && e.msg.type === 'MsgAppResp');
    expect(answers.length).toBe(2);
    follower.log.release();
    await cluster.advance(TICK_MS * 3);
    // Over the whole run: no follower ever acknowledged an entry before it was on its disk.
    for (const id of IDS.filter((i) => i !== leader.id)) {
      let durable = IDS.length;
      for (const e of cluster.events) {
        if (e.node !== id) continue;
        if (e.kind === 'append-done') for (const en of e.entries) durable = Math.max(durable, en.index);
        if (e.kind === 'send' && e.msg.type === 'MsgAppResp' && !e.msg.reject) expect([id, e.msg.index <= durable]).toEqual([id, true]);
      }
    }
  });
});

describe('answering from memory', () => {
  test('a write is answered once applied in memory, before the state write that follows; the loop applies nothing more until that write is done', async () => {
    const leader = await cluster.electLeader();
    let open!: () => void;
    leader.applier.persistGate = new Promise<void>((r) => (open = r));
    const first = outcomeOf(leader.driver.propose(enc('early')));
    await cluster.advance(TICK_MS * 3);
    expect(first.settled).toBe(true);
    expect(first.value).toBe(`${leader.id}:${leader.driver.status().lastIndex}@${leader.driver.status().term}:early`);
    const applies = (): number => cluster.events.filter((e) => e.kind === 'apply' && e.node === leader.id).length;
    const before = applies();
    const second = outcomeOf(leader.driver.propose(enc('next')));
    await cluster.advance(TICK_MS * 3);
    expect(second.settled).toBe(false);
    expect(applies()).toBe(before);
    leader.applier.persistGate = undefined;
    open();
    await cluster.advance(TICK_MS * 3);
    expect(second.settled).toBe(true);
    expect(second.value).toMatch(/:next$/);
  });
});

describe("the commit update after a client's write", () => {
  test("goes out after the waiting write is answered, in order with the leader's later messages, and reaches the followers", async () => {
    const leader = await cluster.electLeader();
    const answered: number[] = [];
    const p = leader.driver.propose(enc('w1'));
    const index = leader.driver.status().lastIndex;
    const o = outcomeOf(p.then((v) => (answered.push(cluster.events.length), v)));
    await advanceUntilSettled(o, TICK_MS * 10);
    expect(o.settled).toBe(true);
    expect(o.error).toBeUndefined();
    // The first message telling a follower the entry is committed is sent after the answer.
    const firstCommitUpdate = cluster.events.findIndex((e) => e.kind === 'send' && e.node === leader.id && e.msg.type === 'MsgApp' && e.msg.commit >= index);
    expect(firstCommitUpdate).toBeGreaterThanOrEqual(answered[0] as number);
    // Both followers apply it (the deferred messages were sent), and the commit index the leader
    // sends each peer never goes backwards (deferring kept the order).
    await cluster.advance(TICK_MS * 3);
    for (const m of cluster.members.values()) {
      expect(cluster.events.some((e) => e.kind === 'apply' && e.node === m.id && e.entries.some((x) => x.index === index))).toBe(true);
      if (m === leader) continue;
      const commits = cluster.sentBy(leader.id).filter((msg) => msg.to === m.id && msg.type === 'MsgApp').map((msg) => msg.commit);
      expect(commits).toEqual([...commits].sort((x, y) => x - y));
    }
  });
});

describe('snapshots', () => {
  test('the log is compacted behind snapshots recorded as meta only: no member reads its state for them', async () => {
    cluster.stop();
    await cluster.flush();
    cluster = new Cluster(7, { snapshotEntries: 5, snapshotCatchUpEntries: 2 });
    cluster.start();
    const leader = await cluster.electLeader();
    const writes = Array.from({ length: 12 }, (_, i) => outcomeOf(leader.driver.propose(enc(`w${i}`))));
    await cluster.advance(TICK_MS * 3);
    for (const w of writes) expect(w.error).toBeUndefined();
    for (const m of cluster.members.values()) {
      expect(m.applier.snapshotsStarted).toBe(0);
      expect(m.log.snapshots.length).toBeGreaterThanOrEqual(1);
      expect(m.log.snapshotsWithData).toEqual([]);
      expect(m.log.snapshots[0]).toBeGreaterThanOrEqual(5);
      expect(m.log.snapshots).toEqual([...m.log.snapshots].sort((a, b) => a - b));
      expect(m.log.compactions).toEqual(m.log.snapshots.map((i) => i - 2));
    }
  });

  test('a follower the log no longer reaches gets a snapshot built for it in the background; the loop keeps committing and leading meanwhile', async () => {
    cluster.stop();
    await cluster.flush();
    cluster = new Cluster(7, { snapshotEntries: 5, snapshotCatchUpEntries: 2 });
    cluster.start();
    const leader = await cluster.electLeader();
    const term = leader.driver.status().term;
    const lagging = cluster.member(IDS.find((id) => id !== leader.id) as NodeId);
    cluster.isolate(lagging.id);
    const writes = Array.from({ length: 20 }, (_, i) => outcomeOf(leader.driver.propose(enc(`w${i}`))));
    await cluster.advance(TICK_MS * 3);
    for (const w of writes) expect(w.error).toBeUndefined();
    expect(leader.log.compactions.length).toBeGreaterThanOrEqual(1);
    expect(leader.applier.snapshotsStarted).toBe(0);

    // Reading a large state takes seconds: hold the build.
    let release: () => void = () => undefined;
    leader.applier.snapshotGate = new Promise<void>((resolve) => (release = resolve));
    cluster.heal();
    await cluster.advance(TICK_MS * 3);
    expect(leader.applier.snapshotsStarted).toBe(1);
    const during = outcomeOf(leader.driver.propose(enc('during')));
    await cluster.advance(TICK_MS * ELECTION_TICKS * 5);
    expect(during.settled).toBe(true);
    expect(during.error).toBeUndefined();
    expect(leader.driver.isLeader()).toBe(true);
    expect(leader.driver.status().term).toBe(term);
    // One build however many heartbeats asked for it meanwhile.
    expect(leader.applier.snapshotsStarted).toBe(1);
    expect(lagging.log.snapshotsWithData).toEqual([]);

    release();
    await cluster.advance(TICK_MS * 5);
    expect(lagging.log.snapshotsWithData.length).toBe(1);
    expect(lagging.applier.appliedIndex()).toBe(leader.applier.appliedIndex());
    expect(cluster.fatal).toEqual([]);
  });
});

describe('proposal matching by (index, term)', () => {
  test("a proposal overwritten by a new leader's entry at the same index fails; it never takes the other entry's result", async () => {
    const old = await cluster.electLeader();
    const oldTerm = old.driver.status().term;
    cluster.isolate(old.id);

    // The isolated leader accepts a write it can never commit.
    const lost = outcomeOf(old.driver.propose(enc('lost')));
    await cluster.flush();
    const lostIndex = old.driver.status().lastIndex;

    // Another member takes over at once (as on a leadership transfer), and writes at that index.
    const next = cluster.member(IDS.find((id) => id !== old.id) as NodeId);
    next.driver.step([{ type: 'MsgTimeoutNow', from: old.id, to: next.id, term: oldTerm, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0, context: new Uint8Array(0) }]);
    await cluster.advance(TICK_MS * 2);
    expect(next.driver.isLeader()).toBe(true);
    const won = outcomeOf(next.driver.propose(enc('won')));
    await cluster.advance(TICK_MS * 2);
    expect(won.settled).toBe(true);
    const wonIndex = next.driver.status().lastIndex;
    expect(lostIndex).toBeLessThanOrEqual(wonIndex);

    // The old leader rejoins: its entry at lostIndex is replaced by the new leader's.
    cluster.heal();
    await cluster.advance(TICK_MS * 3);
    expect(old.applier.appliedIndex()).toBeGreaterThanOrEqual(wonIndex);
    expect(lost.settled).toBe(true);
    expect(lost.value).toBeUndefined();
    expect(driverCode(lost.error)).toBe('dropped');
  });
});

describe('read coalescing', () => {
  test('one ReadIndex round serves every read that arrived before it was sent', async () => {
    const leader = await cluster.electLeader();
    const follower = cluster.member(IDS.find((id) => id !== leader.id) as NodeId);
    const before = cluster.sentBy(follower.id, 'MsgReadIndex').length;

    // A burst in one turn of the event loop: one round.
    const first = Array.from({ length: 5 }, () => outcomeOf(follower.driver.readBarrier()));
    // Hold the network so the round stays in flight; reads arriving now wait for the next round.
    cluster.holdNetwork = true;
    await cluster.flush();
    const second = Array.from({ length: 7 }, () => outcomeOf(follower.driver.readBarrier()));
    await cluster.flush();
    expect(cluster.sentBy(follower.id, 'MsgReadIndex').length - before).toBe(1);

    cluster.holdNetwork = false;
    await cluster.flush();
    for (const r of first) expect([r.settled, r.error]).toEqual([true, undefined]);
    for (const r of second) expect([r.settled, r.error]).toEqual([true, undefined]);
    // Twelve reads, two rounds: the first burst's, then one for everything that waited on it.
    expect(cluster.sentBy(follower.id, 'MsgReadIndex').length - before).toBe(2);
  });

  test("on the leader, a burst of reads costs one heartbeat round (one ReadIndex context)", async () => {
    const leader = await cluster.electLeader();
    const contexts = (): Set<string> => new Set(cluster.sentBy(leader.id, 'MsgHeartbeat').filter((m) => m.context.length > 0).map((m) => Buffer.from(m.context).toString('hex')));
    const before = contexts().size;
    const reads = Array.from({ length: 10 }, () => outcomeOf(leader.driver.readBarrier()));
    await cluster.flush();
    for (const r of reads) expect([r.settled, r.error]).toEqual([true, undefined]);
    expect(contexts().size - before).toBe(1);
  });
});

describe('leadership loss', () => {
  test("a follower's read in flight when leadership moves is sent again to the next leader, not left to time out", async () => {
    const leader = await cluster.electLeader();
    const [f, other] = [...cluster.members.values()].filter((m) => m !== leader) as [Member, Member];
    cluster.partition(f.id, leader.id); // f's ReadIndex request never reaches the old leader
    const read = outcomeOf(f.driver.readBarrier());
    await cluster.flush();
    leader.driver.transferLeadership(other.id);
    const waitedMs = await advanceUntilSettled(read, TICK_MS * ELECTION_TICKS * 10);
    expect(f.driver.leader()).toBe(other.id);
    expect([read.settled, read.error]).toEqual([true, undefined]);
    expect(waitedMs).toBeLessThan(TICK_MS * ELECTION_TICKS); // the read timeout here is 60 s
  });

  test("a follower cut off from everyone fails its reads in flight about an election timeout after it loses the leader, not at the read timeout", async () => {
    const leader = await cluster.electLeader();
    const f = [...cluster.members.values()].find((m) => m !== leader) as Member;
    cluster.isolate(f.id);
    const read = outcomeOf(f.driver.readBarrier());
    await cluster.flush();
    const waitedMs = await advanceUntilSettled(read, 60_000);
    expect(driverCode(read.error)).toBe('no_quorum');
    // It notices the leader is gone after one to one and a half election timeouts, then waits one more.
    expect(waitedMs).toBeLessThanOrEqual(TICK_MS * ELECTION_TICKS * 3);
  });

  test('pending reads fail with no_quorum at once; pending writes fail with outcome_unknown within an election timeout', async () => {
    const leader = await cluster.electLeader();
    cluster.isolate(leader.id);
    const read = outcomeOf(leader.driver.readBarrier());
    const write = outcomeOf(leader.driver.propose(enc('w')));
    await cluster.flush();
    expect([read.settled, write.settled]).toEqual([false, false]);

    // CheckQuorum: without a majority's answers the leader steps down after an election timeout.
    let steppedDownAfterMs = 0;
    while (leader.driver.isLeader() && steppedDownAfterMs < TICK_MS * ELECTION_TICKS * 3) {
      await cluster.advance(TICK_MS);
      steppedDownAfterMs += TICK_MS;
    }
    expect(leader.driver.isLeader()).toBe(false);
    expect(read.settled).toBe(true);
    expect(driverCode(read.error)).toBe('no_quorum');
    // The write might still be committed by the next leader: it waits one more election timeout.
    expect(write.settled).toBe(false);
    await cluster.advance(TICK_MS * ELECTION_TICKS + TICK_MS);
    expect(write.settled).toBe(true);
    expect(driverCode(write.error)).toBe('outcome_unknown');

    // A write proposed on a node that is no longer leader is refused with a typed error too.
    const refused = outcomeOf(leader.driver.propose(enc('late')));
    await cluster.flush();
    expect(refused.settled).toBe(true);
    expect(['not_leader', 'dropped']).toContain(driverCode(refused.error));
  });

  test('stop() fails waiting reads and writes with stopped', async () => {
    const leader = await cluster.electLeader();
    cluster.isolate(leader.id);
    const read = outcomeOf(leader.driver.readBarrier());
    const write = outcomeOf(leader.driver.propose(enc('w')));
    await cluster.flush();
    leader.driver.stop();
    await cluster.flush();
    expect(driverCode(read.error)).toBe('stopped');
    expect(driverCode(write.error)).toBe('stopped');
  });
});

describe('proposals a follower hands to the leader (MsgProp)', () => {
  const followerOf = (leader: Member): Member => [...cluster.members.values()].find((m) => m !== leader) as Member;

  test('the MsgProp leaves at once, even while the follower waits for its own fsync; the proposal is answered with its outcome once applied here', async () => {
    const leader = await cluster.electLeader();
    const f = followerOf(leader);
    f.log.held = true;
    const first = outcomeOf(leader.driver.propose(enc('x')));
    await cluster.flush();
    expect(f.log.pendingAppends()).toBe(1); // f's loop waits for this append
    const handed = outcomeOf(f.driver.proposeViaLeader(enc('req:a'), 'a'));
    await cluster.flush();
    expect(cluster.sentBy(f.id, 'MsgProp').map((m) => [m.to, new TextDecoder().decode(m.entries[0]?.data)])).toEqual([[leader.id, 'req:a']]);
    expect(first.settled).toBe(true); // the leader and the third member are a quorum
    expect(handed.settled).toBe(false); // not applied on f yet
    f.log.release();
    await cluster.advance(TICK_MS * 3);
    expect(handed.error).toBeUndefined();
    const term = leader.driver.status().term;
    expect(handed.value).toEqual({ requestId: 'a', text: expect.stringMatching(new RegExp(`^${f.id}:\\d+@${term}:req:a$`)) });
  });

  test('refused at once on the leader and with no leader known (dropped); stop() fails waiting ones (stopped)', async () => {
    expect(driverCode(await cluster.member('n1').driver.proposeViaLeader(enc('req:early'), 'early').catch((e: unknown) => e))).toBe('dropped');
    const leader = await cluster.electLeader();
    expect(driverCode(await leader.driver.proposeViaLeader(enc('req:self'), 'self').catch((e: unknown) => e))).toBe('dropped');
    const f = followerOf(leader);
    cluster.isolate(f.id);
    const waiting = outcomeOf(f.driver.proposeViaLeader(enc('req:w'), 'w'));
    await cluster.flush();
    f.driver.stop();
    await cluster.flush();
    expect(driverCode(waiting.error)).toBe('stopped');
  });

  test('a request id already waiting is refused, and nothing more is sent', async () => {
    const leader = await cluster.electLeader();
    const f = followerOf(leader);
    cluster.isolate(f.id);
    void outcomeOf(f.driver.proposeViaLeader(enc('req:same'), 'same'));
    const again = outcomeOf(f.driver.proposeViaLeader(enc('req:same'), 'same'));
    const empty = outcomeOf(f.driver.proposeViaLeader(enc('req:'), ''));
    await cluster.flush();
    expect(String(again.error)).toMatch(/fresh request id/);
    expect(String(empty.error)).toMatch(/fresh request id/);
    expect(cluster.sentBy(f.id, 'MsgProp')).toHaveLength(1);
  });

  test('lost on the way to a leader that then hands leadership over: handed again to the new leader, and answered', async () => {
    const leader = await cluster.electLeader();
    const [f, other] = [...cluster.members.values()].filter((m) => m !== leader) as [Member, Member];
    cluster.partition(f.id, leader.id); // the MsgProp never arrives
    const handed = outcomeOf(f.driver.proposeViaLeader(enc('req:lost'), 'lost'));
    await cluster.flush();
    leader.driver.transferLeadership(other.id);
    await advanceUntilSettled(handed, TICK_MS * ELECTION_TICKS * 3);
    expect(f.driver.leader()).toBe(other.id);
    expect(cluster.sentBy(f.id, 'MsgProp').map((m) => m.to)).toEqual([leader.id, other.id]);
    expect(handed.error).toBeUndefined();
    expect(handed.value).toEqual({ requestId: 'lost', text: expect.stringMatching(new RegExp(`^${f.id}:\\d+@\\d+:req:lost$`)) });
  });

  test('lost on the way to a leader that stays leader: handed again to it an election timeout later, and answered long before the proposal timeout', async () => {
    const leader = await cluster.electLeader();
    const f = followerOf(leader);
    cluster.partition(f.id, leader.id); // this one MsgProp is lost (a stream that broke, a hand-over that failed)
    const handed = outcomeOf(f.driver.proposeViaLeader(enc('req:again'), 'again'));
    await cluster.flush();
    cluster.heal();
    const waited = await advanceUntilSettled(handed, TICK_MS * ELECTION_TICKS * 5);
    expect(handed.error).toBeUndefined();
    expect(handed.value).toEqual({ requestId: 'again', text: expect.stringMatching(new RegExp(`^${f.id}:\\d+@\\d+:req:again$`)) });
    expect(f.driver.leader()).toBe(leader.id);
    expect(cluster.sentBy(f.id, 'MsgProp').map((m) => m.to)).toEqual([leader.id, leader.id]);
    expect(waited).toBeGreaterThanOrEqual(TICK_MS * ELECTION_TICKS);
    expect(waited).toBeLessThanOrEqual(TICK_MS * ELECTION_TICKS * 3);
  });

  test('lost on the way to a leader that then hands leadership to this very follower: proposed here, and answered', async () => {
    const leader = await cluster.electLeader();
    const f = followerOf(leader);
    cluster.partition(f.id, leader.id);
    const handed = outcomeOf(f.driver.proposeViaLeader(enc('req:mine'), 'mine'));
    await cluster.flush();
    cluster.heal();
    leader.driver.transferLeadership(f.id);
    await advanceUntilSettled(handed, TICK_MS * ELECTION_TICKS * 3);
    expect(f.driver.isLeader()).toBe(true);
    expect(handed.error).toBeUndefined();
    expect((handed.value as { requestId: string }).requestId).toBe('mine');
  });

  test('no leader for longer than an election timeout after its own went away: outcome_unknown, long before the proposal timeout', async () => {
    const leader = await cluster.electLeader();
    const f = followerOf(leader);
    const handed = outcomeOf(f.driver.proposeViaLeader(enc('req:cut'), 'cut'));
    cluster.isolate(f.id); // before the MsgProp goes out at the end of this turn
    await cluster.flush();
    const waitedMs = await advanceUntilSettled(handed, 60_000);
    expect(driverCode(handed.error)).toBe('outcome_unknown');
    expect(waitedMs).toBeLessThanOrEqual(TICK_MS * ELECTION_TICKS * 3); // the proposal timeout here is 60 s
  });
});
