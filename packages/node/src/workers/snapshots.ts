/**
 * Scheduled backup snapshots (`COFFER_SNAPSHOT_INTERVAL`, `_DIR`, `_RETAIN`): every interval the
 * leader writes the same sealed, authenticated snapshot as `GET /v1/cluster/snapshot` into the
 * snapshot directory, and keeps the newest `_RETAIN` files.
 *
 * Exactly one writer per slot, across leader changes — how:
 * - The schedule lives in the replicated state (`snapshot.schedule` record), not in a node's
 *   directory: each node's directory is its own disk, so a new leader could not tell from its own
 *   files when the previous leader last wrote one.
 * - Slots are `slotAt`, `slotAt + interval`, … (no drift: the next slot is computed from the last
 *   one, not from when it was written). A cluster that was down for whole intervals starts again
 *   from now rather than writing a burst of catch-up files.
 * - When a slot is due, the leader first completes a ReadIndex round (`readBarrier`): Raft grants
 *   it only once the leader has committed an entry of its own term, so every claim a previous
 *   leader got committed is applied here before we look. A claim that the previous leader proposed
 *   but that is not in our log can never commit (our log wins).
 * - Then it proposes a `claim` naming itself. The state machine applies a claim only for a slot
 *   later than the last claimed one, so at most one claim per slot ever commits — two leaders (a
 *   deposed one that has not noticed yet) cannot both win a slot.
 * - The node named in the committed claim writes the file, **whether or not it still leads**: a
 *   leadership transfer between the claim and the write does not hand the slot to anyone else,
 *   and the new leader only claims the next slot. A claim whose outcome the claimer did not learn
 *   (leadership lost while proposing) is still found by the claimer once it applies the entry.
 * - The file name carries the slot time, so a writer that restarts after a crash sees whether
 *   the slot's file exists (the rename is atomic) before writing it again.
 * Limits, said plainly: a writer that dies between the committed claim and the rename and stays
 * down longer than one interval leaves that slot without a file (its status shows the claim never
 * reported); a file written by a node that lost leadership meanwhile is reported in that node's
 * status and metrics only (a follower cannot propose the `done` record).
 *
 * Files: `coffer-<UTC slot time>-<raft index>.snap` (0600) in the directory (0700), written to a
 * temp file in the same directory, fsynced, renamed, and the directory fsynced. Retention
 * deletes only files with that name pattern.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import type { SnapshotScheduleRecord } from '@coffer/state';
import type { NodeContext, SnapshotScheduleStatus } from '../context.js';
import { commandId } from '../service/common.js';

/** What the worker needs of the node (a subset of the context, so tests can run it directly). */
export type SnapshotWorkerContext = Pick<NodeContext, 'config' | 'logger' | 'metrics' | 'state' | 'now' | 'isLeader' | 'propose' | 'readBarrier' | 'snapshot' | 'audit'>;

/** Actor recorded in the audit log. */
export const SNAPSHOT_ACTOR = 'snapshot-worker';

const FILE_RE = /^coffer-(\d{8}T\d{6}\.\d{3}Z)-(\d+)\.snap$/;
const TEMP_PREFIX = '.coffer-snapshot-';

/**
 * The file name of a scheduled snapshot: sorts by slot time, carries the Raft index.
 *
 * @param slotAt - the slot (ms since the epoch)
 * @param index - the snapshot's Raft index
 * @returns e.g. `coffer-20261203T060000.000Z-4711.snap`
 * @example
 * ```ts
 * snapshotFileName(Date.UTC(2026, 11, 3, 6), 4711); // 'coffer-20261203T060000.000Z-4711.snap'
 * ```
 */
export function snapshotFileName(slotAt: number, index: number): string {
  const iso = new Date(slotAt).toISOString(); // 2026-12-03T06:00:00.000Z
  return `coffer-${iso.replace(/[-:]/g, '')}-${index}.snap`;
}

/**
 * Reads a scheduled snapshot's file name back.
 *
 * @param name - a file name
 * @returns its slot time and index, or null for any other file
 */
export function parseSnapshotFileName(name: string): { slotAt: number; index: number } | null {
  const m = FILE_RE.exec(name);
  if (m === null) return null;
  const t = m[1] as string; // 20261203T060000.000Z
  const slotAt = Date.parse(`${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 11)}:${t.slice(11, 13)}:${t.slice(13)}`);
  if (!Number.isFinite(slotAt)) return null;
  return { slotAt, index: Number(m[2]) };
}

/**
 * The scheduled snapshots in a directory, oldest first (other files are ignored).
 *
 * @param dir - the snapshot directory
 * @returns file names with their slot and index; empty when the directory does not exist
 */
export async function listSnapshots(dir: string): Promise<{ name: string; slotAt: number; index: number }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: { name: string; slotAt: number; index: number }[] = [];
  for (const name of names) {
    const p = parseSnapshotFileName(name);
    if (p !== null) out.push({ name, ...p });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Deletes all but the newest `retain` scheduled snapshots (never any other file).
 *
 * @param dir - the snapshot directory
 * @param retain - how many to keep (≥ 1)
 * @returns the names deleted
 */
export async function pruneSnapshots(dir: string, retain: number): Promise<string[]> {
  const files = await listSnapshots(dir);
  const doomed = files.slice(0, Math.max(0, files.length - Math.max(1, retain)));
  for (const f of doomed) await unlink(path.join(dir, f.name)).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
  // NB: no directory fsync for deletions: a delete lost in a crash only keeps one file too many.
  return doomed.map((f) => f.name);
}

/**
 * Writes `data` to `dir/name` atomically and durably: a temp file in the same directory, fsync,
 * rename over the final name, fsync of the directory (the rename itself is durable only then).
 *
 * @param dir - existing directory
 * @param name - final file name
 * @param data - the bytes
 */
export async function writeFileDurably(dir: string, name: string, data: Uint8Array): Promise<void> {
  const tmp = path.join(dir, `${TEMP_PREFIX}${process.pid}-${name}.tmp`);
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path.join(dir, name));
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * The next slot to claim, or null when none is due.
 *
 * @param rec - the replicated schedule (null before the first claim)
 * @param now - the leader's clock (ms)
 * @param intervalMs - COFFER_SNAPSHOT_INTERVAL
 * @param retryMs - how long after a reported failure the same slot is tried again
 * @returns the slot time to claim, or null
 */
export function dueSlot(rec: Readonly<SnapshotScheduleRecord> | null, now: number, intervalMs: number, retryMs: number): number | null {
  const fromNow = Math.floor(now / 1000) * 1000;
  if (rec === null) return fromNow;
  const next = rec.slotAt + intervalMs;
  // A failed slot is retried while it is still the current one (a full disk may be cleaned up).
  if (rec.state === 'failed' && now < next) return now >= (rec.lastErrorAt ?? rec.claimedAt) + retryMs ? rec.slotAt : null;
  if (now < next) return null;
  // Whole intervals passed with no leader (cluster down): one snapshot now, not a burst of them.
  if (now >= next + intervalMs) return Math.max(fromNow, next);
  return next;
}

/** This node's own view of the snapshots it wrote (the replicated record has the cluster's). */
interface LocalStatus {
  lastSuccessAt: number | null;
  lastSlotAt: number | null;
  lastIndex: number;
  lastSizeBytes: number;
  lastFile: string | null;
  lastError: string | null;
  lastErrorAt: number | null;
  /** Failures this node could not record in the replicated state (it no longer led). */
  unreported: number;
}

export type { SnapshotScheduleStatus } from '../context.js';

/** The scheduled-snapshot worker. One per node: every node may be a slot's writer, only the leader claims. */
export class SnapshotWorker {
  readonly #ctx: SnapshotWorkerContext;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #stopped = false;
  /** Claims (`slotAt:claimedAt`) this node already acted on: one write attempt per claim. */
  readonly #handled = new Set<string>();
  #warned = { text: '', at: 0 };
  readonly #local: LocalStatus = { lastSuccessAt: null, lastSlotAt: null, lastIndex: 0, lastSizeBytes: 0, lastFile: null, lastError: null, lastErrorAt: null, unreported: 0 };

  constructor(ctx: SnapshotWorkerContext) {
    this.#ctx = ctx;
    ctx.metrics.snapshotInterval.set(this.enabled ? ctx.config.snapshotIntervalMs / 1000 : 0);
  }

  /** Whether scheduled snapshots are configured. */
  get enabled(): boolean {
    return this.#ctx.config.snapshotIntervalMs > 0;
  }

  /** Starts the poll (a no-op when off). */
  start(): void {
    if (!this.enabled || this.#timer !== undefined) return;
    // A short poll costs a look at local memory; Raft traffic happens only when a slot is due.
    const pollMs = Math.max(250, Math.min(1_000, Math.floor(this.#ctx.config.snapshotIntervalMs / 4)));
    this.#timer = setInterval(() => this.#tick(), pollMs);
    this.#timer.unref();
    void this.#removeTempFiles();
  }

  /** Stops the poll; waits for a round in progress (a write under way is finished, not cut off). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /**
   * @returns the `snapshots` object of `GET /v1/cluster`: the replicated record merged with what
   *   this node itself wrote or failed to report
   */
  status(): SnapshotScheduleStatus {
    const cfg = this.#ctx.config;
    const rec = this.#ctx.state.getSnapshotSchedule();
    const local = this.#local;
    const repAt = rec?.lastSuccessAt ?? null;
    const useLocal = local.lastSuccessAt !== null && (repAt === null || (local.lastSlotAt ?? 0) > (rec?.lastSlotAt ?? 0));
    const lastSuccessAt = useLocal ? local.lastSuccessAt : repAt;
    const repErrAt = rec?.lastErrorAt ?? null;
    const localErrNewer = local.lastErrorAt !== null && (repErrAt === null || local.lastErrorAt > repErrAt);
    let lastError = localErrNewer ? local.lastError : (rec?.lastError ?? null);
    const lastErrorAt = localErrNewer ? local.lastErrorAt : repErrAt;
    if (lastErrorAt !== null && lastSuccessAt !== null && lastSuccessAt > lastErrorAt) lastError = null;
    return {
      enabled: this.enabled,
      intervalSecs: cfg.snapshotIntervalMs / 1000,
      dir: cfg.snapshotDir,
      retain: cfg.snapshotRetain,
      lastSuccessAt: lastSuccessAt === null ? null : new Date(lastSuccessAt).toISOString(),
      lastIndex: lastSuccessAt === null ? null : useLocal ? local.lastIndex : (rec?.lastIndex ?? null),
      lastSizeBytes: lastSuccessAt === null ? null : useLocal ? local.lastSizeBytes : (rec?.lastSizeBytes ?? null),
      lastNode: lastSuccessAt === null ? null : useLocal ? cfg.nodeId : (rec?.lastNodeId ?? null),
      lastFile: useLocal || (rec?.lastNodeId === cfg.nodeId && rec.lastSlotAt === local.lastSlotAt) ? local.lastFile : null,
      lastError,
      failures: (rec?.failures ?? 0) + local.unreported,
      nextAt: !this.enabled || rec === null ? null : new Date(rec.slotAt + cfg.snapshotIntervalMs).toISOString(),
    };
  }

  /** Waits for the poll in progress, if any (tests). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running.catch(() => undefined);
  }

  #tick(): void {
    if (this.#stopped || this.#running !== undefined) return;
    this.#running = this.runOnce()
      .catch((err: unknown) => this.#warn('scheduled snapshot round failed', err))
      .finally(() => {
        this.#running = undefined;
      });
  }

  /**
   * One round: write a slot this node was named writer of, then (leader) claim a due slot and
   * write it. Exposed for tests; normal use goes through {@link start}.
   */
  async runOnce(): Promise<void> {
    const ctx = this.#ctx;
    this.#syncGauges();
    await this.#maybeWrite();
    if (this.#stopped || !ctx.isLeader()) return;
    const intervalMs = ctx.config.snapshotIntervalMs;
    const retryMs = Math.max(1_000, Math.min(60_000, Math.floor(intervalMs / 4)));
    if (dueSlot(ctx.state.getSnapshotSchedule(), ctx.now(), intervalMs, retryMs) === null) return;
    // Everything committed before this leader's term is applied after this (see the file comment).
    await ctx.readBarrier('linearizable');
    const slotAt = dueSlot(ctx.state.getSnapshotSchedule(), ctx.now(), intervalMs, retryMs);
    if (slotAt === null || this.#stopped || !ctx.isLeader()) return;
    const res = await ctx.propose({ type: 'snapshot.schedule', requestId: commandId(), at: ctx.now(), phase: 'claim', slotAt, nodeId: ctx.config.nodeId, index: 0, sizeBytes: 0, error: null });
    if (res.status !== 'ok') return; // stale: another claim for this slot won
    await this.#maybeWrite();
  }

  /** Writes the current claim's slot if this node is its writer and has not acted on it yet. */
  async #maybeWrite(): Promise<void> {
    const ctx = this.#ctx;
    const rec = ctx.state.getSnapshotSchedule();
    if (rec === null || rec.nodeId !== ctx.config.nodeId || rec.state !== 'claimed') return;
    const key = `${rec.slotAt}:${rec.claimedAt}`;
    if (this.#handled.has(key)) return;
    // Only the current claim matters: forget older ones (one entry per interval otherwise piles up).
    this.#handled.clear();
    this.#handled.add(key);
    const slotAt = rec.slotAt;
    if ((await listSnapshots(ctx.config.snapshotDir).catch(() => [])).some((f) => f.slotAt === slotAt)) return; // written before a restart
    if (ctx.now() >= slotAt + ctx.config.snapshotIntervalMs) {
      // Claimed, then this node was down for a whole interval: that slot is gone; the leader
      // claims the next one. Say so once, and count it.
      ctx.metrics.snapshotFailures.inc();
      this.#local.unreported++;
      this.#local.lastError = `slot ${new Date(slotAt).toISOString()} was claimed by this node but not written in time`;
      this.#local.lastErrorAt = ctx.now();
      ctx.logger.warn({ slotAt: new Date(slotAt).toISOString() }, 'a scheduled snapshot this node claimed was not written before the next slot; skipped');
      return;
    }
    const requestId = commandId();
    let name: string;
    let sizeBytes: number;
    let index: number;
    try {
      // NB: async on purpose — Node 20's recursive mkdirSync spins forever on some paths (/proc/…).
      await mkdir(ctx.config.snapshotDir, { recursive: true, mode: 0o700 });
      const snap = await ctx.snapshot();
      name = snapshotFileName(slotAt, snap.index);
      index = snap.index;
      sizeBytes = snap.data.length;
      await writeFileDurably(ctx.config.snapshotDir, name, snap.data);
    } catch (err) {
      await this.#failed(slotAt, err, requestId);
      return;
    }
    const at = ctx.now();
    Object.assign(this.#local, { lastSuccessAt: at, lastSlotAt: slotAt, lastIndex: index, lastSizeBytes: sizeBytes, lastFile: name });
    ctx.metrics.snapshotLastSuccess.set(Math.floor(at / 1000));
    ctx.metrics.snapshotSizeBytes.set(sizeBytes);
    ctx.logger.info({ file: name, index, sizeBytes, slotAt: new Date(slotAt).toISOString() }, 'scheduled snapshot written');
    await ctx.audit
      .append({ requestId, actor: SNAPSHOT_ACTOR, clientIp: null, action: 'cluster.snapshot', resource: name, outcome: 'ok', status: 200 })
      .catch(() => undefined);
    try {
      const gone = await pruneSnapshots(ctx.config.snapshotDir, ctx.config.snapshotRetain);
      if (gone.length > 0) ctx.logger.info({ deleted: gone }, 'old scheduled snapshots deleted');
    } catch (err) {
      this.#warn('could not delete old scheduled snapshots', err);
    }
    if (ctx.isLeader()) {
      await ctx
        .propose({ type: 'snapshot.schedule', requestId: commandId(), at, phase: 'done', slotAt, nodeId: ctx.config.nodeId, index, sizeBytes, error: null })
        .catch((err: unknown) => this.#warn('could not record the scheduled snapshot in the cluster state', err));
    }
  }

  async #failed(slotAt: number, err: unknown, requestId: string): Promise<void> {
    const ctx = this.#ctx;
    const e = err as NodeJS.ErrnoException;
    // One short line: an errno code and message (a path at most), never data.
    const error = `${e.code !== undefined ? `${e.code}: ` : ''}${String(e.message ?? err)}`.slice(0, 300);
    ctx.metrics.snapshotFailures.inc();
    this.#local.lastError = error;
    this.#local.lastErrorAt = ctx.now();
    ctx.logger.error({ err: error, slotAt: new Date(slotAt).toISOString(), dir: ctx.config.snapshotDir }, 'scheduled snapshot failed');
    await ctx.audit
      .append({ requestId, actor: SNAPSHOT_ACTOR, clientIp: null, action: 'cluster.snapshot', resource: ctx.config.snapshotDir, outcome: 'error', status: 500 })
      .catch(() => undefined);
    let reported = false;
    if (ctx.isLeader()) {
      try {
        reported = (await ctx.propose({ type: 'snapshot.schedule', requestId: commandId(), at: ctx.now(), phase: 'failed', slotAt, nodeId: ctx.config.nodeId, index: 0, sizeBytes: 0, error })).status === 'ok';
      } catch (perr) {
        this.#warn('could not record the failed scheduled snapshot in the cluster state', perr);
      }
    }
    if (!reported) this.#local.unreported++;
  }

  /** Every node exports the cluster's last success (replicated), so any scrape target can alert. */
  #syncGauges(): void {
    const rec = this.#ctx.state.getSnapshotSchedule();
    const local = this.#local;
    const repAt = rec?.lastSuccessAt ?? null;
    if (repAt !== null && (local.lastSuccessAt === null || repAt > local.lastSuccessAt)) {
      this.#ctx.metrics.snapshotLastSuccess.set(Math.floor(repAt / 1000));
      this.#ctx.metrics.snapshotSizeBytes.set(rec?.lastSizeBytes ?? 0);
    }
  }

  /** Leftovers of a write interrupted by a crash. */
  async #removeTempFiles(): Promise<void> {
    const dir = this.#ctx.config.snapshotDir;
    if (!existsSync(dir)) return;
    try {
      for (const name of await readdir(dir)) if (name.startsWith(TEMP_PREFIX) && name.endsWith('.tmp')) await unlink(path.join(dir, name)).catch(() => undefined);
    } catch (err) {
      this.#warn('could not look for interrupted scheduled snapshots', err);
    }
  }

  /** Logs a warning, at most once a minute for the same text (a poll runs every second). */
  #warn(msg: string, err: unknown): void {
    const text = `${msg}: ${String(err)}`;
    const now = Date.now();
    if (text === this.#warned.text && now - this.#warned.at < 60_000) return;
    this.#warned = { text, at: now };
    this.#ctx.logger.warn({ err: String(err) }, msg);
  }
}
