// loginWithEd25519 against a stand-in node that verifies signatures like a real one: the signed
// text, the session token used from then on, a re-login before expiry, a refused login answered
// once (no blind retry: a nonce is single use), and the private key forms accepted.
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto';
import { CofferClient, ed25519PublicKeyBase64, generateEd25519KeyPair, loginMessage } from '@coffer/client';
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

/** A node that knows one identity's public key (raw, base64) and opens sessions of `lifeMs`. */
async function node(identity: string, publicKeyB64: string, lifeMs: number): Promise<StandIn & { logins: () => number }> {
  let n = 0;
  let seq = 0;
  const issued = new Set<string>();
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKeyB64, 'base64').toString('base64url') }, format: 'jwk' });
  const s = await standIn((req, res, body) => {
    const b = body.length > 0 ? (JSON.parse(body.toString('utf8')) as Record<string, string>) : {};
    if (req.url === '/v1/auth/challenge') {
      const nonce = `nonce-${++seq}`;
      issued.add(nonce);
      json(res, 200, { nonce, expiresAt: new Date(Date.now() + 60_000).toISOString() });
      return;
    }
    if (req.url === '/v1/auth/login') {
      const ok = b['identity'] === identity && issued.delete(b['nonce'] as string) && verify(null, Buffer.from(`coffer-login:${identity}:${b['nonce'] as string}`), key, Buffer.from(b['signature'] as string, 'base64'));
      if (!ok) return apiError(res, 401, 'invalid_token');
      n++;
      json(res, 200, { token: `session-${n}`, expiresAt: new Date(Date.now() + lifeMs).toISOString() });
      return;
    }
    json(res, 200, { name: 'org/acme/project/web/db', version: 1, value: 'v', createdAt: '2026-01-01T00:00:00Z' });
  });
  return Object.assign(s, { logins: () => n });
}

test('signs coffer-login:{identity}:{nonce}, uses the session, and logs in again before it expires', async () => {
  const kp = generateEd25519KeyPair();
  const n = await node('agent-1', kp.publicKey, 1_000);
  servers.push(n);
  const c = new CofferClient({ addresses: [n.url] });
  clients.push(c);
  const s = await c.loginWithEd25519({ identity: 'agent-1', privateKey: kp.privateKeyPem });
  expect(s.token).toBe('session-1');
  await c.secrets.get('org/acme/project/web/db');
  expect(n.hits.at(-1)?.headers.authorization).toBe('Bearer session-1');
  // The private key is never in any request.
  const pemBody = kp.privateKeyPem.split('\n').filter((l) => !l.startsWith('-----')).join('');
  for (const h of n.hits) expect(JSON.stringify(h)).not.toContain(pemBody.slice(0, 30));
  await waitFor(() => n.logins() >= 2, 5_000);
  // The node counts the re-login before its answer reaches the client: the new session is used
  // from the moment the client has it (a request already under way may still carry the old one).
  const deadline = Date.now() + 5_000;
  for (;;) {
    await c.secrets.get('org/acme/project/web/db');
    if (n.hits.at(-1)?.headers.authorization === 'Bearer session-2' || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(n.hits.at(-1)?.headers.authorization).toBe('Bearer session-2');
  expect(loginMessage('a', 'n').toString('utf8')).toBe('coffer-login:a:n');
});

test('a wrong key is refused once (one challenge, one login: no retry of a spent nonce)', async () => {
  const kp = generateEd25519KeyPair();
  const n = await node('agent-1', kp.publicKey, 60_000);
  servers.push(n);
  const c = new CofferClient({ addresses: [n.url] });
  clients.push(c);
  const err = await caught(c.loginWithEd25519({ identity: 'agent-1', privateKey: generateEd25519KeyPair().privateKeyPem }));
  expect(err.code).toBe('invalid_token');
  expect(n.hits.map((h) => h.url)).toEqual(['/v1/auth/challenge', '/v1/auth/login']);
});

test('private keys: PEM, KeyObject and the raw 32-byte seed work; anything else is a TypeError', async () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const pub = ed25519PublicKeyBase64(privateKey);
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
  const n = await node('agent-2', pub, 60_000);
  servers.push(n);
  const c = new CofferClient({ addresses: [n.url] });
  clients.push(c);
  for (const k of [privateKey, privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), new Uint8Array(seed)]) {
    expect((await c.loginWithEd25519({ identity: 'agent-2', privateKey: k })).token).toMatch(/^session-/);
  }
  await expect(c.loginWithEd25519({ identity: 'agent-2', privateKey: new Uint8Array(31) })).rejects.toThrow(TypeError);
  await expect(c.loginWithEd25519({ identity: 'agent-2', privateKey: 'not a key' })).rejects.toThrow(TypeError);
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
  await expect(c.loginWithEd25519({ identity: 'agent-2', privateKey: rsa })).rejects.toThrow(TypeError);
});
