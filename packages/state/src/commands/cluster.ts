// The cluster itself: no-op barrier, member address book, whole-state restore and the
// scheduled-snapshot record.
import { KEY } from '../records.js';
import { MAX_ID_BYTES, MAX_NAME_BYTES, bad, checkBytes, checkInt, checkName, type CommandBase, type CommandSpec, type FamilySpecs } from './spec.js';

/** Does nothing (leader's barrier, upgrade probes). */
export type NoopCommand = CommandBase & { type: 'noop' };

/** Add or update a member of the cluster address book. */
export type MemberUpsertCommand = CommandBase & { type: 'member.upsert'; id: string; raftAddr: string; apiAddr: string };

/** Remove a member from the cluster address book. */
export type MemberRemoveCommand = CommandBase & { type: 'member.remove'; id: string };

/** Replace the whole replicated state except the member address book with a snapshot blob. */
export type StateRestoreCommand = CommandBase & { type: 'state.restore'; snapshot: Uint8Array };

/** Phases of a scheduled snapshot, in order: the leader claims a slot, the claimer reports. */
export const SNAPSHOT_PHASES = ['claim', 'done', 'failed'] as const;
/** One of {@link SNAPSHOT_PHASES}. */
export type SnapshotPhase = (typeof SNAPSHOT_PHASES)[number];

/**
 * The scheduled-snapshot record (COFFER_SNAPSHOT_INTERVAL). `claim`: the leader names itself
 * (`nodeId`) the writer of the slot due at `slotAt`; applied only when `slotAt` is later than the
 * last claimed slot, or equals a slot whose write failed (a retry), so at most one claim per slot
 * ever commits. `done` / `failed`: the claimer's outcome for that slot (`index`, `sizeBytes` of
 * the file, or `error`); applied only while they match the current claim.
 */
export type SnapshotScheduleCommand = CommandBase & {
  type: 'snapshot.schedule';
  phase: SnapshotPhase;
  slotAt: number;
  nodeId: string;
  /** `done`: Raft index of the snapshot written; 0 otherwise. */
  index: number;
  /** `done`: size of the file in bytes; 0 otherwise. */
  sizeBytes: number;
  /** `failed`: why, one short line (never secret material); null otherwise. */
  error: string | null;
};

/** The commands of this family. */
export type ClusterCommand = NoopCommand | MemberUpsertCommand | MemberRemoveCommand | StateRestoreCommand | SnapshotScheduleCommand;

const noop: CommandSpec<NoopCommand> = {
  id: 1,
  version: 1,
  validate() {},
  write() {},
  read(_r, base, type) {
    return { type, ...base };
  },
  apply() {
    return { status: 'ok' };
  },
};

const memberUpsert: CommandSpec<MemberUpsertCommand> = {
  id: 20,
  version: 1,
  validate(c) {
    checkName(c.id, 'id', MAX_ID_BYTES);
  },
  write(w, c) {
    w.str(c.id).str(c.raftAddr).str(c.apiAddr);
  },
  read(r, base, type) {
    return { type, ...base, id: r.str(), raftAddr: r.str(), apiAddr: r.str() };
  },
  apply(ctx, c) {
    ctx.tables.members.set(c.id, { id: c.id, raftAddr: c.raftAddr, apiAddr: c.apiAddr, updatedAt: c.at });
    ctx.changes.mark(KEY.member + c.id);
    return { status: 'ok' };
  },
};

const memberRemove: CommandSpec<MemberRemoveCommand> = {
  id: 21,
  version: 1,
  validate(c) {
    checkName(c.id, 'id', MAX_ID_BYTES);
  },
  write(w, c) {
    w.str(c.id);
  },
  read(r, base, type) {
    return { type, ...base, id: r.str() };
  },
  apply(ctx, c) {
    if (!ctx.tables.members.delete(c.id)) return { status: 'not_found' };
    ctx.changes.mark(KEY.member + c.id);
    return { status: 'ok' };
  },
};

const stateRestore: CommandSpec<StateRestoreCommand> = {
  id: 22,
  version: 1,
  validate(c) {
    checkBytes(c.snapshot, 'snapshot');
  },
  write(w, c) {
    w.bytes(c.snapshot);
  },
  read(r, base, type) {
    return { type, ...base, snapshot: r.bytes() };
  },
  apply(ctx, c) {
    return ctx.restore(c.snapshot);
  },
};

const snapshotSchedule: CommandSpec<SnapshotScheduleCommand> = {
  id: 24,
  version: 1,
  validate(c) {
    if (!SNAPSHOT_PHASES.includes(c.phase)) bad('phase must be claim, done or failed');
    checkInt(c.slotAt, 'slotAt');
    checkName(c.nodeId, 'nodeId', MAX_ID_BYTES);
    checkInt(c.index, 'index');
    checkInt(c.sizeBytes, 'sizeBytes');
    if (c.error !== null && (typeof c.error !== 'string' || Buffer.byteLength(c.error) > MAX_NAME_BYTES)) bad(`error must be null or a string of at most ${MAX_NAME_BYTES} bytes`);
  },
  write(w, c) {
    w.u8(SNAPSHOT_PHASES.indexOf(c.phase)).u53(c.slotAt).str(c.nodeId).u53(c.index).u53(c.sizeBytes).optStr(c.error);
  },
  read(r, base, type) {
    const phase = SNAPSHOT_PHASES[r.u8()] ?? r.fail('unknown snapshot phase');
    return { type, ...base, phase, slotAt: r.u53(), nodeId: r.str(), index: r.u53(), sizeBytes: r.u53(), error: r.optStr() };
  },
  // Invariant: at most one claim per slot commits, so each slot has one writer. A claim for an
  // older or equal slot is stale (a deposed leader's, or a retry), except a retry of a slot whose
  // write was reported failed. Outcomes count only for the current claim and its writer.
  apply(ctx, c) {
    const cur = ctx.tables.snapshotSchedule;
    if (c.phase === 'claim') {
      const retry = cur !== null && c.slotAt === cur.slotAt && cur.state === 'failed';
      if (cur !== null && c.slotAt <= cur.slotAt && !retry) return { status: 'stale' };
      ctx.tables.snapshotSchedule = {
        slotAt: c.slotAt,
        nodeId: c.nodeId,
        claimedAt: c.at,
        state: 'claimed',
        lastSuccessAt: cur?.lastSuccessAt ?? null,
        lastSlotAt: cur?.lastSlotAt ?? null,
        lastIndex: cur?.lastIndex ?? 0,
        lastSizeBytes: cur?.lastSizeBytes ?? 0,
        lastNodeId: cur?.lastNodeId ?? null,
        lastError: cur?.lastError ?? null,
        lastErrorAt: cur?.lastErrorAt ?? null,
        failures: cur?.failures ?? 0,
      };
    } else {
      if (cur === null || cur.slotAt !== c.slotAt || cur.nodeId !== c.nodeId || cur.state !== 'claimed') return { status: 'stale' };
      ctx.tables.snapshotSchedule =
        c.phase === 'done'
          ? { ...cur, state: 'done', lastSuccessAt: c.at, lastSlotAt: c.slotAt, lastIndex: c.index, lastSizeBytes: c.sizeBytes, lastNodeId: c.nodeId, lastError: null, lastErrorAt: null }
          : { ...cur, state: 'failed', lastError: c.error ?? 'unknown error', lastErrorAt: c.at, failures: cur.failures + 1 };
    }
    ctx.changes.mark(KEY.snapshotSchedule);
    return { status: 'ok' };
  },
};

/** Specs of the cluster family. */
export const clusterCommands: FamilySpecs<ClusterCommand> = {
  noop,
  'member.upsert': memberUpsert,
  'member.remove': memberRemove,
  'state.restore': stateRestore,
  'snapshot.schedule': snapshotSchedule,
};
