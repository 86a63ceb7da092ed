/**
 * `coffer run` against a real node: secrets become the command's environment (one batch read),
 * the command's exit code and signals pass through, a missing mapped secret stops before the
 * command runs, and neither the values nor the token reach the command line or the command's
 * COFFER_TOKEN.
 */
import { spawn } from 'node:child_process';
import { COFFER_BIN, REPO_ROOT, TestCluster, runCli, type NodeHandle } from '../src/harness';

jest.setTimeout(120_000);

describe('coffer run (real node)', () => {
  const cluster = new TestCluster({ size: 1 });
  let env: Record<string, string>;

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
    const n = cluster.nodes[0] as NodeHandle;
    env = { COFFER_ADDR: n.api, COFFER_TOKEN: cluster.bootstrapToken };
    for (const [name, body] of [
      ['app/db-password', { value: 'pw-canary-1' }],
      ['app/api.key', { value: 'key with spaces' }],
      ['app/nested/item', { value: 'nested' }],
      ['payments/stripe', { format: 'userpass', username: 'acct', password: 'sk-canary-2' }],
    ] as const) {
      expect((await cluster.call(n, 'PUT', `/v1/secrets/${name}`, body)).status).toBe(200);
    }
  });
  afterAll(async () => {
    await cluster.stop();
  });

  const printEnv = ['node', '-e', 'process.stdout.write(JSON.stringify(process.env))'];

  test('--prefix and --map become variables; the token is not passed on', async () => {
    const r = await runCli(['run', '--prefix', 'app/', '--map', 'STRIPE=payments/stripe', '--map', 'DB=app/db-password', '--', ...printEnv], env);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const seen = JSON.parse(r.stdout) as Record<string, string>;
    expect(seen).toMatchObject({
      DB_PASSWORD: 'pw-canary-1',
      API_KEY: 'key with spaces',
      NESTED_ITEM: 'nested',
      STRIPE: 'sk-canary-2',
      STRIPE_USERNAME: 'acct',
      DB: 'pw-canary-1',
    });
    expect(seen['COFFER_TOKEN']).toBeUndefined();
    expect(seen['COFFER_ADDR']).toBe(env['COFFER_ADDR']);
  });

  test("the command's exit code is coffer run's; a missing mapped secret stops before the command runs", async () => {
    expect((await runCli(['run', '--map', 'X=app/db-password', '--', 'sh', '-c', 'exit 7'], env)).code).toBe(7);
    const missing = await runCli(['run', '--map', 'X=app/nope', '--', 'sh', '-c', 'echo RAN'], env);
    expect(missing.code).toBe(1);
    expect(missing.stdout).not.toContain('RAN');
    expect(missing.stderr).toContain('app/nope');
    expect((await runCli(['run', '--', 'true'], env)).code).toBe(2);
    expect((await runCli(['run', '--map', 'X=app/db-password', '--', 'no-such-command-here'], env)).code).toBe(1);
  });

  test('signals reach the command, and the values are in no process command line', async () => {
    const p = spawn(COFFER_BIN, ['run', '--map', 'SECRET=app/db-password', '--', 'sh', '-c', 'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done'], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      cwd: REPO_ROOT,
    });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
    await cluster.eventually(async () => out.includes('ready'), 15_000, 'the command started');
    const { execSync } = await import('node:child_process');
    const ps = execSync('ps -eo args', { encoding: 'utf8' });
    expect(ps).not.toContain('pw-canary-1');
    expect(ps).not.toContain(cluster.bootstrapToken);
    p.kill('SIGTERM');
    expect(await exited).toBe(42);
  });
});
