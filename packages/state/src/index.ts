export { StateError, invariant, type StateErrorCode } from './errors.js';
export type { SealedValue, LogEntry, HardState, SnapshotMeta, SecretFormat, RotationPolicy, RoleRule } from './types.js';
export {
  COMMAND_TYPE_IDS,
  COMMAND_TYPES,
  SUPPORTED_COMMAND_VERSIONS,
  BASELINE_COMMAND_VERSIONS,
  allVotersSupport,
  assertNever,
  decodeCommand,
  decodeCommandVersioned,
  encodeCommand,
  upcast,
  type AllowlistReplaceCommand,
  type AuthFailureCommand,
  type AuthResetCommand,
  type BootstrapCommand,
  type Command,
  type CommandBase,
  type CommandType,
  type DecodedCommand,
  type KmsRewrapCommand,
  type KmsWatermarkCommand,
  type MemberRemoveCommand,
  type MemberUpsertCommand,
  type NoopCommand,
  type RoleDeleteCommand,
  type RolePutCommand,
  type SecretDestroyAllCommand,
  type SecretMetadataCommand,
  type SecretPutCommand,
  type SecretVersionsCommand,
  type StateRestoreCommand,
  type TokenCreateCommand,
  type TokenExpireCommand,
  type TokenRevokeCommand,
  type TokenRotateCommand,
} from './commands.js';
export type {
  AllowlistRecord,
  CommandResult,
  LockoutRecord,
  MemberRecord,
  ResultStatus,
  RoleRecord,
  SecretRecord,
  TokenRecord,
  VersionMeta,
  WatermarkRecord,
} from './records.js';
export {
  ADMIN_ROLE,
  BOOTSTRAP_TOKEN_NAME,
  DEDUP_CAPACITY,
  DEFAULT_MAX_VERSIONS,
  MAX_FAILURES_KEPT,
  StateMachine,
  tokenStatusAt,
  type ApplyResult,
  type LockoutPolicy,
  type StateChanges,
  type StateMachineOptions,
  type TokenStatus,
} from './state-machine.js';
export { SNAPSHOT_FORMAT_VERSION, LEGACY_SNAPSHOT_FORMAT_VERSION, decodeSnapshotBlob, encodeSnapshotBlob, snapshotFormatVersion, type SnapshotContents } from './snapshot-format.js';
export {
  INTEGRITY_FAILURE_KINDS,
  INTEGRITY_KEY_BYTES,
  Integrity,
  RECORD_TAG_BYTES,
  type IntegrityFailure,
  type IntegrityFailureKind,
  type IntegrityKeys,
  type IntegrityOptions,
} from './integrity.js';
export { RaftLogStore, type RaftLogState, type WriteOptions } from './raft-log.js';
export type { WriterStats } from './group-writer.js';
export { INTEGRITY_MARKER_KEY, NodeStore, openNodeStore, readSavedSnapshot, type OpenStoreOptions, type StateSnapshot, type StoreAdoption } from './node-store.js';
export { timingSafeEqual } from './bytes.js';
