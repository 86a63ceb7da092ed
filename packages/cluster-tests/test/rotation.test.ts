/**
 * Automatic rotation through a real node: a secret with a rotation policy gets a new random value
 * once its current version is `intervalSecs` old; the old value still verifies during its grace
 * window; userpass secrets keep their username; secrets without a policy are left alone.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestCluster } from '../src/harness';

jest.setTimeout(120_000);

describe('automatic rotation worker', () => {
  const cluster = new TestCluster({ size: 1, env: { COFFER_ROTATION_POLL_SECS: '1' } });

  beforeAll(async () => {
    await cluster.start();
    await cluster.bootstrapped();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('due secrets rotate; the previous value verifies during its grace window; others stay', async () => {
    const n = await cluster.leader();
    expect((await cluster.http(n, 'PUT', '/v1/secrets/rot/api-key', { value: 'first-value', rotation: { intervalSecs: 2, graceSecs: 3600 } })).status).toBe(200);
    expect((await cluster.http(n, 'PUT', '/v1/secrets/rot/db', { format: 'userpass', username: 'app', password: 'first-password', rotation: { intervalSecs: 2, graceSecs: 0 } })).status).toBe(200);
    expect((await cluster.http(n, 'PUT', '/v1/secrets/rot/static', { value: 'never-rotates' })).status).toBe(200);

    await cluster.eventually(async () => (await cluster.http(n, 'GET', '/v1/secrets/rot/api-key', undefined, null)).body?.version >= 2, 30_000, 'api-key rotated');
    await cluster.eventually(async () => (await cluster.http(n, 'GET', '/v1/secrets/rot/db', undefined, null)).body?.version >= 2, 30_000, 'db rotated');

    const key = await cluster.http(n, 'GET', '/v1/secrets/rot/api-key', undefined, null);
    expect(key.body.value).not.toBe('first-value');
    expect(key.body.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const old = await cluster.http(n, 'POST', '/v1/verify/rot/api-key', { value: 'first-value' }, null);
    expect(old.body).toEqual({ valid: true, version: 1 });

    const db = await cluster.http(n, 'GET', '/v1/secrets/rot/db', undefined, null);
    expect(db.body.username).toBe('app');
    expect(db.body.password).not.toBe('first-password');

    const st = await cluster.http(n, 'GET', '/v1/secrets/rot/static', undefined, null);
    expect(st.body).toMatchObject({ version: 1, value: 'never-rotates' });

    // Every automatic rotation is audited under the worker's name; the new value is not in the file.
    const audit = readFileSync(path.join(n.dataDir, 'audit.jsonl'), 'utf8');
    const lines = audit.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.some((l) => l.actor === 'rotation-worker' && l.action === 'secret.rotate' && l.resource === 'rot/api-key' && l.outcome === 'ok')).toBe(true);
    expect(audit).not.toContain(key.body.value);
  });
});
