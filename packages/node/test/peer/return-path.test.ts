// The peer transport's return path over real HTTP on loopback: a peer's answer to a batch travels
// back in the response to that batch (signed, verified like a request); without an answer in time
// the response is an empty 204 and later messages go as requests of their own; a tampered or
// unsigned return is refused.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Message } from '@coffer/raft';
import { derivePeerKey, PeerVerifier } from '../../src/peer/auth.js';
import { createPeerServer } from '../../src/raft/peer-server.js';
import { PeerTransport, RAFT_MESSAGES_PATH, RETURN_SIGNED_METHOD } from '../../src/raft/transport.js';

const clusterKey = randomBytes(32);
const peerKey = derivePeerKey(clusterKey);

function msg(from: string, to: string, term: number): Message {
  return { type: 'MsgHeartbeat', from, to, term, logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0, context: new Uint8Array(0) };
}

interface Node {
  id: string;
  server: Server;
  url: string;
  transport: PeerTransport;
  received: Message[];
  returned: Message[];
  /** Called for every batch the server receives (by POST). */
  onMessages: (from: string, msgs: Message[]) => void;
}

const nodes: Node[] = [];

async function node(id: string, opts: { acceptReturns?: boolean; verify?: boolean } = {}): Promise<Node> {
  const verifier = new PeerVerifier({ clusterKey, nodeId: id });
  const received: Message[] = [];
  const returned: Message[] = [];
  // Assigned once the transport and server exist; their callbacks run only later.
  let n: Node;
  const transport = new PeerTransport({
    nodeId: id,
    peerKey,
    resolve: (peer) => nodes.find((x) => x.id === peer)?.url,
    onUnreachable: () => undefined,
    ...(opts.acceptReturns === false
      ? {}
      : {
          verifyReturn: (peer: string, headers: Record<string, string | string[] | undefined>, body: Uint8Array) => {
            if (opts.verify === false) return true;
            const v = verifier.verify({ method: RETURN_SIGNED_METHOD, path: RAFT_MESSAGES_PATH, headers, body });
            return v.ok && v.from === peer;
          },
          onReturned: (_peer: string, msgs: Message[]) => returned.push(...msgs),
        }),
  });
  const server = createPeerServer({
    verifier,
    nodeId: id,
    onMessages: (from, msgs) => {
      received.push(...msgs);
      n.onMessages(from, msgs);
    },
    holdReturn: (from, respond) => transport.holdReturn(from, respond),
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  n = { id, server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, transport, received, returned, onMessages: () => undefined };
  nodes.push(n);
  return n;
}

async function until(what: string, fn: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

afterEach(async () => {
  for (const n of nodes.splice(0)) {
    await n.transport.close();
    await new Promise<void>((r) => n.server.close(() => r()));
  }
});

test('an answer sent while the request is held goes back in its response, not as a request', async () => {
  const a = await node('a');
  const b = await node('b');
  b.onMessages = (from, msgs) => b.transport.send(msgs.map((m) => msg('b', from, m.term + 100)));
  a.transport.send([msg('a', 'b', 1)]);
  await until('the answer arrives at a', () => a.returned.length === 1);
  expect(a.returned[0]).toMatchObject({ from: 'b', to: 'a', term: 101 });
  expect(a.received).toEqual([]); // nothing came to a's listener
});

test('without an answer in time the response is empty, and a later answer travels as a request', async () => {
  const a = await node('a');
  const b = await node('b');
  a.transport.send([msg('a', 'b', 1)]);
  await until('b receives', () => b.received.length === 1);
  await new Promise((r) => setTimeout(r, 100)); // past the hold time
  b.transport.send([msg('b', 'a', 7)]);
  await until('a receives by request', () => a.received.length === 1);
  expect(a.received[0]).toMatchObject({ from: 'b', term: 7 });
  expect(a.returned).toEqual([]);
});

test('a sender that does not ask for returns gets none; its peer answers by request', async () => {
  const a = await node('a', { acceptReturns: false });
  const b = await node('b');
  b.onMessages = (from, msgs) => b.transport.send(msgs.map((m) => msg('b', from, m.term + 1)));
  a.transport.send([msg('a', 'b', 3)]);
  await until('a receives by request', () => a.received.length === 1);
  expect(a.received[0]).toMatchObject({ from: 'b', term: 4 });
});

test('a returned batch that does not verify is dropped', async () => {
  const a = await node('a');
  const b = await node('b');
  // b signs returns with another cluster's key: a must refuse them.
  const wrong = new PeerTransport({ nodeId: 'b', peerKey: derivePeerKey(randomBytes(32)), resolve: () => a.url, onUnreachable: () => undefined });
  b.server.removeAllListeners('request');
  const verifier = new PeerVerifier({ clusterKey, nodeId: 'b' });
  const impostor = createPeerServer({ verifier, nodeId: 'b', onMessages: (from, msgs) => wrong.send(msgs.map((m) => msg('b', from, m.term))), holdReturn: (from, respond) => wrong.holdReturn(from, respond) });
  b.server.on('request', (req, res) => impostor.emit('request', req, res));
  a.transport.send([msg('a', 'b', 5)]);
  await new Promise((r) => setTimeout(r, 200));
  expect(a.returned).toEqual([]);
  await wrong.close();
});
