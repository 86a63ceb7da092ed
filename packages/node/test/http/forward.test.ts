// The Forwarder over real HTTP on loopback: a follower's forward reaches the leader signed over
// exactly what is sent (method, path byte for byte, body, client IP), the leader believes the
// client IP only when that signature verifies, and the leader's answer reaches the client whole.
// Failures map to what the client may conclude: unreachable → `no_leader` (nothing was received);
// a leader change or an answer cut short → `outcome_unknown` (it may have been applied).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config.js';
import { FORWARDED_IP_HEADER, Forwarder } from '../../src/http/forward.js';
import { createMetrics } from '../../src/metrics.js';
import { derivePeerKey, PeerVerifier } from '../../src/peer/auth.js';
import { ServiceError } from '../../src/service/errors.js';

const clusterKey = randomBytes(32);
const MASTER_KEY = randomBytes(32).toString('base64');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function forwarder(nodeId: string, leader: { id: string | null; addr: string | undefined }, electionMs = 200, env: Record<string, string> = {}): Forwarder {
  const dir = mkdtempSync(path.join(tmpdir(), 'coffer-forward-'));
  dirs.push(dir);
  const config = loadConfig({ COFFER_NODE_ID: nodeId, COFFER_DATA_DIR: dir, COFFER_LOCAL_MASTER_KEY: MASTER_KEY, ...env }, {});
  return new Forwarder({
    config: { ...config, electionMs },
    metrics: createMetrics(),
    peerKey: derivePeerKey(clusterKey),
    verifier: new PeerVerifier({ clusterKey, nodeId }),
    leader: () => leader.id,
    leaderApiAddr: () => leader.addr,
    firstLeader: () => Promise.resolve(),
  });
}

interface Seen {
  req: IncomingMessage;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
  ip: string | undefined | Error;
  bodyCheck: 'ok' | Error;
}

const servers: Server[] = [];
const closers: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0)) await c();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A leader (n3) that checks forwards with its own Forwarder and answers with `answer`. */
async function leaderNode(answer: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void): Promise<{ url: string; seen: Seen[] }> {
  const own = forwarder('n3', { id: 'n3', addr: undefined });
  closers.push(() => own.close());
  const seen: Seen[] = [];
  const url = await listen((req, res) => {
    void (async () => {
      let ip: Seen['ip'];
      try {
        ip = own.clientIp(req);
      } catch (err) {
        ip = err as Error;
      }
      const body = await readAll(req);
      let bodyCheck: Seen['bodyCheck'] = 'ok';
      try {
        own.checkForwardedBody(req, body);
      } catch (err) {
        bodyCheck = err as Error;
      }
      const s = { req, method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, ip, bodyCheck };
      seen.push(s);
      answer(req, res, s);
    })();
  });
  return { url, seen };
}

/** A follower (n1) whose API forwards every request to `leaderUrl` with `fw`. */
async function followerNode(fw: Forwarder, body: (req: IncomingMessage) => Promise<Uint8Array | undefined> = async () => undefined): Promise<string> {
  return listen((req, res) => {
    void (async () => {
      res.setHeader('x-request-id', 'follower-id');
      try {
        const b = await body(req);
        await fw.forwardToLeader(req, res, { path: req.url ?? '/', body: b });
      } catch (err) {
        res.statusCode = 599;
        res.end(err instanceof ServiceError ? err.code : String(err));
      }
    })();
  });
}

function call(url: string, opts: { method: string; path: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; headers: IncomingMessage['headers']; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url + opts.path, { method: opts.method, headers: opts.headers ?? {} }, (res) => {
      void readAll(res).then((b) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b.toString('utf8') }), reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('Forwarder', () => {
  test('the leader gets exactly what was signed and believes the client IP; the answer comes back whole', async () => {
    const leader = await leaderNode((_req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-request-id': 'leader-id', 'x-extra': ['a', 'b'] });
      res.end('{"version":3}');
    });
    const fw = forwarder('n1', { id: 'n3', addr: leader.url });
    closers.push(() => fw.close());
    const url = await followerNode(fw, async (req) => new Uint8Array(await readAll(req)));
    // A path with an encoded slash and a query: sent byte for byte as the signature covers it.
    const r = await call(url, { method: 'PUT', path: '/v1/secrets/a%2Fb/c?cas=2', headers: { authorization: 'Bearer t0k', 'content-type': 'application/json', 'x-not-forwarded': '1' }, body: '{"value":"v"}' });
    expect(r).toMatchObject({ status: 201, body: '{"version":3}' });
    expect(r.headers['x-request-id']).toBe('leader-id');
    expect(r.headers['x-extra']).toBe('a, b');
    expect(r.headers['content-length']).toBe('13');
    expect(leader.seen).toHaveLength(1);
    const s = leader.seen[0] as Seen;
    expect(s).toMatchObject({ method: 'PUT', url: '/v1/secrets/a%2Fb/c?cas=2', ip: '127.0.0.1', bodyCheck: 'ok' });
    expect(s.body.toString('utf8')).toBe('{"value":"v"}');
    expect(s.headers.authorization).toBe('Bearer t0k');
    expect(s.headers['x-not-forwarded']).toBeUndefined();
    expect(s.headers[FORWARDED_IP_HEADER]).toBe('127.0.0.1');
  });

  test('the client IP sent is the socket address, or with a trusted proxy the X-Forwarded-For client, every time', async () => {
    const leader = await leaderNode((_req, res) => res.end());
    const plain = forwarder('n1', { id: 'n3', addr: leader.url });
    const proxied = forwarder('n1', { id: 'n3', addr: leader.url }, 200, { COFFER_TRUSTED_PROXIES: '127.0.0.1' });
    closers.push(() => plain.close(), () => proxied.close());
    const viaPlain = await followerNode(plain);
    const viaProxy = await followerNode(proxied);
    for (let i = 0; i < 2; i++) {
      await call(viaPlain, { method: 'PUT', path: '/v1/secrets/a', headers: { 'x-forwarded-for': '10.1.2.3' } });
      await call(viaProxy, { method: 'PUT', path: '/v1/secrets/a', headers: { 'x-forwarded-for': `10.1.2.${i}` } });
      await call(viaProxy, { method: 'PUT', path: '/v1/secrets/a', headers: { 'x-forwarded-for': '::ffff:10.9.9.9' } });
      await call(viaProxy, { method: 'PUT', path: '/v1/secrets/a' });
    }
    expect(leader.seen.map((x) => x.ip)).toEqual(['127.0.0.1', '10.1.2.0', '10.9.9.9', '127.0.0.1', '127.0.0.1', '10.1.2.1', '10.9.9.9', '127.0.0.1']);
  });

  test('a chunked answer is passed on whole, without hop-by-hop headers', async () => {
    const leader = await leaderNode((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.write('{"a":');
      setTimeout(() => res.end('1}'), 20);
    });
    const fw = forwarder('n1', { id: 'n3', addr: leader.url });
    closers.push(() => fw.close());
    const url = await followerNode(fw);
    const r = await call(url, { method: 'DELETE', path: '/v1/secrets/x' });
    expect(r).toMatchObject({ status: 200, body: '{"a":1}' });
    expect(r.headers['transfer-encoding']).toBeUndefined();
    expect(r.headers['content-length']).toBe('7');
    expect(leader.seen[0]?.body.length).toBe(0);
  });

  test('what the leader refuses: another client IP, another path, a replay', async () => {
    const leader = await leaderNode((_req, res) => res.end());
    const fw = forwarder('n1', { id: 'n3', addr: leader.url });
    closers.push(() => fw.close());
    const url = await followerNode(fw, async (req) => new Uint8Array(await readAll(req)));
    await call(url, { method: 'PUT', path: '/v1/secrets/a', body: 'one' });
    const genuine = leader.seen[0] as Seen;
    expect(genuine.ip).toBe('127.0.0.1');
    // The genuine forward's headers, sent again to the leader directly, altered or not.
    const signed = (extra: Record<string, string>): Record<string, string> => {
      const h: Record<string, string> = {};
      for (const k of ['x-coffer-from', 'x-coffer-ts', 'x-coffer-nonce', 'x-coffer-sig', 'x-coffer-body-sha256', FORWARDED_IP_HEADER]) h[k] = String(genuine.headers[k]);
      return { ...h, ...extra };
    };
    await call(leader.url, { method: 'PUT', path: '/v1/secrets/a', headers: signed({ [FORWARDED_IP_HEADER]: '10.0.0.9' }), body: 'one' });
    await call(leader.url, { method: 'PUT', path: '/v1/secrets/b', headers: signed({}), body: 'one' });
    await call(leader.url, { method: 'POST', path: '/v1/secrets/a', headers: signed({}), body: 'one' });
    await call(leader.url, { method: 'PUT', path: '/v1/secrets/a', headers: signed({}), body: 'one' });
    expect(leader.seen.slice(1).map((s) => (s.ip instanceof ServiceError ? s.ip.code : s.ip))).toEqual(['invalid_forward', 'invalid_forward', 'invalid_forward', 'invalid_forward']);
  });

  test('a body other than the signed one is refused once read', async () => {
    const leader = await leaderNode((_req, res) => res.end());
    const fw = forwarder('n1', { id: 'n3', addr: leader.url });
    closers.push(() => fw.close());
    const url = await followerNode(fw, async () => new TextEncoder().encode('signed'));
    await call(url, { method: 'PUT', path: '/v1/secrets/a', body: 'ignored' });
    const s = leader.seen[0] as Seen;
    expect(s.bodyCheck).toBe('ok');
    // The signature covers the hash of 'signed': a fresh verifier accepts the same headers, then
    // refuses any other body read with them.
    const own = forwarder('n3', { id: 'n3', addr: undefined });
    closers.push(() => own.close());
    expect(own.clientIp(s.req)).toBe('127.0.0.1');
    expect(() => own.checkForwardedBody(s.req, new TextEncoder().encode('other'))).toThrow(expect.objectContaining({ code: 'invalid_forward' }));
    expect(() => own.checkForwardedBody(s.req, new TextEncoder().encode('signed'))).not.toThrow();
  });

  test('an unreachable leader is no_leader; a forwarded request is never forwarded again', async () => {
    const closed = await listen(() => undefined);
    const s = servers.pop() as Server;
    await new Promise((r) => s.close(r));
    const fw = forwarder('n1', { id: 'n3', addr: closed });
    closers.push(() => fw.close());
    const url = await followerNode(fw);
    expect(await call(url, { method: 'PUT', path: '/v1/secrets/a' })).toMatchObject({ status: 599, body: 'no_leader' });
    expect(await call(url, { method: 'PUT', path: '/v1/secrets/a', headers: { [FORWARDED_IP_HEADER]: '1.2.3.4' } })).toMatchObject({ status: 599 });
    const none = forwarder('n1', { id: null, addr: undefined });
    closers.push(() => none.close());
    const url2 = await followerNode(none);
    expect(await call(url2, { method: 'PUT', path: '/v1/secrets/a' })).toMatchObject({ status: 599, body: 'no_leader' });
  });

  test('an answer cut short after it started is outcome_unknown (the leader had the request)', async () => {
    const leader = await leaderNode((_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const fw = forwarder('n1', { id: 'n3', addr: leader.url });
    closers.push(() => fw.close());
    const url = await followerNode(fw);
    expect(await call(url, { method: 'PUT', path: '/v1/secrets/a' })).toMatchObject({ status: 599, body: 'outcome_unknown' });
  });

  test('a leader change cuts a request with the old leader short after one election timeout: outcome_unknown', async () => {
    const leader = await leaderNode(() => undefined); // never answers
    const lead = { id: 'n3' as string | null, addr: leader.url as string | undefined };
    const fw = forwarder('n1', lead, 100);
    closers.push(() => fw.close());
    const url = await followerNode(fw);
    const pending = call(url, { method: 'PUT', path: '/v1/secrets/a' });
    while (leader.seen.length === 0) await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    lead.id = 'n2';
    fw.onLeaderChange('n2');
    expect(await pending).toMatchObject({ status: 599, body: 'outcome_unknown' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });
});
