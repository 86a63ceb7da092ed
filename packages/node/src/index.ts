// Public entry of @coffer/node: re-exports only.
export { NodeError, ConfigError, type NodeErrorCode } from './errors.js';
export {
  CONFIG_ENV,
  CONFIG_VARIABLES,
  LOG_LEVELS,
  loadConfig,
  readEnv,
  redactConfig,
  describeConfig,
  type ConfigVariable,
  type VariableSpec,
  type ServerConfig,
  type HostPort,
  type ClusterMember,
  type LogLevel,
  type ConfigIo,
} from './config.js';
export { parseDuration, parseRateLimit, DURATION_UNITS_MS, RATE_UNITS_MS, type RateLimit } from './duration.js';
export {
  checkSecretName,
  isValidSecretName,
  checkTokenName,
  checkRoleName,
  checkNodeId,
  MAX_SECRET_NAME_BYTES,
  MAX_TOKEN_NAME_BYTES,
  RESERVED_NAMES,
  type NameCheck,
} from './validate.js';
export {
  Allowlist,
  parseCidr,
  validateCidrs,
  normaliseIp,
  clientIp,
  MAX_ALLOWLIST_ENTRIES,
  type CidrEntry,
  type CidrValidation,
  type ClientIpSource,
} from './net/allowlist.js';
export { compileGlob, globProblem, MAX_GLOB_BYTES, type Glob } from './auth/glob.js';
export {
  ACTIONS,
  SECRET_ACTIONS,
  ADMIN_ROLE,
  ADMIN_ROLE_NAME,
  ADMIN_ROLE_DOCUMENT,
  MAX_RULES,
  MAX_PATHS_PER_RULE,
  isAction,
  isAllowed,
  missingGrant,
  globCovers,
  compileRole,
  validateRoleDocument,
  type Action,
  type RoleRule,
  type RoleDocument,
  type RoleValidation,
  type CompiledRole,
} from './auth/rbac.js';
export { RoleRateLimiter, type RateDecision } from './auth/rate-limit.js';
export {
  AuditLog,
  verifyAuditFile,
  auditRecordHash,
  AUDIT_GENESIS_HASH,
  type AuditEntry,
  type AuditRecord,
  type AuditOutcome,
  type AuditLogOptions,
  type AuditLogStats,
  type AuditOpenInfo,
  type AuditVerifyResult,
} from './audit/audit-log.js';
export {
  PeerVerifier,
  derivePeerKey,
  peerSignature,
  signPeerRequest,
  PEER_AUTH_INFO,
  PEER_HEADERS,
  PEER_REFUSALS,
  DEFAULT_SKEW_MS,
  DEFAULT_MAX_NONCES,
  type PeerRefusal,
  type PeerVerdict,
  type PeerRequestParts,
  type SignInput,
  type IncomingPeerRequest,
  type PeerVerifierOptions,
} from './peer/auth.js';
export {
  ServiceError,
  SERVICE_ERROR_STATUS,
  SERVICE_ERROR_CODES,
  errorBody,
  toServiceError,
  sendError,
  httpStatus,
  ERROR_HTTP,
  type ServiceErrorCode,
  type ServiceErrorOptions,
  type ErrorBody,
} from './http/errors.js';
export { createLogger, REDACT_PATHS, REDACTED, type LoggerOptions, type Logger } from './logger.js';
export { createMetrics, LATENCY_BUCKETS, type CofferMetrics, type MetricsOptions } from './metrics.js';
export { createApi, apiRoutes, type RouteAccess, type RouteInfo } from './http/api.js';
export { MAX_BODY_BYTES, MAX_RESTORE_BYTES } from './http/body.js';
export { SecretService, MAX_WRITE_ATTEMPTS, MAX_BATCH_NAMES, type SecretWriteInput, type SecretWritten, type OpenedSecret, type VerifyOutcome, type VersionOp } from './service/secrets.js';
export { TokenService, type MintedToken } from './service/tokens.js';
export { PolicyService } from './service/roles.js';
export { ClusterService, health, NODE_VERSION, type HealthAnswer } from './service/cluster.js';
export { AccessCache } from './service/access.js';
export { RESULT_ERRORS, expectOk } from './service/results.js';
export { MAX_VALUE_BYTES, valueFromBody, valueFields, type PlainValue } from './service/values.js';
export { startServer, COFFER_VERSION, type RunningServer, type StartOptions } from './server.js';
export { restoreDataDir, type RestoreOptions } from './restore.js';
export { INTEGRITY_ROOT_FILE, RECORD_MAC_INFO, SNAPSHOT_MAC_INFO, integrityFromRoot, loadStorageIntegrity, type StorageIntegrityOptions } from './storage-integrity.js';
export { recoverDataDir, type RecoverOptions, type RecoverResult } from './recover.js';
export type {
  NodeContext,
  NodeEnvironment,
  ReadPath,
  Proposer,
  ClusterView,
  ClusterAdmin,
  Forwarding,
  RequestGuards,
  WorkerControls,
  Lifecycle,
  SealControl,
  MemberView,
  ReadConsistency,
} from './context.js';
export { NodeSeal, type NodeSealDeps, type SealInitAnswer } from './seal/node-seal.js';
export { SealError, SEAL_ERROR_CODES, type SealErrorCode } from './seal/errors.js';
