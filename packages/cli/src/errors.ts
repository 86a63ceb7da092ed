/** Errors of the `coffer` command itself (the server's and the client's come as `CofferError`). */

/** Every code a {@link CliError} can carry. */
export type CliErrorCode =
  /** Bad usage: a malformed argument or a missing value. Exit code 2. */
  | 'CLI_USAGE'
  /** A local failure such as an unreadable file. Exit code 1. */
  | 'CLI_FAILED';

/**
 * An error raised by the CLI before or around a request.
 *
 * @example
 * ```ts
 * throw new CliError('CLI_USAGE', 'duration "5x" has an unknown unit');
 * ```
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  /** Stable code; match on this. */
  readonly code: CliErrorCode;

  /**
   * @param code - stable code
   * @param message - human sentence
   * @param options - `cause` is kept
   */
  constructor(code: CliErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * Shorthand for a usage error (exit code 2).
 *
 * @param message - what is wrong with the invocation
 * @returns the error, to throw
 */
export function usage(message: string): CliError {
  return new CliError('CLI_USAGE', message);
}
