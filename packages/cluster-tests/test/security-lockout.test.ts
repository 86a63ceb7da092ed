/**
 * Regression tests through real node processes for the lockout and client-address holes of the
 * security review (issue "close the access-control bypasses"):
 * - hole 6: a valid token in between failures no longer clears them; parallel bad requests stop
 *   at the limit instead of all being judged before a replicated counter commits; failures are
 *   not one Raft write each; failures seen by different followers add up on the leader; a locked
 *   address's denials are not one audit line each;
 * - hole 8: behind reverse proxies (COFFER_TRUSTED_PROXIES) the client is the right-most
 *   X-Forwarded-For address that is not a trusted proxy, so a client cannot pick its address by
 *   writing it first; a direct peer that is not a trusted proxy has its header ignored.
 *
 * Every failing request comes from a loopback source address of its own, so no check locks out
 * an address another one uses.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(180_000);

const PROXY = '127.0.7.1';

describe('lockout and proxies on a three-node cluster (real processes)', () => {
  const cluster = new TestCluster({
    env: {
      COFFER_AUTH_MAX_FAILURES: '5',
      COFFER_AUTH_WINDOW_SECS: '300',
      COFFER_AUTH_LOCKOUT_SECS: '900',
      COFFER_TRUSTED_PROXIES: `${PROXY}/32`,
      COFFER_READ_ALLOWLIST: '127.0.0.1/32,127.0.0.2/32',
    },
  });
  let leader: NodeHandle;
  let followers: NodeHandle[];

  beforeAll(async () => {
    await cluster.start();
    ({ leader, followers } = await cluster.ready());
    expect((await cluster.call(leader, 'PUT', '/v1/secrets/app/db', { value: 'db-password' })).status).toBe(200);
  });
  afterAll(async () => {
    await cluster.stop();
  });

  const commitIndex = async (): Promise<number> => (await cluster.call(leader, 'GET', '/v1/cluster')).body.commitIndex as number;
  const auditOf = (n: NodeHandle): { clientIp: string | null; status: number; action: string; resource: string | null }[] =>
    readFileSync(path.join(n.dataDir, 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l));

  test('4 bad + 1 good, repeated, still locks the address (a success does not erase failures)', async () => {
    const ip = '127.0.8.1';
    const statuses: number[] = [];
    // On the leader and on a follower alike (the leader used to clear the count on a success).
    const nodes = [leader, followers[0] as NodeHandle];
    let k = 0;
    const n = (): NodeHandle => nodes[k++ % 2] as NodeHandle;
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 4; i++) statuses.push((await cluster.httpFrom(n(), ip, 'GET', '/v1/tokens/self', undefined, `cof_wrong_${round}_${i}`)).status);
      statuses.push((await cluster.httpFrom(leader, ip, 'GET', '/v1/tokens/self')).status);
      await new Promise((r) => setTimeout(r, 300)); // time for a reset the success might propose
    }
    // Before the fix the good request reset the count every round: 401 ×4, 200, forever.
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 200]);
    const goods = [statuses[4], statuses[9], statuses[14]];
    expect(goods).toEqual([200, 429, 429]);
    // After the fifth failure nothing succeeds from that address (a follower may still say 401 for a
    // moment, until the leader's lockout reaches it).
    expect(statuses.slice(5).every((st) => st === 401 || st === 429)).toBe(true);
    // Cluster-wide: the other nodes refuse the address too.
    for (const other of cluster.nodes) {
      await cluster.eventually(async () => (await cluster.httpFrom(other, ip, 'GET', '/v1/tokens/self')).status === 429, 5_000, `lockout seen on ${other.id}`);
    }
  });

  test('parallel bad requests: only the limit is judged, the rest are refused at once; failures are not one Raft write each', async () => {
    const ip = '127.0.8.2';
    const before = await commitIndex();
    const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => cluster.httpFrom(leader, ip, 'GET', '/v1/tokens/self', undefined, `cof_parallel_${i}`)));
    const by = (s: number): number => answers.filter((a) => a.status === s).length;
    expect([by(401), by(429), by(401) + by(429)]).toEqual([5, 35, 40]);
    // The lockout entered the replicated state as the limit's worth of entries, once.
    await cluster.eventually(async () => (await cluster.httpFrom(followers[1] as NodeHandle, ip, 'GET', '/v1/tokens/self')).status === 429, 5_000, 'lockout replicated');
    const after = await commitIndex();
    expect(after - before).toBeLessThanOrEqual(10);
    // One audit line per window for the locked address, not 35.
    const lines = auditOf(leader).filter((l) => l.clientIp === ip);
    expect(lines.filter((l) => l.status === 401).length).toBe(5);
    expect(lines.filter((l) => l.status === 429).length).toBe(1);
  });

  test('failures seen by different followers add up to one cluster-wide lockout', async () => {
    const ip = '127.0.8.3';
    for (let i = 0; i < 3; i++) expect((await cluster.httpFrom(followers[0] as NodeHandle, ip, 'GET', '/v1/tokens', undefined, `cof_a_${i}`)).status).toBe(401);
    for (let i = 0; i < 2; i++) expect((await cluster.httpFrom(followers[1] as NodeHandle, ip, 'GET', '/v1/tokens', undefined, `cof_b_${i}`)).status).toBe(401);
    // Neither follower saw 5, but the leader heard of all of them.
    for (const n of cluster.nodes) {
      await cluster.eventually(async () => (await cluster.httpFrom(n, ip, 'GET', '/v1/tokens/self')).status === 429, 5_000, `lockout on ${n.id}`);
    }
  });

  test('behind a trusted proxy the client is the right-most untrusted X-Forwarded-For address; spoofed entries are never read', async () => {
    for (const n of cluster.nodes) {
      // Through the proxy, an allowlisted client reads.
      const ok = await cluster.httpFrom(n, PROXY, 'GET', '/v1/secrets/app/db', undefined, null, { 'x-forwarded-for': '127.0.0.2' });
      expect([n.id, ok.status, ok.body.value]).toEqual([n.id, 200, 'db-password']);
      // The client wrote an allowlisted address first; the proxy appended the real one.
      const spoof = await cluster.httpFrom(n, PROXY, 'GET', '/v1/secrets/app/db', undefined, null, { 'x-forwarded-for': '127.0.0.1, 127.0.9.9' });
      expect([n.id, spoof.status, spoof.body.error.code]).toEqual([n.id, 403, 'not_allowlisted']);
      // Not a trusted proxy: its header is ignored and its own address judged.
      const direct = await cluster.httpFrom(n, '127.0.9.8', 'GET', '/v1/secrets/app/db', undefined, null, { 'x-forwarded-for': '127.0.0.1' });
      expect([n.id, direct.status]).toEqual([n.id, 403]);
      const fwd = await cluster.httpFrom(n, '127.0.9.8', 'POST', '/v1/batch/secrets', { names: ['app/db'] }, null, { forwarded: 'for=127.0.0.1' });
      expect([n.id, fwd.status]).toEqual([n.id, 403]);
    }
  });

  test('lockout behind a proxy locks the client it names, not every client of the proxy', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await cluster.httpFrom(leader, PROXY, 'GET', '/v1/tokens/self', undefined, `cof_proxy_${i}`, { 'x-forwarded-for': '127.0.10.1' });
      expect(r.status).toBe(401);
    }
    expect((await cluster.httpFrom(leader, PROXY, 'GET', '/v1/tokens/self', undefined, undefined, { 'x-forwarded-for': '127.0.10.1' })).status).toBe(429);
    expect((await cluster.httpFrom(leader, PROXY, 'GET', '/v1/tokens/self', undefined, undefined, { 'x-forwarded-for': '127.0.10.2' })).status).toBe(200);
    const audit = auditOf(leader).filter((l) => l.status === 401 && l.clientIp === '127.0.10.1');
    expect(audit.length).toBe(5);
  });
});
