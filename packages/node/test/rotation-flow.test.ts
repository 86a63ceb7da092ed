// The rotation flow around a target (rotation/flow.ts) on the single-node API harness, with the
// target's setter replaced by a stub that records each password it is given: an unknown outcome
// keeps the pending password and the retry sets the SAME one; a certain refusal of the attempt
// that began drops it; a resumed attempt never drops; concurrent runs share one; a write while a
// rotation is pending is refused; secrets without a target rotate as one plain write.
import { userpassValue } from '../src/service/values.js';
import { RotationTargetError } from '../src/rotation/errors.js';
import { rotateWithTarget } from '../src/rotation/flow.js';
import type { SetPostgresPasswordOptions } from '../src/rotation/postgres.js';
import { ServiceError } from '../src/service/errors.js';
import { startHarness, type Harness } from './api/harness.js';

let h: Harness;
beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const ADMIN_URL = 'postgres://coffer_admin:admin-pw@127.0.0.1:5999/postgres';
const TARGET = { type: 'postgres', role: 'app_user', connectionSecret: 'pg/admin-url' };

async function setUp(): Promise<void> {
  expect((await h.req('PUT', '/v1/secrets/pg/admin-url', { body: { value: ADMIN_URL } })).status).toBe(200);
  const r = await h.req('PUT', '/v1/secrets/db/app', { body: { format: 'userpass', username: 'app_user', password: 'p1', rotation: { intervalSecs: 3600, graceSecs: 60, target: TARGET } } });
  expect(r.status).toBe(200);
}

/** A setter stub: answers from `outcomes` in turn (an error to throw, or null for success). */
function stub(outcomes: (RotationTargetError | null)[]): { calls: SetPostgresPasswordOptions[]; setPassword: (o: SetPostgresPasswordOptions) => Promise<void> } {
  const calls: SetPostgresPasswordOptions[] = [];
  return {
    calls,
    setPassword: async (o) => {
      calls.push(o);
      const e = outcomes.shift();
      if (e) throw e;
    },
  };
}

function rotate(setPassword: (o: SetPostgresPasswordOptions) => Promise<void>): Promise<{ version: number }> {
  return rotateWithTarget({
    ctx: h.ctx,
    name: 'db/app',
    actor: 'tester',
    newValue: async () => userpassValue('app_user', `fresh-${Math.random().toString(36).slice(2)}`),
    readText: async (n) => (n === 'pg/admin-url' ? ADMIN_URL : undefined),
    setPassword,
  });
}

async function failure(p: Promise<unknown>): Promise<ServiceError> {
  const e = await p.then(() => null, (x: unknown) => x);
  if (!(e instanceof ServiceError)) throw new Error(`expected a ServiceError, got ${String(e)}`);
  return e;
}

async function view(): Promise<any> {
  return (await h.req('GET', '/v1/versions/db/app')).body;
}

test('an unknown outcome keeps the pending password; the next run sets the same one and commits it', async () => {
  await setUp();
  const s = stub([new RotationTargetError('NODE_ROTATION_TARGET_TIMEOUT', 'no answer', { applied: 'unknown' }), null]);
  const e = await failure(rotate(s.setPassword));
  expect(e.code).toBe('rotation_target_unavailable');
  expect(e.retryAfterSecs).toBeGreaterThan(0);
  expect(await view()).toMatchObject({ currentVersion: 1, rotation: { pending: true, lastError: { code: 'rotation_target_unavailable', message: 'no answer' } } });
  // Reads and verify still see version 1 while it is pending.
  expect((await h.req('GET', '/v1/secrets/db/app', { token: null })).body).toMatchObject({ version: 1, password: 'p1' });
  // A write now would leave PostgreSQL with a password no version holds.
  const w = await h.req('PUT', '/v1/secrets/db/app', { body: { format: 'userpass', username: 'app_user', password: 'manual' } });
  expect(w.status).toBe(409);
  expect(w.body.error.code).toBe('rotation_pending');

  expect((await rotate(s.setPassword)).version).toBe(2);
  expect(s.calls).toHaveLength(2);
  expect(s.calls[1]?.password).toBe(s.calls[0]?.password);
  expect(s.calls[0]?.connectionUrl).toBe(ADMIN_URL);
  expect(s.calls[0]?.role).toBe('app_user');
  const now = (await h.req('GET', '/v1/secrets/db/app', { token: null })).body;
  expect(now).toMatchObject({ version: 2, username: 'app_user', password: s.calls[0]?.password });
  expect(await view()).toMatchObject({ currentVersion: 2, rotation: { pending: false, lastError: null } });
  // The previous password verifies during the grace window, then not.
  expect((await h.req('POST', '/v1/verify/db/app', { token: null, body: { value: 'p1' } })).body).toEqual({ valid: true, version: 1 });
  h.clock.now += 61_000;
  expect((await h.req('POST', '/v1/verify/db/app', { token: null, body: { value: 'p1' } })).body).toEqual({ valid: false, version: null });
  expect(h.proposed.filter((c) => c.type.startsWith('rotation.')).map((c) => c.type)).toEqual(['rotation.begin', 'rotation.fail', 'rotation.commit']);
  // The log carried the password sealed only; the error message and metrics hold no secret.
  const text = JSON.stringify(h.proposed, (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v));
  expect(text).not.toContain(s.calls[0]?.password as string);
  const metrics = await h.ctx.metrics.registry.metrics();
  expect(metrics).toMatch(/coffer_rotation_target_total\{type="postgres",outcome="timeout"\} 1/);
  expect(metrics).toMatch(/coffer_rotation_target_total\{type="postgres",outcome="ok"\} 1/);
  expect(metrics).not.toContain('db/app');
});

test('a certain refusal of the attempt that began drops the pending value; the secret is unchanged', async () => {
  await setUp();
  const s = stub([new RotationTargetError('NODE_ROTATION_TARGET_REFUSED', 'permission denied to alter role', { targetCode: '42501' })]);
  const e = await failure(rotate(s.setPassword));
  expect(e.code).toBe('rotation_target_refused');
  expect(await view()).toMatchObject({ currentVersion: 1, rotation: { pending: false, lastError: { code: 'rotation_target_refused' } } });
  // A plain write goes through again.
  expect((await h.req('PUT', '/v1/secrets/db/app', { body: { format: 'userpass', username: 'app_user', password: 'manual' } })).status).toBe(200);
});

test('a resumed attempt keeps the pending value even on a certain refusal (an earlier attempt may have set it)', async () => {
  await setUp();
  const s = stub([
    new RotationTargetError('NODE_ROTATION_TARGET_UNREACHABLE', 'connection lost', { applied: 'unknown' }),
    new RotationTargetError('NODE_ROTATION_TARGET_REFUSED', 'tuple concurrently updated', { targetCode: 'XX000' }),
    null,
  ]);
  expect((await failure(rotate(s.setPassword))).code).toBe('rotation_target_unavailable');
  expect((await failure(rotate(s.setPassword))).code).toBe('rotation_target_refused');
  expect(await view()).toMatchObject({ currentVersion: 1, rotation: { pending: true, lastError: { code: 'rotation_target_refused' } } });
  expect((await rotate(s.setPassword)).version).toBe(2);
  expect(new Set(s.calls.map((c) => c.password)).size).toBe(1);
});

test('concurrent runs for one secret share one target run and one new version', async () => {
  await setUp();
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const calls: string[] = [];
  const slow = async (o: SetPostgresPasswordOptions): Promise<void> => {
    calls.push(o.password);
    await gate;
  };
  const a = rotate(slow);
  await new Promise((r) => setTimeout(r, 50));
  const b = rotate(slow);
  // POST /v1/rotate joins the run in flight too.
  const c = h.req('POST', '/v1/rotate/db/app');
  await new Promise((r) => setTimeout(r, 50));
  release();
  expect((await a).version).toBe(2);
  expect((await b).version).toBe(2);
  expect((await c).body.version).toBe(2);
  expect(calls).toHaveLength(1);
  expect((await view()).currentVersion).toBe(2);
});

test('secrets without a target (or with a legacy text target) rotate as one plain write', async () => {
  await h.req('PUT', '/v1/secrets/plain', { body: { value: 'v1', rotation: { intervalSecs: 60, graceSecs: 0, target: 'ticket OPS-1' } } });
  const r = await h.req('POST', '/v1/rotate/plain');
  expect(r.body.version).toBe(2);
  expect(h.proposed.some((c) => c.type.startsWith('rotation.'))).toBe(false);
  expect((await h.req('GET', '/v1/versions/plain')).body.rotation).toEqual({ intervalSecs: 60, graceSecs: 0, target: 'ticket OPS-1', lastError: null, pending: false });
});

test('setting a target needs secret.read on the connection secret; bad targets are 400', async () => {
  const writer = await h.tokenWith('writer', [{ paths: ['db/**'], actions: ['secret.write'] }]);
  const dba = await h.tokenWith('dba', [{ paths: ['db/**'], actions: ['secret.write'] }, { paths: ['pg/*'], actions: ['secret.read'] }]);
  const body = { format: 'userpass', username: 'app_user', password: 'p1', rotation: { intervalSecs: 3600, graceSecs: 0, target: TARGET } };
  const denied = await h.req('PUT', '/v1/secrets/db/x', { token: writer, body });
  expect(denied.status).toBe(403);
  expect(denied.body.error.code).toBe('permission_denied');
  expect(h.proposed.some((c) => c.type === 'secret.put' && c.name === 'db/x')).toBe(false);
  const ok = await h.req('PUT', '/v1/secrets/db/x', { token: dba, body });
  expect(ok.status).toBe(200);
  // The audit names the connection secret too (a line of its own for the same request).
  const lines = h.auditLines().filter((l) => l.action === 'secret.write' && l.status === 200);
  const conn = lines.find((l) => l.resource === 'pg/admin-url');
  expect(conn).toBeDefined();
  expect(lines.some((l) => l.resource === 'db/x' && l.requestId === conn?.requestId)).toBe(true);
  // As admin (who may read every secret), so the refusal is the target naming its own secret, not the grant.
  const self = await h.req('PUT', '/v1/secrets/db/y', { body: { ...body, rotation: { intervalSecs: 3600, graceSecs: 0, target: { ...TARGET, connectionSecret: 'db/y' } } } });
  expect(self.status).toBe(400);
});
