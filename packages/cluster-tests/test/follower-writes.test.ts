/**
 * Secret puts through a follower, on real processes: the follower authorises after a read
 * barrier, hands the command to the leader through Raft (MsgProp) and audits the write itself.
 * What a client relies on: the write is acknowledged once (and only once) applied, a token
 * revoked through the leader is refused at a follower right after, concurrent writers to one name
 * through every node get distinct versions holding exactly what each was told, CAS holds, and a
 * write whose leader stops answering gets an answer (from the next leader, or 503), never a hang.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(120_000);

const cluster = new TestCluster();
let leader: NodeHandle;
let followers: NodeHandle[];

beforeAll(async () => {
  await cluster.start();
  ({ leader, followers } = await cluster.ready());
});
afterAll(async () => {
  for (const n of cluster.nodes) if (n.proc?.exitCode === null) n.proc.kill('SIGCONT');
  await cluster.stop();
});

function auditOf(n: NodeHandle): { requestId: string; action: string; resource: string; status: number; node: string }[] {
  return readFileSync(path.join(n.dataDir, 'audit.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l));
}

test('a put through a follower runs there: applied before the answer, audited on the follower, not on the leader', async () => {
  const f = followers[0] as NodeHandle;
  let n = 0;
  // Until the follower's hello to the leader has been answered, it forwards over HTTP instead.
  await cluster.eventually(async () => {
    const id = `fw-${++n}`;
    const w = await cluster.http(f, 'PUT', '/v1/secrets/fw/one', { value: `v${n}` }, undefined, { 'x-request-id': id });
    expect(w.status).toBe(200);
    return auditOf(f).some((l) => l.requestId === id && l.status === 200);
  }, 20_000, 'a write audited on the follower');
  const id = `fw-${n}`;
  const line = auditOf(f).find((l) => l.requestId === id);
  expect(line).toMatchObject({ action: 'secret.write', resource: 'fw/one', status: 200, node: f.id });
  expect(auditOf(leader).some((l) => l.requestId === id)).toBe(false);
  // Acknowledged means applied on the node that answered: a stale read there sees it at once.
  const r = await cluster.http(f, 'GET', '/v1/secrets/fw/one?consistency=stale', undefined, null);
  expect([r.status, r.body.version, r.body.value]).toEqual([200, n, `v${n}`]);
});

test('a token revoked through the leader is refused at a follower right after the revocation is acknowledged', async () => {
  const role = await cluster.http(leader, 'PUT', '/v1/roles/fw-writer', { rules: [{ paths: ['fw/*'], actions: ['secret.write'] }] });
  expect(role.status).toBe(200);
  for (let i = 0; i < 3; i++) {
    const t = await cluster.http(leader, 'POST', '/v1/tokens', { name: `fw-writer-${i}`, role: 'fw-writer' });
    expect(t.status).toBe(200);
    const token = t.body.token as string;
    for (const f of followers) expect((await cluster.http(f, 'PUT', `/v1/secrets/fw/r${i}`, { value: 'ok' }, token)).status).toBe(200);
    expect((await cluster.http(leader, 'DELETE', `/v1/tokens/fw-writer-${i}`)).status).toBe(200);
    // (From addresses of their own: the refusals count toward the lockout of the address they come from.)
    for (const [j, f] of followers.entries()) {
      const w = await cluster.httpFrom(f, `127.0.9.${i * 2 + j + 1}`, 'PUT', `/v1/secrets/fw/r${i}`, { value: 'after revoke' }, token);
      expect([f.id, w.status]).toEqual([f.id, 401]);
    }
  }
  // A role narrowed through the leader: refused at once too.
  const t = await cluster.http(leader, 'POST', '/v1/tokens', { name: 'fw-narrowed', role: 'fw-writer' });
  expect((await cluster.http(leader, 'PUT', '/v1/roles/fw-writer', { rules: [{ paths: ['fw/only'], actions: ['secret.write'] }] })).status).toBe(200);
  for (const [j, f] of followers.entries()) expect((await cluster.httpFrom(f, `127.0.9.${j + 10}`, 'PUT', '/v1/secrets/fw/r0', { value: 'x' }, t.body.token)).status).toBe(403);
});

test('concurrent writers to one name through every node: distinct versions, each holding what its writer was told', async () => {
  const told = new Map<number, string>();
  await Promise.all(
    cluster.nodes.flatMap((n) =>
      Array.from({ length: 8 }, async (_, i) => {
        const value = `${n.id}-${i}`;
        const w = await cluster.http(n, 'PUT', '/v1/secrets/fw/contended', { value });
        expect([value, w.status]).toEqual([value, 200]);
        expect(told.has(w.body.version)).toBe(false);
        told.set(w.body.version, value);
      }),
    ),
  );
  expect([...told.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  for (const [version, value] of told) {
    if (version <= 24 - 10) continue; // older versions are pruned (maxVersions 10)
    const r = await cluster.http(followers[1] as NodeHandle, 'GET', `/v1/secrets/fw/contended?version=${version}`, undefined, null);
    expect([version, r.status, r.body.value]).toEqual([version, 200, value]);
  }
});

test('check-and-set through a follower: the stale one is refused with 409 and changes nothing', async () => {
  const f = followers[1] as NodeHandle;
  expect((await cluster.http(f, 'PUT', '/v1/secrets/fw/cas', { value: 'one', cas: 0 })).status).toBe(200);
  expect((await cluster.http(f, 'PUT', '/v1/secrets/fw/cas', { value: 'two', cas: 1 })).status).toBe(200);
  const stale = await cluster.http(followers[0] as NodeHandle, 'PUT', '/v1/secrets/fw/cas', { value: 'three', cas: 1 });
  expect([stale.status, stale.body.error.code]).toEqual([409, 'cas_conflict']);
  const r = await cluster.http(leader, 'GET', '/v1/secrets/fw/cas', undefined, null);
  expect([r.body.version, r.body.value]).toEqual([2, 'two']);
});

test('the leader stops answering mid-write: the follower answers within a bounded time (from the next leader, or 503), and writes resume after', async () => {
  const f = followers[0] as NodeHandle;
  leader.proc?.kill('SIGSTOP');
  try {
    const started = Date.now();
    const w = await cluster.http(f, 'PUT', '/v1/secrets/fw/paused', { value: 'maybe' });
    expect(Date.now() - started).toBeLessThan(30_000);
    // Either it went to the next leader once the others elected one (the follower's read barrier
    // is sent again to it), or a 503 that says what the client may conclude.
    if (w.status === 200) {
      const r = await cluster.http(f, 'GET', '/v1/secrets/fw/paused', undefined, null);
      expect([r.status, r.body.value]).toEqual([200, 'maybe']);
    } else {
      expect(w.status).toBe(503);
      expect(['outcome_unknown', 'no_leader', 'no_quorum']).toContain(w.body.error.code);
    }
  } finally {
    leader.proc?.kill('SIGCONT');
  }
  let last: unknown;
  await cluster.eventually(async () => {
    const w = await cluster.http(f, 'PUT', '/v1/secrets/fw/after', { value: 'yes' });
    last = [w.status, w.body];
    return w.status === 200;
  }, 30_000, 'writes resume').catch((err) => {
    throw new Error(`${String(err)}; last answer ${JSON.stringify(last)}`);
  });
});
