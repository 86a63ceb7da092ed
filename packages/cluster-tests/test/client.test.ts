/**
 * @coffer/client against a real three-node cluster: the whole API surface, failover past a dead
 * node, and what a write reports when its node dies with the request in flight.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CofferClient, CofferError, type RetryInfo } from '@coffer/client';
import { TestCluster, freePort, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

async function failure(p: Promise<unknown>): Promise<CofferError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CofferError) return err;
    throw err;
  }
  throw new Error('expected a CofferError');
}

/** Established connections to a local port with unread bytes in their receive queue (`ss`). */
function queuedRequests(port: number): number {
  const out = execFileSync('ss', ['-tnH', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' });
  return out.split('\n').filter((line) => {
    const recvQ = Number(line.trim().split(/\s+/)[0]);
    return recvQ > 0;
  }).length;
}

describe('@coffer/client against a real cluster', () => {
  const cluster = new TestCluster();
  let tmp: string;
  const clients: CofferClient[] = [];

  function client(addresses: string[], extra: ConstructorParameters<typeof CofferClient>[0] = {}): CofferClient {
    const c = new CofferClient({ addresses, token: cluster.bootstrapToken, timeoutMs: 10_000, ...extra });
    clients.push(c);
    return c;
  }
  const all = (): string[] => cluster.nodes.map((n) => n.api);

  beforeAll(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'coffer-client-e2e-'));
    await cluster.start();
    await cluster.leader();
    for (const n of cluster.nodes) {
      await cluster.eventually(async () => (await cluster.http(n, 'PUT', `/v1/secrets/warmup/${n.id}`, { value: 'x' })).status === 200, 20_000, `writes via ${n.id}`);
    }
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await cluster.stop();
    rmSync(tmp, { recursive: true, force: true });
  });

  test('secrets, tokens, roles, allowlist, cluster and snapshot through the client', async () => {
    const c = client(all());
    const w1 = await c.secrets.put('client/db', { value: 'v1' });
    expect(w1).toMatchObject({ name: 'client/db', version: 1 });
    await c.secrets.put('client/db', { format: 'userpass', username: 'app', password: 'pw' }, { cas: 1 });
    expect(await c.secrets.get('client/db')).toMatchObject({ version: 2, format: 'userpass', username: 'app', password: 'pw' });
    expect((await c.secrets.get('client/db', { version: 1 })).value).toBe('v1');
    expect((await failure(c.secrets.put('client/db', { value: 'x' }, { cas: 1 }))).code).toBe('cas_conflict');
    expect((await c.secrets.list('client/')).map((s) => s.name)).toEqual(['client/db']);
    expect((await c.secrets.versions('client/db')).map((v) => v.version)).toEqual([1, 2]);
    await c.secrets.delete('client/db', [2]);
    expect((await failure(c.secrets.get('client/db'))).code).toBe('not_found');
    await c.secrets.undelete('client/db', [2]);
    expect((await c.secrets.get('client/db')).version).toBe(2);
    await c.secrets.destroy('client/db', [1]);
    expect((await failure(c.secrets.get('client/db', { version: 1 }))).status).toBe(404);
    expect(await c.secrets.batch(['client/db', 'client/missing'])).toHaveLength(1);
    expect(await c.secrets.verify('client/db', 'pw')).toMatchObject({ valid: true, version: 2 });

    await c.roles.put('client-role', { rules: [{ paths: ['client/**'], actions: ['secret.list'] }] });
    expect((await c.roles.get('client-role')).rules).toEqual([{ paths: ['client/**'], actions: ['secret.list'] }]);
    expect((await c.roles.list()).map((r) => r.name)).toEqual(expect.arrayContaining(['admin', 'client-role']));
    const t = await c.tokens.create('client-tok', 'client-role', { ttl: '30d' });
    const limited = client(all(), { token: t.token });
    expect((await limited.tokens.self()).name).toBe('client-tok');
    expect((await failure(limited.secrets.put('client/db', { value: 'no' }))).code).toBe('permission_denied');
    const rotated = await c.tokens.rotate('client-tok');
    expect((await failure(limited.tokens.self())).code).toBe('invalid_token');
    expect((await client(all(), { token: rotated.token }).tokens.self()).name).toBe('client-tok');
    expect((await c.tokens.list()).find((x) => x.name === 'client-tok')?.role).toBe('client-role');
    await c.tokens.revoke('client-tok');
    await expect(c.roles.delete('client-role')).resolves.toBeUndefined();

    expect((await c.allowlist.get()).cidrs).toEqual(['127.0.0.0/8', '::1/128']);
    const status = await c.cluster.status();
    expect(status.members).toHaveLength(3);
    expect(status.leader).toBe((await cluster.leader()).id);
    const snap = await c.cluster.snapshot(path.join(tmp, 'client.snap'));
    expect(snap.bytes).toBeGreaterThan(100);
    expect(statSync(path.join(tmp, 'client.snap')).size).toBe(snap.bytes);
  });

  describe('failover and dead nodes', () => {
    let leader: NodeHandle;
    let victim: NodeHandle;

    beforeAll(async () => {
      leader = await cluster.leader();
      victim = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    });

    test('the first address is a killed node: reads and writes go to the next one', async () => {
      await cluster.kill(victim);
      const retries: RetryInfo[] = [];
      const c = client([victim.api, ...cluster.nodes.filter((n) => n !== victim).map((n) => n.api)], { retry: { baseDelayMs: 20 } });
      c.on('retry', (r) => retries.push(r));
      const w = await c.secrets.put('client/failover', { value: 'after-kill' });
      expect(w.version).toBe(1);
      expect((await c.secrets.get('client/failover')).value).toBe('after-kill');
      expect(retries.length).toBeGreaterThanOrEqual(1);
      // A non-idempotent write (token create, POST) was retried because the dead node refused the
      // connection: it never left the client.
      const c2 = client([victim.api, leader.api], { retry: { baseDelayMs: 20 } });
      expect((await c2.tokens.create('client-after-kill', 'admin')).name).toBe('client-after-kill');
      // Nothing but dead addresses: `unavailable`.
      const dead = client([victim.api, `http://127.0.0.1:${await freePort()}`], { retry: { maxAttempts: 3, baseDelayMs: 20 } });
      expect((await failure(dead.secrets.get('client/failover'))).code).toBe('unavailable');
    });

    test('a node dies with a write in flight: outcome_unknown, not retried; a cas write is retried elsewhere', async () => {
      // Restart the victim, then freeze it: the kernel still accepts connections and request bytes.
      await cluster.spawnNode(victim);
      await cluster.eventually(async () => (await cluster.http(victim, 'GET', '/v1/secrets/client/failover', undefined, null)).status === 200, 20_000, 'victim caught up');
      victim.proc?.kill('SIGSTOP');
      try {
        const retries: RetryInfo[] = [];
        const c = client([victim.api, leader.api], { timeoutMs: 60_000, retry: { baseDelayMs: 20 } });
        c.on('retry', (r) => retries.push(r));
        const pending = failure(c.tokens.create('client-inflight', 'admin'));
        const pendingPut = failure(c.secrets.put('client/inflight', { value: 'maybe' }));
        // Wait until both requests sit, unread, in the frozen node's receive queues.
        await cluster.eventually(async () => queuedRequests(victim.apiPort) >= 2, 20_000, 'requests queued at the frozen node');
        await cluster.kill(victim); // SIGKILL: the connections are reset
        const err = await pending;
        expect(err.code).toBe('outcome_unknown');
        expect(typeof err.requestId).toBe('string');
        const errPut = await pendingPut;
        expect(errPut.code).toBe('outcome_unknown');
        // Not retried on the live node: neither exists (the killed node never processed them).
        expect(retries).toHaveLength(0);
        const admin = client([leader.api]);
        expect((await admin.tokens.list()).some((t) => t.name === 'client-inflight')).toBe(false);
        expect((await failure(admin.secrets.get('client/inflight'))).code).toBe('not_found');
      } finally {
        if (victim.proc?.exitCode === null && victim.proc.signalCode === null) victim.proc.kill('SIGKILL');
      }

      // A frozen node and a cas write: the timeout is followed by a retry on the next node, which is
      // safe (a repeat cannot make a second version).
      await cluster.spawnNode(victim);
      await cluster.eventually(async () => (await cluster.http(victim, 'GET', '/v1/secrets/client/failover', undefined, null)).status === 200, 20_000, 'victim caught up');
      victim.proc?.kill('SIGSTOP');
      try {
        const retries: RetryInfo[] = [];
        const c = client([victim.api, leader.api], { timeoutMs: 1_500, retry: { baseDelayMs: 20 } });
        c.on('retry', (r) => retries.push(r));
        const w = await c.secrets.put('client/cas-retry', { value: 'once' }, { cas: 0 });
        expect(w.version).toBe(1);
        expect(retries.length).toBeGreaterThanOrEqual(1);
        // Without cas, the same timeout is outcome_unknown (a fresh client: the first one now starts
        // with the node that answered last).
        const c2 = client([victim.api, leader.api], { timeoutMs: 1_500, retry: { baseDelayMs: 20 } });
        expect((await failure(c2.secrets.put('client/no-cas', { value: 'x' }))).code).toBe('outcome_unknown');
      } finally {
        await cluster.kill(victim);
      }
      await cluster.spawnNode(victim);
      const after = client([leader.api]);
      await cluster.eventually(async () => (await cluster.http(victim, 'GET', '/v1/secrets/client/cas-retry', undefined, null)).status === 200, 20_000, 'victim back');
      expect((await after.secrets.versions('client/cas-retry')).map((v) => v.version)).toEqual([1]);
    });
  });
});
