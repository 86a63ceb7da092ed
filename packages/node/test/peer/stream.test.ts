// Raft streams over real sockets on loopback: batches travel as frames on one authenticated
// connection; a listener that does not take streams gets HTTP requests; an unsigned, replayed or
// wrongly keyed upgrade is refused; a forged, altered, reordered or oversized frame ends the
// stream before anything is delivered; a stream whose frames stop being acknowledged is dialled again.
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import { encodeMessages, type Message } from '@coffer/raft';
import { deriveStreamKey, derivePeerKey, PEER_HEADERS, PeerVerifier, signPeerRequest } from '../../src/peer/auth.js';
import { createPeerServer } from '../../src/raft/peer-server.js';
import { frameTag, STREAM_PROTOCOL, StreamAcceptor, streamPath, type StreamLane } from '../../src/raft/stream.js';
import { PeerTransport } from '../../src/raft/transport.js';

const clusterKey = randomBytes(32);
const peerKey = derivePeerKey(clusterKey);

function msg(from: string, to: string, term: number): Message {
  return { type: 'MsgHeartbeat', from, to, term, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0, context: new Uint8Array(0) };
}

interface Listener {
  id: string;
  server: Server;
  port: number;
  url: string;
  acceptor: StreamAcceptor;
  /** Messages delivered, and how: by stream frame or by HTTP request. */
  byStream: Message[];
  byHttp: Message[];
  refusals: string[];
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function listener(id: string, opts: { streams?: boolean; onLane?: (lane: StreamLane, socket: import('node:stream').Duplex) => void } = {}): Promise<Listener> {
  const verifier = new PeerVerifier({ clusterKey, nodeId: id });
  const byStream: Message[] = [];
  const byHttp: Message[] = [];
  const refusals: string[] = [];
  const acceptor = new StreamAcceptor({ nodeId: id, onMessages: (_from, msgs) => byStream.push(...msgs), onRefused: (r) => refusals.push(r) });
  const server = createPeerServer({
    verifier,
    nodeId: id,
    onMessages: (_from, msgs) => byHttp.push(...msgs),
    onRefused: (r) => refusals.push(r),
    ...(opts.streams === false ? {} : { onStream: (from: string, nonce: string, lane: StreamLane, socket, head) => {
          opts.onLane?.(lane, socket);
          acceptor.accept(from, lane, verifier.streamKey(from, nonce), socket, head);
        } }),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  cleanups.push(async () => {
    acceptor.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { id, server, port, url: `http://127.0.0.1:${port}`, acceptor, byStream, byHttp, refusals };
}

function transport(id: string, peers: Record<string, string>, extra: { unreachable?: string[]; errors?: string[] } = {}): PeerTransport {
  const t = new PeerTransport({
    nodeId: id,
    peerKey,
    resolve: (peer) => peers[peer],
    onUnreachable: (peer) => extra.unreachable?.push(peer),
    onError: (_peer, kind) => extra.errors?.push(kind),
  });
  cleanups.push(() => t.close());
  return t;
}

async function until(what: string, fn: () => boolean, ms = 8_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A raw upgrade: returns the socket and the response head once it arrived. */
async function rawUpgrade(port: number, headers: Record<string, string>, extra = '', path = streamPath('msg')): Promise<{ socket: Socket; status: number; closed: () => boolean }> {
  const socket = connect({ host: '127.0.0.1', port });
  let closed = false;
  socket.on('close', () => (closed = true));
  socket.on('error', () => undefined);
  cleanups.push(() => void socket.destroy());
  let head = `POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: ${STREAM_PROTOCOL}\r\ncontent-length: 0\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  socket.write(`${head}${extra}\r\n`);
  const status = await new Promise<number>((resolve) => {
    let got = '';
    const onData = (c: Buffer): void => {
      got += c.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got);
      if (m !== null && got.includes('\r\n\r\n')) {
        socket.off('data', onData);
        resolve(Number(m[1]));
      }
    };
    socket.on('data', onData);
    socket.on('close', () => resolve(0));
  });
  return { socket, status, closed: () => closed };
}

function frame(key: Uint8Array, seq: number, payload: Uint8Array, tag = frameTag(key, seq, payload)): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(payload.length, 0);
  return Buffer.concat([len, payload, tag]);
}

test('batches travel on one stream, in order, with no HTTP request per batch', async () => {
  const b = await listener('b');
  const a = transport('a', { b: b.url });
  for (let i = 1; i <= 50; i++) a.send([msg('a', 'b', i)]);
  await until('b receives 50 messages', () => b.byStream.length === 50);
  expect(b.byStream.map((m) => m.term)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  expect(b.byHttp).toEqual([]);
  expect(b.acceptor.size).toBe(1);
  // Later batches reuse the stream.
  a.send([msg('a', 'b', 51)]);
  await until('b receives the 51st', () => b.byStream.length === 51);
  expect(b.acceptor.size).toBe(1);
});

function append(from: string, to: string, index: number, bytes: number): Message {
  return { type: 'MsgApp', from, to, term: 1, logTerm: 1, index, commit: 0, entries: [{ index: index + 1, term: 1, type: 'normal', data: new Uint8Array(bytes) }], reject: false, rejectHint: 0, context: new Uint8Array(0) };
}

test('heartbeats never wait behind entries: a follower that stops reading entries still gets every heartbeat', async () => {
  // The listener reads nothing more from the entries lane once it is open (a follower far
  // behind); the kernel buffers fill and the sender queues. Heartbeats still arrive at once.
  const b = await listener('b', { onLane: (lane, socket) => lane === 'app' && setImmediate(() => socket.pause()) });
  const a = transport('a', { b: b.url });
  a.send([append('a', 'b', 0, 1024)]);
  for (let i = 1; i <= 40; i++) a.send([append('a', 'b', i, 1024 * 1024)]);
  for (let t = 1; t <= 5; t++) a.send([msg('a', 'b', t)]);
  await until('b receives the heartbeats', () => b.byStream.filter((m) => m.type === 'MsgHeartbeat').length === 5);
  expect(b.byStream.filter((m) => m.type === 'MsgApp').length).toBeLessThan(41);
  expect(b.acceptor.size).toBe(2);
});

test('the lane is bound by the signature: a handshake signed for one lane does not open the other', async () => {
  const b = await listener('b');
  const forMsg = signPeerRequest(peerKey, { method: 'POST', path: streamPath('msg'), from: 'a', to: 'b' });
  expect((await rawUpgrade(b.port, forMsg, '', streamPath('app'))).status).toBe(401);
  expect((await rawUpgrade(b.port, signPeerRequest(peerKey, { method: 'POST', path: '/raft/v1/stream/other', from: 'a', to: 'b' }), '', '/raft/v1/stream/other')).status).toBe(404);
  expect((await rawUpgrade(b.port, signPeerRequest(peerKey, { method: 'POST', path: streamPath('app'), from: 'a', to: 'b' }), '', streamPath('app'))).status).toBe(101);
});

test('a listener that does not take streams (an older member) gets HTTP requests', async () => {
  const b = await listener('b', { streams: false });
  const a = transport('a', { b: b.url });
  a.send([msg('a', 'b', 1)]);
  await until('b receives by request', () => b.byHttp.length === 1);
  a.send([msg('a', 'b', 2)]);
  await until('b receives the second by request', () => b.byHttp.length === 2);
  expect(b.byStream).toEqual([]);
  expect(b.refusals).toContain('not_found');
});

test('an unsigned, wrongly keyed, replayed or mis-addressed upgrade is refused before any frame is read', async () => {
  const b = await listener('b');
  expect((await rawUpgrade(b.port, {})).status).toBe(401);
  const foreign = signPeerRequest(derivePeerKey(randomBytes(32)), { method: 'POST', path: streamPath('msg'), from: 'a', to: 'b' });
  expect((await rawUpgrade(b.port, foreign)).status).toBe(401);
  const toC = signPeerRequest(peerKey, { method: 'POST', path: streamPath('msg'), from: 'a', to: 'c' });
  expect((await rawUpgrade(b.port, toC)).status).toBe(401);
  const good = signPeerRequest(peerKey, { method: 'POST', path: streamPath('msg'), from: 'a', to: 'b' });
  expect((await rawUpgrade(b.port, good)).status).toBe(101);
  expect((await rawUpgrade(b.port, good)).status).toBe(401); // the same handshake again: replayed
  expect(b.refusals).toEqual(expect.arrayContaining(['missing', 'bad_signature', 'replayed']));
  // Signed for the HTTP route, or with a body: not a stream handshake.
  const otherPath = signPeerRequest(peerKey, { method: 'POST', path: '/raft/v1/messages', from: 'a', to: 'b' });
  expect((await rawUpgrade(b.port, otherPath)).status).toBe(401);
  const withBody = signPeerRequest(peerKey, { method: 'POST', path: streamPath('msg'), from: 'a', to: 'b', body: new Uint8Array([1]) });
  expect((await rawUpgrade(b.port, withBody)).status).toBe(401);
  expect(b.byStream).toEqual([]);
});

describe('frames on an accepted stream', () => {
  async function opened(b: Listener): Promise<{ socket: Socket; key: Buffer; closed: () => boolean }> {
    const headers = signPeerRequest(peerKey, { method: 'POST', path: streamPath('msg'), from: 'a', to: 'b' });
    const up = await rawUpgrade(b.port, headers);
    expect(up.status).toBe(101);
    return { socket: up.socket, key: deriveStreamKey(peerKey, 'a', 'b', headers[PEER_HEADERS.nonce] as string), closed: up.closed };
  }

  test('authentic frames are delivered, split across writes or packed together', async () => {
    const b = await listener('b');
    const s = await opened(b);
    const f0 = frame(s.key, 0, encodeMessages([msg('a', 'b', 1)]));
    const f1 = frame(s.key, 1, encodeMessages([msg('a', 'b', 2), msg('a', 'b', 3)]));
    s.socket.write(f0.subarray(0, 3));
    await new Promise((r) => setTimeout(r, 20));
    s.socket.write(Buffer.concat([f0.subarray(3), f1]));
    await until('b receives 3', () => b.byStream.length === 3);
    expect(b.byStream.map((m) => m.term)).toEqual([1, 2, 3]);
  });

  test('a frame with a wrong tag ends the stream and delivers nothing', async () => {
    const b = await listener('b');
    const s = await opened(b);
    const payload = encodeMessages([msg('a', 'b', 1)]);
    s.socket.write(frame(s.key, 0, payload, Buffer.alloc(16)));
    await until('the stream is closed', s.closed);
    expect(b.byStream).toEqual([]);
    expect(b.refusals).toContain('bad_signature');
  });

  test('an altered payload, a replayed frame and a frame out of order are refused', async () => {
    for (const variant of ['altered', 'replayed', 'reordered'] as const) {
      const b = await listener('b');
      const s = await opened(b);
      const p0 = encodeMessages([msg('a', 'b', 1)]);
      const p1 = encodeMessages([msg('a', 'b', 2)]);
      const f0 = frame(s.key, 0, p0);
      if (variant === 'altered') {
        const bad = Buffer.from(f0);
        bad[10] = (bad[10] as number) ^ 1;
        s.socket.write(bad);
      } else if (variant === 'replayed') {
        s.socket.write(Buffer.concat([f0, f0]));
      } else {
        s.socket.write(frame(s.key, 1, p1));
      }
      await until(`the stream is closed (${variant})`, s.closed);
      expect(b.byStream.map((m) => m.term)).toEqual(variant === 'replayed' ? [1] : []);
    }
  });

  test("a frame under another stream's key is refused", async () => {
    const b = await listener('b');
    const s = await opened(b);
    const other = deriveStreamKey(peerKey, 'a', 'b', randomBytes(16).toString('hex'));
    s.socket.write(frame(other, 0, encodeMessages([msg('a', 'b', 1)])));
    await until('the stream is closed', s.closed);
    expect(b.byStream).toEqual([]);
  });

  test('a frame claiming more than the cap is refused before it is buffered', async () => {
    const b = await listener('b');
    const s = await opened(b);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(0xffffffff, 0);
    s.socket.write(len);
    await until('the stream is closed', s.closed);
    expect(b.refusals).toContain('too_large');
  });

  test('messages in an authentic frame that claim another sender or receiver are dropped', async () => {
    const b = await listener('b');
    const s = await opened(b);
    s.socket.write(frame(s.key, 0, encodeMessages([msg('c', 'b', 1), msg('a', 'c', 2), msg('a', 'b', 3)])));
    await until('b receives', () => b.byStream.length === 1);
    expect(b.byStream[0]).toMatchObject({ from: 'a', to: 'b', term: 3 });
  });

  test('undecodable bytes in an authentic frame end the stream', async () => {
    const b = await listener('b');
    const s = await opened(b);
    s.socket.write(frame(s.key, 0, new Uint8Array([9, 9, 9])));
    await until('the stream is closed', s.closed);
    expect(b.refusals).toContain('decode');
  });

  test('the listener acknowledges frames', async () => {
    const b = await listener('b');
    const s = await opened(b);
    const acks: number[] = [];
    s.socket.on('data', (c: Buffer) => {
      for (let i = 0; i + 4 <= c.length; i += 4) acks.push(c.readUInt32BE(i));
    });
    s.socket.write(Buffer.concat([frame(s.key, 0, encodeMessages([msg('a', 'b', 1)])), frame(s.key, 1, encodeMessages([msg('a', 'b', 2)]))]));
    await until('an acknowledgement of both frames', () => acks.includes(2));
  });
});

test('a stream whose frames stop being acknowledged is dropped, reported and dialled again', async () => {
  // A listener that accepts the upgrade, then reads nothing and acknowledges nothing.
  const sockets: Socket[] = [];
  const { createServer } = await import('node:net');
  let upgrades = 0;
  const mute = createServer((sock) => {
    sockets.push(sock);
    sock.once('data', () => {
      upgrades++;
      sock.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${STREAM_PROTOCOL}\r\n\r\n`);
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
  cleanups.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  });
  const unreachable: string[] = [];
  const errors: string[] = [];
  const a = transport('a', { b: `http://127.0.0.1:${(mute.address() as AddressInfo).port}` }, { unreachable, errors });
  a.send([msg('a', 'b', 1)]);
  await until('the stall is reported', () => unreachable.includes('b'), 10_000);
  expect(errors).toContain('stream_stalled');
  // After the back-off, the next batch dials a new stream.
  await new Promise((r) => setTimeout(r, 300));
  a.send([msg('a', 'b', 2)]);
  await until('a second upgrade', () => upgrades === 2);
});

test("the sender's own event loop held up past the stall limit (a long pause) does not count as a stalled peer", async () => {
  const b = await listener('b');
  const errors: string[] = [];
  const unreachable: string[] = [];
  const a = transport('a', { b: b.url }, { errors, unreachable });
  a.send([msg('a', 'b', 1)]);
  await until('b receives', () => b.byStream.length === 1);
  await new Promise((r) => setTimeout(r, 100)); // acknowledged
  a.send([msg('a', 'b', 2)]);
  // Hold this process's event loop longer than the stall limit: the frame is outstanding, and the
  // acknowledgement can only be read once the loop runs again.
  const until2 = Date.now() + 3_600;
  while (Date.now() < until2) {
    // busy: a long pause
  }
  await until('b receives the second', () => b.byStream.length === 2);
  await new Promise((r) => setTimeout(r, 600));
  expect(errors).not.toContain('stream_stalled');
  expect(unreachable).toEqual([]);
});

test('a peer that is down is reported unreachable; once it is up, the next batch gets through', async () => {
  const b = await listener('b');
  const url = b.url;
  const unreachable: string[] = [];
  // Nothing listens on this port (b's port, after b closed).
  const port = b.port;
  b.acceptor.close();
  b.server.closeAllConnections();
  await new Promise<void>((r) => b.server.close(() => r()));
  const a = transport('a', { b: url }, { unreachable });
  a.send([msg('a', 'b', 1)]);
  await until('b is reported unreachable', () => unreachable.includes('b'));
  const b2 = await listenerOn('b', port);
  await new Promise((r) => setTimeout(r, 300));
  a.send([msg('a', 'b', 2)]);
  await until('b receives after it came back', () => b2.byStream.length === 1);
});

async function listenerOn(id: string, port: number): Promise<Listener> {
  const verifier = new PeerVerifier({ clusterKey, nodeId: id });
  const byStream: Message[] = [];
  const acceptor = new StreamAcceptor({ nodeId: id, onMessages: (_f, msgs) => byStream.push(...msgs) });
  const server = createPeerServer({ verifier, nodeId: id, onMessages: () => undefined, onStream: (from, nonce, lane, socket, head) => acceptor.accept(from, lane, verifier.streamKey(from, nonce), socket, head) });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  cleanups.push(async () => {
    acceptor.close();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { id, server, port, url: `http://127.0.0.1:${port}`, acceptor, byStream, byHttp: [], refusals: [] };
}
