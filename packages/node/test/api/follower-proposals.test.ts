// A secret put that arrives at a follower whose leader takes proposals handed to it runs on the
// follower: read barrier first (so the token, role and allowlist are as fresh as on the leader),
// then the usual authorisation, the handler (its command handed to the leader through Raft) and
// the audit line, all on this node. The hostile cases: no, low, revoked or narrowed tokens, path
// tricks, oversized bodies — refused here and never handed on.
import { ADMIN_TOKEN, startHarness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h.close();
});

/** Tokens are minted while this node leads (a follower forwards token writes), then it follows. */
async function asFollower(mint: () => Promise<void> = async () => undefined): Promise<void> {
  h = await startHarness();
  await mint();
  h.leader.is = false;
  h.leader.leaderId = 'n2';
  h.leader.takesProposals = true;
}

const handedPuts = (): string[] => h.handed.filter((c) => c.type === 'secret.put').map((c) => (c as { name: string }).name);

test('runs here after a read barrier, hands the put to the leader and audits it here', async () => {
  await asFollower();
  const before = h.barriers;
  const w = await h.req('PUT', '/v1/secrets/app%2Fdb', { body: { value: 'v1' } });
  expect([w.status, w.body.version, w.headers.get('x-test-forwarded')]).toEqual([200, 1, null]);
  expect(h.barriers).toBe(before + 1);
  expect(handedPuts()).toEqual(['app/db']);
  expect(h.forwarded).toEqual([]);
  const line = h.auditLines().at(-1)!;
  expect([line.action, line.resource, line.status]).toEqual(['secret.write', 'app/db', 200]);
  // Vault's data write too; every other write is still forwarded over HTTP.
  const v = await h.req('POST', '/v1/secret/data/app/kv', { token: null, headers: { 'x-vault-token': ADMIN_TOKEN }, body: { data: { a: 'b' } } });
  expect([v.status, v.headers.get('x-test-forwarded')]).toEqual([200, null]);
  expect(handedPuts()).toEqual(['app/db', 'app/kv']);
  const d = await h.req('DELETE', '/v1/secrets/app/db');
  expect([d.status, d.headers.get('x-test-forwarded')]).toEqual([200, 'yes']);
  expect(h.forwarded.map((f) => f.url)).toEqual(['/v1/secrets/app/db']);
});

test('a leader that did not say it takes proposals gets the write forwarded, as before', async () => {
  await asFollower();
  h.leader.takesProposals = false;
  const w = await h.req('PUT', '/v1/secrets/app/db', { body: { value: 'v1' } });
  expect([w.status, w.headers.get('x-test-forwarded')]).toEqual([200, 'yes']);
  expect(h.handed).toEqual([]);
});

test('no token, a wrong one, or one whose role does not grant secret.write on the name: refused here, audited, nothing handed', async () => {
  let low = '';
  let other = '';
  await asFollower(async () => {
    low = await h.tokenWith('reader', [{ paths: ['app/*'], actions: ['secret.read'] }]);
    other = await h.tokenWith('other-writer', [{ paths: ['other/*'], actions: ['secret.write'] }]);
  });
  expect((await h.req('PUT', '/v1/secrets/app/db', { token: null, body: { value: 'x' } })).status).toBe(401);
  expect((await h.req('PUT', '/v1/secrets/app/db', { token: 'not-a-token', body: { value: 'x' } })).status).toBe(401);
  expect((await h.req('PUT', '/v1/secrets/app/db', { token: low, body: { value: 'x' } })).status).toBe(403);
  expect((await h.req('PUT', '/v1/secrets/app/db', { token: other, body: { value: 'x' } })).status).toBe(403);
  // Through the encoded separator, the decoded name is what is authorised.
  expect((await h.req('PUT', '/v1/secrets/other%2F..%2Fapp%2Fdb', { token: other, body: { value: 'x' } })).status).toBe(400);
  for (const p of ['/v1/secrets/other/%2e%2e/app/db', '/v1/secrets/other/../app/db', '/v1/secrets/other//app/db']) {
    const trick = await h.raw('PUT', p, JSON.stringify({ value: 'x' }), { authorization: `Bearer ${other}` });
    expect([p, trick.status, JSON.parse(trick.text).error.code]).toEqual([p, 400, 'invalid_name']);
  }
  expect(handedPuts()).toEqual([]);
  expect(h.forwarded).toEqual([]);
  const denials = h.auditLines().filter((l) => l.action === 'secret.write' && (l.status === 401 || l.status === 403));
  expect(denials.length).toBe(4);
});

test('a token revoked or a role narrowed through the leader a moment ago is refused: the barrier comes before the check', async () => {
  let writer = '';
  await asFollower(async () => {
    writer = await h.tokenWith('writer', [{ paths: ['app/*'], actions: ['secret.write'] }]);
  });
  expect((await h.req('PUT', '/v1/secrets/app/a', { token: writer, body: { value: '1' } })).status).toBe(200);
  // The leader committed a narrower role; this follower has not applied it yet.
  h.lagging.push({ type: 'role.put', requestId: 'narrow', at: h.clock.now, name: 'role-writer', rules: [{ paths: ['app/a'], actions: ['secret.write'] }], rateLimit: null, actor: 'admin', maxTtlSecs: null });
  expect((await h.req('PUT', '/v1/secrets/app/b', { token: writer, body: { value: '1' } })).status).toBe(403);
  // ... and then revoked the token.
  h.lagging.push({ type: 'token.revoke', requestId: 'revoke', at: h.clock.now, name: 'writer', actor: 'admin' });
  expect((await h.req('PUT', '/v1/secrets/app/a', { token: writer, body: { value: '2' } })).status).toBe(401);
  expect(handedPuts()).toEqual(['app/a']);
});

test('an oversized body is refused before the barrier and before anything is read', async () => {
  await asFollower();
  const before = h.barriers;
  const r = await h.raw('PUT', '/v1/secrets/app/db', undefined, { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json', 'content-length': String(3 * 1024 * 1024) });
  expect(r.status).toBe(413);
  expect(h.barriers).toBe(before);
  expect(h.handed).toEqual([]);
});

test('no leader known: the write is not run here (503 no_leader from the forwarding path)', async () => {
  await asFollower();
  h.leader.leaderId = null;
  const w = await h.req('PUT', '/v1/secrets/app/db', { body: { value: 'v1' } });
  expect(h.handed).toEqual([]);
  expect(w.headers.get('x-test-forwarded')).toBe('yes');
});
