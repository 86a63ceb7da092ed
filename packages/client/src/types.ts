/**
 * Shapes of the API's requests and answers (docs/API.md, CONTRACT.md). Timestamps are passed
 * through as the server sends them (ISO-8601 text or epoch milliseconds); {@link toEpochMs}
 * converts either.
 */

/** A timestamp as the server sends it. */
export type Timestamp = string | number;

/** A system whose credential a rotation changes first (docs/API.md, rotation targets). */
export interface PostgresRotationTarget {
  type: 'postgres';
  /** The PostgreSQL role whose password is set with ALTER ROLE. */
  role: string;
  /** Name of the Coffer secret holding an admin connection URL (the writer needs secret.read on it). */
  connectionSecret: string;
}

/** Automatic rotation settings of a secret. */
export interface RotationPolicy {
  intervalSecs: number;
  graceSecs: number;
  /** A target object, or a free-text note (stored, never run). */
  target?: PostgresRotationTarget | string;
}

/** A secret's rotation as `GET /v1/versions/{name}` shows it. */
export interface RotationStatus {
  intervalSecs: number;
  graceSecs: number;
  target: PostgresRotationTarget | string | null;
  /** The last refusal of the target (cleared by the next successful rotation). */
  lastError: { code: string; message: string; at: string } | null;
  /** Whether a rotation waits for its target to confirm (the leader retries it). */
  pending: boolean;
}

/** The value part of a secret write: text, bytes (base64) or a username/password pair. */
export type SecretValueInput =
  | { value: string }
  | { valueBase64: string }
  | { format: 'userpass'; username: string; password: string };

/** Options of a secret write. */
export interface PutSecretOptions {
  /** Check-and-set: the write succeeds only if the current version is `cas` (0: must not exist). */
  cas?: number;
  description?: string;
  rotation?: RotationPolicy;
}

/** Answer to a secret write or rotation. */
export interface SecretWriteResult {
  name: string;
  version: number;
  createdAt: Timestamp;
}

/** A secret version with its value. */
export interface Secret {
  name: string;
  version: number;
  /** UTF-8 values. */
  value?: string;
  /** Binary values. */
  valueBase64?: string;
  /** `userpass` or `kv` (absent for plain values). */
  format?: string;
  /** `userpass` secrets. */
  username?: string;
  password?: string;
  /** `kv` secrets (written through the Vault KV v2 routes): the data map. */
  data?: Record<string, unknown>;
  createdAt: Timestamp;
}

/** Read options. */
export interface GetSecretOptions {
  /** A specific version (default: the latest). */
  version?: number;
  /** `stale` lets any node answer from its own applied state (faster, possibly behind). */
  consistency?: 'linearizable' | 'stale';
}

/** One entry of a secret listing. */
export interface SecretSummary {
  name: string;
  version?: number;
  createdAt?: Timestamp;
  updatedAt?: Timestamp;
  [extra: string]: unknown;
}

/** Metadata of one secret version (never its value). */
export interface SecretVersionInfo {
  version: number;
  createdAt?: Timestamp;
  deletedAt?: Timestamp | null;
  destroyed?: boolean;
  [extra: string]: unknown;
}

/** Result of a constant-time verification. */
export interface VerifyResult {
  valid: boolean;
  version?: number;
}

/** A token as listed: never the raw token, never its hash. */
export interface TokenInfo {
  name: string;
  role: string;
  createdAt?: Timestamp;
  expiresAt?: Timestamp | null;
  revokedAt?: Timestamp | null;
  [extra: string]: unknown;
}

/** A freshly minted token: the only place the raw token appears. */
export interface CreatedToken {
  name: string;
  role: string;
  /** The raw bearer token. Show it once; store it securely. */
  token: string;
  expiresAt?: Timestamp | null;
}

/** Options for creating a token. */
export interface CreateTokenOptions {
  /** Lifetime such as `90d`, `12w`, `6m` (months), `36h`, `30min`; parsed by the server. */
  ttl?: string;
}

/** One RBAC rule. */
export interface RoleRule {
  paths: string[];
  actions: string[];
}

/** A role's definition. */
export interface RoleDefinition {
  rules: RoleRule[];
  /** e.g. `100/m`. */
  rateLimit?: string;
}

/** A role as read back. */
export interface Role extends RoleDefinition {
  name: string;
  [extra: string]: unknown;
}

/** The replicated read allowlist. */
export interface Allowlist {
  cidrs: string[];
}

/** KMS re-wrap progress. */
export interface RewrapStatus {
  enabled: boolean;
  running: boolean;
  watermark?: unknown;
  pending: number;
  done: number;
  lastPassAt?: Timestamp | null;
  [extra: string]: unknown;
}

/** One line of a node's audit log, chain fields included (`GET /v1/audit`). */
export interface AuditLine {
  time: string;
  node: string;
  requestId: string;
  actor: string | null;
  clientIp: string | null;
  action: string;
  resource: string | null;
  outcome: 'ok' | 'denied' | 'error';
  status: number;
  seq: number;
  prev: string;
  hash: string;
}

/** A page of a node's audit log. */
export interface AuditPage {
  /** The node whose log this is (each node keeps its own). */
  node: string;
  /** The seq of that node's last durable line. */
  head: number;
  records: AuditLine[];
  /** The `since` to ask for next. */
  next: number;
}

/** One cluster member. */
export interface ClusterMember {
  id: string;
  raftAddr: string;
  apiAddr: string;
  suffrage: string;
  matchIndex: number;
  healthy: boolean;
  [extra: string]: unknown;
}

/** `GET /v1/cluster`. */
export interface ClusterStatus {
  id: string;
  leader: string | null;
  term: number;
  commitIndex: number;
  appliedIndex: number;
  members: ClusterMember[];
  [extra: string]: unknown;
}

/** A member to add. */
export interface AddMemberInput {
  id: string;
  raftAddr: string;
  apiAddr: string;
}

/** `GET /v1/sys/health`, with the HTTP status (200 leader, 429 standby, 503 no quorum). */
export interface HealthStatus {
  status: number;
  initialized?: boolean;
  standby?: boolean;
  leader?: string | null;
  term?: number;
  version?: string;
  [extra: string]: unknown;
}

/** Progress of a streamed transfer. */
export interface TransferProgress {
  bytes: number;
  /** Total size when known (Content-Length or file size). */
  totalBytes: number | undefined;
}

/** Options of a streamed transfer. */
export interface TransferOptions {
  /** Called as bytes move; keep it cheap. */
  onProgress?: (progress: TransferProgress) => void;
}

/** Result of a snapshot download. */
export interface SnapshotResult {
  file: string;
  bytes: number;
}

/**
 * Convert a server timestamp to epoch milliseconds.
 *
 * @param t - ISO-8601 text, epoch ms, or epoch seconds (numbers below 1e11)
 * @returns epoch ms, or undefined when absent or unparseable
 * @example
 * ```ts
 * toEpochMs('2030-01-01T00:00:00Z'); // 1893456000000
 * ```
 */
export function toEpochMs(t: Timestamp | null | undefined): number | undefined {
  if (t === null || t === undefined) return undefined;
  if (typeof t === 'number') return t < 1e11 ? t * 1000 : t;
  if (/^\d+$/.test(t)) return toEpochMs(Number(t));
  const ms = Date.parse(t);
  return Number.isNaN(ms) ? undefined : ms;
}
