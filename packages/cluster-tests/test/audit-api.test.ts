/**
 * Audit over the API (CONTRACT.md): `GET /v1/audit?since=SEQ&limit=N` needs `audit.read` and
 * answers the receiving node's own hash-chained lines, chain fields included; `coffer audit tail`
 * prints them and follows new ones. Through real node processes, on the leader and a follower, with
 * the hostile cases every new route gets (no/low token, path tricks, bad parameters).
 */
import { spawn } from 'node:child_process';
import { COFFER_BIN, REPO_ROOT, TestCluster, runCli } from '../src/harness';
import { rawHttp } from '../src/hostile';

jest.setTimeout(180_000);

describe('audit over the API (real processes)', () => {
  const cluster = new TestCluster();
  let reader: string;
  let writerOnly: string;

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
    const leader = await cluster.leader();
    const mk = async (role: string, actions: string[]): Promise<string> => {
      expect((await cluster.call(leader, 'PUT', `/v1/roles/${role}`, { rules: [{ paths: ['**'], actions }] })).status).toBe(200);
      const t = await cluster.call(leader, 'POST', '/v1/tokens', { name: `${role}-token`, role });
      expect(t.status).toBe(200);
      return t.body.token as string;
    };
    reader = await mk('auditor', ['audit.read']);
    writerOnly = await mk('writer', ['secret.write']);
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('audit.read reads the answering node\'s own chain, paged by since/limit; others are refused', async () => {
    for (const n of cluster.nodes) {
      // Something audited on this node (a follower leaves forwarded writes to the leader's log).
      expect((await cluster.http(n, 'GET', '/v1/tokens/self')).status).toBe(200);
      const first = await cluster.http(n, 'GET', '/v1/audit?since=1&limit=5', undefined, reader);
      expect([n.id, first.status]).toEqual([n.id, 200]);
      expect(first.body.node).toBe(n.id);
      expect(first.body.records.length).toBeGreaterThan(0);
      expect(first.body.records[0].seq).toBe(1);
      // The chain links: each line's prev is the previous line's hash, and each hash covers its line.
      const all: { seq: number; prev: string; hash: string; node: string }[] = [];
      let since = 1;
      for (;;) {
        const page = await cluster.http(n, 'GET', `/v1/audit?since=${since}&limit=7`, undefined, reader);
        expect(page.status).toBe(200);
        all.push(...page.body.records);
        if (page.body.records.length < 7) break;
        since = page.body.next;
      }
      expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i + 1));
      for (let i = 1; i < all.length; i++) expect((all[i] as { prev: string }).prev).toBe((all[i - 1] as { hash: string }).hash);
      expect(all.every((r) => r.node === n.id && /^[0-9a-f]{64}$/.test(r.hash))).toBe(true);
      // Denials: no token, a wrong one, a role without audit.read.
      expect((await cluster.http(n, 'GET', '/v1/audit', undefined, null)).status).toBe(401);
      expect((await cluster.http(n, 'GET', '/v1/audit', undefined, 'cof_wrong')).status).toBe(401);
      const low = await cluster.http(n, 'GET', '/v1/audit', undefined, writerOnly);
      expect([low.status, low.body.error.code]).toEqual([403, 'permission_denied']);
      // Bad parameters name themselves.
      const bad = await cluster.http(n, 'GET', '/v1/audit?limit=100000', undefined, reader);
      expect([bad.status, bad.body.error.message]).toEqual([400, expect.stringContaining('"limit"')]);
      expect((await cluster.http(n, 'GET', '/v1/audit?since=-1', undefined, reader)).status).toBe(400);
      // Path tricks do not reach it (or anything else) with a lower token.
      for (const p of ['/v1/audit/', '/v1/audit/..', '/v1/secrets/%2e%2e/%2e%2e/audit', '/v1//audit']) {
        const r = await rawHttp(n, 'GET', p, { headers: { authorization: `Bearer ${writerOnly}` } });
        expect([p, r.status === 200]).toEqual([p, false]);
      }
    }
    // The reads themselves are audited (who read the audit log, from where).
    const leader = await cluster.leader();
    const page = await cluster.http(leader, 'GET', '/v1/audit?since=1&limit=1000', undefined, reader);
    expect(page.body.records.some((r: { action: string; actor: string }) => r.action === 'audit.read' && r.actor === 'auditor-token')).toBe(true);
    expect(page.body.records.some((r: { action: string; status: number }) => r.action === 'audit.read' && r.status === 403)).toBe(true);
    // Nothing secret in it: no raw token appears.
    expect(JSON.stringify(page.body)).not.toContain(reader);
  });

  test('coffer audit tail prints the last lines and --follow prints new ones', async () => {
    // The leader: it audits the writes (a follower that forwards one leaves the line to the leader).
    const n = await cluster.leader();
    const env = { COFFER_ADDR: n.api, COFFER_TOKEN: reader };
    const tail = await runCli(['audit', 'tail', '--lines', '3', '--json'], env);
    expect(tail.code).toBe(0);
    const lines = tail.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines[2].seq).toBe(lines[0].seq + 2);
    const text = await runCli(['audit', 'tail', '--since', '1'], env);
    expect(text.code).toBe(0);
    expect(text.stdout.split('\n')[0]).toMatch(/^1\t/);
    expect((await runCli(['audit', 'tail'], { COFFER_ADDR: n.api, COFFER_TOKEN: writerOnly })).code).toBe(1);

    // --follow: a write made after it started shows up.
    const p = spawn(COFFER_BIN, ['audit', 'tail', '--follow', '--lines', '1', '--interval', '1'], { env: { PATH: process.env['PATH'] ?? '', ...env }, cwd: REPO_ROOT });
    let out = '';
    p.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    try {
      await cluster.eventually(async () => out.length > 0, 10_000, 'first tail line');
      expect((await cluster.http(n, 'PUT', '/v1/secrets/audit/followed', { value: 'x' })).status).toBe(200);
      await cluster.eventually(async () => out.includes('audit/followed'), 10_000, 'the new write in the followed output');
    } finally {
      p.kill('SIGTERM');
    }
  });
});
