// The error table and the error writers, on a real node:http server (the API's own transport).
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { NodeError } from '../../src/errors.js';
import { readBody, readLimited, sendJson } from '../../src/http/body.js';
import { ERROR_HTTP, SERVICE_ERROR_CODES, SERVICE_ERROR_STATUS, errorBody, httpStatus, sendError, toServiceError } from '../../src/http/errors.js';
import { ServiceError, type ServiceErrorCode } from '../../src/service/errors.js';

describe('status table', () => {
  // One row per code: the contract's statuses, native and on Vault-shaped routes.
  const expected: Record<ServiceErrorCode, readonly [native: number, vault: number]> = {
    invalid_request: [400, 400],
    invalid_json: [400, 400],
    invalid_name: [400, 400],
    invalid_forward: [401, 401],
    invalid_snapshot: [400, 400],
    invalid_value: [400, 400],
    immutable_role: [400, 400],
    missing_token: [401, 403],
    invalid_token: [401, 403],
    permission_denied: [403, 403],
    self_approval: [403, 403],
    not_allowlisted: [403, 403],
    not_found: [404, 404],
    method_not_allowed: [405, 405],
    cas_conflict: [409, 400],
    already_exists: [409, 409],
    role_in_use: [409, 409],
    already_decided: [409, 409],
    body_too_large: [413, 413],
    rate_limited: [429, 429],
    locked_out: [429, 429],
    internal: [500, 500],
    integrity_error: [500, 500],
    no_leader: [503, 503],
    no_quorum: [503, 503],
    outcome_unknown: [503, 503],
    kms_unavailable: [503, 503],
    audit_unavailable: [503, 503],
    shutting_down: [503, 503],
    removed: [503, 503],
    upgrade_pending: [503, 503],
    sealed: [503, 503],
    not_initialized: [400, 400],
    already_initialized: [400, 400],
    unseal_key_malformed: [400, 400],
    unseal_key_duplicate: [400, 400],
    unseal_keys_wrong: [400, 400],
    rotation_pending: [409, 409],
    rotation_target_invalid: [400, 400],
    rotation_target_refused: [409, 409],
    rotation_target_unavailable: [503, 503],
  };
  test.each(Object.entries(expected))('%s → %j', (code, [native, vault]) => {
    const e = new ServiceError(code as ServiceErrorCode, 'x');
    expect(httpStatus(e)).toBe(native);
    expect(httpStatus(e, true)).toBe(vault);
    expect(SERVICE_ERROR_STATUS[code as ServiceErrorCode]).toBe(native);
    expect(ERROR_HTTP[code as ServiceErrorCode].status).toBe(native);
  });
  test('codes are snake_case and all listed', () => {
    expect([...SERVICE_ERROR_CODES].sort()).toEqual(Object.keys(expected).sort());
    for (const c of SERVICE_ERROR_CODES) expect(c).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });
});

describe('ServiceError', () => {
  test('body shape, retry-after rounding, leader hint', () => {
    const e = new ServiceError('no_leader', 'no leader elected yet', { retryAfterSecs: 0.2, leader: 'http://10.0.0.1:8200' });
    expect(e.retryAfterSecs).toBe(1);
    expect(errorBody(e, 'r1')).toEqual({ error: { code: 'no_leader', message: 'no leader elected yet', requestId: 'r1', leader: 'http://10.0.0.1:8200' } });
    expect(errorBody(new ServiceError('not_found', 'no such secret'), 'r2')).toEqual({ error: { code: 'not_found', message: 'no such secret', requestId: 'r2' } });
  });
  test('toServiceError', () => {
    const se = new ServiceError('cas_conflict', 'x');
    expect(toServiceError(se)).toBe(se);
    expect(toServiceError(new NodeError('NODE_INVALID_DURATION', 'duration "x" is bad'))).toMatchObject({ code: 'invalid_request', message: 'duration "x" is bad' });
    const audit = toServiceError(new NodeError('NODE_AUDIT_WRITE_FAILED', 'disk /var/secret-path full'));
    expect(audit).toMatchObject({ code: 'audit_unavailable', retryAfterSecs: 1 });
    expect(httpStatus(audit)).toBe(503);
    expect(audit.message).not.toContain('secret-path');
    expect(toServiceError(new NodeError('NODE_AUDIT_CLOSED', 'closed'))).toMatchObject({ code: 'shutting_down', retryAfterSecs: 1 });
    // A code a client cannot cause stays internal.
    expect(toServiceError(new NodeError('NODE_AUDIT_CORRUPT', 'line 3 edited'))).toMatchObject({ code: 'internal' });
    const internal = toServiceError(new Error('ENOENT /etc/coffer/private'));
    expect(internal).toMatchObject({ code: 'internal' });
    expect(httpStatus(internal)).toBe(500);
    expect(internal.message).not.toContain('/etc');
    expect(toServiceError('a string')).toMatchObject({ code: 'internal' });
    // Matched on codes only: a message that looks like a code changes nothing.
    expect(toServiceError(new Error('NODE_INVALID_DURATION'))).toMatchObject({ code: 'internal' });
  });
});

describe('writers on a real node:http server', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '/';
      res.setHeader('x-request-id', 'req-42');
      void (async () => {
        try {
          if (path === '/service') throw new ServiceError('rate_limited', 'role rate limit exceeded', { retryAfterSecs: 7 });
          if (path === '/vault-cas') return sendError(res, new ServiceError('cas_conflict', 'check-and-set parameter did not match the current version'), 'req-42', true);
          if (path === '/vault-404') return sendError(res, new ServiceError('not_found', 'no secret at "x"'), 'req-42', true);
          if (path === '/leader') throw new ServiceError('no_leader', 'moving', { retryAfterSecs: 1, leader: 'http://127.0.0.1:1' });
          if (path === '/boom') throw new Error('secret internals at /var/lib/coffer');
          if (path === '/body') return sendJson(res, 200, { bytes: (await readBody(req, 1024)).length });
          if (path === '/limited') {
            const got = await readLimited(req, 1024);
            return sendJson(res, got === null ? 413 : 200, { bytes: got?.length ?? null });
          }
          return sendJson(res, 204, undefined);
        } catch (err) {
          sendError(res, toServiceError(err), 'req-42');
        }
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('ServiceError → its status, body, Retry-After and no-store', async () => {
    const res = await fetch(`${base}/service`);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(await res.json()).toEqual({ error: { code: 'rate_limited', message: 'role rate limit exceeded', requestId: 'req-42' } });
  });
  test('leader hint in the body and X-Coffer-Leader', async () => {
    const res = await fetch(`${base}/leader`);
    expect(res.status).toBe(503);
    expect(res.headers.get('x-coffer-leader')).toBe('http://127.0.0.1:1');
    expect(((await res.json()) as { error: { leader: string } }).error.leader).toBe('http://127.0.0.1:1');
  });
  test("Vault's envelope and statuses", async () => {
    const cas = await fetch(`${base}/vault-cas`);
    expect(cas.status).toBe(400);
    expect(await cas.json()).toEqual({ errors: ['check-and-set parameter did not match the current version'] });
    const missing = await fetch(`${base}/vault-404`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ errors: [] });
  });
  test('unknown error → 500 internal, no internal message', async () => {
    const res = await fetch(`${base}/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal', message: 'internal error; see the server log for this request id', requestId: 'req-42' } });
    expect(text).not.toContain('/var/lib');
  });
  test('oversized body → 413 body_too_large (declared or streamed); readLimited answers null', async () => {
    const big = 'x'.repeat(5000);
    const res = await fetch(`${base}/body`, { method: 'POST', body: big });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
    const ok = await fetch(`${base}/body`, { method: 'POST', body: 'abc' });
    expect(await ok.json()).toEqual({ bytes: 3 });
    const limited = await fetch(`${base}/limited`, { method: 'POST', body: big });
    expect(limited.status).toBe(413);
    expect(await limited.json()).toEqual({ bytes: null });
    const small = await fetch(`${base}/limited`, { method: 'POST', body: 'abcd' });
    expect(await small.json()).toEqual({ bytes: 4 });
  });
});
