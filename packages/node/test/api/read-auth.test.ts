// COFFER_READ_AUTH: how secret reads (native get, batch, verify, Vault KV data) are authorised —
// by address (allowlist, the default), by a token granting secret.read on every name read (token),
// or both. Single-node path over real HTTP; the follower variant reads locally the same way.
import { ADMIN_TOKEN, startHarness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h.close();
});

type Probe = { name: string; method: string; path: string; body?: unknown };
const PROBES: Probe[] = [
  { name: 'get', method: 'GET', path: '/v1/secrets/team/a' },
  { name: 'batch', method: 'POST', path: '/v1/batch/secrets', body: { names: ['team/a'] } },
  { name: 'verify', method: 'POST', path: '/v1/verify/team/a', body: { value: 'va' } },
  { name: 'vault', method: 'GET', path: '/v1/secret/data/team/a' },
];

async function setUp(mode: string, cidrs: string[]): Promise<{ reader: string; other: string }> {
  h = await startHarness({ cidrs, env: { COFFER_READ_AUTH: mode } });
  for (const n of ['team/a', 'other/b']) expect((await h.req('PUT', `/v1/secrets/${n}`, { body: { value: n === 'team/a' ? 'va' : 'vb' } })).status).toBe(200);
  const reader = await h.tokenWith('reader', [{ paths: ['team/**'], actions: ['secret.read'] }]);
  const other = await h.tokenWith('writer', [{ paths: ['**'], actions: ['secret.write', 'secret.list'] }]);
  return { reader, other };
}

const status = async (p: Probe, token: string | null): Promise<number> => (await h.req(p.method, p.path, { token, body: p.body })).status;

describe.each([
  ['leader', true],
  ['follower', false],
])('on a %s', (_where, isLeader) => {
  test('allowlist (default): the address decides, a token neither helps nor is needed', async () => {
    const t = await setUp('allowlist', ['10.0.0.0/8']);
    h.leader.is = isLeader;
    for (const p of PROBES) expect([p.name, await status(p, t.reader)]).toEqual([p.name, 403]);
    await h.close();
    const t2 = await setUp('allowlist', ['127.0.0.1/32', '::1/128']);
    h.leader.is = isLeader;
    for (const p of PROBES) expect([p.name, await status(p, null)]).toEqual([p.name, 200]);
    expect(t2.reader).toBeDefined();
  });

  test('token: any address, but a token granting secret.read on every name read', async () => {
    const t = await setUp('token', ['10.0.0.0/8']);
    h.leader.is = isLeader;
    for (const p of PROBES) {
      expect([p.name, await status(p, t.reader)]).toEqual([p.name, 200]);
      expect([p.name, await status(p, null)]).toEqual([p.name, p.name === 'vault' ? 403 : 401]);
      expect([p.name, await status(p, 'cof_wrong')]).toEqual([p.name, p.name === 'vault' ? 403 : 401]);
      expect([p.name, await status(p, t.other)]).toEqual([p.name, 403]);
    }
    // Outside the role's globs: a single name, or one name of a batch.
    expect(await status({ name: 'g', method: 'GET', path: '/v1/secrets/other/b' }, t.reader)).toBe(403);
    const batch = await h.req('POST', '/v1/batch/secrets', { token: t.reader, body: { names: ['team/a', 'other/b'] } });
    expect([batch.status, batch.body.error.code, batch.body.error.message]).toEqual([403, 'permission_denied', expect.stringContaining('other/b')]);
    // The reader is named in the audit.
    expect(h.auditLines().some((l) => l.action === 'secret.read' && l.actor === 'reader' && l.status === 200)).toBe(true);
    expect((await h.req('GET', '/v1/secrets/team/a', { token: ADMIN_TOKEN })).status).toBe(200);
  });

  test('both: the address and the token must hold', async () => {
    const t = await setUp('both', ['10.0.0.0/8']);
    h.leader.is = isLeader;
    for (const p of PROBES) expect([p.name, await status(p, t.reader)]).toEqual([p.name, 403]);
    await h.close();
    const t2 = await setUp('both', ['127.0.0.1/32', '::1/128']);
    h.leader.is = isLeader;
    for (const p of PROBES) {
      expect([p.name, await status(p, t2.reader)]).toEqual([p.name, 200]);
      expect([p.name, await status(p, null)]).toEqual([p.name, p.name === 'vault' ? 403 : 401]);
      expect([p.name, await status(p, t2.other)]).toEqual([p.name, 403]);
    }
  });
});

test('a bad COFFER_READ_AUTH stops start-up naming the variable', async () => {
  await expect(startHarness({ env: { COFFER_READ_AUTH: 'maybe' } })).rejects.toThrow(/COFFER_READ_AUTH/);
  h = await startHarness();
});
