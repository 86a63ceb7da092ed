/**
 * Errors raised by the node's own modules (configuration, validation, audit, peer auth).
 *
 * Callers match on `code`, never on `message` or `instanceof`: codes are a contract, messages are
 * not. HTTP statuses are decided in one place only, `http/errors.ts`.
 */

/** Every code a {@link NodeError} can carry. */
export type NodeErrorCode =
  | 'NODE_CONFIG_INVALID'
  | 'NODE_INVALID_DURATION'
  | 'NODE_INVALID_RATE_LIMIT'
  | 'NODE_AUDIT_WRITE_FAILED'
  | 'NODE_AUDIT_CORRUPT'
  | 'NODE_AUDIT_CLOSED';

/**
 * Base class of the node package's errors.
 *
 * @example
 * ```ts
 * try { parseDuration('soon'); } catch (e) { if ((e as NodeError).code === 'NODE_INVALID_DURATION') {} }
 * ```
 */
export class NodeError extends Error {
  override readonly name: string = 'NodeError';
  /** Stable, package-prefixed code; match on this. */
  readonly code: NodeErrorCode;

  /**
   * @param code - the stable code
   * @param message - a human sentence (not a contract)
   * @param options - standard `ErrorOptions`; `cause` is kept
   */
  constructor(code: NodeErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/**
 * A bad configuration value. The message is one line that names the variable and the problem,
 * e.g. `COFFER_API_ADDR: "abc" is not host:port`; `coffer server` prints it and exits.
 */
export class ConfigError extends NodeError {
  override readonly name: string = 'ConfigError';
  /** The variable at fault, e.g. `COFFER_API_ADDR`. */
  readonly variable: string;

  /**
   * @param variable - the variable at fault
   * @param problem - what is wrong, without the variable name
   */
  constructor(variable: string, problem: string) {
    super('NODE_CONFIG_INVALID', `${variable}: ${problem}`);
    this.variable = variable;
  }
}
