/**
 * Errors of the sealed start. Codes are a contract (match on `code`); messages are sentences an
 * operator can act on and never contain a share, the master key or anything derived from it.
 *
 * HTTP (to be added to the one table in http/errors.ts): NODE_SEAL_NOT_INITIALIZED 400 (Vault
 * answers 400 "Vault is not initialized"), NODE_SEAL_ALREADY_INITIALIZED 400, NODE_SEAL_INVALID_PARAMS
 * 400, NODE_SEAL_SHARE_MALFORMED 400, NODE_SEAL_SHARE_DUPLICATE 400, NODE_SEAL_SHARES_WRONG 400,
 * NODE_SEAL_SEALED 503 (with `"sealed": true`).
 */
export type SealErrorCode =
  /** No seal configuration has reached this node yet: `init` first (or wait for it to replicate). */
  | 'NODE_SEAL_NOT_INITIALIZED'
  /** The cluster already has a seal configuration: init happens once per cluster. */
  | 'NODE_SEAL_ALREADY_INITIALIZED'
  /** Bad `secret_shares` / `secret_threshold`. */
  | 'NODE_SEAL_INVALID_PARAMS'
  /** The submitted share is not base64 (or hex) of a share of this seal's size. */
  | 'NODE_SEAL_SHARE_MALFORMED'
  /** This share (or another with the same index) was already submitted in this round. */
  | 'NODE_SEAL_SHARE_DUPLICATE'
  /** Threshold shares were in but do not rebuild this cluster's master key; progress was reset. */
  | 'NODE_SEAL_SHARES_WRONG'
  /** The operation needs the master key and this node is sealed. */
  | 'NODE_SEAL_SEALED';

/** Every {@link SealErrorCode}, for exhaustive tables. */
export const SEAL_ERROR_CODES: readonly SealErrorCode[] = [
  'NODE_SEAL_NOT_INITIALIZED',
  'NODE_SEAL_ALREADY_INITIALIZED',
  'NODE_SEAL_INVALID_PARAMS',
  'NODE_SEAL_SHARE_MALFORMED',
  'NODE_SEAL_SHARE_DUPLICATE',
  'NODE_SEAL_SHARES_WRONG',
  'NODE_SEAL_SEALED',
];

/**
 * An error of the sealed start.
 *
 * @example
 * ```ts
 * try { await seal.submitShare(key); } catch (e) { if ((e as SealError).code === 'NODE_SEAL_SHARE_DUPLICATE') {} }
 * ```
 */
export class SealError extends Error {
  override readonly name: string = 'SealError';
  /** Stable code; match on this. */
  readonly code: SealErrorCode;

  /**
   * @param code - the stable code
   * @param message - a human sentence (not a contract); never secret material
   * @param options - standard `ErrorOptions`; `cause` is kept
   */
  constructor(code: SealErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}
