/**
 * Scheduled snapshots (COFFER_SNAPSHOT_INTERVAL) through real processes: the leader alone writes
 * them, retention holds, a leader change in the middle of an interval (a transfer, then a SIGTERM)
 * neither skips nor doubles a slot, `GET /v1/cluster` and the metrics report them, and the newest
 * file restores offline into a node that serves the secrets.
 *
 * The directories are watched every 200 ms for the whole test, so files that retention deletes
 * later are still in the record. Slot times are exact multiples of the interval by construction,
 * so "no skip, no double" is checked exactly on the slots; the write times (file mtimes) only
 * need to fall inside their own slot.
 */
import { copyFileSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { runCli, TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(240_000);

const INTERVAL_MS = 5_000;
const RETAIN = 2;
const FILE_RE = /^coffer-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-(\d+)\.snap$/;

interface Seen {
  node: string;
  name: string;
  file: string;
  slotAt: number;
  index: number;
  mtimeMs: number;
}

function parseName(name: string): { slotAt: number; index: number } | null {
  const m = FILE_RE.exec(name);
  if (m === null) return null;
  const [, y, mo, d, h, mi, s, ms, index] = m.map(Number) as number[];
  return { slotAt: Date.UTC(y!, mo! - 1, d!, h!, mi!, s!, ms!), index: index! };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('scheduled snapshots', () => {
  const cluster = new TestCluster({ env: { COFFER_SNAPSHOT_INTERVAL: `${INTERVAL_MS / 1000}s`, COFFER_SNAPSHOT_RETAIN: String(RETAIN) } });
  const restored = new TestCluster({ size: 0 });
  const seen = new Map<string, Seen>();
  /** Who led from when (test clock = the nodes' clock: same machine). */
  const reigns: { leader: string; from: number }[] = [];
  let watcher: NodeJS.Timeout | undefined;
  const canary = `canary-${Date.now()}-scheduled`;

  const dirOf = (n: NodeHandle): string => path.join(n.dataDir, 'snapshots');
  function collect(): void {
    for (const n of cluster.nodes) {
      let names: string[] = [];
      try {
        names = readdirSync(dirOf(n));
      } catch {
        continue; // not made yet
      }
      for (const name of names) {
        const p = parseName(name);
        const key = `${n.id}/${name}`;
        if (p === null || seen.has(key)) continue;
        const file = path.join(dirOf(n), name);
        try {
          seen.set(key, { node: n.id, name, file, ...p, mtimeMs: statSync(file).mtimeMs });
        } catch {
          // deleted between readdir and stat
        }
      }
    }
  }
  /** Our file names in a node's directory now (none when it was never made). */
  function ours(n: NodeHandle): string[] {
    try {
      return readdirSync(dirOf(n)).filter((name) => parseName(name) !== null).sort();
    } catch {
      return [];
    }
  }
  const written = (): Seen[] => [...seen.values()].sort((a, b) => a.slotAt - b.slotAt);
  async function waitForMore(count: number, what: string): Promise<Seen[]> {
    const before = seen.size;
    await cluster.eventually(async () => seen.size >= before + count, INTERVAL_MS * (count + 3), what);
    return written().slice(before);
  }
  /** Waits for the next file, then half an interval: the next leader change lands mid-interval. */
  async function midInterval(): Promise<void> {
    await waitForMore(1, 'a scheduled snapshot');
    await sleep(INTERVAL_MS / 2);
  }
  const liveNodes = (): NodeHandle[] => cluster.nodes.filter((n) => cluster.isRunning(n));

  beforeAll(async () => {
    await cluster.start();
    const leader = await cluster.bootstrapped();
    reigns.push({ leader: leader.id, from: 0 });
    watcher = setInterval(collect, 200);
    expect((await cluster.http(leader, 'PUT', '/v1/secrets/sched/canary', { value: canary })).status).toBe(200);
  });
  afterAll(async () => {
    if (watcher !== undefined) clearInterval(watcher);
    await restored.stop();
    await cluster.stop();
  });

  test('the leader alone writes them, one interval apart; retention keeps the newest; status and metrics say so', async () => {
    const leader = await cluster.leader();
    await waitForMore(RETAIN + 2, 'the first scheduled snapshots');
    const files = written();
    expect(new Set(files.map((f) => f.node))).toEqual(new Set([leader.id]));
    // Retention: the leader wrote RETAIN + 2 and keeps the newest RETAIN; the followers have none.
    await cluster.eventually(async () => ours(leader).length === RETAIN, 5_000, 'retention applied');
    const kept = ours(leader);
    expect(kept).toEqual(written().slice(-RETAIN).map((f) => f.name));
    for (const f of cluster.nodes.filter((n) => n !== leader)) expect({ node: f.id, files: ours(f) }).toEqual({ node: f.id, files: [] });
    // Sealed: the file never holds a secret value or the bootstrap token.
    const bytes = readFileSync(path.join(dirOf(leader), kept[kept.length - 1]!));
    expect(bytes.includes(Buffer.from(canary))).toBe(false);
    expect(bytes.includes(Buffer.from(cluster.bootstrapToken))).toBe(false);
    expect(statSync(path.join(dirOf(leader), kept[0]!)).mode & 0o777).toBe(0o600);

    // GET /v1/cluster through every node (a follower hands it to the leader when it can; either way
    // the replicated record is the same).
    const newest = written().at(-1)!;
    for (const n of cluster.nodes) {
      await cluster.eventually(async () => (await cluster.http(n, 'GET', '/v1/cluster')).body.snapshots?.lastIndex >= newest.index, 10_000, `${n.id} reports the newest snapshot`);
      const body = (await cluster.http(n, 'GET', '/v1/cluster')).body;
      const st = body.snapshots;
      const answering = cluster.nodes.find((x) => x.id === body.id)!;
      expect(st).toMatchObject({ enabled: true, intervalSecs: INTERVAL_MS / 1000, retain: RETAIN, dir: dirOf(answering), lastNode: leader.id, lastError: null, failures: 0 });
      expect(Date.parse(st.lastSuccessAt)).toBeGreaterThanOrEqual(newest.slotAt);
      expect(st.lastSizeBytes).toBeGreaterThan(100);
    }

    // Metrics move with each snapshot.
    const t1 = await cluster.metric(leader, 'coffer_snapshot_last_success_timestamp_seconds');
    expect(t1 * 1000).toBeGreaterThanOrEqual(Math.floor(files[0]!.slotAt / 1000) * 1000);
    expect(await cluster.metric(leader, 'coffer_snapshot_size_bytes')).toBeGreaterThan(100);
    expect(await cluster.metric(leader, 'coffer_snapshot_failures_total')).toBe(0);
    expect(await cluster.metric(leader, 'coffer_snapshot_interval_seconds')).toBe(INTERVAL_MS / 1000);
    await waitForMore(1, 'one more snapshot');
    await cluster.eventually(async () => (await cluster.metric(leader, 'coffer_snapshot_last_success_timestamp_seconds')) > t1, 5_000, 'the last-success gauge moved');
  });

  test('a leadership transfer mid-interval: the new leader takes the next slot', async () => {
    const old = await cluster.leader();
    await midInterval();
    const target = cluster.nodes.find((n) => n !== old)!;
    const from = Date.now();
    const r = await cluster.http(old, 'POST', '/v1/cluster/leader/transfer', { to: target.id });
    expect(r.status).toBe(200);
    reigns.push({ leader: target.id, from });
    const after = await waitForMore(3, 'snapshots after the transfer');
    expect(after.map((f) => f.node)).toEqual([target.id, target.id, target.id]);
    // The new leader's gauges report its own writes.
    expect((await cluster.metric(target, 'coffer_snapshot_last_success_timestamp_seconds')) * 1000).toBeGreaterThanOrEqual(Math.floor(after[0]!.slotAt / 1000) * 1000);
  });

  test('a SIGTERM of the leader mid-interval: the newly elected leader takes the next slot', async () => {
    const old = await cluster.leader();
    // A write that the newest snapshot must hold (checked by the restore below).
    expect((await cluster.http(old, 'PUT', '/v1/secrets/sched/late', { value: `${canary}-late` })).status).toBe(200);
    await midInterval();
    const from = Date.now();
    const ended = await cluster.terminate(old, 'SIGTERM');
    expect(ended.code).toBe(0);
    const next = await cluster.leader(15_000, liveNodes());
    reigns.push({ leader: next.id, from });
    const after = await waitForMore(3, 'snapshots after the SIGTERM');
    expect(after.every((f) => f.node === next.id)).toBe(true);
  });

  test('across all directories: every slot exactly once, one interval apart, each written by the leader of its time within its slot', () => {
    collect();
    const all = written();
    expect(all.length).toBeGreaterThanOrEqual(RETAIN + 2 + 1 + 3 + 1 + 3);
    const slots = all.map((f) => f.slotAt);
    expect(new Set(slots).size).toBe(slots.length); // no slot written twice (on one node or two)
    for (let i = 1; i < slots.length; i++) expect({ i, gap: slots[i]! - slots[i - 1]! }).toEqual({ i, gap: INTERVAL_MS }); // none skipped
    for (const f of all) {
      // Written inside its own slot (generous: the poll runs every second on a busy machine).
      expect(f.mtimeMs).toBeGreaterThanOrEqual(f.slotAt - 1_000);
      expect(f.mtimeMs).toBeLessThan(f.slotAt + INTERVAL_MS);
      const reign = [...reigns].reverse().find((r) => r.from <= f.slotAt);
      expect({ slot: new Date(f.slotAt).toISOString(), node: f.node }).toEqual({ slot: new Date(f.slotAt).toISOString(), node: reign?.leader });
    }
    // The Raft index never goes backwards from one snapshot to the next.
    for (let i = 1; i < all.length; i++) expect(all[i]!.index).toBeGreaterThanOrEqual(all[i - 1]!.index);
  });

  test('the newest file restores offline into a node that serves the secrets', async () => {
    collect();
    const newest = written().at(-1)!;
    const file = path.join(restored.root, 'newest.snap');
    // Copy it out first: retention on the live cluster may delete it meanwhile.
    copyFileSync(newest.file, file);
    const r1 = await restored.addHandle('r1');
    const dir = path.join(restored.root, 'r1');
    const keys = { COFFER_CLUSTER_KEY: cluster.clusterKey, COFFER_LOCAL_MASTER_KEY: cluster.masterKey };
    const out = await runCli(['snapshot', 'restore', file, '--data-dir', dir, '--raft-addr', r1.raft], keys);
    expect(out).toMatchObject({ code: 0 });
    r1.dataDir = dir;
    await restored.spawnNode(r1, { COFFER_LOCAL_MASTER_KEY: cluster.masterKey, COFFER_CLUSTER_KEY: cluster.clusterKey, COFFER_BOOTSTRAP_TOKEN: cluster.bootstrapToken });
    await restored.leader(30_000);
    for (const [name, value] of [['sched/canary', canary], ['sched/late', `${canary}-late`]] as const) {
      const got = await restored.call(r1, 'GET', `/v1/secrets/${name}`, undefined, cluster.bootstrapToken);
      expect({ name, status: got.status, value: got.body?.value }).toEqual({ name, status: 200, value });
    }
  });
});
