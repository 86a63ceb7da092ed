// The command registry: every command family, and the tables derived from it.
//
// Adding a command family: write `commands/<family>.ts` (its command types, and a `CommandSpec`
// per type: wire number, version, validate, write, read, apply), then add it here — its union to
// `Command` and its specs to `COMMAND_SPECS` (and its record tables, if any, to `RECORD_TABLES`).
// The compiler refuses a type that has no spec; the module refuses a reused wire number or table
// prefix when it loads.
import { StateError } from '../errors.js';
import type { RecordTable } from '../state-tables.js';
import { accessCommands, type AccessCommand } from './access.js';
import { approleCommands, approleSecretIds, approles, type ApproleCommand } from './approles.js';
import { clusterCommands, type ClusterCommand } from './cluster.js';
import { IDENTITY_TABLES, identityCommands, type IdentityCommand } from './identities.js';
import { kmsCommands, type KmsCommand } from './kms.js';
import { rotationRecords } from './rotation-records.js';
import { rotationCommands, type RotationCommand } from './rotation.js';
import { sealCommands, sealConfigs, type SealCommand } from './seal.js';
import { versionFloors, versionsCommands, type VersionsCommand } from './versions.js';
import { secretCommands, type SecretCommand } from './secrets.js';
import type { CommandOfType, CommandSpec } from './spec.js';
import { tokenCommands, type TokenCommand } from './tokens.js';
import { transitCommands, transitKeys, type TransitCommand } from './transit.js';

/** Every command, in its current shape. */
export type Command = ClusterCommand | SecretCommand | TokenCommand | AccessCommand | KmsCommand | ApproleCommand | IdentityCommand | SealCommand | TransitCommand | RotationCommand | VersionsCommand;

/** Every command type name. */
export type CommandType = Command['type'];

/** One spec per command type. */
export type CommandSpecs = { readonly [T in CommandType]: CommandSpec<CommandOfType<Command, T>> };

/** The registry: every command type's spec. */
export const COMMAND_SPECS: CommandSpecs = Object.freeze({
  ...clusterCommands,
  ...secretCommands,
  ...tokenCommands,
  ...accessCommands,
  ...kmsCommands,
  ...approleCommands,
  ...identityCommands,
  ...sealCommands,
  ...versionsCommands,
  ...transitCommands,
  ...rotationCommands,
});

/**
 * Keyed record tables that command families add (records `prefix + id` under the metadata range).
 * The built-in tables (secrets, tokens, roles, lockouts, members, singletons) live in
 * `StateTables` itself.
 */
export const RECORD_TABLES: readonly RecordTable<unknown>[] = Object.freeze([approles, approleSecretIds, ...IDENTITY_TABLES, sealConfigs, transitKeys, rotationRecords, versionFloors]);

/** Prefixes the built-in tables use; a family table must pick another `m` + letter. */
const BUILT_IN_PREFIXES: readonly string[] = ['ms', 'mt', 'mr', 'ml', 'mn', 'md', 'mg'];

/**
 * The spec of a command type, for code that handles any command.
 *
 * @param type - a command type
 * @returns its spec
 */
export function specOf(type: CommandType): CommandSpec<Command> {
  return COMMAND_SPECS[type];
}

/**
 * Whether `type` names a command type of this build (own property of the registry).
 *
 * @param type - anything
 * @returns true for a registered type
 */
export function isCommandType(type: unknown): type is CommandType {
  return typeof type === 'string' && Object.hasOwn(COMMAND_SPECS, type);
}

/** Every command type, in wire-number order. */
export const COMMAND_TYPES: readonly CommandType[] = Object.freeze(
  (Object.keys(COMMAND_SPECS) as CommandType[]).sort((a, b) => COMMAND_SPECS[a].id - COMMAND_SPECS[b].id),
);

function byType(pick: (spec: CommandSpec<Command>) => number): Readonly<Record<CommandType, number>> {
  const out: Partial<Record<CommandType, number>> = {};
  for (const t of COMMAND_TYPES) out[t] = pick(specOf(t));
  return Object.freeze(out as Record<CommandType, number>);
}

/**
 * Wire type numbers (from the specs). Append-only: never renumber, never reuse. A retired type
 * keeps its number with a `Deprecated` comment on its spec.
 */
export const COMMAND_TYPE_IDS: Readonly<Record<CommandType, number>> = byType((s) => s.id);

/**
 * The newest format version of each command type this build can decode (and the one it encodes).
 * A node advertises this table; the leader proposes a type/version only once every voter lists it.
 */
export const SUPPORTED_COMMAND_VERSIONS: Readonly<Record<CommandType, number>> = byType((s) => s.version);

/** Command type by wire number. */
export const TYPE_BY_ID: ReadonlyMap<number, CommandType> = new Map(COMMAND_TYPES.map((t) => [COMMAND_SPECS[t].id, t]));

if (TYPE_BY_ID.size !== COMMAND_TYPES.length) throw new StateError('SM_INVARIANT', 'two command types share a wire number');
for (const [i, t] of RECORD_TABLES.entries()) {
  const p = t.prefix;
  if (p.length !== 2 || p[0] !== 'm' || BUILT_IN_PREFIXES.includes(p) || RECORD_TABLES.findIndex((o) => o.prefix === p) !== i) {
    throw new StateError('SM_INVARIANT', `record table prefix ${JSON.stringify(p)} is not 'm' + an unused letter`);
  }
}

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
