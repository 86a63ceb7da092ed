/**
 * Stable error codes of @coffer/state. Codes are a contract; messages are not.
 *
 * - `SM_UNKNOWN_COMMAND`: the command type byte is not one this build knows.
 * - `SM_UNSUPPORTED_VERSION`: the type is known but its format version is newer than this build
 *   (or was never defined). The node must stop applying and exit; upgrade gating prevents it.
 * - `SM_CORRUPT_COMMAND`: the bytes do not decode to a well-formed command of the declared type.
 * - `SM_INVALID_COMMAND`: a command handed to the encoder is malformed (caught before proposing).
 * - `SM_CORRUPT_SNAPSHOT`: a snapshot blob is truncated, fails its checksum or is malformed.
 * - `SM_UNSUPPORTED_SNAPSHOT`: a snapshot blob has a format version this build cannot read (or
 *   will not: the unauthenticated format v1).
 * - `SM_SNAPSHOT_NOT_AUTHENTIC`: a snapshot's tag does not verify under this cluster's snapshot
 *   key: it was edited, or it comes from a cluster with another key.
 * - `SM_INTEGRITY`: a record read back from LevelDB fails its tag (edited, forged or moved), or the
 *   data dir was written under another key. Never carries the record's value.
 * - `SM_CORRUPT_STORAGE`: a record read back from LevelDB does not decode.
 * - `SM_COMPACTION_UNSAFE`: compaction past what is durably applied or past the saved snapshot.
 * - `SM_STORE_CLOSED`: the store was used after `close()`.
 * - `SM_INVARIANT`: an internal invariant broke; the node must treat it as fatal.
 */
export type StateErrorCode =
  | 'SM_UNKNOWN_COMMAND'
  | 'SM_UNSUPPORTED_VERSION'
  | 'SM_CORRUPT_COMMAND'
  | 'SM_INVALID_COMMAND'
  | 'SM_CORRUPT_SNAPSHOT'
  | 'SM_UNSUPPORTED_SNAPSHOT'
  | 'SM_SNAPSHOT_NOT_AUTHENTIC'
  | 'SM_INTEGRITY'
  | 'SM_CORRUPT_STORAGE'
  | 'SM_COMPACTION_UNSAFE'
  | 'SM_STORE_CLOSED'
  | 'SM_INVARIANT';

/**
 * The one error class of @coffer/state. Match on `code`, never on the message.
 *
 * @example
 * ```ts
 * try { decodeCommand(bytes); } catch (e) { if (e instanceof StateError && e.code === 'SM_UNKNOWN_COMMAND') process.exit(1); }
 * ```
 */
export class StateError extends Error {
  override readonly name = 'StateError';
  readonly code: StateErrorCode;
  /** Raft index of the entry that failed, when the error came from applying a log entry. */
  index: number | undefined;
  /**
   * @param code - stable error code
   * @param message - human sentence; never contains secret material
   * @param options - standard `cause`
   */
  constructor(code: StateErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Throws `SM_INVARIANT` when `cond` is false. Used for states that correct code cannot reach.
 *
 * @param cond - the condition that must hold
 * @param msg - what broke
 * @throws {SM_INVARIANT}
 */
export function invariant(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new StateError('SM_INVARIANT', msg);
}
