// Roles, allowlist, KMS, cluster, health and metrics routes over real HTTP (single-node path).
import { startHarness, type Harness } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h.close();
});

describe('allowlist, single-node path', () => {
  test('IPv4, IPv6 and IPv4-mapped clients; spoofed X-Forwarded-For ignored with trust-proxy off', async () => {
    h = await startHarness({ cidrs: ['127.0.0.1/32'] });
    await h.req('PUT', '/v1/secrets/al', { body: { value: 'v' } });
    // The server listens on "::", so 127.0.0.1 arrives as ::ffff:127.0.0.1 and is normalised.
    expect((await h.req('GET', '/v1/secrets/al', { token: null })).status).toBe(200);
    const v6 = await h.req('GET', '/v1/secrets/al', { token: null, host: `http://[::1]:${h.port}` });
    expect([v6.status, v6.body.error.code]).toEqual([403, 'not_allowlisted']);
    await h.req('PUT', '/v1/allowlist', { body: { cidrs: ['::1'] } });
    expect((await h.req('GET', '/v1/secrets/al', { token: null, host: `http://[::1]:${h.port}` })).status).toBe(200);
    expect((await h.req('GET', '/v1/secrets/al', { token: null })).status).toBe(403);
    const spoof = await h.req('GET', '/v1/secrets/al', { token: null, headers: { 'x-forwarded-for': '::1' } });
    expect(spoof.status).toBe(403);
    expect((await h.req('GET', '/metrics', { token: null })).status).toBe(403);
    const lines = h.auditLines().filter((l) => l.action === 'secret.read');
    expect(lines.some((l) => l.status === 403 && l.outcome === 'denied' && l.resource === 'al')).toBe(true);
  });

  test('empty list denies every read; bad entries are named in a 400', async () => {
    h = await startHarness({ cidrs: [] });
    await h.req('PUT', '/v1/secrets/e', { body: { value: 'v' } });
    expect((await h.req('GET', '/v1/secrets/e')).status).toBe(403);
    expect((await h.req('POST', '/v1/batch/secrets', { body: { names: ['e'] } })).status).toBe(403);
    const bad = await h.req('PUT', '/v1/allowlist', { body: { cidrs: ['10.0.0.0/8', '300.1.1.1', 'fe80::/200'] } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain('"300.1.1.1"');
    expect(bad.body.error.message).toContain('"fe80::/200"');
    const ok = await h.req('PUT', '/v1/allowlist', { body: { cidrs: ['10.0.0.7/8', '127.0.0.0/8'] } });
    expect(ok.body).toEqual({ cidrs: ['10.0.0.0/8', '127.0.0.0/8'] });
    expect((await h.req('GET', '/v1/allowlist')).body).toEqual({ cidrs: ['10.0.0.0/8', '127.0.0.0/8'] });
    expect((await h.req('GET', '/v1/secrets/e')).status).toBe(200);
  });

  test('trust-proxy on: the direct peer is the one trusted proxy, so the right-most X-Forwarded-For entry is the client', async () => {
    h = await startHarness({ cidrs: ['10.9.0.0/16'], env: { COFFER_TRUST_PROXY: 'true' } });
    await h.req('PUT', '/v1/secrets/p', { body: { value: 'v' } });
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.9.1.2' } })).status).toBe(200);
    // A client cannot choose its address by writing it first: the proxy appended the real one.
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.9.1.2, 10.8.1.2' } })).status).toBe(403);
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.8.1.2, 10.9.1.2' } })).status).toBe(200);
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': 'garbage, 10.9.1.2' } })).status).toBe(200);
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.9.1.2, garbage' } })).status).toBe(403);
    expect((await h.req('GET', '/v1/secrets/p')).status).toBe(403);
  });

  test('trusted proxies: the right-most X-Forwarded-For address not in COFFER_TRUSTED_PROXIES is the client', async () => {
    h = await startHarness({ cidrs: ['10.9.0.0/16'], env: { COFFER_TRUSTED_PROXIES: '127.0.0.0/8, ::1/128, 10.1.0.0/16' } });
    await h.req('PUT', '/v1/secrets/p', { body: { value: 'v' } });
    // 10.1.0.5 is a trusted inner proxy, so the address before it is the client.
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.9.1.2, 10.1.0.5' } })).status).toBe(200);
    // Spoofed entries left of the first untrusted hop are never read.
    expect((await h.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.9.1.2, 10.8.0.1, 10.1.0.5' } })).status).toBe(403);
    // A direct peer that is not a trusted proxy: the header is ignored.
    const h2 = await startHarness({ cidrs: ['10.9.0.0/16'], env: { COFFER_TRUSTED_PROXIES: '10.1.0.0/16' } });
    try {
      await h2.req('PUT', '/v1/secrets/p', { body: { value: 'v' } });
      expect((await h2.req('GET', '/v1/secrets/p', { headers: { 'x-forwarded-for': '10.9.1.2' } })).status).toBe(403);
    } finally {
      await h2.close();
    }
  });
});
