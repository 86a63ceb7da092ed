// Transit keys (encryption as a service): create, rotate, configure, delete.
//
// A transit key is a list of key versions, each a 32-byte key SEALED by the proposer exactly like
// a secret value (an Envelope under the key provider, context `transit:{type}:{name}`, version =
// the key version; see @coffer/crypto `sealTransitKey`). Only those envelope bytes ever enter a
// command, the log, this state or a snapshot: this package never sees a key in the clear
// (ARCHITECTURE.md: `state` never calls a KMS).
//
// Encrypt/decrypt/rewrap/datakey are not commands: a node opens the versions it needs from its
// applied state after a read barrier. Only the key's life cycle goes through Raft.
import { Reader, Writer } from '../bytes.js';
import type { CommandResult } from '../records.js';
import type { RecordTable } from '../state-tables.js';
import type { SealedValue } from '../types.js';
import {
  MAX_ID_BYTES,
  bad,
  checkBytes,
  checkInt,
  checkName,
  readSealed,
  writeSealed,
  type CommandBase,
  type CommandSpec,
  type FamilySpecs,
  nameActorWire,
} from './spec.js';

/** Key types (names as in @coffer/crypto `TransitKeyType`; declared here structurally). */
export type TransitKeyTypeName = 'xchacha20-poly1305' | 'aes256-gcm';

/** Every key type, in wire order (the record and the commands store the index). Append-only. */
export const TRANSIT_KEY_TYPE_NAMES: readonly TransitKeyTypeName[] = ['xchacha20-poly1305', 'aes256-gcm'];

/**
 * One stored key version: its sealed key, when it was made, and the KMS re-wrap pass that last
 * moved its wrapped DEK (`''`: none yet), as for secret versions.
 */
export type TransitKeyVersionRecord = { sealed: SealedValue; createdAt: number; wrapMarker: string };

/** A transit key as replicated. Key versions are sealed; nothing here is key material in the clear. */
export type TransitKeyRecord = {
  name: string;
  type: TransitKeyTypeName;
  /** Newest version (encryption uses it); versions 1..latestVersion are all stored. */
  latestVersion: number;
  /** Vault's `min_decryption_version`: 1 ≤ min ≤ latestVersion. */
  minDecryptionVersion: number;
  /** Whether `transit.delete` may remove the key (Vault's `deletion_allowed`; default false). */
  deletionAllowed: boolean;
  createdAt: number;
  /** version → sealed key version. */
  versions: Map<number, TransitKeyVersionRecord>;
};

// Record format 1 had no wrap markers (read as ''); format 2 appends one per version.
const REC_V1 = 1;
const REC_V2 = 2;

function writeType(w: Writer, t: TransitKeyTypeName): void {
  w.u8(TRANSIT_KEY_TYPE_NAMES.indexOf(t));
}

function readType(r: Reader): TransitKeyTypeName {
  const t = TRANSIT_KEY_TYPE_NAMES[r.u8()];
  if (t === undefined) r.fail('unknown transit key type');
  return t;
}

function checkType(t: unknown): void {
  if (!TRANSIT_KEY_TYPE_NAMES.includes(t as TransitKeyTypeName)) bad(`type must be one of ${TRANSIT_KEY_TYPE_NAMES.join(', ')}`);
}

function checkSealed(s: SealedValue, what: string): void {
  if (s === null || typeof s !== 'object') bad(`${what} must be a sealed value`);
  checkInt(s.formatVersion, `${what}.formatVersion`, 1);
  checkName(s.alg, `${what}.alg`, MAX_ID_BYTES);
  checkBytes(s.nonce, `${what}.nonce`);
  checkBytes(s.ciphertext, `${what}.ciphertext`);
  checkBytes(s.wrappedDek, `${what}.wrappedDek`);
  if (typeof s.kmsKeyId !== 'string') bad(`${what}.kmsKeyId must be a string`);
}

/** Transit keys by name (`mk<name>`). */
export const transitKeys: RecordTable<TransitKeyRecord> = {
  prefix: 'mk',
  encode: (k) => {
    const w = new Writer(256).u8(REC_V2).str(k.name);
    writeType(w, k.type);
    w.u32(k.latestVersion).u32(k.minDecryptionVersion).bool(k.deletionAllowed).u53(k.createdAt);
    // Deterministic: versions in ascending order whatever the map's insertion order.
    const versions = [...k.versions.keys()].sort((a, b) => a - b);
    w.u32(versions.length);
    for (const v of versions) {
      const kv = k.versions.get(v) as TransitKeyVersionRecord;
      w.u32(v).u53(kv.createdAt);
      writeSealed(w, kv.sealed);
      w.str(kv.wrapMarker);
    }
    return w.finish();
  },
  decode: (b) => {
    const r = new Reader(b, 'SM_CORRUPT_STORAGE');
    const format = r.u8();
    if (format !== REC_V1 && format !== REC_V2) r.fail('unknown transit key record version');
    const name = r.str();
    const type = readType(r);
    const latestVersion = r.u32();
    const minDecryptionVersion = r.u32();
    const deletionAllowed = r.bool();
    const createdAt = r.u53();
    const n = r.u32();
    if (n !== latestVersion || minDecryptionVersion < 1 || minDecryptionVersion > latestVersion) r.fail('transit key versions do not match its policy');
    const versions = new Map<number, TransitKeyVersionRecord>();
    for (let i = 0; i < n; i++) {
      const v = r.u32();
      if (v !== i + 1) r.fail('transit key versions are not 1..latest');
      const at = r.u53();
      const sealed = readSealed(r);
      versions.set(v, { createdAt: at, sealed, wrapMarker: format === REC_V1 ? '' : r.str() });
    }
    r.end();
    return { name, type, latestVersion, minDecryptionVersion, deletionAllowed, createdAt, versions };
  },
};

/** Create a key with its first version (sealed by the proposer). */
export type TransitCreateCommand = CommandBase & { type: 'transit.create'; name: string; keyType: TransitKeyTypeName; sealed: SealedValue; actor: string };

/** Add version `version` (must be latest + 1 at apply) sealed by the proposer. */
export type TransitRotateCommand = CommandBase & { type: 'transit.rotate'; name: string; version: number; sealed: SealedValue; actor: string };

/** Change a key's policy; a null field is left as it is. */
export type TransitConfigCommand = CommandBase & {
  type: 'transit.config';
  name: string;
  minDecryptionVersion: number | null;
  deletionAllowed: boolean | null;
  actor: string;
};

/** Delete a key and every version (only when `deletionAllowed`). */
export type TransitDeleteCommand = CommandBase & { type: 'transit.delete'; name: string; actor: string };

/**
 * The KMS re-wrap worker moved one key version's DEK onto current key material (KMS ReEncrypt; the
 * sealed key itself is untouched). Applies only while the version is still wrapped under
 * `expectedKmsKeyId`, was created at `versionCreatedAt` (not a re-created key of the same name)
 * and is not at `marker` yet, so a repeated or concurrent re-wrap is a no-op (`stale`).
 */
export type TransitRewrapCommand = CommandBase & {
  type: 'transit.rewrap';
  name: string;
  version: number;
  versionCreatedAt: number;
  wrappedDek: Uint8Array;
  kmsKeyId: string;
  expectedKmsKeyId: string;
  marker: string;
};

/** The commands of this family. */
export type TransitCommand = TransitCreateCommand | TransitRotateCommand | TransitConfigCommand | TransitDeleteCommand | TransitRewrapCommand;

/**
 * A key by name.
 *
 * @param tables - the state machine (`StateMachine.table`)
 * @param name - key name
 * @returns the record (do not mutate), or undefined
 */
export function transitKeyByName(tables: TransitTables, name: string): Readonly<TransitKeyRecord> | undefined {
  return tables.table(transitKeys).get(name);
}

/**
 * Every key, sorted by name.
 *
 * @param tables - the state machine
 * @returns the records (do not mutate)
 */
export function listTransitKeys(tables: TransitTables): Readonly<TransitKeyRecord>[] {
  return [...tables.table(transitKeys).values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A key version the re-wrap worker has still to move to `marker`. */
export type TransitRewrapItem = { name: string; version: number; versionCreatedAt: number; kmsKeyId: string };

/**
 * Key versions not yet re-wrapped to `marker`, by key name then version.
 *
 * @param tables - the state machine
 * @param marker - the pass's marker
 * @param limit - most items returned
 * @returns the items (their sealed values are read from the record when re-wrapped)
 */
export function transitRewrapPending(tables: TransitTables, marker: string, limit: number): TransitRewrapItem[] {
  const out: TransitRewrapItem[] = [];
  for (const k of listTransitKeys(tables)) {
    for (const [version, kv] of [...k.versions].sort((a, b) => a[0] - b[0])) {
      if (kv.wrapMarker === marker) continue;
      if (out.length >= limit) return out;
      out.push({ name: k.name, version, versionCreatedAt: kv.createdAt, kmsKeyId: kv.sealed.kmsKeyId });
    }
  }
  return out;
}

/** What the query functions need: the family tables. */
export type TransitTables = { table<R>(def: RecordTable<R>): ReadonlyMap<string, Readonly<R>> };

function checkKeyName(n: unknown): void {
  checkName(n, 'name', 64);
}

const create: CommandSpec<TransitCreateCommand> = {
  id: 50,
  version: 1,
  validate(c) {
    checkKeyName(c.name);
    checkType(c.keyType);
    checkSealed(c.sealed, 'sealed');
  },
  write(w, c) {
    w.str(c.name);
    writeType(w, c.keyType);
    writeSealed(w, c.sealed);
    w.str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const keyType = readType(r);
    const sealed = readSealed(r);
    return { type, ...base, name, keyType, sealed, actor: r.str() };
  },
  apply(ctx, c): CommandResult {
    const table = ctx.tables.table(transitKeys);
    const old = table.get(c.name);
    if (old !== undefined) return { status: 'already_exists', version: old.latestVersion, createdAt: old.createdAt };
    table.set(c.name, {
      name: c.name,
      type: c.keyType,
      latestVersion: 1,
      minDecryptionVersion: 1,
      deletionAllowed: false,
      createdAt: c.at,
      versions: new Map([[1, { sealed: c.sealed, createdAt: c.at, wrapMarker: '' }]]),
    });
    ctx.changes.mark(transitKeys.prefix + c.name);
    return { status: 'ok', version: 1, createdAt: c.at };
  },
};

const rotate: CommandSpec<TransitRotateCommand> = {
  id: 51,
  version: 1,
  validate(c) {
    checkKeyName(c.name);
    checkInt(c.version, 'version', 2);
    if (c.version > 0xffffffff) bad('version must fit in 32 bits');
    checkSealed(c.sealed, 'sealed');
  },
  write(w, c) {
    w.str(c.name).u32(c.version);
    writeSealed(w, c.sealed);
    w.str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const version = r.u32();
    const sealed = readSealed(r);
    return { type, ...base, name, version, sealed, actor: r.str() };
  },
  apply(ctx, c): CommandResult {
    const table = ctx.tables.table(transitKeys);
    const k = table.get(c.name);
    if (k === undefined) return { status: 'not_found' };
    // The envelope was sealed for exactly this version (its AAD binds it): it cannot be stored
    // under another one. A concurrent rotation that won the number makes this one a conflict.
    if (c.version !== k.latestVersion + 1) return { status: 'version_conflict', currentVersion: k.latestVersion };
    const versions = new Map(k.versions);
    versions.set(c.version, { sealed: c.sealed, createdAt: c.at, wrapMarker: '' });
    table.set(c.name, { ...k, latestVersion: c.version, versions });
    ctx.changes.mark(transitKeys.prefix + c.name);
    return { status: 'ok', version: c.version, createdAt: c.at };
  },
};

const config: CommandSpec<TransitConfigCommand> = {
  id: 52,
  version: 1,
  validate(c) {
    checkKeyName(c.name);
    if (c.minDecryptionVersion !== null) {
      checkInt(c.minDecryptionVersion, 'minDecryptionVersion', 1);
      if (c.minDecryptionVersion > 0xffffffff) bad('minDecryptionVersion must fit in 32 bits');
    }
    if (c.deletionAllowed !== null && typeof c.deletionAllowed !== 'boolean') bad('deletionAllowed must be a boolean or null');
  },
  write(w, c) {
    w.str(c.name).bool(c.minDecryptionVersion !== null);
    if (c.minDecryptionVersion !== null) w.u32(c.minDecryptionVersion);
    w.bool(c.deletionAllowed !== null);
    if (c.deletionAllowed !== null) w.bool(c.deletionAllowed);
    w.str(c.actor);
  },
  read(r, base, type) {
    const name = r.str();
    const minDecryptionVersion = r.bool() ? r.u32() : null;
    if (minDecryptionVersion === 0) r.fail('minDecryptionVersion must be >= 1');
    const deletionAllowed = r.bool() ? r.bool() : null;
    return { type, ...base, name, minDecryptionVersion, deletionAllowed, actor: r.str() };
  },
  apply(ctx, c): CommandResult {
    const table = ctx.tables.table(transitKeys);
    const k = table.get(c.name);
    if (k === undefined) return { status: 'not_found' };
    const min = c.minDecryptionVersion ?? k.minDecryptionVersion;
    // Invariant: 1 ≤ min ≤ latest. The proposer checks it against the state it read; latest only
    // grows, so this refusal only meets a command built against another incarnation of the key.
    if (min > k.latestVersion) return { status: 'stale', currentVersion: k.latestVersion };
    table.set(c.name, { ...k, minDecryptionVersion: min, deletionAllowed: c.deletionAllowed ?? k.deletionAllowed });
    ctx.changes.mark(transitKeys.prefix + c.name);
    return { status: 'ok', version: k.latestVersion };
  },
};

const del: CommandSpec<TransitDeleteCommand> = {
  id: 53,
  version: 1,
  ...nameActorWire(checkKeyName),
  apply(ctx, c): CommandResult {
    const table = ctx.tables.table(transitKeys);
    const k = table.get(c.name);
    if (k === undefined) return { status: 'not_found' };
    // Checked here, not only by the proposer: a config that turned deletion off and was ordered
    // first wins on every replica.
    if (!k.deletionAllowed) return { status: 'immutable' };
    table.delete(c.name);
    ctx.changes.mark(transitKeys.prefix + c.name);
    return { status: 'ok', count: k.latestVersion };
  },
};

const rewrap: CommandSpec<TransitRewrapCommand> = {
  id: 54,
  version: 1,
  validate(c) {
    checkKeyName(c.name);
    checkInt(c.version, 'version', 1);
    if (c.version > 0xffffffff) bad('version must fit in 32 bits');
    checkInt(c.versionCreatedAt, 'versionCreatedAt');
    checkBytes(c.wrappedDek, 'wrappedDek');
    if (typeof c.kmsKeyId !== 'string' || typeof c.expectedKmsKeyId !== 'string' || typeof c.marker !== 'string') bad('kmsKeyId, expectedKmsKeyId and marker must be strings');
  },
  write(w, c) {
    w.str(c.name).u32(c.version).u53(c.versionCreatedAt).bytes(c.wrappedDek).str(c.kmsKeyId).str(c.expectedKmsKeyId).str(c.marker);
  },
  read(r, base, type) {
    const name = r.str();
    const version = r.u32();
    const versionCreatedAt = r.u53();
    const wrappedDek = r.bytes();
    const kmsKeyId = r.str();
    const expectedKmsKeyId = r.str();
    return { type, ...base, name, version, versionCreatedAt, wrappedDek, kmsKeyId, expectedKmsKeyId, marker: r.str() };
  },
  apply(ctx, c): CommandResult {
    const table = ctx.tables.table(transitKeys);
    const k = table.get(c.name);
    const kv = k?.versions.get(c.version);
    if (k === undefined || kv === undefined) return { status: 'not_found' };
    if (kv.createdAt !== c.versionCreatedAt || kv.wrapMarker === c.marker || kv.sealed.kmsKeyId !== c.expectedKmsKeyId) return { status: 'stale' };
    const versions = new Map(k.versions);
    versions.set(c.version, { ...kv, sealed: { ...kv.sealed, wrappedDek: c.wrappedDek, kmsKeyId: c.kmsKeyId }, wrapMarker: c.marker });
    table.set(c.name, { ...k, versions });
    ctx.changes.mark(transitKeys.prefix + c.name);
    return { status: 'ok', version: c.version };
  },
};

/** The specs of the transit family (wire numbers 50–59 are reserved for it). */
export const transitCommands: FamilySpecs<TransitCommand> = {
  'transit.create': create,
  'transit.rotate': rotate,
  'transit.config': config,
  'transit.delete': del,
  'transit.rewrap': rewrap,
};
