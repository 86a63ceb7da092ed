// The sealed start (COFFER_SEAL=shamir): the cluster's seal configuration, set once by `seal.init`.
//
// What is replicated is only what every node needs to *verify* an unseal: the Shamir parameters,
// a key-check value (HMAC-SHA-256 of a fixed label under the master key) and the local key id the
// master key wraps DEKs under. The master key and the shares never enter a command or the state.
//
// The first `seal.init` in the log wins; every later one (two operators racing, a retry through
// another node) is a deterministic no-op answered `already_exists`, so the shares of exactly one
// init ever reach an operator (the node answers the loser 400 `already_initialized`). No apply of
// any family needs the master key, so sealed nodes run Raft, persist and apply normally.
import { Reader, Writer } from '../bytes.js';
import type { RecordTable } from '../state-tables.js';
import { bad, checkBytes, checkInt, type CommandBase, type CommandSpec, type FamilySpecs } from './spec.js';

/** Bytes of the key-check value (HMAC-SHA-256). */
export const SEAL_KEY_CHECK_BYTES = 32;

/** A local key id: `local:` and 16 lower-case hex digits (the local provider's id of the key). */
export const SEAL_KEY_ID_RE: RegExp = /^local:[0-9a-f]{16}$/;

/** The cluster's seal configuration (one record, `mzconfig`). */
export type SealConfigRecord = {
  /** Number of shares made at init (Vault's `n`). */
  shares: number;
  /** Shares needed to unseal (Vault's `t`). */
  threshold: number;
  /** HMAC-SHA-256(master key, "coffer.seal.key-check.v1"). */
  keyCheck: Uint8Array;
  /** The local key id of the master key (what every envelope wrapped under it records). */
  keyId: string;
  /** `at` of the winning init. */
  initializedAt: number;
};

/** Initialise the cluster's seal once. */
export type SealInitCommand = CommandBase & {
  type: 'seal.init';
  shares: number;
  threshold: number;
  keyCheck: Uint8Array;
  keyId: string;
};

/** The commands of this family. */
export type SealCommand = SealInitCommand;

const REC_V1 = 1;
const CONFIG_ID = 'config';

/** Same rule as Shamir's split: 1 ≤ t ≤ n ≤ 255, t ≥ 2 unless n = 1. */
function paramsProblem(shares: number, threshold: number): string | undefined {
  if (!Number.isSafeInteger(shares) || shares < 1 || shares > 255) return 'shares must be an integer from 1 to 255';
  if (!Number.isSafeInteger(threshold) || threshold < 1 || threshold > shares) return 'threshold must be an integer from 1 to shares';
  if (threshold < 2 && shares > 1) return 'threshold must be at least 2 when there is more than one share';
  return undefined;
}

/** The seal configuration table (`mz`; one row). */
export const sealConfigs: RecordTable<SealConfigRecord> = {
  prefix: 'mz',
  encode: (s) => new Writer(96).u8(REC_V1).u53(s.shares).u53(s.threshold).bytes(s.keyCheck).str(s.keyId).u53(s.initializedAt).finish(),
  decode: (b) => {
    const r = new Reader(b, 'SM_CORRUPT_STORAGE');
    if (r.u8() !== REC_V1) r.fail('unknown record version');
    const s: SealConfigRecord = { shares: r.u53(), threshold: r.u53(), keyCheck: r.bytes(), keyId: r.str(), initializedAt: r.u53() };
    r.end();
    const problem = paramsProblem(s.shares, s.threshold);
    if (problem !== undefined) r.fail(`seal config: ${problem}`);
    if (s.keyCheck.length !== SEAL_KEY_CHECK_BYTES) r.fail('seal config: keyCheck must be 32 bytes');
    if (!SEAL_KEY_ID_RE.test(s.keyId)) r.fail('seal config: keyId must be a local key id');
    return s;
  },
};

const init: CommandSpec<SealInitCommand> = {
  id: 60,
  version: 1,
  validate(c) {
    checkInt(c.shares, 'shares', 1);
    checkInt(c.threshold, 'threshold', 1);
    const problem = paramsProblem(c.shares, c.threshold);
    if (problem !== undefined) bad(problem);
    checkBytes(c.keyCheck, 'keyCheck', SEAL_KEY_CHECK_BYTES);
    if (typeof c.keyId !== 'string' || !SEAL_KEY_ID_RE.test(c.keyId)) bad('keyId must be "local:" and 16 hex digits');
  },
  write(w, c) {
    w.u8(c.shares).u8(c.threshold).bytes(c.keyCheck).str(c.keyId);
  },
  read(r, base, type) {
    return { type, ...base, shares: r.u8(), threshold: r.u8(), keyCheck: r.bytes(), keyId: r.str() };
  },
  apply(ctx, c) {
    const table = ctx.tables.table(sealConfigs);
    // Invariant: set once per cluster; the first init in the log wins on every replica.
    if (table.has(CONFIG_ID)) return { status: 'already_exists' };
    table.set(CONFIG_ID, { shares: c.shares, threshold: c.threshold, keyCheck: c.keyCheck.slice(), keyId: c.keyId, initializedAt: c.at });
    ctx.changes.mark(sealConfigs.prefix + CONFIG_ID);
    return { status: 'ok' };
  },
};

/** Specs of the seal family (wire numbers 60–64 are reserved for it). */
export const sealCommands: FamilySpecs<SealCommand> = {
  'seal.init': init,
};

/** What the family's queries read: `StateMachine.table`. */
export interface SealTables {
  table<R>(def: RecordTable<R>): ReadonlyMap<string, Readonly<R>>;
}

/**
 * The cluster's seal configuration, once `seal.init` has applied.
 *
 * @param sm - the state machine
 * @returns the configuration, or undefined before init (or when the cluster is not sealed)
 * @example
 * ```ts
 * const cfg = sealConfigOf(store.state); if (cfg) await seal.configure(cfg);
 * ```
 */
export function sealConfigOf(sm: SealTables): Readonly<SealConfigRecord> | undefined {
  return sm.table(sealConfigs).get(CONFIG_ID);
}
