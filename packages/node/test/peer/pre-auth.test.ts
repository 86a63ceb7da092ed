// The peer port refuses unauthenticated traffic before reading its body (security review, hole 7:
// it used to buffer up to 80 MiB before checking the HMAC). Real HTTP on loopback.
import { randomBytes } from 'node:crypto';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { encodeMessages, type Message } from '@coffer/raft';
import { derivePeerKey, PeerVerifier, signPeerRequest } from '../../src/peer/auth.js';
import { createPeerServer, MAX_LEGACY_READS } from '../../src/raft/peer-server.js';
import { RAFT_MESSAGES_PATH } from '../../src/raft/transport.js';

const clusterKey = randomBytes(32);
const peerKey = derivePeerKey(clusterKey);
let server: Server;
let port: number;
const received: Message[] = [];
const refused: string[] = [];

beforeAll(async () => {
  server = createPeerServer({
    verifier: new PeerVerifier({ clusterKey, nodeId: 'n2' }),
    nodeId: 'n2',
    onMessages: (_from, msgs) => received.push(...msgs),
    onRefused: (reason) => refused.push(reason),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/**
 * Sends headers and a first chunk of a body declared `declared` bytes long, then waits for the
 * answer without sending the rest: a server that reads before it verifies never answers.
 */
function partialPost(headers: Record<string, string>, declared: number): Promise<{ status: number; sentBytes: number }> {
  return new Promise((resolve, reject) => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: RAFT_MESSAGES_PATH, headers: { ...headers, 'content-length': String(declared) } }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, sentBytes: chunk.length });
      req.destroy();
    });
    req.on('error', (err) => (/socket hang up|ECONNRESET|EPIPE/.test(String(err)) ? undefined : reject(err)));
    req.setTimeout(5_000, () => reject(new Error('no answer before the body was sent: the server waits for the whole body')));
    req.write(chunk);
  });
}

const heartbeat: Message = { type: 'MsgHeartbeat', from: 'n1', to: 'n2', term: 3, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0, context: new Uint8Array(0) };

test('a 50 MiB body with forged signature headers is refused (401) before it is read', async () => {
  const body = new Uint8Array(16);
  const forged = signPeerRequest(derivePeerKey(randomBytes(32)), { method: 'POST', path: RAFT_MESSAGES_PATH, from: 'n1', to: 'n2', body });
  const r = await partialPost(forged, 50 * 1024 * 1024);
  expect(r.status).toBe(401);
  expect(refused).toContain('bad_signature');
});

test('a declared length over the cap is 413 before reading; a body that does not match its signed hash is 401', async () => {
  expect((await partialPost({}, 200 * 1024 * 1024)).status).toBe(413);
  const body = encodeMessages([heartbeat]);
  const headers = signPeerRequest(peerKey, { method: 'POST', path: RAFT_MESSAGES_PATH, from: 'n1', to: 'n2', body });
  const swapped = new Uint8Array(body);
  swapped[swapped.length - 1] = (swapped[swapped.length - 1] ?? 0) ^ 1;
  const res = await fetch(`http://127.0.0.1:${port}${RAFT_MESSAGES_PATH}`, { method: 'POST', headers, body: swapped });
  expect(res.status).toBe(401);
  expect(received).toEqual([]);
  const ok = await fetch(`http://127.0.0.1:${port}${RAFT_MESSAGES_PATH}`, {
    method: 'POST',
    headers: signPeerRequest(peerKey, { method: 'POST', path: RAFT_MESSAGES_PATH, from: 'n1', to: 'n2', body }),
    body,
  });
  expect(ok.status).toBe(204);
  expect(received.map((m) => m.type)).toEqual(['MsgHeartbeat']);
});

test(`senders that do not declare a body hash (older members) are heard, but at most ${MAX_LEGACY_READS} bodies are buffered unauthenticated at once`, async () => {
  const unsigned = { 'x-coffer-from': 'n1', 'x-coffer-ts': String(Date.now()), 'x-coffer-nonce': 'ab'.repeat(16), 'x-coffer-sig': 'cd'.repeat(32) };
  // Hold MAX_LEGACY_READS bodies open (never finished), then one more is turned away at once.
  const hanging: http.ClientRequest[] = [];
  for (let i = 0; i < MAX_LEGACY_READS; i++) {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: RAFT_MESSAGES_PATH, headers: { ...unsigned, 'content-length': String(1024 * 1024) } });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(1024));
    hanging.push(req);
  }
  await new Promise((r) => setTimeout(r, 200));
  expect((await partialPost(unsigned, 1024 * 1024)).status).toBe(503);
  for (const r of hanging) r.destroy();
});
