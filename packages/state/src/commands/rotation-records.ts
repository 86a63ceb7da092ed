// The rotation table ('mo'): per secret name, a rotation waiting for its target system (the
// sealed new version, replicated BEFORE the target is touched) and the last target error.
//
// A table file of its own (not in rotation.ts) because both the rotation family and the secret
// family read it (`secret.put` is refused while a rotation is pending, `secret.destroyAll` drops
// the record), and rotation.ts builds on the secret family: no import cycle.
import { Reader, Writer } from '../bytes.js';
import { FORMATS } from '../records.js';
import type { RecordTable } from '../state-tables.js';
import type { SealedValue, SecretFormat } from '../types.js';
import { readSealed, writeSealed } from './spec.js';

/** A rotation whose new version is replicated but not yet current (its target has not confirmed it). */
export type PendingRotation = {
  /** Chosen by the proposer of `rotation.begin`; commit and fail apply only to this attempt. */
  attemptId: string;
  /** The version that was current at begin; the pending value becomes `fromVersion + 1`. */
  fromVersion: number;
  format: SecretFormat;
  /** The new value, sealed for version `fromVersion + 1` (AAD `name:fromVersion+1`). */
  sealed: SealedValue;
  /** Who asked for the rotation (recorded as the new version's `createdBy`). */
  actor: string;
  /** `at` of the begin. */
  startedAt: number;
};

/** The last failure of a rotation target for this secret (public: `GET /v1/versions/{name}`). */
export type RotationErrorRecord = {
  /** The API code (`rotation_target_refused`, `rotation_target_unavailable`, `rotation_target_invalid`, …). */
  code: string;
  /** A sentence without secrets (the node builds it from what the target said). */
  message: string;
  at: number;
};

/** One row per secret name with a pending rotation or a recorded error. */
export type RotationRecord = {
  name: string;
  pending: PendingRotation | null;
  lastError: RotationErrorRecord | null;
};

const REC_V1 = 1;

/** Rotation state by secret name (`mo<name>`). A row with neither field is deleted, not stored. */
export const rotationRecords: RecordTable<RotationRecord> = {
  prefix: 'mo',
  encode: (rec) => {
    const w = new Writer(256).u8(REC_V1).str(rec.name);
    const p = rec.pending;
    if (p === null) w.u8(0);
    else {
      w.u8(1).str(p.attemptId).u53(p.fromVersion).u8(FORMATS.indexOf(p.format));
      writeSealed(w, p.sealed);
      w.str(p.actor).u53(p.startedAt);
    }
    const e = rec.lastError;
    if (e === null) w.u8(0);
    else w.u8(1).str(e.code).str(e.message).u53(e.at);
    return w.finish();
  },
  decode: (b) => {
    const r = new Reader(b, 'SM_CORRUPT_STORAGE');
    if (r.u8() !== REC_V1) r.fail('unknown rotation record version');
    const name = r.str();
    let pending: PendingRotation | null = null;
    if (r.opt()) {
      const attemptId = r.str();
      const fromVersion = r.u53();
      const format = FORMATS[r.u8()] ?? r.fail('unknown secret format');
      const sealed = readSealed(r);
      pending = { attemptId, fromVersion, format, sealed, actor: r.str(), startedAt: r.u53() };
    }
    const lastError = r.opt() ? { code: r.str(), message: r.str(), at: r.u53() } : null;
    r.end();
    return { name, pending, lastError };
  },
};

/** What the query functions need: the family tables (`StateMachine.table`). */
export type RotationTables = { table<R>(def: RecordTable<R>): ReadonlyMap<string, Readonly<R>> };

/**
 * A secret's rotation row.
 *
 * @param tables - the state machine
 * @param name - secret name
 * @returns the row (do not mutate), or undefined when nothing is pending and no error is recorded
 */
export function rotationStateOf(tables: RotationTables, name: string): Readonly<RotationRecord> | undefined {
  return tables.table(rotationRecords).get(name);
}

/**
 * Names of secrets with a pending rotation, sorted.
 *
 * @param tables - the state machine
 * @returns names
 */
export function pendingRotations(tables: RotationTables): string[] {
  const out: string[] = [];
  for (const [name, rec] of tables.table(rotationRecords)) if (rec.pending !== null) out.push(name);
  return out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
