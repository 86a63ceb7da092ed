// What one command type is made of, and the helpers every command family shares.
//
// A command family is one file in this directory: its command types, and for each type a
// `CommandSpec` — wire number, newest format version, validation, encoding, decoding and apply.
// `registry.ts` lists the families; the codec (`codec.ts`) and the state machine only ever go
// through the registry, so adding a family touches nothing else.
import type { Reader, Writer } from '../bytes.js';
export { cmpStr } from '../bytes.js';
import type { ChangeSet } from '../change-set.js';
import { StateError } from '../errors.js';
import type { CommandResult } from '../records.js';
import type { StateTables } from '../state-tables.js';
import type { RoleRule, RotationPolicy, SealedValue } from '../types.js';

/** Fields every command carries. `at` is the proposer's clock (ms); apply never reads a clock. */
export type CommandBase = { requestId: string; at: number };

/** The shape every command has: a `type` tag (a union of tags when several types share a shape). */
export type AnyCommand = CommandBase & { type: string };

/**
 * What an applier may touch: the replicated tables, the change set that the store writes in one
 * batch, and `restore` (which replaces the tables wholesale).
 */
export type ApplyContext = {
  readonly tables: StateTables;
  readonly changes: ChangeSet;
  /** Replaces the replicated state from an authenticated snapshot blob (`state.restore`). */
  restore(blob: Uint8Array): CommandResult;
};

/**
 * One command type (or one shape shared by several types, which then share a spec object).
 * Methods, not function properties: a spec of one command is then usable where a spec of the
 * whole union is expected (the registry's lookup), while each family file is checked exactly.
 */
export interface CommandSpec<C extends AnyCommand> {
  /** Wire type number. Append-only across the registry: never renumber, never reuse. */
  readonly id: number;
  /** Newest format version this build decodes, and the one it encodes. */
  readonly version: number;
  /** Field checks beyond `requestId`/`at`; throw through `bad()`. Run before encoding and after decoding. */
  validate(c: C): void;
  /** Payload after `requestId` and `at`, in the current format version. */
  write(w: Writer, c: C): void;
  /**
   * Payload after `requestId` and `at`, of any version up to `version`, upcast to the current
   * shape (a later version appends fields; an older one gets their defaults).
   */
  read(r: Reader, base: CommandBase, type: C['type'], version: number): C;
  /** The deterministic apply: a pure function of the tables and the command. */
  apply(ctx: ApplyContext, c: C): CommandResult;
}

/** The member of union `C` whose `type` admits `T`. */
export type CommandOfType<C extends AnyCommand, T extends string> = C extends { type: infer U } ? (T extends U ? C : never) : never;

/** The specs of one family: one entry per type name of `C`. */
export type FamilySpecs<C extends AnyCommand> = { readonly [T in C['type']]: CommandSpec<CommandOfType<C, T>> };

// Limits shared by encoder validation and decoder checks. The server enforces the tighter
// contract limits (names 512 bytes of [A-Za-z0-9._-/], values 1 MiB); these only keep the state
// machine safe from absurd input and keep NUL out of names (NUL separates key parts on disk).
export const MAX_NAME_BYTES = 1024;
export const MAX_ID_BYTES = 256;

/**
 * Refuses a malformed command.
 *
 * @param msg - what is wrong (names fields, never values)
 * @throws {SM_INVALID_COMMAND} always
 */
export function bad(msg: string): never {
  throw new StateError('SM_INVALID_COMMAND', msg);
}

export function checkName(n: unknown, what: string, max: number = MAX_NAME_BYTES): void {
  if (typeof n !== 'string' || n.length === 0 || Buffer.byteLength(n) > max || n.includes('\0')) {
    bad(`${what} must be a non-empty string of at most ${max} bytes without NUL`);
  }
}

export function checkInt(n: unknown, what: string, min = 0): void {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) bad(`${what} must be an integer >= ${min}`);
}

export function checkOptInt(n: unknown, what: string, min = 0): void {
  if (n !== null) checkInt(n, what, min);
}

export function checkBytes(b: unknown, what: string, len?: number): void {
  if (!(b instanceof Uint8Array)) bad(`${what} must be a Uint8Array`);
  if (len !== undefined && b.length !== len) bad(`${what} must be ${len} bytes`);
}

export function checkStrs(a: unknown, what: string): void {
  if (!Array.isArray(a) || a.some((s) => typeof s !== 'string')) bad(`${what} must be an array of strings`);
}

export function checkRotation(r: RotationPolicy): void {
  checkInt(r.intervalSecs, 'rotation.intervalSecs', 1);
  checkInt(r.graceSecs, 'rotation.graceSecs');
  if (r.target !== null && typeof r.target !== 'string') bad('rotation.target must be a string or null');
}

export function writeRotation(w: Writer, r: RotationPolicy): void {
  w.u53(r.intervalSecs).u53(r.graceSecs).optStr(r.target);
}

export function readRotation(r: Reader): RotationPolicy {
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

export function readSealed(r: Reader): SealedValue {
  return {
    formatVersion: r.u8(),
    alg: r.str(),
    nonce: r.bytes(),
    ciphertext: r.bytes(),
    wrappedDek: r.bytes(),
    kmsKeyId: r.str(),
  };
}

export function writeRules(w: Writer, rules: readonly RoleRule[]): void {
  w.u32(rules.length);
  for (const rule of rules) w.strs(rule.paths).strs(rule.actions);
}

export function readRules(r: Reader): RoleRule[] {
  const n = r.u32();
  if (n > r.remaining / 8) r.fail('rules length exceeds input');
  const rules: RoleRule[] = [];
  for (let i = 0; i < n; i++) rules.push({ paths: r.strs(), actions: r.strs() });
  return rules;
}

/** Reads a 32-byte sha256 token hash. */
export function readTokenHash(r: Reader): Uint8Array {
  const tokenHash = r.bytes();
  if (tokenHash.length !== 32) r.fail('tokenHash must be 32 bytes');
  return tokenHash;
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


/** A command whose payload is a name and the actor (deletes, revokes, disables). */
export type NameActorCommand = CommandBase & { type: string; name: string; actor: string };

/**
 * The wire half of a `{name, actor}` command — validate, write, read — to spread into its spec
 * beside `id`, `version` and `apply`.
 *
 * @param checkName_ - the name's check (default: an id of at most {@link MAX_ID_BYTES} bytes)
 * @returns validate, write and read
 */
export function nameActorWire<C extends NameActorCommand>(checkName_: (name: unknown) => void = (n) => checkName(n, 'name', MAX_ID_BYTES)): Pick<CommandSpec<C>, 'validate' | 'write' | 'read'> {
  return {
    validate(c) {
      checkName_(c.name);
    },
    write(w, c) {
      w.str(c.name).str(c.actor);
    },
    read(r, base, type) {
      return { type, ...base, name: r.str(), actor: r.str() } as C;
    },
  };
}
