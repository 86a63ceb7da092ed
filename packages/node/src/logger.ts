/**
 * The node's one logger: pino, JSON lines on stdout, `nodeId` on every line, redaction as
 * configuration.
 *
 * Redaction covers the request headers that carry tokens and any property named like a secret
 * at the top level or one level down (`token`, `value`, `plaintext`, `dek`, `password`, …).
 * pino's paths have no recursive wildcard, so deeper objects are not covered: never pass request
 * bodies, secret records or config objects to the logger; log ids and names instead.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';

/** What replaces a redacted value. */
export const REDACTED = '[REDACTED]';

const SECRET_KEYS = ['token', 'rawToken', 'value', 'valueBase64', 'plaintext', 'dek', 'password', 'clusterKey', 'localMasterKey', 'bootstrapToken', 'masterKey'];

/** Redacted paths (pino `redact.paths` syntax). */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  'req.headers.authorization',
  'req.headers["x-vault-token"]',
  'req.headers["x-coffer-sig"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers["x-vault-token"]',
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
]);

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** `COFFER_LOG_LEVEL`. */
  readonly level: LevelWithSilent;
  /** Added to every line as `nodeId`. */
  readonly nodeId: string;
  /** Where lines go (default stdout); tests pass a stream. */
  readonly destination?: DestinationStream;
}

/**
 * Builds the logger. Child loggers add `term`, `requestId` and so on.
 *
 * @param opts - level, node id, optional destination
 * @returns a pino logger
 * @example
 * ```ts
 * const log = createLogger({ level: cfg.logLevel, nodeId: cfg.nodeId });
 * log.child({ requestId }).info({ route: '/v1/secrets/:name', status: 200 }, 'request');
 * ```
 */
export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    level: opts.level,
    base: { nodeId: opts.nodeId },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    formatters: { level: (label: string) => ({ level: label }) },
  };
  return opts.destination === undefined ? pino(options) : pino(options, opts.destination);
}

export type { Logger };
