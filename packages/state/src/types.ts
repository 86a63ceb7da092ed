// Shapes shared with other packages. They are declared here structurally (state depends on no
// other Coffer package); the field names match @coffer/crypto and @coffer/raft exactly.

/** A sealed secret value as produced by @coffer/crypto: ciphertext only, never plaintext. */
export type SealedValue = {
  formatVersion: number;
  alg: string;
  nonce: Uint8Array;
  ciphertext: Uint8Array;
  wrappedDek: Uint8Array;
  kmsKeyId: string;
};

/** A Raft log entry (structurally identical to @coffer/raft's). */
export type LogEntry = { term: number; index: number; type: 'normal' | 'confChange'; data: Uint8Array };

/** Raft hard state (structurally identical to @coffer/raft's). */
export type HardState = { term: number; vote: string | null; commit: number };

/** Raft snapshot metadata (structurally identical to @coffer/raft's). */
export type SnapshotMeta = { index: number; term: number; confState: { voters: string[]; learners: string[] } };

/** How a secret's value is to be presented; metadata only, the value itself stays sealed. */
export type SecretFormat = 'raw' | 'base64' | 'userpass' | 'kv';

/** Automatic-rotation settings of a secret. */
export type RotationPolicy = { intervalSecs: number; graceSecs: number; target: string | null };

/** One RBAC rule: the actions allowed on secret-name globs. */
export type RoleRule = { paths: string[]; actions: string[] };
