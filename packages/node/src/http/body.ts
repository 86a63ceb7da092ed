/**
 * Request bodies without a global body parser: read only on routes that take one, bounded before
 * and while reading, parsed once. Also the one JSON response writer ({@link sendJson}) and the
 * one timestamp formatter ({@link iso}) of the HTTP layer: import these, do not copy them.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ServiceError } from '../service/errors.js';

/**
 * The one JSON writer: status, `content-type: application/json; charset=utf-8`,
 * `content-length`, `cache-control: no-store`.
 *
 * @param res - the response (headers not sent yet)
 * @param status - HTTP status
 * @param body - serialised with JSON.stringify (`undefined`: an empty body)
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.setHeader('cache-control', 'no-store');
  res.end(text);
}

// The one timestamp formatter lives with the services (which may not import http/).
export { iso } from '../service/common.js';

/** Default body limit (CONTRACT.md: values up to 1 MiB; JSON and base64 overhead fit in 2 MiB). */
export const MAX_BODY_BYTES: number = 2 * 1024 * 1024;
/** Body limit of `POST /v1/cluster/restore` (a whole snapshot goes through one Raft entry). */
export const MAX_RESTORE_BYTES: number = 256 * 1024 * 1024;

function tooLarge(limit: number): ServiceError {
  return new ServiceError('body_too_large', `request body is larger than ${limit} bytes`);
}

/**
 * Refuses a declared `Content-Length` over the limit before reading a byte.
 *
 * @param req - the request
 * @param limit - maximum bytes
 * @throws {ServiceError} `body_too_large`
 */
export function checkDeclaredLength(req: IncomingMessage, limit: number): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge(limit);
}

/**
 * Reads the whole body, refusing more than `limit` bytes.
 *
 * @param req - the request (not yet consumed)
 * @param limit - maximum bytes
 * @returns the body (empty when there is none)
 * @throws {ServiceError} `body_too_large` (413), `invalid_request` (aborted)
 */
export function readBody(req: IncomingMessage, limit: number = MAX_BODY_BYTES): Promise<Uint8Array> {
  checkDeclaredLength(req, limit);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | undefined, value?: Uint8Array): void => {
      if (done) return;
      done = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (err !== undefined) {
        // Stop buffering; the socket is closed after the error answer.
        for (const c of chunks) c.fill(0);
        req.resume();
        reject(err);
      } else resolve(value as Uint8Array);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      const buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size);
      if (chunks.length > 1) for (const c of chunks) c.fill(0);
      finish(undefined, new Uint8Array(buf.buffer, buf.byteOffset, buf.length));
    };
    const onError = (e: Error): void => finish(new ServiceError('invalid_request', 'request body could not be read', { cause: e }));
    const onAborted = (): void => finish(new ServiceError('invalid_request', 'request was aborted by the client'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

/**
 * Deepest JSON nesting a body may have. JSON.parse itself copes with any depth, but the code that
 * walks a body afterwards recurses (JSON.stringify of a KV v2 data map, the PATCH merge): a few
 * thousand levels overflow the stack there and the request died as a 500. Found by the fuzz
 * target node.vault-fields; Vault's own parser stops at 10,000, no real secret comes near 100.
 */
export const MAX_JSON_DEPTH = 100;

/** Whether the JSON text nests objects/arrays deeper than `max` (brackets inside strings do not count). */
function nestedDeeperThan(raw: Uint8Array, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/**
 * Parses a JSON object body. An empty body is `{}` when `optional`.
 *
 * @param raw - body bytes
 * @param optional - whether an empty body is allowed
 * @returns the object
 * @throws {ServiceError} `invalid_json` (not JSON), `invalid_request` (not an object / missing /
 *   nested deeper than {@link MAX_JSON_DEPTH})
 */
export function parseJsonObject(raw: Uint8Array, optional: boolean): Record<string, unknown> {
  if (raw.length === 0) {
    if (optional) return {};
    throw new ServiceError('invalid_request', 'this route needs a JSON body');
  }
  if (nestedDeeperThan(raw, MAX_JSON_DEPTH)) {
    throw new ServiceError('invalid_request', `request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('utf8'));
  } catch {
    throw new ServiceError('invalid_json', 'request body is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ServiceError('invalid_request', 'request body must be a JSON object');
  }
  return parsed as Record<string, unknown>;
}

/**
 * Reads a whole body of at most `limit` bytes, answering `null` (instead of an error) when it is
 * larger: for endpoints that answer a too-large body themselves (the signed join request).
 *
 * @param req - the request (not yet consumed)
 * @param limit - maximum bytes
 * @returns the body, or null when it exceeds `limit`
 * @throws {ServiceError} `invalid_request` when the client aborts or the stream fails
 */
export async function readLimited(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  try {
    return await readBody(req, limit);
  } catch (err) {
    if (err instanceof ServiceError && err.code === 'body_too_large') return null;
    throw err;
  }
}
