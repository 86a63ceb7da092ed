// The replicated command set and its wire codec.
//
// Wire format: [formatVersion u8][type u8][payload]. The payload is a hand-written deterministic
// binary encoding (see bytes.ts): one command has exactly one byte string, so golden fixtures pin
// the format and two replicas never disagree on what a byte string means.
//
// Rules (ARCHITECTURE.md "Commands and upgrades", STYLE.md §5):
// - Type numbers are append-only. A retired type keeps its number with a `Deprecated` comment.
// - A new format of an existing type gets the next version number; the decoder keeps reading
//   every older version and `upcast` lifts it to the current shape before apply.
// - Unknown type or version is a typed error, never a guess; the node stops applying.
// - Fixtures test/fixtures/commands/<type>.v<N>.bin are only ever added to.
import { Reader, Writer } from './bytes.js';
import { StateError } from './errors.js';
import type { RoleRule, RotationPolicy, SealedValue, SecretFormat } from './types.js';

/** Fields every command carries. `at` is the proposer's clock (ms); apply never reads a clock. */
export type CommandBase = { requestId: string; at: number };

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

/** Create a token record. `tokenHash` is sha256 of the raw token; the raw token never enters state. */
export type TokenCreateCommand = CommandBase & {
  type: 'token.create';
  name: string;
  role: string;
  tokenHash: Uint8Array;
  expiresAt: number | null;
  actor: string;
};

/** Revoke a token by name. */
export type TokenRevokeCommand = CommandBase & { type: 'token.revoke'; name: string; actor: string };

/** Replace a live token's hash (the old raw token stops working). */
export type TokenRotateCommand = CommandBase & {
  type: 'token.rotate';
  name: string;
  tokenHash: Uint8Array;
  /** New expiry when not null; null keeps the current one. */
  expiresAt: number | null;
  actor: string;
};

/** Purge records of tokens that are revoked or expired as of `at` (others in the list are left alone). */
export type TokenExpireCommand = CommandBase & { type: 'token.expire'; names: string[] };

/** Create or replace a role (not `admin`). */
export type RolePutCommand = CommandBase & {
  type: 'role.put';
  name: string;
  rules: RoleRule[];
  rateLimit: string | null;
  actor: string;
  /** Longest lifetime of a token of this role, in seconds (null: the cluster's cap). Since v2. */
  maxTtlSecs: number | null;
};

/** Delete a role (refused while a live token uses it; `admin` cannot be deleted). */
export type RoleDeleteCommand = CommandBase & { type: 'role.delete'; name: string; actor: string };

/** Replace the read allowlist (CIDRs validated by the server, stored as given). */
export type AllowlistReplaceCommand = CommandBase & { type: 'allowlist.replace'; cidrs: string[]; actor: string };

/**
 * First-start seed of the read allowlist (`COFFER_READ_ALLOWLIST`) on a cluster started without a
 * bootstrap token: applied only while no allowlist was ever set, a no-op after that.
 */
export type AllowlistSeedCommand = CommandBase & { type: 'allowlist.seed'; cidrs: string[] };

/** First-start seed: token `bootstrap-admin` with role `admin`, and the initial allowlist. */
export type BootstrapCommand = CommandBase & { type: 'bootstrap'; tokenHash: Uint8Array; cidrs: string[] };

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

/** One failed authentication from a client IP (cluster-wide lockout). */
export type AuthFailureCommand = CommandBase & {
  type: 'auth.failure';
  ip: string;
  /** How long failure records are worth keeping: max(window, lockout) of the proposer's policy. */
  retainMs: number;
};

/** Clear the failures of a client IP (after a successful authentication). */
export type AuthResetCommand = CommandBase & { type: 'auth.reset'; ip: string };

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

/** Does nothing (leader's barrier, upgrade probes). */
export type NoopCommand = CommandBase & { type: 'noop' };

/** Every command, in its current shape. */
export type Command =
  | NoopCommand
  | SecretPutCommand
  | SecretMetadataCommand
  | SecretVersionsCommand
  | SecretDestroyAllCommand
  | TokenCreateCommand
  | TokenRevokeCommand
  | TokenRotateCommand
  | TokenExpireCommand
  | RolePutCommand
  | RoleDeleteCommand
  | AllowlistReplaceCommand
  | BootstrapCommand
  | KmsRewrapCommand
  | KmsWatermarkCommand
  | AuthFailureCommand
  | AuthResetCommand
  | MemberUpsertCommand
  | MemberRemoveCommand
  | StateRestoreCommand
  | AllowlistSeedCommand
  | SnapshotScheduleCommand;

/** Every command type name. */
export type CommandType = Command['type'];

/**
 * Wire type numbers. Append-only: never renumber, never reuse.
 */
export const COMMAND_TYPE_IDS: Readonly<Record<CommandType, number>> = Object.freeze({
  noop: 1,
  'secret.put': 2,
  'secret.metadata': 3,
  'secret.delete': 4,
  'secret.undelete': 5,
  'secret.destroy': 6,
  'secret.destroyAll': 7,
  'token.create': 8,
  'token.revoke': 9,
  'token.rotate': 10,
  'token.expire': 11,
  'role.put': 12,
  'role.delete': 13,
  'allowlist.replace': 14,
  bootstrap: 15,
  'kms.rewrap': 16,
  'kms.watermark': 17,
  'auth.failure': 18,
  'auth.reset': 19,
  'member.upsert': 20,
  'member.remove': 21,
  'state.restore': 22,
  'allowlist.seed': 23,
  'snapshot.schedule': 24,
});

/**
 * The newest format version of each command type this build can decode (and the one it encodes).
 * A node advertises this table; the leader proposes a type/version only once every voter lists it.
 */
export const SUPPORTED_COMMAND_VERSIONS: Readonly<Record<CommandType, number>> = Object.freeze({
  noop: 1,
  'secret.put': 1,
  'secret.metadata': 1,
  'secret.delete': 1,
  'secret.undelete': 1,
  'secret.destroy': 1,
  'secret.destroyAll': 1,
  'token.create': 1,
  'token.revoke': 1,
  'token.rotate': 1,
  'token.expire': 1,
  'role.put': 2,
  'role.delete': 1,
  'allowlist.replace': 1,
  bootstrap: 1,
  'kms.rewrap': 1,
  'kms.watermark': 1,
  'auth.failure': 1,
  'auth.reset': 1,
  'member.upsert': 1,
  'member.remove': 1,
  'state.restore': 1,
  'allowlist.seed': 1,
  'snapshot.schedule': 1,
});

const TYPE_BY_ID: ReadonlyMap<number, CommandType> = new Map(
  (Object.entries(COMMAND_TYPE_IDS) as [CommandType, number][]).map(([t, id]) => [id, t]),
);

/** Every command type, in wire-number order. */
export const COMMAND_TYPES: readonly CommandType[] = Object.freeze(
  [...TYPE_BY_ID.entries()].sort((a, b) => a[0] - b[0]).map(([, t]) => t),
);

/**
 * What a node that never advertised its table is assumed to apply: the command set of the first
 * release (every type at version 1). Never change this table; new types and versions are absent
 * from it on purpose, so they wait until every voter has said it supports them.
 */
export const BASELINE_COMMAND_VERSIONS: Readonly<Partial<Record<string, number>>> = Object.freeze({
  noop: 1,
  'secret.put': 1,
  'secret.metadata': 1,
  'secret.delete': 1,
  'secret.undelete': 1,
  'secret.destroy': 1,
  'secret.destroyAll': 1,
  'token.create': 1,
  'token.revoke': 1,
  'token.rotate': 1,
  'token.expire': 1,
  'role.put': 1,
  'role.delete': 1,
  'allowlist.replace': 1,
  bootstrap: 1,
  'kms.rewrap': 1,
  'kms.watermark': 1,
  'auth.failure': 1,
  'auth.reset': 1,
  'member.upsert': 1,
  'member.remove': 1,
  'state.restore': 1,
});

/**
 * Whether `peer` (another node's advertised table) can apply every command version `mine` would
 * propose for `type`. Used by the leader for upgrade gating.
 *
 * @param type - the command type about to be proposed
 * @param peers - the advertised tables of every voter
 * @returns true when each voter supports the current version of `type`
 */
export function allVotersSupport(type: CommandType, peers: readonly Readonly<Partial<Record<string, number>>>[]): boolean {
  const need = SUPPORTED_COMMAND_VERSIONS[type];
  return peers.every((p) => (p[type] ?? 0) >= need);
}

const FORMATS: readonly SecretFormat[] = ['raw', 'base64', 'userpass', 'kv'];

// Limits shared by encoder validation and decoder checks. The server enforces the tighter
// contract limits (names 512 bytes of [A-Za-z0-9._-/], values 1 MiB); these only keep the state
// machine safe from absurd input and keep NUL out of names (NUL separates key parts on disk).
const MAX_NAME_BYTES = 1024;
const MAX_ID_BYTES = 256;

function bad(msg: string): never {
  throw new StateError('SM_INVALID_COMMAND', msg);
}

function checkName(n: unknown, what: string, max = MAX_NAME_BYTES): void {
  if (typeof n !== 'string' || n.length === 0 || Buffer.byteLength(n) > max || n.includes('\0')) {
    bad(`${what} must be a non-empty string of at most ${max} bytes without NUL`);
  }
}

function checkInt(n: unknown, what: string, min = 0): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) bad(`${what} must be an integer >= ${min}`);
}

function checkOptInt(n: unknown, what: string, min = 0): void {
  if (n !== null) checkInt(n, what, min);
}

function checkBytes(b: unknown, what: string, len?: number): void {
  if (!(b instanceof Uint8Array)) bad(`${what} must be a Uint8Array`);
  if (len !== undefined && b.length !== len) bad(`${what} must be ${len} bytes`);
}

function checkStrs(a: unknown, what: string): void {
  if (!Array.isArray(a) || a.some((s) => typeof s !== 'string')) bad(`${what} must be an array of strings`);
}

function checkRotation(r: RotationPolicy): void {
  checkInt(r.intervalSecs, 'rotation.intervalSecs', 1);
  checkInt(r.graceSecs, 'rotation.graceSecs');
  if (r.target !== null && typeof r.target !== 'string') bad('rotation.target must be a string or null');
}

function writeRotation(w: Writer, r: RotationPolicy): void {
  w.u53(r.intervalSecs).u53(r.graceSecs).optStr(r.target);
}

function readRotation(r: Reader): RotationPolicy {
  const intervalSecs = r.u53();
  const graceSecs = r.u53();
  const target = r.optStr();
  if (intervalSecs < 1) r.fail('rotation.intervalSecs must be >= 1');
  return { intervalSecs, graceSecs, target };
}

/** Sealed values as stored: the whole envelope, field by field. */
export function writeSealed(w: Writer, s: SealedValue): void {
  w.u8(s.formatVersion).str(s.alg).bytes(s.nonce).bytes(s.ciphertext).bytes(s.wrappedDek).str(s.kmsKeyId);
}

function readSealed(r: Reader): SealedValue {
  return {
    formatVersion: r.u8(),
    alg: r.str(),
    nonce: r.bytes(),
    ciphertext: r.bytes(),
    wrappedDek: r.bytes(),
    kmsKeyId: r.str(),
  };
}

function writeRules(w: Writer, rules: readonly RoleRule[]): void {
  w.u32(rules.length);
  for (const rule of rules) w.strs(rule.paths).strs(rule.actions);
}

function readRules(r: Reader): RoleRule[] {
  const n = r.u32();
  if (n > r.remaining / 8) r.fail('rules length exceeds input');
  const rules: RoleRule[] = [];
  for (let i = 0; i < n; i++) rules.push({ paths: r.strs(), actions: r.strs() });
  return rules;
}

// Validation before encoding: a malformed command must be refused on the proposer, never
// replicated (every replica would then have to refuse it at apply, or worse, crash on it).
function validate(c: Command): void {
  if (typeof c !== 'object' || c === null || !(c.type in COMMAND_TYPE_IDS)) bad('unknown command type');
  if (typeof c.requestId !== 'string' || Buffer.byteLength(c.requestId) > MAX_ID_BYTES) bad('requestId must be a string of at most 256 bytes');
  checkInt(c.at, 'at');
  switch (c.type) {
    case 'noop':
      return;
    case 'secret.put':
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
      return;
    case 'secret.metadata':
      checkName(c.name, 'name');
      checkOptInt(c.maxVersions, 'maxVersions', 1);
      checkOptInt(c.deleteVersionAfterSecs, 'deleteVersionAfterSecs');
      if (c.rotation !== null && c.rotation !== 'clear') checkRotation(c.rotation);
      if (c.customMetadata !== null) {
        for (const [k, v] of Object.entries(c.customMetadata)) if (typeof v !== 'string' || k.length === 0) bad('customMetadata must map non-empty keys to strings');
      }
      return;
    case 'secret.delete':
    case 'secret.undelete':
    case 'secret.destroy':
      checkName(c.name, 'name');
      if (!Array.isArray(c.versions)) bad('versions must be an array');
      for (const v of c.versions) checkInt(v, 'versions[]', 1);
      return;
    case 'secret.destroyAll':
      checkName(c.name, 'name');
      return;
    case 'token.create':
      checkName(c.name, 'name', MAX_ID_BYTES);
      checkName(c.role, 'role', MAX_ID_BYTES);
      checkBytes(c.tokenHash, 'tokenHash', 32);
      checkOptInt(c.expiresAt, 'expiresAt');
      return;
    case 'token.rotate':
      checkName(c.name, 'name', MAX_ID_BYTES);
      checkBytes(c.tokenHash, 'tokenHash', 32);
      checkOptInt(c.expiresAt, 'expiresAt');
      return;
    case 'token.revoke':
    case 'role.delete':
      checkName(c.name, 'name', MAX_ID_BYTES);
      return;
    case 'token.expire':
      checkStrs(c.names, 'names');
      return;
    case 'role.put':
      checkName(c.name, 'name', MAX_ID_BYTES);
      checkOptInt(c.maxTtlSecs, 'maxTtlSecs', 1);
      if (!Array.isArray(c.rules)) bad('rules must be an array');
      for (const rule of c.rules) {
        checkStrs(rule.paths, 'rules[].paths');
        checkStrs(rule.actions, 'rules[].actions');
      }
      return;
    case 'allowlist.replace':
    case 'allowlist.seed':
      checkStrs(c.cidrs, 'cidrs');
      return;
    case 'bootstrap':
      checkBytes(c.tokenHash, 'tokenHash', 32);
      checkStrs(c.cidrs, 'cidrs');
      return;
    case 'kms.rewrap':
      checkName(c.name, 'name');
      checkInt(c.version, 'version', 1);
      checkBytes(c.wrappedDek, 'wrappedDek');
      return;
    case 'kms.watermark':
      checkOptInt(c.passStartedAt, 'passStartedAt');
      checkOptInt(c.passFinishedAt, 'passFinishedAt');
      checkInt(c.rewrapped, 'rewrapped');
      checkInt(c.failed, 'failed');
      return;
    case 'auth.failure':
      checkName(c.ip, 'ip', MAX_ID_BYTES);
      checkInt(c.retainMs, 'retainMs', 1);
      return;
    case 'auth.reset':
      checkName(c.ip, 'ip', MAX_ID_BYTES);
      return;
    case 'member.upsert':
      checkName(c.id, 'id', MAX_ID_BYTES);
      return;
    case 'member.remove':
      checkName(c.id, 'id', MAX_ID_BYTES);
      return;
    case 'state.restore':
      checkBytes(c.snapshot, 'snapshot');
      return;
    case 'snapshot.schedule':
      if (!SNAPSHOT_PHASES.includes(c.phase)) bad('phase must be claim, done or failed');
      checkInt(c.slotAt, 'slotAt');
      checkName(c.nodeId, 'nodeId', MAX_ID_BYTES);
      checkInt(c.index, 'index');
      checkInt(c.sizeBytes, 'sizeBytes');
      if (c.error !== null && (typeof c.error !== 'string' || Buffer.byteLength(c.error) > MAX_NAME_BYTES)) bad(`error must be null or a string of at most ${MAX_NAME_BYTES} bytes`);
      return;
    default:
      assertNever(c);
  }
}

/**
 * Exhaustiveness guard for `switch (cmd.type)`.
 *
 * @param x - the value TypeScript proved impossible
 * @throws {SM_INVARIANT} always
 */
export function assertNever(x: never): never {
  throw new StateError('SM_INVARIANT', `unexpected value ${JSON.stringify((x as { type?: unknown })?.type ?? x)}`);
}

function writePayload(w: Writer, c: Command): void {
  w.str(c.requestId).u53(c.at);
  switch (c.type) {
    case 'noop':
      return;
    case 'secret.put':
      w.str(c.name).u53(c.version).optU53(c.cas);
      writeSealed(w, c.sealed);
      w.u8(FORMATS.indexOf(c.format)).optStr(c.description);
      if (c.rotation === null) w.u8(0);
      else writeRotation(w.u8(1), c.rotation);
      w.str(c.actor);
      return;
    case 'secret.metadata': {
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
      return;
    }
    case 'secret.delete':
    case 'secret.undelete':
    case 'secret.destroy':
      w.str(c.name).u32(c.versions.length);
      for (const v of c.versions) w.u53(v);
      w.str(c.actor);
      return;
    case 'secret.destroyAll':
      w.str(c.name).str(c.actor);
      return;
    case 'token.create':
      w.str(c.name).str(c.role).bytes(c.tokenHash).optU53(c.expiresAt).str(c.actor);
      return;
    case 'token.revoke':
    case 'role.delete':
      w.str(c.name).str(c.actor);
      return;
    case 'token.rotate':
      w.str(c.name).bytes(c.tokenHash).optU53(c.expiresAt).str(c.actor);
      return;
    case 'token.expire':
      w.strs(c.names);
      return;
    case 'role.put':
      w.str(c.name);
      writeRules(w, c.rules);
      w.optStr(c.rateLimit).str(c.actor);
      w.optU53(c.maxTtlSecs); // v2
      return;
    case 'allowlist.replace':
      w.strs(c.cidrs).str(c.actor);
      return;
    case 'allowlist.seed':
      w.strs(c.cidrs);
      return;
    case 'bootstrap':
      w.bytes(c.tokenHash).strs(c.cidrs);
      return;
    case 'kms.rewrap':
      w.str(c.name).u53(c.version).bytes(c.wrappedDek).str(c.kmsKeyId).str(c.expectedKmsKeyId).str(c.marker);
      return;
    case 'kms.watermark':
      w.str(c.marker).optU53(c.passStartedAt).optU53(c.passFinishedAt).u53(c.rewrapped).u53(c.failed);
      return;
    case 'auth.failure':
      w.str(c.ip).u53(c.retainMs);
      return;
    case 'auth.reset':
      w.str(c.ip);
      return;
    case 'member.upsert':
      w.str(c.id).str(c.raftAddr).str(c.apiAddr);
      return;
    case 'member.remove':
      w.str(c.id);
      return;
    case 'state.restore':
      w.bytes(c.snapshot);
      return;
    case 'snapshot.schedule':
      w.u8(SNAPSHOT_PHASES.indexOf(c.phase)).u53(c.slotAt).str(c.nodeId).u53(c.index).u53(c.sizeBytes).optStr(c.error);
      return;
    default:
      assertNever(c);
  }
}

/**
 * Encodes a command in the current format version of its type.
 *
 * @param cmd - the command, complete (timestamps, versions, sealed values decided by the proposer)
 * @returns `[formatVersion][type][payload]`
 * @throws {SM_INVALID_COMMAND} when a field is malformed; nothing malformed is ever proposed
 * @example
 * ```ts
 * const data = encodeCommand({ type: 'noop', requestId: 'r1', at: Date.now() });
 * ```
 */
export function encodeCommand(cmd: Command): Uint8Array {
  validate(cmd);
  const w = new Writer(cmd.type === 'secret.put' ? 128 + cmd.sealed.ciphertext.length : 128);
  w.u8(SUPPORTED_COMMAND_VERSIONS[cmd.type]).u8(COMMAND_TYPE_IDS[cmd.type]);
  writePayload(w, cmd);
  return w.finish();
}

function readPayloadV1(r: Reader, type: CommandType): Command {
  const requestId = r.str();
  const at = r.u53();
  const base = { requestId, at };
  switch (type) {
    case 'noop':
      return { type, ...base };
    case 'secret.put': {
      const name = r.str();
      const version = r.u53();
      const cas = r.optU53();
      const sealed = readSealed(r);
      const format = FORMATS[r.u8()] ?? r.fail('unknown secret format');
      const description = r.optStr();
      const rotation = r.opt() ? readRotation(r) : null;
      return { type, ...base, name, version, cas, sealed, format, description, rotation, actor: r.str() };
    }
    case 'secret.metadata': {
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
    }
    case 'secret.delete':
    case 'secret.undelete':
    case 'secret.destroy': {
      const name = r.str();
      const n = r.u32();
      if (n > r.remaining / 8) r.fail('versions length exceeds input');
      const versions: number[] = [];
      for (let i = 0; i < n; i++) versions.push(r.u53());
      return { type, ...base, name, versions, actor: r.str() };
    }
    case 'secret.destroyAll':
      return { type, ...base, name: r.str(), actor: r.str() };
    case 'token.create': {
      const name = r.str();
      const role = r.str();
      const tokenHash = r.bytes();
      if (tokenHash.length !== 32) r.fail('tokenHash must be 32 bytes');
      return { type, ...base, name, role, tokenHash, expiresAt: r.optU53(), actor: r.str() };
    }
    case 'token.revoke':
    case 'role.delete':
      return { type, ...base, name: r.str(), actor: r.str() };
    case 'token.rotate': {
      const name = r.str();
      const tokenHash = r.bytes();
      if (tokenHash.length !== 32) r.fail('tokenHash must be 32 bytes');
      return { type, ...base, name, tokenHash, expiresAt: r.optU53(), actor: r.str() };
    }
    case 'token.expire':
      return { type, ...base, names: r.strs() };
    case 'role.put': {
      const name = r.str();
      const rules = readRules(r);
      return { type, ...base, name, rules, rateLimit: r.optStr(), actor: r.str(), maxTtlSecs: null };
    }
    case 'allowlist.replace':
      return { type, ...base, cidrs: r.strs(), actor: r.str() };
    case 'allowlist.seed':
      return { type, ...base, cidrs: r.strs() };
    case 'bootstrap': {
      const tokenHash = r.bytes();
      if (tokenHash.length !== 32) r.fail('tokenHash must be 32 bytes');
      return { type, ...base, tokenHash, cidrs: r.strs() };
    }
    case 'kms.rewrap':
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
    case 'kms.watermark':
      return {
        type,
        ...base,
        marker: r.str(),
        passStartedAt: r.optU53(),
        passFinishedAt: r.optU53(),
        rewrapped: r.u53(),
        failed: r.u53(),
      };
    case 'auth.failure':
      return { type, ...base, ip: r.str(), retainMs: r.u53() };
    case 'auth.reset':
      return { type, ...base, ip: r.str() };
    case 'member.upsert':
      return { type, ...base, id: r.str(), raftAddr: r.str(), apiAddr: r.str() };
    case 'member.remove':
      return { type, ...base, id: r.str() };
    case 'state.restore':
      return { type, ...base, snapshot: r.bytes() };
    case 'snapshot.schedule': {
      const phase = SNAPSHOT_PHASES[r.u8()] ?? r.fail('unknown snapshot phase');
      return { type, ...base, phase, slotAt: r.u53(), nodeId: r.str(), index: r.u53(), sizeBytes: r.u53(), error: r.optStr() };
    }
    default:
      return assertNever(type);
  }
}

/** A decoded command together with the format version it was written in. */
export type DecodedCommand = { version: number; command: Command };

/**
 * Decodes command bytes of any supported version, without upcasting.
 *
 * @param data - `[formatVersion][type][payload]`
 * @returns the command in the shape of its version, and that version
 * @throws {SM_UNKNOWN_COMMAND} unknown type byte
 * @throws {SM_UNSUPPORTED_VERSION} version 0 or newer than this build supports
 * @throws {SM_CORRUPT_COMMAND} anything malformed (truncated, trailing bytes, bad UTF-8, bad tags)
 */
export function decodeCommandVersioned(data: Uint8Array): DecodedCommand {
  if (data.length < 2) throw new StateError('SM_CORRUPT_COMMAND', 'command shorter than its 2-byte header');
  const version = data[0] as number;
  const typeId = data[1] as number;
  const type = TYPE_BY_ID.get(typeId);
  if (type === undefined) throw new StateError('SM_UNKNOWN_COMMAND', `unknown command type ${typeId} (format version ${version})`);
  if (version === 0 || version > SUPPORTED_COMMAND_VERSIONS[type]) {
    throw new StateError('SM_UNSUPPORTED_VERSION', `command ${type} v${version} is not supported (this build reads up to v${SUPPORTED_COMMAND_VERSIONS[type]})`);
  }
  const r = new Reader(data.subarray(2), 'SM_CORRUPT_COMMAND');
  // Each version's payload is the previous one's with fields appended: read v1, then what later
  // versions added (v1 commands keep the new fields' defaults, which is their upcast).
  const command = readPayloadV1(r, type);
  if (command.type === 'role.put' && version >= 2) command.maxTtlSecs = r.optU53();
  r.end();
  // The encoder's rules hold for decoded commands too: bytes it could not have produced are corrupt.
  try {
    validate(command);
  } catch (e) {
    throw new StateError('SM_CORRUPT_COMMAND', `command ${type} v${version}: ${(e as Error).message}`);
  }
  return { version, command };
}

/**
 * Lifts a command decoded from an older format version to the current shape. Apply only ever sees
 * current shapes (cf. etcd applying `cc.AsV2()`).
 *
 * @param decoded - output of `decodeCommandVersioned`
 * @returns the command in its current shape
 */
export function upcast(decoded: DecodedCommand): Command {
  // Every type is at v1, the current shape: nothing to lift yet.
  return decoded.command;
}

/**
 * Decodes and upcasts command bytes.
 *
 * @param data - encoded command
 * @returns the command in its current shape
 * @throws {SM_UNKNOWN_COMMAND} {SM_UNSUPPORTED_VERSION} {SM_CORRUPT_COMMAND}
 * @example
 * ```ts
 * const cmd = decodeCommand(encodeCommand({ type: 'noop', requestId: 'r', at: 0 }));
 * ```
 */
export function decodeCommand(data: Uint8Array): Command {
  return upcast(decodeCommandVersioned(data));
}
