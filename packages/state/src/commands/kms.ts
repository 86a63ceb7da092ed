// KMS re-wrap: one version's DEK moved onto current key material, and the worker's watermark.
import { KEY, dekKey, intern, sha256Digest } from '../records.js';
import { checkBytes, checkInt, checkName, checkOptInt, type CommandBase, type CommandSpec, type FamilySpecs } from './spec.js';

/** Re-wrap one version's DEK onto current KMS key material. */
export type KmsRewrapCommand = CommandBase & {
  type: 'kms.rewrap';
  name: string;
  version: number;
  wrappedDek: Uint8Array;
  kmsKeyId: string;
  /** The key id the worker read; a version wrapped under another id since then is left alone. */
  expectedKmsKeyId: string;
  /** The rotation marker this pass works towards; a version already at it is left alone. */
  marker: string;
};

/** Progress marker of the re-wrap worker. */
export type KmsWatermarkCommand = CommandBase & {
  type: 'kms.watermark';
  marker: string;
  passStartedAt: number | null;
  passFinishedAt: number | null;
  rewrapped: number;
  failed: number;
};

/** The commands of this family. */
export type KmsCommand = KmsRewrapCommand | KmsWatermarkCommand;

const rewrap: CommandSpec<KmsRewrapCommand> = {
  id: 16,
  version: 1,
  validate(c) {
    checkName(c.name, 'name');
    checkInt(c.version, 'version', 1);
    checkBytes(c.wrappedDek, 'wrappedDek');
  },
  write(w, c) {
    w.str(c.name).u53(c.version).bytes(c.wrappedDek).str(c.kmsKeyId).str(c.expectedKmsKeyId).str(c.marker);
  },
  read(r, base, type) {
    return {
      type,
      ...base,
      name: r.str(),
      version: r.u53(),
      wrappedDek: r.bytes(),
      kmsKeyId: r.str(),
      expectedKmsKeyId: r.str(),
      marker: r.str(),
    };
  },
  apply(ctx, c) {
    const s = ctx.tables.secrets.get(c.name);
    const v = s?.versions.find((m) => m.version === c.version);
    if (!s || !v) return { status: 'not_found' };
    // Idempotent: a destroyed version, one already at this marker, or one re-wrapped under another
    // key since the worker read it is left alone.
    if (v.destroyed || v.wrapMarker === c.marker || v.kmsKeyId !== c.expectedKmsKeyId) return { status: 'stale' };
    const dek = c.wrappedDek.slice();
    v.kmsKeyId = intern(c.kmsKeyId);
    v.wrapMarker = intern(c.marker);
    v.dekDigest = sha256Digest(dek);
    ctx.changes.putBlob(dekKey(c.name, c.version), dek);
    ctx.changes.mark(KEY.secret + s.name);
    return { status: 'ok', version: c.version };
  },
};

const watermark: CommandSpec<KmsWatermarkCommand> = {
  id: 17,
  version: 1,
  validate(c) {
    checkOptInt(c.passStartedAt, 'passStartedAt');
    checkOptInt(c.passFinishedAt, 'passFinishedAt');
    checkInt(c.rewrapped, 'rewrapped');
    checkInt(c.failed, 'failed');
  },
  write(w, c) {
    w.str(c.marker).optU53(c.passStartedAt).optU53(c.passFinishedAt).u53(c.rewrapped).u53(c.failed);
  },
  read(r, base, type) {
    return {
      type,
      ...base,
      marker: r.str(),
      passStartedAt: r.optU53(),
      passFinishedAt: r.optU53(),
      rewrapped: r.u53(),
      failed: r.u53(),
    };
  },
  apply(ctx, c) {
    ctx.tables.watermark = {
      marker: c.marker,
      passStartedAt: c.passStartedAt,
      passFinishedAt: c.passFinishedAt,
      rewrapped: c.rewrapped,
      failed: c.failed,
      updatedAt: c.at,
    };
    ctx.changes.mark(KEY.watermark);
    return { status: 'ok' };
  },
};

/** Specs of the KMS family. */
export const kmsCommands: FamilySpecs<KmsCommand> = {
  'kms.rewrap': rewrap,
  'kms.watermark': watermark,
};
