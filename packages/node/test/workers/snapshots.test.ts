// Scheduled snapshots without processes: file naming, retention, the durable write, the slot
// arithmetic, and two workers sharing one replicated state while leadership moves between them
// (a simulated cluster with a fake clock: exact, no timing).
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { StateMachine, type Command, type CommandResult, type SnapshotScheduleRecord } from '@coffer/state';
import { AuditLog } from '../../src/audit/audit-log.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { ServiceError } from '../../src/service/errors.js';
import { dueSlot, listSnapshots, parseSnapshotFileName, pruneSnapshots, snapshotFileName, SnapshotWorker, writeFileDurably, type SnapshotWorkerContext } from '../../src/workers/snapshots.js';

const MIN = 60_000;
const T0 = Date.UTC(2026, 11, 3, 6, 0, 0);

let root: string;
beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'coffer-snapshots-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('file names', () => {
  test('sort by slot time and carry the index; other names are not ours', () => {
    expect(snapshotFileName(T0, 4711)).toBe('coffer-20261203T060000.000Z-4711.snap');
    expect(parseSnapshotFileName('coffer-20261203T060000.000Z-4711.snap')).toEqual({ slotAt: T0, index: 4711 });
    expect(parseSnapshotFileName(snapshotFileName(T0 + 1234, 9))).toEqual({ slotAt: T0 + 1234, index: 9 });
    const names = [T0 + 10 * MIN, T0, T0 + 999].map((t, i) => snapshotFileName(t, 100 - i));
    expect([...names].sort()).toEqual([snapshotFileName(T0, 99), snapshotFileName(T0 + 999, 98), snapshotFileName(T0 + 10 * MIN, 100)]);
    for (const other of ['coffer-1.snap', 'backup.snap', '.coffer-snapshot-1-coffer-20261203T060000.000Z-1.snap.tmp', 'coffer-20261203T060000Z-1.snap']) {
      expect(parseSnapshotFileName(other)).toBeNull();
    }
  });
});

describe('retention and the durable write', () => {
  test('keeps the newest N of our files and never touches anything else', async () => {
    for (let i = 0; i < 10; i++) writeFileSync(path.join(root, snapshotFileName(T0 + i * MIN, i + 1)), 'x');
    writeFileSync(path.join(root, 'operator-notes.txt'), 'keep me');
    writeFileSync(path.join(root, 'coffer-5.snap'), 'a manual download');
    const gone = await pruneSnapshots(root, 3);
    expect(gone).toHaveLength(7);
    expect((await listSnapshots(root)).map((f) => f.index)).toEqual([8, 9, 10]);
    expect(readdirSync(root)).toEqual(expect.arrayContaining(['operator-notes.txt', 'coffer-5.snap']));
    expect(await pruneSnapshots(root, 3)).toEqual([]);
    expect(await listSnapshots(path.join(root, 'missing'))).toEqual([]);
  });

  test('writes through a temp file: only the final name remains, mode 0600', async () => {
    await writeFileDurably(root, 'coffer-x.snap', new Uint8Array([1, 2, 3]));
    expect(readdirSync(root)).toEqual(['coffer-x.snap']);
    expect(statSync(path.join(root, 'coffer-x.snap')).mode & 0o777).toBe(0o600);
    await expect(writeFileDurably(path.join(root, 'missing'), 'y.snap', new Uint8Array(1))).rejects.toThrow(/ENOENT/);
  });
});

describe('dueSlot', () => {
  const rec = (over: Partial<SnapshotScheduleRecord>): SnapshotScheduleRecord => ({
    slotAt: T0, nodeId: 'n1', claimedAt: T0, state: 'done', lastSuccessAt: T0, lastSlotAt: T0, lastIndex: 1, lastSizeBytes: 1,
    lastNodeId: 'n1', lastError: null, lastErrorAt: null, failures: 0, ...over,
  });
  test('first slot now (to the second); then exactly one interval after the last slot, without drift', () => {
    expect(dueSlot(null, T0 + 1234, 10 * MIN, MIN)).toBe(T0 + 1000);
    expect(dueSlot(rec({}), T0 + 10 * MIN - 1, 10 * MIN, MIN)).toBeNull();
    expect(dueSlot(rec({}), T0 + 10 * MIN + 700, 10 * MIN, MIN)).toBe(T0 + 10 * MIN);
    // A claim still unreported (its writer lost leadership) does not make its slot due again.
    expect(dueSlot(rec({ state: 'claimed', nodeId: 'n2' }), T0 + 5 * MIN, 10 * MIN, MIN)).toBeNull();
  });
  test('after whole intervals without a leader: one slot now, not a burst', () => {
    expect(dueSlot(rec({}), T0 + 35 * MIN + 500, 10 * MIN, MIN)).toBe(T0 + 35 * MIN);
  });
  test('a failed slot is retried after the retry delay while it is current', () => {
    const failed = rec({ state: 'failed', lastErrorAt: T0 + 100 });
    expect(dueSlot(failed, T0 + 100 + MIN - 1, 10 * MIN, MIN)).toBeNull();
    expect(dueSlot(failed, T0 + 100 + MIN, 10 * MIN, MIN)).toBe(T0);
    expect(dueSlot(failed, T0 + 10 * MIN, 10 * MIN, MIN)).toBe(T0 + 10 * MIN);
  });
});

/**
 * A simulated cluster: one replicated state, a leader pointer, a fake clock. `propose` applies
 * at once on the leader; `pending` holds a claim "in flight" while leadership moves.
 */
class SimCluster {
  readonly sm = new StateMachine();
  leader = 'n1';
  now = T0 + 123;
  readonly workers = new Map<string, SnapshotWorker>();
  readonly metrics = new Map<string, ReturnType<typeof createMetrics>>();
  readonly audits: AuditLog[] = [];
  /** When set, the next proposal is committed but the proposer learns nothing (leadership lost meanwhile). */
  loseNextOutcome = false;
  failWrites = new Set<string>();

  async add(id: string): Promise<void> {
    const config = loadConfig({ COFFER_NODE_ID: id, COFFER_DATA_DIR: path.join(root, id), COFFER_SNAPSHOT_INTERVAL: '10min', COFFER_SNAPSHOT_RETAIN: '4' }, {});
    const metrics = createMetrics();
    const audit = await AuditLog.open({ path: path.join(root, `${id}-audit.jsonl`), nodeId: id });
    this.audits.push(audit);
    // A directory that cannot be made: its parent is a file (ENOTDIR). NB: not /proc — Node 20's
    // recursive mkdirSync never returns there.
    const blocked = path.join(root, `${id}-not-a-dir`);
    if (this.failWrites.has(id)) writeFileSync(blocked, '');
    const ctx: SnapshotWorkerContext = {
      config: this.failWrites.has(id) ? { ...config, snapshotDir: path.join(blocked, 'snapshots') } : config,
      logger: createLogger({ level: 'silent', nodeId: id }),
      metrics,
      audit,
      state: this.sm,
      now: () => this.now,
      isLeader: () => this.leader === id,
      readBarrier: async () => undefined,
      propose: async (cmd: Command): Promise<CommandResult> => {
        if (this.leader !== id) throw new ServiceError('no_leader', 'this node is not the leader; retry', { retryAfterSecs: 1 });
        const r = this.sm.applyCommand(cmd).result;
        if (this.loseNextOutcome) {
          this.loseNextOutcome = false;
          this.leader = 'none';
          throw new ServiceError('outcome_unknown', 'leadership lost');
        }
        return r;
      },
      snapshot: async () => ({ index: 100 + this.sm.getSnapshotSchedule()!.slotAt / 1000, term: 1, data: new TextEncoder().encode(`state at ${this.now}`) }),
    };
    this.workers.set(id, new SnapshotWorker(ctx));
    this.metrics.set(id, metrics);
  }

  /** Every file ever seen in a node's directory (retention deletes old ones). */
  readonly seen = new Map<string, { node: string; slotAt: number }>();

  /** One poll on every node (errors are what the timer would log), then the clock moves. */
  async round(stepMs: number): Promise<void> {
    for (const w of this.workers.values()) await w.runOnce().catch(() => undefined);
    for (const f of await this.files()) this.seen.set(`${f.node}:${f.slotAt}`, f);
    this.now += stepMs;
  }

  async files(): Promise<{ node: string; slotAt: number }[]> {
    const out: { node: string; slotAt: number }[] = [];
    for (const id of this.workers.keys()) for (const f of await listSnapshots(path.join(root, id, 'snapshots'))) out.push({ node: id, slotAt: f.slotAt });
    return out.sort((a, b) => a.slotAt - b.slotAt);
  }

  written(): { node: string; slotAt: number }[] {
    return [...this.seen.values()].sort((a, b) => a.slotAt - b.slotAt);
  }

  async close(): Promise<void> {
    for (const a of this.audits) await a.close();
  }
}

describe('SnapshotWorker across leader changes', () => {
  test('one file per slot, slots one interval apart, on the node that led when the slot came due', async () => {
    const c = new SimCluster();
    for (const id of ['n1', 'n2', 'n3']) await c.add(id);
    try {
      // Poll every 30 s of simulated time for 95 minutes; leadership moves at odd moments.
      for (let step = 0; step < 190; step++) {
        if (step === 37) c.leader = 'n2'; // mid-interval transfer
        if (step === 80) c.leader = 'none'; // election in progress
        if (step === 82) c.leader = 'n3';
        await c.round(30_000);
      }
      const written = c.written();
      const slots = written.map((f) => f.slotAt);
      expect(slots).toHaveLength(10); // 95 minutes, one every 10, the first at once
      expect(new Set(slots).size).toBe(slots.length); // never doubled
      for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBe(10 * MIN); // never skipped, no drift
      expect(c.sm.getSnapshotSchedule()).toMatchObject({ state: 'done', failures: 0 });
      // The writer of each slot is the node that led when it came due (step 37 = 18.5 min, step 82 = 41 min).
      const leaderAt = (t: number): string => (t - T0 < 18.5 * MIN ? 'n1' : t - T0 < 40 * MIN ? 'n2' : 'n3');
      for (const f of written) expect(f.node).toBe(leaderAt(f.slotAt));
      // Retention holds per node: n3 wrote 6, keeps 4.
      expect((await c.files()).filter((f) => f.node === 'n3')).toHaveLength(4);
      expect(await c.metrics.get('n3')!.registry.getSingleMetricAsString('coffer_snapshot_last_success_timestamp_seconds')).toMatch(/ \d{10}$/m);
      // Every node reports the cluster's last success, wherever the file is.
      const statuses = [...c.workers.values()].map((w) => w.status());
      expect(new Set(statuses.map((s) => s.lastSuccessAt)).size).toBe(1);
      expect(statuses[0]).toMatchObject({ enabled: true, intervalSecs: 600, retain: 4, failures: 0, lastError: null, lastNode: 'n3' });
    } finally {
      await c.close();
    }
  });

  test('a claim that committed while its proposer lost leadership is still written by that node, and not again by the next leader', async () => {
    const c = new SimCluster();
    for (const id of ['n1', 'n2']) await c.add(id);
    try {
      await c.round(30_000); // n1 claims and writes the first slot
      c.now = T0 + 10 * MIN + 5_000;
      c.loseNextOutcome = true; // n1's claim of the second slot commits; n1 hears "outcome unknown"
      await expect(c.workers.get('n1')!.runOnce()).rejects.toThrow(/leadership lost/);
      c.leader = 'n2';
      for (let i = 0; i < 4; i++) await c.round(10_000);
      const files = await c.files();
      expect(files).toEqual([
        { node: 'n1', slotAt: T0 },
        { node: 'n1', slotAt: T0 + 10 * MIN },
      ]);
      // n1 could not record its success (no longer leader): its own status says so, n2's does not.
      expect(c.workers.get('n1')!.status()).toMatchObject({ lastNode: 'n1', lastFile: snapshotFileName(T0 + 10 * MIN, 100 + (T0 + 10 * MIN) / 1000) });
      expect(c.sm.getSnapshotSchedule()).toMatchObject({ slotAt: T0 + 10 * MIN, nodeId: 'n1', state: 'claimed' });
      // The next slot is n2's.
      c.now = T0 + 20 * MIN + 1_000;
      await c.round(1_000);
      expect((await c.files()).at(-1)).toEqual({ node: 'n2', slotAt: T0 + 20 * MIN });
    } finally {
      await c.close();
    }
  });

  test('a write that fails is counted, reported in the replicated state, and retried within the slot', async () => {
    const c = new SimCluster();
    c.failWrites.add('n1');
    await c.add('n1');
    await c.add('n2');
    try {
      await c.round(30_000);
      expect(c.sm.getSnapshotSchedule()).toMatchObject({ state: 'failed', failures: 1, nodeId: 'n1' });
      expect(c.workers.get('n2')!.status()).toMatchObject({ failures: 1, lastSuccessAt: null });
      expect(c.workers.get('n2')!.status().lastError).toMatch(/^ENOTDIR: /);
      expect(await c.metrics.get('n1')!.registry.getSingleMetricAsString('coffer_snapshot_failures_total')).toMatch(/ 1$/m);
      // The same slot is claimed again after the retry delay (2.5 min for a 10 min interval), by the new leader.
      c.leader = 'n2';
      for (let i = 0; i < 6; i++) await c.round(30_000);
      expect(await c.files()).toEqual([{ node: 'n2', slotAt: T0 }]);
      expect(c.sm.getSnapshotSchedule()).toMatchObject({ state: 'done', failures: 1, lastError: null, lastNodeId: 'n2' });
      expect(c.workers.get('n1')!.status()).toMatchObject({ lastError: null, failures: 1, lastNode: 'n2' });
    } finally {
      await c.close();
    }
  });
});
