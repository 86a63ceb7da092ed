// On-disk (and in-snapshot) records of the state machine, and their deterministic encodings.
// Keys are strings (stored as UTF-8); their first letters partition the keyspace:
//
//   a              applied index and term (written in the same batch as the changes)
//   bc<name>\0<v>  sealed value of a version as written: formatVersion, alg, nonce, ciphertext, DEK
//   bw<name>\0<v>  re-wrapped DEK of a version, present only after a KMS re-wrap (a re-wrap
//                  writes this small record instead of rewriting the ciphertext record; one
//                  record per put keeps apply and restore batches small)
//   ms<name>       secret metadata and version list (in memory at runtime)
//   mt<name>       token;  mr<name> role;  ml<ip> lockout;  mn<id> member
//   md<seq>        idempotency table entry (seq zero-padded: key order = insertion order)
//   mg<what>       singletons: allowlist, bootstrap, watermark, lockout sweep, dedup counter,
//                  snapshot schedule
//   r...           the Raft log (raft-log.ts), never part of the state or a snapshot
import { hash } from 'node:crypto';
import { Reader, Writer, type LastString } from './bytes.js';
import type { RoleRule, RotationPolicy, SecretFormat } from './types.js';

/** Metadata of one version; the sealed bytes live in `bc`/`bw` records. */
export type VersionMeta = {
  version: number;
  createdAt: number;
  createdBy: string;
  format: SecretFormat;
  /** Soft-delete time (Vault `deletion_time`), null when live. */
  deletedAt: number | null;
  /** Ciphertext and wrapped DEK erased for good. */
  destroyed: boolean;
  formatVersion: number;
  alg: string;
  kmsKeyId: string;
  /** Rotation marker of the last re-wrap ('' = as written). */
  wrapMarker: string;
  sizeBytes: number;
  /**
   * sha256 of the `bc` record as a byte string (32 characters, one per byte, 0–255): lets the state
   * digest cover the sealed bytes kept on disk. A string, not a Uint8Array: every version of every
   * secret holds two in memory, and a 32-byte string takes 48 bytes of heap where a 32-byte
   * Uint8Array takes over 200 (docs/PERFORMANCE.md, memory). Stored as the 32 raw bytes.
   */
  ctDigest: string;
  /** sha256 of the wrapped DEK, a byte string like `ctDigest`. */
  dekDigest: string;
};

/** A secret: Vault KV v2-style metadata plus its retained versions (ascending). */
export type SecretRecord = {
  name: string;
  createdAt: number;
  updatedAt: number;
  /** Highest version ever written (Vault `current_version`); survives pruning and destroy. */
  currentVersion: number;
  maxVersions: number;
  casRequired: boolean;
  deleteVersionAfterSecs: number;
  description: string | null;
  rotation: RotationPolicy | null;
  /** Sorted by key. Replaced whole, never changed in place (most secrets share one empty list). */
  customMetadata: readonly (readonly [string, string])[];
  versions: VersionMeta[];
};

/** A token record. Only the sha256 of the raw token is ever stored. */
export type TokenRecord = {
  name: string;
  role: string;
  tokenHash: Uint8Array;
  createdAt: number;
  createdBy: string;
  expiresAt: number | null;
  revokedAt: number | null;
  rotatedAt: number | null;
};

/** A role. */
export type RoleRecord = { name: string; rules: RoleRule[]; rateLimit: string | null; updatedAt: number; maxTtlSecs: number | null };

/** Failures of one client IP, ascending, at most `MAX_FAILURES_KEPT`. */
export type LockoutRecord = { ip: string; failures: number[] };

/** A member of the cluster address book. */
export type MemberRecord = { id: string; raftAddr: string; apiAddr: string; updatedAt: number };

/** The replicated read allowlist. */
export type AllowlistRecord = { cidrs: string[]; updatedAt: number };

/** The bootstrap seed that was applied. */
export type BootstrapRecord = { tokenHash: Uint8Array; at: number };

/** KMS re-wrap watermark. */
export type WatermarkRecord = {
  marker: string;
  passStartedAt: number | null;
  passFinishedAt: number | null;
  rewrapped: number;
  failed: number;
  updatedAt: number;
};

/**
 * Where the scheduled snapshots stand (COFFER_SNAPSHOT_INTERVAL): the newest claimed slot, who
 * writes it and how that went, and the last success. Replicated, so a new leader continues the
 * schedule where the previous one left it.
 */
export type SnapshotScheduleRecord = {
  /** The newest claimed slot (ms). */
  slotAt: number;
  /** Its writer: the leader that claimed it. */
  nodeId: string;
  /** When the claim was proposed (proposer's clock). */
  claimedAt: number;
  /** `claimed` until the writer reports `done` or `failed` (a writer that lost leadership cannot report). */
  state: 'claimed' | 'done' | 'failed';
  /** When the last reported success was proposed; null before the first. */
  lastSuccessAt: number | null;
  lastSlotAt: number | null;
  lastIndex: number;
  lastSizeBytes: number;
  lastNodeId: string | null;
  /** The last reported failure, cleared by the next success. */
  lastError: string | null;
  lastErrorAt: number | null;
  /** Failures reported since the schedule began. */
  failures: number;
};

/** Outcome of one command, returned to the proposer and remembered for idempotent retries. */
export type ResultStatus =
  | 'ok'
  | 'noop'
  | 'not_found'
  | 'version_conflict'
  | 'cas_conflict'
  | 'cas_required'
  | 'already_exists'
  | 'role_not_found'
  | 'role_in_use'
  | 'immutable'
  | 'already_bootstrapped'
  | 'token_inactive'
  | 'hash_conflict'
  | 'stale'
  | 'invalid_snapshot'
  | 'already_decided'
  | 'self_approval'
  | 'nonce_used'
  | 'identity_inactive'
  | 'rotation_pending';

/** Append-only numbering of result statuses (they are persisted in the idempotency table). */
const STATUSES: readonly ResultStatus[] = [
  'ok',
  'noop',
  'not_found',
  'version_conflict',
  'cas_conflict',
  'cas_required',
  'already_exists',
  'role_not_found',
  'role_in_use',
  'immutable',
  'already_bootstrapped',
  'token_inactive',
  'hash_conflict',
  'stale',
  'invalid_snapshot',
  'already_decided',
  'self_approval',
  'nonce_used',
  'identity_inactive',
  'rotation_pending',
];

/**
 * Result of a command. `version`/`createdAt` for secret.put; `count` for commands over several
 * items; `currentVersion` on conflicts so the proposer can retry.
 */
export type CommandResult = {
  status: ResultStatus;
  version?: number;
  createdAt?: number;
  count?: number;
  currentVersion?: number;
};

export const FORMATS: readonly SecretFormat[] = ['raw', 'base64', 'userpass', 'kv'];

export const KEY = {
  applied: 'a',
  secret: 'ms',
  token: 'mt',
  role: 'mr',
  lockout: 'ml',
  member: 'mn',
  dedup: 'md',
  allowlist: 'mgallowlist',
  bootstrap: 'mgbootstrap',
  watermark: 'mgwatermark',
  sweep: 'mglockoutsweep',
  dedupSeq: 'mgdedupseq',
  snapshotSchedule: 'mgsnapshotschedule',
  blobCt: 'bc',
  blobDek: 'bw',
} as const;

/** Key of the sealed envelope of `name` version `v`. */
export function ctKey(name: string, v: number): string {
  return `${KEY.blobCt}${name}\0${v}`;
}

/** Key of the wrapped DEK of `name` version `v`. */
export function dekKey(name: string, v: number): string {
  return `${KEY.blobDek}${name}\0${v}`;
}

/**
 * SHA-256 of `b` (the version digests `ctDigest` / `dekDigest`). node:crypto's one-shot digest:
 * the same bytes as @noble/hashes' sha256 at a fraction of its cost, and apply hashes every
 * version on every replica.
 *
 * @param b - bytes to hash
 * @returns the digest as a byte string (32 characters, one per byte)
 */
export function sha256Digest(b: Uint8Array): string {
  // 'binary' is latin1: straight to the string, without the Buffer that 'buffer' would allocate.
  return hash('sha256', b, 'binary');
}

/** The custom metadata of every secret that has none: one shared, frozen empty list. */
export const NO_CUSTOM_METADATA: readonly (readonly [string, string])[] = Object.freeze([]);

/** Bytes of a version digest as stored. */
const DIGEST_BYTES = 32;

/**
 * Short strings that repeat across records (actors, algorithms, KMS key ids, wrap markers):
 * decoding shares one copy of each, so a million versions written by one token under one key do
 * not hold a million copies of the same few names. Bounded: past the cap, strings are kept as
 * decoded (correct, merely unshared).
 */
const interned = new Map<string, string>();
const INTERN_MAX_ENTRIES = 4096;
const INTERN_MAX_CHARS = 128;

/** The last actor, algorithm, KMS key id and wrap marker decoded (see `Reader.strLikeLast`). */
const lastCreatedBy: LastString = { bytes: null, str: '' };
const lastAlg: LastString = { bytes: null, str: '' };
const lastKmsKeyId: LastString = { bytes: null, str: '' };
const lastWrapMarker: LastString = { bytes: null, str: '' };

/**
 * @param s - a short string that repeats across records (actor, algorithm, KMS key id, marker)
 * @returns the shared copy of it
 */
export function intern(s: string): string {
  if (s.length > INTERN_MAX_CHARS) return s;
  const have = interned.get(s);
  if (have !== undefined) return have;
  if (interned.size < INTERN_MAX_ENTRIES) interned.set(s, s);
  return s;
}

/** Key of idempotency entry number `seq`. */
export function dedupKey(seq: number): string {
  return KEY.dedup + String(seq).padStart(16, '0');
}

function writeRotation(w: Writer, r: RotationPolicy | null): void {
  if (r === null) w.u8(0);
  else w.u8(1).u53(r.intervalSecs).u53(r.graceSecs).optStr(r.target);
}

function readRotation(r: Reader): RotationPolicy | null {
  if (!r.opt()) return null;
  return { intervalSecs: r.u53(), graceSecs: r.u53(), target: r.optStr() };
}

const REC_V1 = 1;

// One scratch writer for every record encoding: encodings never nest, and `finish()` copies the
// bytes out, so reuse is safe and saves an allocation per record on the apply and snapshot paths.
const scratch = new Writer(4096);

function header(): Writer {
  return scratch.reset().u8(REC_V1);
}

function open(b: Uint8Array): Reader {
  const r = new Reader(b, 'SM_CORRUPT_STORAGE');
  if (r.u8() !== REC_V1) r.fail('unknown record version');
  return r;
}

export function encodeSecret(s: SecretRecord): Uint8Array {
  const w = header();
  w.str(s.name).u53(s.createdAt).u53(s.updatedAt).u53(s.currentVersion).u53(s.maxVersions).bool(s.casRequired);
  w.u53(s.deleteVersionAfterSecs).optStr(s.description);
  writeRotation(w, s.rotation);
  w.u32(s.customMetadata.length);
  for (const [k, v] of s.customMetadata) w.str(k).str(v);
  w.u32(s.versions.length);
  for (const v of s.versions) {
    w.u53(v.version).u53(v.createdAt).str(v.createdBy).u8(FORMATS.indexOf(v.format)).optU53(v.deletedAt).bool(v.destroyed);
    w.u8(v.formatVersion).str(v.alg).str(v.kmsKeyId).str(v.wrapMarker).u53(v.sizeBytes).byteString(v.ctDigest, DIGEST_BYTES).byteString(v.dekDigest, DIGEST_BYTES);
  }
  return w.finish();
}

/**
 * Decodes a secret record. Every secret is held decoded in memory, so the result is built to be
 * small: shared copies of repeated short strings, arrays sized exactly, digests as byte strings, and nothing
 * that points into `b` (the caller's buffer is not kept alive by the record).
 */
export function decodeSecret(b: Uint8Array): SecretRecord {
  const r = open(b);
  const name = r.str();
  const createdAt = r.u53();
  const updatedAt = r.u53();
  const currentVersion = r.u53();
  const maxVersions = r.u53();
  const casRequired = r.bool();
  const deleteVersionAfterSecs = r.u53();
  const description = r.optStr();
  const rotation = readRotation(r);
  const nm = r.u32();
  let customMetadata: readonly (readonly [string, string])[] = NO_CUSTOM_METADATA;
  if (nm > 0) {
    const list = new Array<[string, string]>(Math.min(nm, r.remaining));
    for (let i = 0; i < nm; i++) list[i] = [intern(r.str()), r.str()];
    customMetadata = list;
  }
  const nv = r.u32();
  const versions: VersionMeta[] = nv === 0 ? [] : new Array<VersionMeta>(Math.min(nv, r.remaining));
  for (let i = 0; i < nv; i++) {
    versions[i] = {
      version: r.u53(),
      createdAt: r.u53(),
      createdBy: intern(r.strLikeLast(lastCreatedBy)),
      format: FORMATS[r.u8()] ?? r.fail('bad format'),
      deletedAt: r.optU53(),
      destroyed: r.bool(),
      formatVersion: r.u8(),
      alg: intern(r.strLikeLast(lastAlg)),
      kmsKeyId: intern(r.strLikeLast(lastKmsKeyId)),
      wrapMarker: intern(r.strLikeLast(lastWrapMarker)),
      sizeBytes: r.u53(),
      ctDigest: r.byteString(DIGEST_BYTES),
      dekDigest: r.byteString(DIGEST_BYTES),
    };
  }
  r.end();
  return { name, createdAt, updatedAt, currentVersion, maxVersions, casRequired, deleteVersionAfterSecs, description, rotation, customMetadata, versions };
}

export function encodeToken(t: TokenRecord): Uint8Array {
  return header()
    .str(t.name)
    .str(t.role)
    .bytes(t.tokenHash)
    .u53(t.createdAt)
    .str(t.createdBy)
    .optU53(t.expiresAt)
    .optU53(t.revokedAt)
    .optU53(t.rotatedAt)
    .finish();
}

export function decodeToken(b: Uint8Array): TokenRecord {
  const r = open(b);
  const t: TokenRecord = {
    name: r.str(),
    role: r.str(),
    tokenHash: r.bytes(),
    createdAt: r.u53(),
    createdBy: r.str(),
    expiresAt: r.optU53(),
    revokedAt: r.optU53(),
    rotatedAt: r.optU53(),
  };
  r.end();
  return t;
}

export function encodeRole(x: RoleRecord): Uint8Array {
  const w = header().str(x.name).u32(x.rules.length);
  for (const rule of x.rules) w.strs(rule.paths).strs(rule.actions);
  return w.optStr(x.rateLimit).u53(x.updatedAt).optU53(x.maxTtlSecs).finish();
}

export function decodeRole(b: Uint8Array): RoleRecord {
  const r = open(b);
  const name = r.str();
  const n = r.u32();
  const rules: RoleRule[] = [];
  for (let i = 0; i < n; i++) rules.push({ paths: r.strs(), actions: r.strs() });
  const rateLimit = r.optStr();
  const updatedAt = r.u53();
  // Records written before roles had a maximum token lifetime end here.
  const maxTtlSecs = r.remaining > 0 ? r.optU53() : null;
  const x = { name, rules, rateLimit, updatedAt, maxTtlSecs };
  r.end();
  return x;
}

export function encodeLockout(x: LockoutRecord): Uint8Array {
  const w = header().str(x.ip).u32(x.failures.length);
  for (const f of x.failures) w.u53(f);
  return w.finish();
}

export function decodeLockout(b: Uint8Array): LockoutRecord {
  const r = open(b);
  const ip = r.str();
  const n = r.u32();
  const failures: number[] = [];
  for (let i = 0; i < n; i++) failures.push(r.u53());
  r.end();
  return { ip, failures };
}

export function encodeMember(x: MemberRecord): Uint8Array {
  return header().str(x.id).str(x.raftAddr).str(x.apiAddr).u53(x.updatedAt).finish();
}

export function decodeMember(b: Uint8Array): MemberRecord {
  const r = open(b);
  const x = { id: r.str(), raftAddr: r.str(), apiAddr: r.str(), updatedAt: r.u53() };
  r.end();
  return x;
}

export function encodeAllowlist(x: AllowlistRecord): Uint8Array {
  return header().strs(x.cidrs).u53(x.updatedAt).finish();
}

export function decodeAllowlist(b: Uint8Array): AllowlistRecord {
  const r = open(b);
  const x = { cidrs: r.strs(), updatedAt: r.u53() };
  r.end();
  return x;
}

export function encodeBootstrap(x: BootstrapRecord): Uint8Array {
  return header().bytes(x.tokenHash).u53(x.at).finish();
}

export function decodeBootstrap(b: Uint8Array): BootstrapRecord {
  const r = open(b);
  const x = { tokenHash: r.bytes(), at: r.u53() };
  r.end();
  return x;
}

export function encodeWatermark(x: WatermarkRecord): Uint8Array {
  return header()
    .str(x.marker)
    .optU53(x.passStartedAt)
    .optU53(x.passFinishedAt)
    .u53(x.rewrapped)
    .u53(x.failed)
    .u53(x.updatedAt)
    .finish();
}

export function decodeWatermark(b: Uint8Array): WatermarkRecord {
  const r = open(b);
  const x = {
    marker: r.str(),
    passStartedAt: r.optU53(),
    passFinishedAt: r.optU53(),
    rewrapped: r.u53(),
    failed: r.u53(),
    updatedAt: r.u53(),
  };
  r.end();
  return x;
}

const SCHEDULE_STATES: readonly SnapshotScheduleRecord['state'][] = ['claimed', 'done', 'failed'];

export function encodeSnapshotSchedule(x: SnapshotScheduleRecord): Uint8Array {
  return header()
    .u53(x.slotAt)
    .str(x.nodeId)
    .u53(x.claimedAt)
    .u8(SCHEDULE_STATES.indexOf(x.state))
    .optU53(x.lastSuccessAt)
    .optU53(x.lastSlotAt)
    .u53(x.lastIndex)
    .u53(x.lastSizeBytes)
    .optStr(x.lastNodeId)
    .optStr(x.lastError)
    .optU53(x.lastErrorAt)
    .u53(x.failures)
    .finish();
}

export function decodeSnapshotSchedule(b: Uint8Array): SnapshotScheduleRecord {
  const r = open(b);
  const x: SnapshotScheduleRecord = {
    slotAt: r.u53(),
    nodeId: r.str(),
    claimedAt: r.u53(),
    state: SCHEDULE_STATES[r.u8()] ?? r.fail('unknown snapshot schedule state'),
    lastSuccessAt: r.optU53(),
    lastSlotAt: r.optU53(),
    lastIndex: r.u53(),
    lastSizeBytes: r.u53(),
    lastNodeId: r.optStr(),
    lastError: r.optStr(),
    lastErrorAt: r.optU53(),
    failures: r.u53(),
  };
  r.end();
  return x;
}

export function encodeNumber(n: number): Uint8Array {
  return header().u53(n).finish();
}

export function decodeNumber(b: Uint8Array): number {
  const r = open(b);
  const n = r.u53();
  r.end();
  return n;
}

export function writeResult(w: Writer, res: CommandResult): void {
  w.u8(STATUSES.indexOf(res.status)).optU53(res.version).optU53(res.createdAt).optU53(res.count).optU53(res.currentVersion);
}

export function readResult(r: Reader): CommandResult {
  const status = STATUSES[r.u8()] ?? r.fail('unknown result status');
  const res: CommandResult = { status };
  const version = r.optU53();
  const createdAt = r.optU53();
  const count = r.optU53();
  const currentVersion = r.optU53();
  if (version !== null) res.version = version;
  if (createdAt !== null) res.createdAt = createdAt;
  if (count !== null) res.count = count;
  if (currentVersion !== null) res.currentVersion = currentVersion;
  return res;
}

export function encodeDedup(requestId: string, res: CommandResult): Uint8Array {
  const w = header().str(requestId);
  writeResult(w, res);
  return w.finish();
}

export function decodeDedup(b: Uint8Array): { requestId: string; result: CommandResult } {
  const r = open(b);
  const requestId = r.str();
  const result = readResult(r);
  r.end();
  return { requestId, result };
}

/** Applied position record. */
export function encodeApplied(index: number, term: number): Uint8Array {
  return header().u53(index).u53(term).finish();
}

export function decodeApplied(b: Uint8Array): { index: number; term: number } {
  const r = open(b);
  const x = { index: r.u53(), term: r.u53() };
  r.end();
  return x;
}

/** `bc` record: the sealed value as written (its wrapped DEK may be superseded by a `bw` record). */
export function encodeCt(formatVersion: number, alg: string, nonce: Uint8Array, ciphertext: Uint8Array, wrappedDek: Uint8Array): Uint8Array {
  return header()
    .u8(formatVersion)
    .str(alg)
    .bytes(nonce)
    .bytes(ciphertext)
    .bytes(wrappedDek)
    .finish();
}

export function decodeCt(b: Uint8Array): { formatVersion: number; alg: string; nonce: Uint8Array; ciphertext: Uint8Array; wrappedDek: Uint8Array } {
  const r = open(b);
  const x = { formatVersion: r.u8(), alg: r.str(), nonce: r.bytes(), ciphertext: r.bytes(), wrappedDek: r.bytes() };
  r.end();
  return x;
}
