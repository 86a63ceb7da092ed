// Secret versions: put, metadata, soft-delete / undelete / destroy of versions, destroy-all.
import { KEY, FORMATS, NO_CUSTOM_METADATA, ctKey, encodeCt, intern, sha256Digest, type CommandResult, type SecretRecord, type VersionMeta } from '../records.js';
import type { RotationPolicy, SealedValue, SecretFormat } from '../types.js';
import { rotationRecords } from './rotation-records.js';
import {
  bad,
  checkBytes,
  checkInt,
  checkName,
  checkOptInt,
  checkRotation,
  cmpStr,
  readRotation,
  readSealed,
  writeRotation,
  writeSealed,
  type ApplyContext,
  type CommandBase,
  type CommandSpec,
  type FamilySpecs,
  nameActorWire,
} from './spec.js';

/** Vault's default number of retained versions. */
export const DEFAULT_MAX_VERSIONS = 10;

/** A new sealed version of a secret. */
export type SecretPutCommand = CommandBase & {
  type: 'secret.put';
  name: string;
  /** The version the proposer reserved: must equal the secret's current version + 1. */
  version: number;
  /** Check-and-set: expected current version (0 = the secret must not exist); null = no check. */
  cas: number | null;
  sealed: SealedValue;
  format: SecretFormat;
  /** Replaces the secret's description when not null. */
  description: string | null;
  /** Replaces the secret's rotation policy when not null. */
  rotation: RotationPolicy | null;
  actor: string;
};

/** Metadata update; every null field leaves the current value alone. */
export type SecretMetadataCommand = CommandBase & {
  type: 'secret.metadata';
  name: string;
  maxVersions: number | null;
  casRequired: boolean | null;
  /** Replaces the whole custom metadata map when not null. */
  customMetadata: Record<string, string> | null;
  description: string | null;
  /** `undefined`-free tri-state: 'keep', 'clear', or a new policy. */
  rotation: RotationPolicy | 'clear' | null;
  /** Soft-delete versions this many seconds after creation (0 = never); Vault's delete_version_after. */
  deleteVersionAfterSecs: number | null;
  actor: string;
};

/** Soft-delete, undelete or destroy listed versions (an empty list means the latest version). */
export type SecretVersionsCommand = CommandBase & {
  type: 'secret.delete' | 'secret.undelete' | 'secret.destroy';
  name: string;
  versions: number[];
  actor: string;
};

/** Erase every version and the metadata of a secret. */
export type SecretDestroyAllCommand = CommandBase & { type: 'secret.destroyAll'; name: string; actor: string };

/** The commands of this family. */
export type SecretCommand = SecretPutCommand | SecretMetadataCommand | SecretVersionsCommand | SecretDestroyAllCommand;

/**
 * When a version counts as deleted: its soft-delete time, or its automatic deletion time.
 *
 * @param s - the secret
 * @param v - one of its versions
 * @returns a time, or null when the version is not (going to be) deleted
 */
export function effectiveDeletedAt(s: SecretRecord, v: VersionMeta): number | null {
  if (v.deletedAt !== null) return v.deletedAt;
  return s.deleteVersionAfterSecs > 0 ? v.createdAt + s.deleteVersionAfterSecs * 1000 : null;
}

function newSecret(ctx: ApplyContext, name: string, at: number): SecretRecord {
  const s: SecretRecord = {
    name,
    createdAt: at,
    updatedAt: at,
    currentVersion: 0,
    maxVersions: DEFAULT_MAX_VERSIONS,
    casRequired: false,
    deleteVersionAfterSecs: 0,
    description: null,
    rotation: null,
    customMetadata: NO_CUSTOM_METADATA,
    versions: [],
  };
  ctx.tables.secrets.set(name, s);
  ctx.tables.namesChanged();
  return s;
}

function prune(ctx: ApplyContext, s: SecretRecord): void {
  // Vault semantics: beyond max_versions the oldest versions go, metadata and all.
  while (s.versions.length > s.maxVersions) {
    const old = s.versions.shift() as VersionMeta;
    if (!old.destroyed) ctx.changes.eraseVersion(s.name, old);
  }
}

const put: CommandSpec<SecretPutCommand> = {
  id: 2,
  version: 1,
  validate(c) {
    checkName(c.name, 'name');
    checkInt(c.version, 'version', 1);
    checkOptInt(c.cas, 'cas');
    if (!FORMATS.includes(c.format)) bad('format must be raw, base64, userpass or kv');
    checkInt(c.sealed.formatVersion, 'sealed.formatVersion');
    if (c.sealed.formatVersion > 255) bad('sealed.formatVersion must fit in a byte');
    checkBytes(c.sealed.nonce, 'sealed.nonce');
    checkBytes(c.sealed.ciphertext, 'sealed.ciphertext');
    checkBytes(c.sealed.wrappedDek, 'sealed.wrappedDek');
    if (typeof c.sealed.alg !== 'string' || typeof c.sealed.kmsKeyId !== 'string') bad('sealed.alg and kmsKeyId must be strings');
    if (c.rotation !== null) checkRotation(c.rotation);
  },
  write(w, c) {
    w.str(c.name).u53(c.version).optU53(c.cas);
    writeSealed(w, c.sealed);
    w.u8(FORMATS.indexOf(c.format)).optStr(c.description);
    if (c.rotation === null) w.u8(0);
    else writeRotation(w.u8(1), c.rotation);
    w.str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const version = r.u53();
    const cas = r.optU53();
    const sealed = readSealed(r);
    const format = FORMATS[r.u8()] ?? r.fail('unknown secret format');
    const description = r.optStr();
    const rotation = r.opt() ? readRotation(r) : null;
    return { type, ...base, name, version, cas, sealed, format, description, rotation, actor: r.str() };
  },
  apply(ctx, c): CommandResult {
    const existing = ctx.tables.secrets.get(c.name);
    const current = existing?.currentVersion ?? 0;
    if (c.cas === null && existing?.casRequired) return { status: 'cas_required', currentVersion: current };
    if (c.cas !== null && c.cas !== current) return { status: 'cas_conflict', currentVersion: current };
    if (c.version !== current + 1) return { status: 'version_conflict', currentVersion: current };
    // A rotation waiting for its target holds version current + 1 (rotation.ts): a write now would
    // leave the target with a password no version of this secret holds.
    if (ctx.tables.table(rotationRecords).get(c.name)?.pending != null) return { status: 'rotation_pending', currentVersion: current };
    const s = existing ?? newSecret(ctx, c.name, c.at);
    const ct = encodeCt(c.sealed.formatVersion, c.sealed.alg, c.sealed.nonce, c.sealed.ciphertext, c.sealed.wrappedDek);
    const dek = c.sealed.wrappedDek;
    // Held in memory for every secret, so kept small (as decodeSecret builds it): repeated names
    // shared, and an exact-size array (push and spread both reserve 17 slots).
    s.versions = s.versions.concat([
      {
        version: c.version,
        createdAt: c.at,
        createdBy: intern(c.actor),
        format: c.format,
        deletedAt: null,
        destroyed: false,
        formatVersion: c.sealed.formatVersion,
        alg: intern(c.sealed.alg),
        kmsKeyId: intern(c.sealed.kmsKeyId),
        wrapMarker: '',
        sizeBytes: c.sealed.ciphertext.length,
        ctDigest: sha256Digest(ct),
        dekDigest: sha256Digest(dek),
      },
    ]);
    s.currentVersion = c.version;
    s.updatedAt = c.at;
    if (c.description !== null) s.description = c.description;
    if (c.rotation !== null) {
      s.rotation = { ...c.rotation };
      ctx.tables.rotationChanged(s.name);
    }
    ctx.changes.putBlob(ctKey(c.name, c.version), ct);
    prune(ctx, s);
    ctx.changes.mark(KEY.secret + s.name);
    return { status: 'ok', version: c.version, createdAt: c.at };
  },
};

const metadata: CommandSpec<SecretMetadataCommand> = {
  id: 3,
  version: 1,
  validate(c) {
    checkName(c.name, 'name');
    checkOptInt(c.maxVersions, 'maxVersions', 1);
    checkOptInt(c.deleteVersionAfterSecs, 'deleteVersionAfterSecs');
    if (c.rotation !== null && c.rotation !== 'clear') checkRotation(c.rotation);
    if (c.customMetadata !== null) {
      for (const [k, v] of Object.entries(c.customMetadata)) if (typeof v !== 'string' || k.length === 0) bad('customMetadata must map non-empty keys to strings');
    }
  },
  write(w, c) {
    w.str(c.name).optU53(c.maxVersions);
    w.u8(c.casRequired === null ? 0 : c.casRequired ? 2 : 1);
    if (c.customMetadata === null) w.u8(0);
    else {
      const keys = Object.keys(c.customMetadata).sort();
      w.u8(1).u32(keys.length);
      for (const k of keys) w.str(k).str(c.customMetadata[k] as string);
    }
    w.optStr(c.description);
    if (c.rotation === null) w.u8(0);
    else if (c.rotation === 'clear') w.u8(1);
    else writeRotation(w.u8(2), c.rotation);
    w.optU53(c.deleteVersionAfterSecs).str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const maxVersions = r.optU53();
    const cr = r.u8();
    if (cr > 2) r.fail('bad casRequired');
    let customMetadata: Record<string, string> | null = null;
    if (r.opt()) {
      const n = r.u32();
      if (n > r.remaining / 8) r.fail('map length exceeds input');
      customMetadata = {};
      let prev: string | null = null;
      for (let i = 0; i < n; i++) {
        const k = r.str();
        // Canonical form: strictly ascending keys; anything else is not our encoding.
        if (prev !== null && !(k > prev)) r.fail('customMetadata keys not in canonical order');
        prev = k;
        // defineProperty, not `customMetadata[k] = …`: a key named "__proto__" is data here, and
        // plain assignment would drop it (the bytes would no longer be this command's encoding).
        Object.defineProperty(customMetadata, k, { value: r.str(), enumerable: true, writable: true, configurable: true });
      }
    }
    const description = r.optStr();
    const rt = r.u8();
    const rotation = rt === 0 ? null : rt === 1 ? 'clear' : rt === 2 ? readRotation(r) : r.fail('bad rotation tag');
    const deleteVersionAfterSecs = r.optU53();
    return {
      type,
      ...base,
      name,
      maxVersions,
      casRequired: cr === 0 ? null : cr === 2,
      customMetadata,
      description,
      rotation,
      deleteVersionAfterSecs,
      actor: r.str(),
    };
  },
  apply(ctx, c) {
    const s = ctx.tables.secrets.get(c.name) ?? newSecret(ctx, c.name, c.at);
    if (c.maxVersions !== null) s.maxVersions = c.maxVersions;
    if (c.casRequired !== null) s.casRequired = c.casRequired;
    if (c.customMetadata !== null) s.customMetadata = Object.entries(c.customMetadata).sort((a, b) => cmpStr(a[0], b[0]));
    if (c.description !== null) s.description = c.description;
    if (c.rotation === 'clear') s.rotation = null;
    else if (c.rotation !== null) s.rotation = { ...c.rotation };
    ctx.tables.rotationChanged(s.name);
    if (c.deleteVersionAfterSecs !== null) s.deleteVersionAfterSecs = c.deleteVersionAfterSecs;
    s.updatedAt = c.at;
    prune(ctx, s);
    ctx.changes.mark(KEY.secret + s.name);
    return { status: 'ok', currentVersion: s.currentVersion };
  },
};

/** One spec object per wire number; the shape (and the code) is shared by the three types. */
function versionsSpec(id: number): CommandSpec<SecretVersionsCommand> {
  return {
    id,
    version: 1,
    validate(c) {
      checkName(c.name, 'name');
      if (!Array.isArray(c.versions)) bad('versions must be an array');
      for (const v of c.versions) checkInt(v, 'versions[]', 1);
    },
    write(w, c) {
      w.str(c.name).u32(c.versions.length);
      for (const v of c.versions) w.u53(v);
      w.str(c.actor);
    },
    read(r, base, type) {
      const name = r.str();
      const n = r.u32();
      if (n > r.remaining / 8) r.fail('versions length exceeds input');
      const versions: number[] = [];
      for (let i = 0; i < n; i++) versions.push(r.u53());
      return { type, ...base, name, versions, actor: r.str() };
    },
    apply(ctx, c) {
      const s = ctx.tables.secrets.get(c.name);
      if (!s) return { status: 'not_found' };
      const wanted = c.versions.length === 0 ? [s.currentVersion] : c.versions;
      let count = 0;
      for (const v of wanted) {
        const meta = s.versions.find((m) => m.version === v);
        if (!meta || meta.destroyed) continue;
        if (c.type === 'secret.delete' && meta.deletedAt === null) {
          meta.deletedAt = c.at;
          count++;
        } else if (c.type === 'secret.undelete' && meta.deletedAt !== null) {
          meta.deletedAt = null;
          count++;
        } else if (c.type === 'secret.destroy') {
          meta.destroyed = true;
          ctx.changes.eraseVersion(s.name, meta);
          count++;
        }
      }
      if (count === 0) return { status: 'noop', count: 0, currentVersion: s.currentVersion };
      s.updatedAt = c.at;
      ctx.changes.mark(KEY.secret + s.name);
      return { status: 'ok', count, currentVersion: s.currentVersion };
    },
  };
}

const destroyAll: CommandSpec<SecretDestroyAllCommand> = {
  id: 7,
  version: 1,
  ...nameActorWire((n) => checkName(n, 'name')),
  apply(ctx, c) {
    const s = ctx.tables.secrets.get(c.name);
    if (!s) return { status: 'not_found' };
    for (const v of s.versions) if (!v.destroyed) ctx.changes.eraseVersion(c.name, v);
    ctx.tables.secrets.delete(c.name);
    ctx.tables.rotationChanged(c.name);
    ctx.tables.namesChanged();
    ctx.changes.mark(KEY.secret + c.name);
    // A pending rotation of the erased secret goes with it (a later put starts again at version 1).
    if (ctx.tables.table(rotationRecords).delete(c.name)) ctx.changes.mark(rotationRecords.prefix + c.name);
    return { status: 'ok', count: s.versions.length };
  },
};

/** Specs of the secret family. */
export const secretCommands: FamilySpecs<SecretCommand> = {
  'secret.put': put,
  'secret.metadata': metadata,
  'secret.delete': versionsSpec(4),
  'secret.undelete': versionsSpec(5),
  'secret.destroy': versionsSpec(6),
  'secret.destroyAll': destroyAll,
};
