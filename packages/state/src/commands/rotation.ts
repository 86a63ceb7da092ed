// Rotations through a target system (CONTRACT.md, "Rotation target: PostgreSQL"), in two phases so
// that a leader change neither loses nor doubles a rotation:
//
//   rotation.begin  {name, fromVersion v, attemptId, sealed value of v+1}: the new value is
//                   replicated (sealed) BEFORE the target is touched; reads and verify still see v.
//   rotation.commit {name, attemptId}: the target confirmed; the pending value becomes version v+1
//                   exactly as a `secret.put` of it would (v keeps its grace window).
//   rotation.fail   {name, attemptId, error, drop}: the error is recorded; with `drop` the pending
//                   value goes (the target certainly did not apply it).
//
// Invariants: at most one pending rotation per name; begin only from the current version; commit
// and fail only for the pending attempt (a deposed leader's late commit changes nothing); no
// `secret.put` while one is pending (secrets.ts), so v+1 is free when the commit comes.
import type { CommandResult } from '../records.js';
import { FORMATS } from '../records.js';
import type { SealedValue, SecretFormat } from '../types.js';
import { rotationRecords, type RotationErrorRecord, type RotationRecord } from './rotation-records.js';
import { secretCommands } from './secrets.js';
import {
  MAX_ID_BYTES,
  bad,
  checkBytes,
  checkInt,
  checkName,
  readSealed,
  writeSealed,
  type ApplyContext,
  type CommandBase,
  type CommandSpec,
  type FamilySpecs,
} from './spec.js';

/** Longest recorded error message, in bytes (the node shortens longer ones). */
export const MAX_ROTATION_ERROR_MESSAGE_BYTES = 2048;

/** Phase 1: the sealed new value of `fromVersion + 1`, pending until the target confirms it. */
export type RotationBeginCommand = CommandBase & {
  type: 'rotation.begin';
  name: string;
  fromVersion: number;
  attemptId: string;
  format: SecretFormat;
  sealed: SealedValue;
  actor: string;
};

/** Phase 2, success: the pending value becomes the current version. */
export type RotationCommitCommand = CommandBase & { type: 'rotation.commit'; name: string; attemptId: string };

/** Phase 2, failure: record `error`; `drop` the pending value when the target certainly did not apply it. */
export type RotationFailCommand = CommandBase & {
  type: 'rotation.fail';
  name: string;
  attemptId: string;
  error: { code: string; message: string };
  drop: boolean;
};

/** The commands of this family. */
export type RotationCommand = RotationBeginCommand | RotationCommitCommand | RotationFailCommand;

function checkSealedValue(s: SealedValue): void {
  if (s === null || typeof s !== 'object') bad('sealed must be a sealed value');
  checkInt(s.formatVersion, 'sealed.formatVersion');
  if (s.formatVersion > 255) bad('sealed.formatVersion must fit in a byte');
  checkBytes(s.nonce, 'sealed.nonce');
  checkBytes(s.ciphertext, 'sealed.ciphertext');
  checkBytes(s.wrappedDek, 'sealed.wrappedDek');
  if (typeof s.alg !== 'string' || typeof s.kmsKeyId !== 'string') bad('sealed.alg and kmsKeyId must be strings');
}

function checkAttempt(c: { name: string; attemptId: string }): void {
  checkName(c.name, 'name');
  checkName(c.attemptId, 'attemptId', MAX_ID_BYTES);
}

/** Stores a row, or deletes it when it holds nothing. */
function save(ctx: ApplyContext, rec: RotationRecord): void {
  const table = ctx.tables.table(rotationRecords);
  if (rec.pending === null && rec.lastError === null) table.delete(rec.name);
  else table.set(rec.name, rec);
  ctx.changes.mark(rotationRecords.prefix + rec.name);
}

const begin: CommandSpec<RotationBeginCommand> = {
  id: 65,
  version: 1,
  validate(c) {
    checkAttempt(c);
    checkInt(c.fromVersion, 'fromVersion', 1);
    if (!FORMATS.includes(c.format)) bad('format must be raw, base64, userpass or kv');
    checkSealedValue(c.sealed);
    if (typeof c.actor !== 'string') bad('actor must be a string');
  },
  write(w, c) {
    w.str(c.name).u53(c.fromVersion).str(c.attemptId).u8(FORMATS.indexOf(c.format));
    writeSealed(w, c.sealed);
    w.str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const fromVersion = r.u53();
    const attemptId = r.str();
    const format = FORMATS[r.u8()] ?? r.fail('unknown secret format');
    const sealed = readSealed(r);
    return { type, ...base, name, fromVersion, attemptId, format, sealed, actor: r.str() };
  },
  apply(ctx, c): CommandResult {
    const s = ctx.tables.secrets.get(c.name);
    if (s === undefined) return { status: 'not_found' };
    // The value was sealed for exactly fromVersion + 1 (its AAD binds it).
    if (s.currentVersion !== c.fromVersion) return { status: 'version_conflict', currentVersion: s.currentVersion };
    const old = ctx.tables.table(rotationRecords).get(c.name);
    if (old?.pending != null) return { status: 'rotation_pending', currentVersion: s.currentVersion };
    const pending = { attemptId: c.attemptId, fromVersion: c.fromVersion, format: c.format, sealed: c.sealed, actor: c.actor, startedAt: c.at };
    save(ctx, { name: c.name, pending, lastError: old?.lastError ?? null });
    return { status: 'ok', version: c.fromVersion + 1, currentVersion: s.currentVersion };
  },
};

const commit: CommandSpec<RotationCommitCommand> = {
  id: 66,
  version: 1,
  validate(c) {
    checkAttempt(c);
  },
  write(w, c) {
    w.str(c.name).str(c.attemptId);
  },
  read(r, base, type) {
    const name = r.str();
    return { type, ...base, name, attemptId: r.str() };
  },
  apply(ctx, c): CommandResult {
    const rec = ctx.tables.table(rotationRecords).get(c.name);
    const p = rec?.pending;
    const s = ctx.tables.secrets.get(c.name);
    // Another attempt's (or an already decided) commit: nothing to do.
    if (rec === undefined || p == null || p.attemptId !== c.attemptId) return { status: 'noop', currentVersion: s?.currentVersion ?? 0 };
    // The pending row goes first: `secret.put` refuses while one is pending.
    save(ctx, { name: c.name, pending: null, lastError: null });
    const res = secretCommands['secret.put'].apply(ctx, {
      type: 'secret.put',
      requestId: c.requestId,
      at: c.at,
      name: c.name,
      version: p.fromVersion + 1,
      // Invariant: v + 1 is stored only over v (the check-and-set also passes a cas-required secret).
      cas: p.fromVersion,
      sealed: p.sealed,
      format: p.format,
      description: null,
      rotation: null,
      actor: p.actor,
    });
    if (res.status !== 'ok') {
      // Unreachable while the invariants hold (no put while pending; destroyAll drops the row);
      // recorded rather than thrown so that a replica never stops on it.
      const lastError: RotationErrorRecord = { code: 'rotation_conflict', message: `version ${p.fromVersion} was no longer current when the rotation committed`, at: c.at };
      save(ctx, { name: c.name, pending: null, lastError });
    }
    return res;
  },
};

const fail: CommandSpec<RotationFailCommand> = {
  id: 67,
  version: 1,
  validate(c) {
    checkAttempt(c);
    if (c.error === null || typeof c.error !== 'object') bad('error must be {code, message}');
    checkName(c.error.code, 'error.code', MAX_ID_BYTES);
    if (typeof c.error.message !== 'string' || Buffer.byteLength(c.error.message) > MAX_ROTATION_ERROR_MESSAGE_BYTES) {
      bad(`error.message must be a string of at most ${MAX_ROTATION_ERROR_MESSAGE_BYTES} bytes`);
    }
    if (typeof c.drop !== 'boolean') bad('drop must be a boolean');
  },
  write(w, c) {
    w.str(c.name).str(c.attemptId).str(c.error.code).str(c.error.message).bool(c.drop);
  },
  read(r, base, type) {
    const name = r.str();
    const attemptId = r.str();
    const error = { code: r.str(), message: r.str() };
    return { type, ...base, name, attemptId, error, drop: r.bool() };
  },
  apply(ctx, c): CommandResult {
    const rec = ctx.tables.table(rotationRecords).get(c.name);
    const p = rec?.pending;
    if (rec === undefined || p == null || p.attemptId !== c.attemptId) return { status: 'noop' };
    save(ctx, { name: c.name, pending: c.drop ? null : p, lastError: { code: c.error.code, message: c.error.message, at: c.at } });
    return { status: 'ok' };
  },
};

/** Specs of the rotation family (wire numbers 65-67; 68-69 reserved for it). */
export const rotationCommands: FamilySpecs<RotationCommand> = {
  'rotation.begin': begin,
  'rotation.commit': commit,
  'rotation.fail': fail,
};
