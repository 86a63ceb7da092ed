import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
// jest's CommonJS transform has no esModuleInterop, so a default import of express (export =)
// would be undefined there; require() works under both jest and tsc.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express = require('express') as typeof import('express');
import { NodeError } from '../../src/errors.js';
import { SERVICE_ERROR_CODES, SERVICE_ERROR_STATUS, ServiceError, errorBody, errorHandler, toServiceError, type ServiceErrorCode } from '../../src/http/errors.js';

describe('status table', () => {
  // One row per code: the contract's statuses.
  const expected: Record<ServiceErrorCode, number> = {
    invalid_request: 400,
    invalid_json: 400,
    invalid_name: 400,
    invalid_forward: 401,
    invalid_snapshot: 400,
    invalid_value: 400,
    immutable_role: 400,
    missing_token: 401,
    invalid_token: 401,
    permission_denied: 403,
    not_allowlisted: 403,
    not_found: 404,
    method_not_allowed: 405,
    cas_conflict: 409,
    already_exists: 409,
    role_in_use: 409,
    body_too_large: 413,
    unsupported_media_type: 415,
    rate_limited: 429,
    locked_out: 429,
    internal: 500,
    integrity_error: 500,
    not_leader: 503,
    no_leader: 503,
    no_quorum: 503,
    outcome_unknown: 503,
    kms_unavailable: 503,
    audit_unavailable: 503,
    shutting_down: 503,
    removed: 503,
    upgrade_pending: 503,
  };
  test.each(Object.entries(expected))('%s → %d', (code, status) => {
    const e = new ServiceError(code as ServiceErrorCode, 'x');
    expect(e.status).toBe(status);
    expect(SERVICE_ERROR_STATUS[code as ServiceErrorCode]).toBe(status);
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
    expect(toServiceError(new NodeError('NODE_AUDIT_WRITE_FAILED', 'disk /var/secret-path full'))).toMatchObject({ code: 'audit_unavailable', status: 503, retryAfterSecs: 1 });
    expect(toServiceError(new NodeError('NODE_AUDIT_WRITE_FAILED', 'disk /var/secret-path full')).message).not.toContain('secret-path');
    const internal = toServiceError(new Error('ENOENT /etc/coffer/private'));
    expect(internal).toMatchObject({ code: 'internal', status: 500 });
    expect(internal.message).not.toContain('/etc');
    expect(toServiceError('a string')).toMatchObject({ code: 'internal' });
    expect(toServiceError(Object.assign(new Error('x'), { type: 'entity.too.large' }))).toMatchObject({ code: 'body_too_large', status: 413 });
  });
});

describe('errorHandler on a real express app', () => {
  let server: Server;
  let base: string;
  const internals: unknown[] = [];
  beforeAll(async () => {
    const app = express();
    app.use((_req, res, next) => {
      res.locals['requestId'] = 'req-42';
      next();
    });
    app.post('/json', express.json({ limit: '1kb' }), (req, res) => {
      res.json({ got: req.body });
    });
    app.get('/service', () => {
      throw new ServiceError('rate_limited', 'role rate limit exceeded', { retryAfterSecs: 7 });
    });
    app.get('/boom', () => {
      throw new Error('secret internals at /var/lib/coffer');
    });
    app.get('/async', async () => {
      await Promise.resolve();
      throw new ServiceError('cas_conflict', 'expected version 3, current is 4');
    });
    app.use(errorHandler({ onInternal: (err) => internals.push(err) }));
    server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test('ServiceError → its status, body and Retry-After', async () => {
    const res = await fetch(`${base}/service`);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual({ error: { code: 'rate_limited', message: 'role rate limit exceeded', requestId: 'req-42' } });
  });
  test('async handlers too (express 5)', async () => {
    const res = await fetch(`${base}/async`);
    expect(res.status).toBe(409);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('cas_conflict');
  });
  test('unknown error → 500 internal, no internal message', async () => {
    const res = await fetch(`${base}/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({ error: { code: 'internal', message: 'internal error; see the server log for this request id', requestId: 'req-42' } });
    expect(text).not.toContain('/var/lib');
    expect(internals).toHaveLength(1);
  });
  test('malformed JSON → 400 invalid_json', async () => {
    const res = await fetch(`${base}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error).toMatchObject({ code: 'invalid_json', requestId: 'req-42' });
  });
  test('oversized body → 413 body_too_large', async () => {
    const res = await fetch(`${base}/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ v: 'x'.repeat(5000) }) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('body_too_large');
  });
  test('unsupported charset → 415', async () => {
    const res = await fetch(`${base}/json`, { method: 'POST', headers: { 'content-type': 'application/json; charset=klingon' }, body: '{}' });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unsupported_media_type');
  });
});
