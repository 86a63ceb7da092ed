/**
 * Peer transport: carries Raft messages between members on the peer port.
 *
 * Each peer gets Raft streams (stream.ts): long-lived, authenticated connections on which every
 * batch is one framed write, one per lane (entries and snapshots; everything else), so that
 * heartbeats never queue behind entries. A peer that does not take streams (a member of an older version
 * answers the upgrade with 404) gets plain HTTP requests instead, retried as a stream every
 * {@link STREAM_RETRY_MS}.
 *
 * Outbound, every peer has one queue per lane. On a stream, everything queued is written at once as one
 * frame (up to {@link MAX_BATCH_BYTES}) while the peer has acknowledged all but
 * {@link STREAM_WINDOW_BYTES} and the socket's buffer is below {@link STREAM_HIGH_WATER}; over HTTP, at most one request is in flight and everything queued
 * meanwhile goes in the next one. Batching is what makes HTTP affordable (one request per message
 * tops out near 7k/s on loopback), and both paths keep the peer's view in order (Raft tolerates
 * loss and reordering, so nothing depends on it).
 *
 * Failure handling: a failed request or stream drops the peer's queue, tells Raft the peer is
 * unreachable (so the leader probes instead of pipelining), and refuses new messages for that peer
 * for a short back-off. Raft retransmits everything that matters, so dropping keeps memory bounded
 * without losing safety.
 *
 * Every request and every stream is signed with the cluster key (see peer/auth.ts); the receiver
 * refuses anything unauthenticated or replayed before decoding a byte of it.
 */
import { Agent, request } from 'undici';
import { decodeMessages, encodeMessages, type Message, type NodeId } from '@coffer/raft';
import { deriveStreamKey, PEER_HEADERS, signPeerRequest } from '../peer/auth.js';
import { laneOf, OutboundStream, streamPath, type StreamLane } from './stream.js';

/** Path of the one peer RPC: a batch of Raft messages. */
export const RAFT_MESSAGES_PATH = '/raft/v1/messages';
/** Request header: the sender takes Raft messages back in the response body. */
export const RETURN_HEADER = 'x-coffer-return';
/** Method name in the signature of a batch that travels back in a response. */
export const RETURN_SIGNED_METHOD = 'RETURN';
/** How long a peer's request is held open for this node's answer before it gets an empty 204. */
const RETURN_HOLD_MS = 20;

/** Most bytes of entries/snapshot data put in one request (more waits for the next one). */
const MAX_BATCH_BYTES = 8 * 1024 * 1024;
/** Most queued bytes per peer before the oldest messages are dropped. */
const MAX_QUEUE_BYTES = 64 * 1024 * 1024;
/** Back-off after a failed request before the peer is tried again. */
const FAILURE_BACKOFF_MS = 200;
/** A peer that refused a stream gets HTTP requests for this long before a stream is tried again. */
export const STREAM_RETRY_MS = 60_000;
/** Above this many bytes in a stream's socket buffer, batches wait in the queue. */
const STREAM_HIGH_WATER = 16 * 1024 * 1024;
/**
 * At most this many bytes of frames a peer has not acknowledged yet (one frame more when it is
 * larger). Like one HTTP request in flight did, it keeps a slow follower's backlog in this queue,
 * where later messages join the next batch, instead of in socket buffers that it reads for seconds.
 */
export const STREAM_WINDOW_BYTES: number = 4 * 1024 * 1024;
/** How often open streams are checked for a stall. */
const STALL_CHECK_MS = 250;

/** What the transport needs from its owner. */
export interface TransportOptions {
  readonly nodeId: NodeId;
  /** Derived peer-auth key (peer/auth.ts `derivePeerKey`). */
  readonly peerKey: Uint8Array;
  /** The peer URL (`http://host:port`) of a member, or undefined when unknown. */
  readonly resolve: (id: NodeId) => string | undefined;
  /** Called when a request to a peer failed (the driver reports it to Raft). */
  readonly onUnreachable: (id: NodeId) => void;
  /**
   * Checks the signature of a batch that came back in a response (`from` must be the peer the
   * request went to). Without it, batches are not asked back (plain 204 answers).
   */
  readonly verifyReturn?: (peer: NodeId, headers: Record<string, string | string[] | undefined>, body: Uint8Array) => boolean;
  /** Receives a verified batch that came back in a response (already filtered to this node). */
  readonly onReturned?: (peer: NodeId, msgs: Message[]) => void;
  /** Called once per request sent, with its message count and body size (for metrics). */
  readonly onSent?: (id: NodeId, messages: number, bytes: number) => void;
  /** Called once per failed request with a short reason (for metrics). */
  readonly onError?: (id: NodeId, reason: string) => void;
  /** Request timeout (headers and body). */
  readonly timeoutMs?: number;
  /** Send on Raft streams where the peer takes them (default true; false: HTTP requests only). */
  readonly streams?: boolean;
}

/** What is queued for one lane of one peer (over HTTP, both lanes of a peer go as requests). */
interface PeerQueue {
  readonly id: NodeId;
  readonly lane: StreamLane;
  msgs: Message[];
  bytes: number;
  /** An HTTP request is out. */
  inFlight: boolean;
  downUntil: number;
  /** The peer's stream while opening or open. */
  stream: OutboundStream | undefined;
  /** The peer URL the stream was opened to. */
  streamBase: string | undefined;
  /** Until then, HTTP requests (the peer refused a stream). */
  httpUntil: number;
}

function messageBytes(m: Message): number {
  let n = 64 + m.context.length;
  for (const e of m.entries) n += 24 + e.data.length;
  if (m.snapshot !== undefined) n += 64 + m.snapshot.data.length;
  return n;
}

/**
 * Sends Raft messages to peers, batched per peer.
 *
 * @example
 * ```ts
 * const t = new PeerTransport({ nodeId: 'n1', peerKey, resolve: (id) => peers.get(id), onUnreachable });
 * t.send(rd.messages); // only after the Ready's state is durable
 * ```
 */
export class PeerTransport {
  private readonly opts: TransportOptions;
  private readonly agent: Agent;
  /** By lane and peer (`<lane> <id>`). */
  private readonly queues = new Map<string, PeerQueue>();
  /** Open responses of peers' requests that take this node's next messages back. */
  private readonly returns = new Map<NodeId, { respond: (body: Uint8Array | null, headers?: Record<string, string>) => void; timer: NodeJS.Timeout }>();
  private closed = false;
  private stallTimer: NodeJS.Timeout | undefined;
  private lastStallCheck = Date.now();
  private readonly timeoutMs: number;

  /** @param opts - see {@link TransportOptions} */
  constructor(opts: TransportOptions) {
    this.opts = opts;
    const timeout = opts.timeoutMs ?? 5_000;
    this.timeoutMs = timeout;
    this.agent = new Agent({ connections: 4, pipelining: 1, headersTimeout: timeout, bodyTimeout: timeout, connectTimeout: Math.min(timeout, 2_000), keepAliveTimeout: 30_000 });
  }

  /**
   * Queues messages for their peers and starts sending. Returns at once.
   *
   * @param msgs - messages from a Ready, whose state has already been persisted
   */
  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    const now = Date.now();
    let back: Map<NodeId, Message[]> | undefined;
    for (const m of msgs) {
      if (m.to === this.opts.nodeId) continue;
      if (this.returns.has(m.to)) {
        back ??= new Map();
        const list = back.get(m.to);
        if (list === undefined) back.set(m.to, [m]);
        else list.push(m);
        continue;
      }
      const lane = this.opts.streams === false ? 'msg' : laneOf(m);
      const slot = `${lane} ${m.to}`;
      let q = this.queues.get(slot);
      if (q === undefined) {
        q = { id: m.to, lane, msgs: [], bytes: 0, inFlight: false, downUntil: 0, stream: undefined, streamBase: undefined, httpUntil: 0 };
        this.queues.set(slot, q);
      }
      if (q.downUntil > now) continue;
      q.msgs.push(m);
      q.bytes += messageBytes(m);
      while (q.bytes > MAX_QUEUE_BYTES && q.msgs.length > 1) {
        const dropped = q.msgs.shift();
        if (dropped !== undefined) q.bytes -= messageBytes(dropped);
      }
    }
    if (back !== undefined) {
      for (const [id, list] of back) {
        const slot = this.returns.get(id);
        if (slot === undefined) continue;
        this.returns.delete(id);
        clearTimeout(slot.timer);
        const body = encodeMessages(list);
        this.opts.onSent?.(id, list.length, body.length);
        slot.respond(body, signPeerRequest(this.opts.peerKey, { method: RETURN_SIGNED_METHOD, path: RAFT_MESSAGES_PATH, from: this.opts.nodeId, to: id, body }));
      }
    }
    for (const q of this.queues.values()) if (q.msgs.length > 0) this.pump(q.id, q);
  }

  /** Sends what is queued for `id` on its stream (opening one if needed) or over HTTP. */
  private pump(id: NodeId, q: PeerQueue): void {
    if (this.closed || q.inFlight || q.msgs.length === 0) return;
    if (this.opts.streams === false || Date.now() < q.httpUntil) {
      void this.flush(id, q);
      return;
    }
    const base = this.opts.resolve(id);
    if (q.stream !== undefined && q.streamBase !== base) q.stream.destroy('address_changed');
    if (q.stream === undefined) {
      if (base === undefined) {
        this.opts.onError?.(id, 'unknown_peer');
        this.fail(id, q);
        return;
      }
      this.openStream(id, q, base);
      return;
    }
    const stream = q.stream;
    if (!stream.open) return;
    while (q.msgs.length > 0 && stream.buffered < STREAM_HIGH_WATER && (stream.unacknowledged === 0 || stream.unacknowledged < STREAM_WINDOW_BYTES)) {
      const batch = this.takeBatch(q);
      const body = encodeMessages(batch);
      this.opts.onSent?.(id, batch.length, body.length);
      stream.write(body);
    }
  }

  private openStream(id: NodeId, q: PeerQueue, base: string): void {
    let url: URL;
    try {
      url = new URL(base);
    } catch {
      this.opts.onError?.(id, 'unknown_peer');
      this.fail(id, q);
      return;
    }
    const path = streamPath(q.lane);
    const headers = signPeerRequest(this.opts.peerKey, { method: 'POST', path, from: this.opts.nodeId, to: id });
    const key = deriveStreamKey(this.opts.peerKey, this.opts.nodeId, id, headers[PEER_HEADERS.nonce] as string);
    const stream: OutboundStream = new OutboundStream({
      host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: Number(url.port || 80),
      path,
      headers,
      key,
      openTimeoutMs: Math.min(this.timeoutMs, 2_000),
      onOpen: () => this.pump(id, q),
      onDrain: () => this.pump(id, q),
      onEnd: (end) => {
        key.fill(0);
        if (q.stream !== stream) return;
        q.stream = undefined;
        q.streamBase = undefined;
        if (this.closed) return;
        if (end.kind === 'refused') {
          // An older member (or one that does not take streams): plain requests for a while.
          q.httpUntil = Date.now() + STREAM_RETRY_MS;
          this.pump(id, q);
          return;
        }
        this.opts.onError?.(id, `stream_${end.reason}`);
        this.fail(id, q);
      },
    });
    q.stream = stream;
    q.streamBase = base;
    if (this.stallTimer === undefined) {
      this.lastStallCheck = Date.now();
      this.stallTimer = setInterval(() => this.checkStalls(), STALL_CHECK_MS).unref();
    }
  }

  private checkStalls(): void {
    const now = Date.now();
    // A check that comes late means this node's own event loop was held up (a long GC pause, a
    // large snapshot being applied): acknowledgements may be sitting unread in the sockets, so
    // this round judges nothing and the clocks start again.
    const late = now - this.lastStallCheck > 2 * STALL_CHECK_MS;
    this.lastStallCheck = now;
    let open = 0;
    for (const q of this.queues.values()) {
      if (q.stream === undefined) continue;
      open++;
      if (late) q.stream.restartClock(now);
      else if (q.stream.stalled(now)) q.stream.destroy('stalled');
    }
    if (open === 0 && this.stallTimer !== undefined) {
      clearInterval(this.stallTimer);
      this.stallTimer = undefined;
    }
  }

  /** Drops the peer's queue, backs off and tells Raft. */
  private fail(id: NodeId, q: PeerQueue): void {
    q.msgs = [];
    q.bytes = 0;
    q.downUntil = Date.now() + FAILURE_BACKOFF_MS;
    this.opts.onUnreachable(id);
  }

  /** Takes the next batch (at most {@link MAX_BATCH_BYTES} of data, at least one message) off the queue. */
  private takeBatch(q: PeerQueue): Message[] {
    const batch: Message[] = [];
    let bytes = 0;
    while (q.msgs.length > 0) {
      const m = q.msgs[0] as Message;
      const b = messageBytes(m);
      if (batch.length > 0 && bytes + b > MAX_BATCH_BYTES) break;
      batch.push(m);
      bytes += b;
      q.msgs.shift();
    }
    q.bytes -= bytes;
    return batch;
  }

  /**
   * Offers the open response of `peer`'s request: the next messages this node sends to `peer`
   * (within a few ms) go back in it instead of in a request of their own.
   *
   * @param peer - the member whose request it is
   * @param respond - answers the request (body and signature headers, or null for 204)
   */
  holdReturn(peer: NodeId, respond: (body: Uint8Array | null, headers?: Record<string, string>) => void): void {
    if (this.closed) return respond(null);
    const prev = this.returns.get(peer);
    if (prev !== undefined) {
      clearTimeout(prev.timer);
      prev.respond(null);
    }
    const timer = setTimeout(() => {
      if (this.returns.get(peer)?.respond === respond) this.returns.delete(peer);
      respond(null);
    }, RETURN_HOLD_MS);
    this.returns.set(peer, { respond, timer });
  }

  /** Stops sending; in-flight requests are abandoned. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.stallTimer !== undefined) clearInterval(this.stallTimer);
    for (const q of this.queues.values()) q.stream?.destroy('closed');
    this.queues.clear();
    for (const slot of this.returns.values()) {
      clearTimeout(slot.timer);
      slot.respond(null);
    }
    this.returns.clear();
    await this.agent.close().catch(() => undefined);
  }

  private async flush(id: NodeId, q: PeerQueue): Promise<void> {
    q.inFlight = true;
    try {
      while (!this.closed && q.msgs.length > 0) {
        const ok = await this.post(id, this.takeBatch(q));
        if (!ok) {
          this.fail(id, q);
          return;
        }
      }
    } finally {
      q.inFlight = false;
    }
  }

  private async post(id: NodeId, batch: Message[]): Promise<boolean> {
    const base = this.opts.resolve(id);
    if (base === undefined) {
      this.opts.onError?.(id, 'unknown_peer');
      return false;
    }
    const body = encodeMessages(batch);
    this.opts.onSent?.(id, batch.length, body.length);
    const headers = signPeerRequest(this.opts.peerKey, { method: 'POST', path: RAFT_MESSAGES_PATH, from: this.opts.nodeId, to: id, body });
    try {
      const wantBack = this.opts.verifyReturn !== undefined && this.opts.onReturned !== undefined;
      const res = await request(new URL(RAFT_MESSAGES_PATH, base), {
        method: 'POST',
        body,
        headers: { ...headers, 'content-type': 'application/octet-stream', ...(wantBack ? { [RETURN_HEADER]: '1' } : {}) },
        dispatcher: this.agent,
      });
      if (res.statusCode === 200 && wantBack) {
        const back = new Uint8Array(await res.body.arrayBuffer());
        this.takeReturned(id, res.headers, back);
        return true;
      }
      await res.body.dump();
      if (res.statusCode !== 204) {
        this.opts.onError?.(id, `status_${res.statusCode}`);
        return false;
      }
      return true;
    } catch (err) {
      this.opts.onError?.(id, (err as { code?: string }).code ?? 'network');
      return false;
    }
  }

  /** A batch that came back in a response: verified like a request, then handed to raft. */
  private takeReturned(id: NodeId, headers: Record<string, string | string[] | undefined>, body: Uint8Array): void {
    if (!(this.opts.verifyReturn?.(id, headers, body) ?? false)) {
      this.opts.onError?.(id, 'return_refused');
      return;
    }
    let msgs: Message[];
    try {
      msgs = decodeMessages(body);
    } catch {
      this.opts.onError?.(id, 'return_decode');
      return;
    }
    const mine = msgs.filter((m) => m.to === this.opts.nodeId && m.from === id);
    if (mine.length > 0) this.opts.onReturned?.(id, mine);
  }
}
