/**
 * runRotationTarget: the connection secret is read through the callback, problems with it name the
 * secret (never its value), and a good URL reaches the setter unchanged. The real-server run is in
 * packages/cluster-tests/test/postgres-target.test.ts.
 */
import { RotationTargetError } from '../src/rotation/errors.js';
import type { PostgresRotationTarget, SetPostgresPasswordOptions } from '../src/rotation/postgres.js';
import { runRotationTarget } from '../src/rotation/target.js';

const target: PostgresRotationTarget = { type: 'postgres', role: 'app_user', connectionSecret: 'db/admin-url' };
const password = 'fresh-password-value';

async function rejection(p: Promise<void>): Promise<RotationTargetError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RotationTargetError);
  return err as RotationTargetError;
}

test('the URL read from the connection secret reaches the setter with the role, password and timeout', async () => {
  const calls: SetPostgresPasswordOptions[] = [];
  const read: string[] = [];
  await runRotationTarget({
    target,
    password,
    timeoutMs: 1234,
    readSecret: async (name) => {
      read.push(name);
      return 'postgres://admin:pw@127.0.0.1:5432/postgres';
    },
    setPassword: async (o) => {
      calls.push(o);
    },
  });
  expect(read).toEqual(['db/admin-url']);
  expect(calls).toEqual([{ connectionUrl: 'postgres://admin:pw@127.0.0.1:5432/postgres', role: 'app_user', password, timeoutMs: 1234 }]);
});

test('a missing connection secret: NODE_ROTATION_TARGET_INVALID naming it; the setter is not called', async () => {
  let called = 0;
  const e = await rejection(
    runRotationTarget({
      target,
      password,
      readSecret: async () => undefined,
      setPassword: async () => {
        called++;
      },
    }),
  );
  expect(e.code).toBe('NODE_ROTATION_TARGET_INVALID');
  expect(e.message).toContain('"db/admin-url"');
  expect(e.message).toContain('"app_user"');
  expect(called).toBe(0);
});

test('a connection secret that is not a postgres URL: the message names the secret, never its value', async () => {
  const value = 'mysql://root:S3cret-admin@db/x';
  let called = 0;
  const e = await rejection(
    runRotationTarget({
      target,
      password,
      readSecret: async () => value,
      setPassword: async () => {
        called++;
      },
    }),
  );
  expect(e.code).toBe('NODE_ROTATION_TARGET_INVALID');
  expect(e.message).toMatch(/connection secret "db\/admin-url": connection URL must start with postgres:\/\//);
  expect(e.message).not.toContain('S3cret-admin');
  expect(e.message).not.toContain(password);
  expect(called).toBe(0);
});

test('errors of the setter pass through unchanged (code and outcome)', async () => {
  const thrown = new RotationTargetError('NODE_ROTATION_TARGET_TIMEOUT', 'no answer', { applied: 'unknown' });
  const e = await rejection(
    runRotationTarget({
      target,
      password,
      readSecret: async () => 'postgresql://admin:pw@127.0.0.1/postgres',
      setPassword: async () => {
        throw thrown;
      },
    }),
  );
  expect(e).toBe(thrown);
  expect(e.applied).toBe('unknown');
});
