/**
 * The Raft member's network: the transport that sends its messages (a Raft stream per peer, or
 * batched HTTP requests to a peer that does not take streams, with answers carried back in
 * responses) and the peer listener that receives them, the streams and the peer RPCs. A removed
 * member that still sends Raft messages is not heard: it is told again that it was removed.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Message, NodeId } from '@coffer/raft';
import type { Removal } from '../cluster/removal.js';
import type { ServerConfig } from '../config.js';
import { closeServer, listen } from '../http/drain.js';
import type { Logger } from '../logger.js';
import type { CofferMetrics } from '../metrics.js';
import type { PeerVerifier } from '../peer/auth.js';
import type { RaftDriver } from './driver.js';
import { createPeerServer, type PeerRpc } from './peer-server.js';
import { StreamAcceptor } from './stream.js';
import { PeerTransport, RAFT_MESSAGES_PATH, RETURN_SIGNED_METHOD } from './transport.js';

/**
 * The driver's outgoing messages. The driver is built first (the transport reports to it), so it
 * sends here, and the transport is connected once it exists — before the driver starts ticking.
 */
export class Outbox {
  private transport: PeerTransport | undefined;

  /** @param transport - where messages go from now on */
  connect(transport: PeerTransport): void {
    this.transport = transport;
  }

  /** The driver's `sendMessages` (messages before {@link connect} are dropped, as Raft allows). */
  send(msgs: Message[]): void {
    this.transport?.send(msgs);
  }
}

/** What {@link openPeerLink} needs. */
export interface PeerLinkDeps {
  readonly config: Readonly<ServerConfig>;
  readonly metrics: CofferMetrics;
  readonly peerKey: Uint8Array;
  readonly verifier: PeerVerifier;
  readonly driver: RaftDriver;
  readonly outbox: Outbox;
  readonly raftAddrOf: (id: NodeId) => string | undefined;
  readonly removal: Removal;
  readonly rpc: PeerRpc;
  readonly logger: Logger;
  /** Whether a command a follower handed over (Raft MsgProp) may join the log. */
  readonly admitsHanded: (data: Uint8Array) => boolean;
}

/** The open peer link. */
export interface PeerLink {
  /** The bound peer listener address (port 0 in the config resolves here). */
  readonly address: AddressInfo;
  readonly server: Server;
  /** Closes the listener, then the transport. */
  close(): Promise<void>;
}

/**
 * Builds the transport (connected to the outbox) and starts the peer listener.
 *
 * @param deps - see {@link PeerLinkDeps}
 * @returns the link
 * @throws when the peer address cannot be bound (the transport is closed first)
 */
export async function openPeerLink(deps: PeerLinkDeps): Promise<PeerLink> {
  const { config, metrics, verifier, driver, removal } = deps;
  const admitted = (m: Message): boolean => m.type !== 'MsgProp' || m.entries.every((e) => deps.admitsHanded(e.data));
  const receive = (from: NodeId, msgs: Message[]): void => {
    const removed = removal.removedPeer(from);
    if (removed !== undefined) {
      // A removed member still talking (it missed the news, e.g. it was down): tell it again.
      void removal.notify(from, removed);
      return;
    }
    // A follower's proposals: only commands every member can apply (CommandVersions.admitsHanded).
    if (!msgs.every(admitted)) {
      deps.logger.warn({ from }, 'dropped a proposal a follower handed over: not a command every member can apply');
      driver.step(msgs.filter(admitted));
      return;
    }
    driver.step(msgs);
  };
  const transport = new PeerTransport({
    nodeId: config.nodeId,
    peerKey: deps.peerKey,
    resolve: deps.raftAddrOf,
    onUnreachable: (id) => driver.reportUnreachable(id),
    onError: (id, kind) => metrics.peerRpcErrors.inc({ peer: id, kind }),
    verifyReturn: (peer, headers, body) => {
      const v = verifier.verify({ method: RETURN_SIGNED_METHOD, path: RAFT_MESSAGES_PATH, headers, body });
      if (!v.ok) metrics.peerRefusals.inc({ reason: v.reason });
      return v.ok && v.from === peer;
    },
    onReturned: receive,
    onSent: (id, messages, bytes) => {
      metrics.peerRequests.inc({ peer: id });
      metrics.peerMessages.inc({ peer: id }, messages);
      metrics.peerBytes.inc({ peer: id }, bytes);
    },
  });
  deps.outbox.connect(transport);
  const streams = new StreamAcceptor({ nodeId: config.nodeId, onMessages: receive, onRefused: (reason) => metrics.peerRefusals.inc({ reason }) });
  // Peer RPCs besides Raft messages are authenticated by the peer server before `rpc` sees them.
  const server = createPeerServer({
    verifier,
    nodeId: config.nodeId,
    onMessages: receive,
    holdReturn: (from, respond) => transport.holdReturn(from, respond),
    onStream: (from, nonce, lane, socket, head) => streams.accept(from, lane, verifier.streamKey(from, nonce), socket, head),
    onRefused: (reason) => metrics.peerRefusals.inc({ reason }),
    rpc: deps.rpc,
  });
  let address: AddressInfo;
  try {
    address = await listen(server, config.raftAddr.host, config.raftAddr.port);
  } catch (err) {
    streams.close();
    await transport.close();
    throw err;
  }
  return {
    address,
    server,
    async close() {
      streams.close();
      await closeServer(server);
      await transport.close();
    },
  };
}
