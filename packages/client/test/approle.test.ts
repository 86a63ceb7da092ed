// loginWithAppRole against a stand-in node: Vault's request and answer shapes, the token used from
// then on, a re-login before expiry, and no blind retry of a refused login (a retry could spend a
// second use of the secret id).
import { CofferClient } from '@coffer/client';
import { apiError, caught, json, standIn, type StandIn } from './helpers';

const servers: StandIn[] = [];
const clients: CofferClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function waitFor(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('logs in with Vault shapes, uses the token, and logs in again before it expires', async () => {
  let n = 0;
  const node = await standIn((req, res, body) => {
    if (req.url === '/v1/auth/approle/login') {
      expect(JSON.parse(body.toString('utf8'))).toEqual({ role_id: 'rid-1', secret_id: 'sid-1' });
      n++;
      // A one-second lease: the client logs in again after about three quarters of it.
      json(res, 200, { auth: { client_token: `tok-${n}`, lease_duration: 1, policies: ['reader'] } });
      return;
    }
    json(res, 200, { name: 'app/db', version: 1, value: 'v', createdAt: '2026-01-01T00:00:00Z' });
  });
  servers.push(node);
  const c = new CofferClient({ addresses: [node.url] });
  clients.push(c);
  const s = await c.loginWithAppRole({ roleId: 'rid-1', secretId: 'sid-1' });
  expect(s.token).toBe('tok-1');
  expect(Date.parse(s.expiresAt)).toBeGreaterThan(Date.now());
  await c.secrets.get('app/db');
  expect(node.hits.at(-1)?.headers.authorization).toBe('Bearer tok-1');
  await waitFor(() => n >= 2, 5_000);
  // The node counts the re-login before its answer reaches the client: the new token is used from
  // the moment the client has it.
  const deadline = Date.now() + 5_000;
  for (;;) {
    await c.secrets.get('app/db');
    if (node.hits.at(-1)?.headers.authorization === 'Bearer tok-2' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(node.hits.at(-1)?.headers.authorization).toBe('Bearer tok-2');
});

test('a refused login is not retried and names the code; bad arguments are a TypeError', async () => {
  const node = await standIn((_req, res) => apiError(res, 401, 'invalid_token'));
  servers.push(node);
  const c = new CofferClient({ addresses: [node.url] });
  clients.push(c);
  const err = await caught(c.loginWithAppRole({ roleId: 'rid', secretId: 'wrong' }));
  expect(err.code).toBe('invalid_token');
  expect(node.hits).toHaveLength(1);
  await expect(c.loginWithAppRole({ roleId: '', secretId: 'x' })).rejects.toThrow(TypeError);
});

test('an answer without auth.client_token is refused as invalid_response', async () => {
  const node = await standIn((_req, res) => json(res, 200, { data: {} }));
  servers.push(node);
  const c = new CofferClient({ addresses: [node.url] });
  clients.push(c);
  expect((await caught(c.loginWithAppRole({ roleId: 'rid', secretId: 'sid' }))).code).toBe('invalid_response');
});
