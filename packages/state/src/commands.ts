// The replicated command set: types, registry and wire codec. One file per command family in
// commands/ (types, wire spec, validation, apply); commands/registry.ts lists them;
// commands/codec.ts encodes and decodes through the registry. This module re-exports them.
export { assertNever, type ApplyContext, type CommandBase, type CommandSpec, type FamilySpecs } from './commands/spec.js';
export {
  BASELINE_COMMAND_VERSIONS,
  COMMAND_SPECS,
  COMMAND_TYPES,
  COMMAND_TYPE_IDS,
  RECORD_TABLES,
  SUPPORTED_COMMAND_VERSIONS,
  allVotersSupport,
  specOf,
  type Command,
  type CommandType,
} from './commands/registry.js';
export { decodeCommand, decodeCommandVersioned, encodeCommand, upcast, type DecodedCommand } from './commands/codec.js';
export { SNAPSHOT_PHASES, type MemberRemoveCommand, type MemberUpsertCommand, type NoopCommand, type SnapshotPhase, type SnapshotScheduleCommand, type StateRestoreCommand } from './commands/cluster.js';
export { DEFAULT_MAX_VERSIONS, type SecretDestroyAllCommand, type SecretMetadataCommand, type SecretPutCommand, type SecretVersionsCommand } from './commands/secrets.js';
export {
  ADMIN_ROLE,
  BOOTSTRAP_TOKEN_NAME,
  tokenStatusAt,
  type BootstrapCommand,
  type RoleDeleteCommand,
  type RolePutCommand,
  type TokenCreateCommand,
  type TokenExpireCommand,
  type TokenRevokeCommand,
  type TokenRotateCommand,
} from './commands/tokens.js';
export { MAX_FAILURES_KEPT, type AllowlistReplaceCommand, type AllowlistSeedCommand, type AuthFailureCommand, type AuthResetCommand } from './commands/access.js';
export { type KmsRewrapCommand, type KmsWatermarkCommand } from './commands/kms.js';
