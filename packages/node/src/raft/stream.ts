/**
 * Raft streams: long-lived, one-way connections from each member to each peer, carrying batches
 * of Raft messages as frames. Two lanes per ordered pair, as etcd has: `app` carries log entries
 * and snapshot chunks (MsgApp, MsgSnap), `msg` everything else (heartbeats, votes, answers,
 * ReadIndex). A heartbeat never waits behind megabytes of entries that a slow follower has not
 * read yet: bytes on one connection are delivered in order, so a single lane let a lagging
 * follower miss heartbeats for longer than an election timeout under a bulk load. Raft does not
 * need order between the two (a heartbeat only ever commits what the follower is known to hold). A stream replaces one HTTP exchange per batch (request head, signature
 * over a body hash, response) with one framed write, which is most of what a replication round
 * cost in CPU beyond the work itself (see docs/PERFORMANCE.md).
 *
 * Opening: the dialer sends `POST /raft/v1/stream/<lane>` with `upgrade: coffer-raft-stream-v1` and the
 * usual signed peer headers over an empty body (peer/auth.ts: timestamp window, nonce never seen
 * before). The listener verifies them and answers `101`; anything else (an older member answers
 * 404) makes the dialer use plain HTTP requests to that peer for a while.
 *
 * Frames, dialer → listener: `u32 length | payload | tag`, where the payload is a batch encoded by
 * @coffer/raft's codec and the tag is the first 16 bytes of HMAC-SHA256 over `u64 frame number |
 * payload`, keyed with a session key that both sides derive from the peer-auth key and the
 * handshake's nonce (peer/auth.ts `deriveStreamKey`). So every frame is authenticated, in order,
 * exactly once, and bound to this stream: bytes injected, altered, replayed, reordered or moved
 * from another stream fail the tag, and the listener drops the connection before decoding them.
 * The handshake nonce is never accepted twice, so a session key is never reused.
 *
 * Acknowledgements, listener → dialer: a bare `u32` count of frames received, at most every
 * {@link ACK_INTERVAL_MS}. They carry no authority (Raft's own answers travel on the other
 * member's stream); they only tell the dialer that its frames are getting through. A stream with
 * frames outstanding and no progress for {@link stallLimitMs} is dropped and dialled again: TCP
 * alone would sit out a partition in retransmission back-off and resume late after it heals.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { decodeMessages, type Message, RaftError } from '@coffer/raft';

/** Prefix of the upgrade request's path; the lane follows it. */
export const STREAM_PATH = '/raft/v1/stream';
/** The lanes of a pair of members: log entries and snapshots, and every other message. */
export type StreamLane = 'app' | 'msg';
/** Both lanes. */
export const STREAM_LANES: readonly StreamLane[] = ['app', 'msg'];

/**
 * The upgrade path of a lane (signed with the handshake, so a stream cannot change lanes).
 *
 * @param lane - `app` or `msg`
 */
export function streamPath(lane: StreamLane): string {
  return `${STREAM_PATH}/${lane}`;
}

/**
 * The lane a message travels on.
 *
 * @param m - a Raft message
 */
export function laneOf(m: Message): StreamLane {
  // A follower's MsgProp carries a whole command: off the lane of heartbeats and acknowledgements.
  return m.type === 'MsgApp' || m.type === 'MsgSnap' || m.type === 'MsgProp' ? 'app' : 'msg';
}
/** The `upgrade` token; a new frame format gets a new one. */
export const STREAM_PROTOCOL = 'coffer-raft-stream-v1';
/** Largest frame payload accepted (the HTTP route's body cap: one 8 MiB batch and framing, with room). */
export const MAX_FRAME_BYTES: number = 80 * 1024 * 1024;
/** Bytes of a frame tag. */
const TAG_BYTES = 16;
/** Bytes of a frame's length prefix. */
const LEN_BYTES = 4;
/** The listener acknowledges received frames at most this often. */
export const ACK_INTERVAL_MS = 50;
/** Largest response head the dialer reads while waiting for `101`. */
const MAX_HEAD_BYTES = 8 * 1024;

/**
 * How long frames may go unacknowledged before the stream is taken for dead: 2 s, plus 1 s per
 * 8 MiB written and not yet acknowledged (a snapshot on a slow link).
 *
 * @param outstandingBytes - bytes written since the last acknowledgement
 */
export function stallLimitMs(outstandingBytes: number): number {
  return 2_000 + Math.ceil(outstandingBytes / (8 * 1024 * 1024)) * 1_000;
}

/**
 * The tag of frame number `seq` (first frame 0) carrying `payload`.
 *
 * @param key - the stream's session key
 */
export function frameTag(key: Uint8Array, seq: number, payload: Uint8Array): Buffer {
  const n = Buffer.allocUnsafe(8);
  n.writeUInt32BE(Math.floor(seq / 2 ** 32), 0);
  n.writeUInt32BE(seq >>> 0, 4);
  return createHmac('sha256', key).update(n).update(payload).digest().subarray(0, TAG_BYTES);
}

/** Why a stream ended, as seen by the dialer. */
export type StreamEnd =
  /** The peer answered the upgrade with something other than 101 (e.g. an older member: 404). */
  | { kind: 'refused'; status: number }
  /** Connect, handshake or socket failure, a stall, or the peer closed. */
  | { kind: 'failed'; reason: string };

/** What an {@link OutboundStream} needs. */
export interface OutboundStreamOptions {
  readonly host: string;
  readonly port: number;
  /** The upgrade path ({@link streamPath}); the headers are signed over it. */
  readonly path: string;
  /** Signed peer headers of the upgrade request (peer/auth.ts `signPeerRequest`, empty body). */
  readonly headers: Readonly<Record<string, string>>;
  /** Session key derived from the handshake's nonce. */
  readonly key: Uint8Array;
  /** Connect and handshake must finish within this. */
  readonly openTimeoutMs: number;
  /** The stream is open: frames may be written. */
  readonly onOpen: () => void;
  /** The socket's buffer drained, or frames were acknowledged (more frames may be written). */
  readonly onDrain: () => void;
  /** The stream ended (called once; no callback follows). */
  readonly onEnd: (end: StreamEnd) => void;
}

/**
 * The dialing side of one stream.
 *
 * @example
 * ```ts
 * const s = new OutboundStream({ host, port, headers, key, openTimeoutMs: 2000, onOpen, onDrain, onEnd });
 * // once onOpen ran:
 * s.write(encodeMessages(batch));
 * ```
 */
export class OutboundStream {
  private readonly opts: OutboundStreamOptions;
  private readonly socket: Socket;
  private state: 'opening' | 'open' | 'ended' = 'opening';
  private head: Buffer[] = [];
  private headBytes = 0;
  private readonly openTimer: NodeJS.Timeout;
  /** Frames written (the next frame's number). */
  private sent = 0;
  /** Frames the listener reported, modulo 2^32. */
  private acked = 0;
  /** Sizes of the frames written and not yet acknowledged, oldest first (from `unackedHead`). */
  private unacked: number[] = [];
  private unackedHead = 0;
  /** Their total. */
  private outstandingBytes = 0;
  /** When the acknowledgement last moved (or the first unacknowledged frame went out). */
  private progressAt = 0;
  /** Pending bytes of a partial acknowledgement. */
  private ackTail: Buffer | undefined;

  /** @param opts - see {@link OutboundStreamOptions} */
  constructor(opts: OutboundStreamOptions) {
    this.opts = opts;
    this.socket = connect({ host: opts.host, port: opts.port, noDelay: true, keepAlive: true, keepAliveInitialDelay: 30_000 });
    this.openTimer = setTimeout(() => this.end({ kind: 'failed', reason: 'timeout' }), opts.openTimeoutMs);
    this.socket.on('connect', () => {
      let head = `POST ${opts.path} HTTP/1.1\r\nhost: ${opts.host}:${opts.port}\r\nconnection: Upgrade\r\nupgrade: ${STREAM_PROTOCOL}\r\ncontent-length: 0\r\n`;
      for (const [k, v] of Object.entries(opts.headers)) head += `${k}: ${v}\r\n`;
      this.socket.write(`${head}\r\n`);
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('drain', () => {
      if (this.state === 'open') this.opts.onDrain();
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.end({ kind: 'failed', reason: err.code ?? 'network' }));
    this.socket.on('close', () => this.end({ kind: 'failed', reason: 'closed' }));
  }

  /** True once the listener accepted the stream, until it ends. */
  get open(): boolean {
    return this.state === 'open';
  }

  /** Bytes written but not yet handed to the kernel. */
  get buffered(): number {
    return this.socket.writableLength;
  }

  /** Bytes of frames written and not yet acknowledged by the listener. */
  get unacknowledged(): number {
    return this.outstandingBytes;
  }

  /**
   * Sends one frame. Only while {@link open}.
   *
   * @param payload - an encoded batch, at most {@link MAX_FRAME_BYTES}
   */
  write(payload: Uint8Array): void {
    if (this.state !== 'open') throw new Error('stream is not open');
    if (payload.length > MAX_FRAME_BYTES) throw new RangeError('frame too large');
    const len = Buffer.allocUnsafe(LEN_BYTES);
    len.writeUInt32BE(payload.length, 0);
    const tag = frameTag(this.opts.key, this.sent, payload);
    const size = LEN_BYTES + payload.length + TAG_BYTES;
    if (this.outstandingBytes === 0) this.progressAt = Date.now();
    this.sent++;
    this.unacked.push(size);
    this.outstandingBytes += size;
    // One write (and one system call) per frame.
    this.socket.write(Buffer.concat([len, payload, tag], LEN_BYTES + payload.length + TAG_BYTES));
  }

  /**
   * True when frames have been outstanding with no acknowledgement for longer than
   * {@link stallLimitMs} allows.
   */
  stalled(now: number): boolean {
    return this.state === 'open' && this.outstandingBytes > 0 && now - this.progressAt > stallLimitMs(this.outstandingBytes);
  }

  /** Starts the stall clock again from `now` (the owner's checks were held up, not the peer). */
  restartClock(now: number): void {
    if (this.outstandingBytes > 0) this.progressAt = now;
  }

  /** Ends the stream; `onEnd` reports `reason`. */
  destroy(reason: string): void {
    this.end({ kind: 'failed', reason });
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'opening') {
      this.head.push(chunk);
      this.headBytes += chunk.length;
      const all = Buffer.concat(this.head, this.headBytes);
      const endOfHead = all.indexOf('\r\n\r\n');
      if (endOfHead < 0) {
        if (this.headBytes > MAX_HEAD_BYTES) this.end({ kind: 'failed', reason: 'bad_handshake' });
        return;
      }
      this.head = [];
      const status = /^HTTP\/1\.[01] (\d{3}) /.exec(all.toString('latin1', 0, Math.min(endOfHead, 64)));
      if (status === null) return this.end({ kind: 'failed', reason: 'bad_handshake' });
      if (status[1] !== '101') return this.end({ kind: 'refused', status: Number(status[1]) });
      clearTimeout(this.openTimer);
      this.state = 'open';
      this.opts.onOpen();
      const rest = all.subarray(endOfHead + 4);
      if (rest.length > 0) this.onAcks(rest);
      return;
    }
    if (this.state === 'open') this.onAcks(chunk);
  }

  private onAcks(chunk: Buffer): void {
    let buf = this.ackTail === undefined ? chunk : Buffer.concat([this.ackTail, chunk]);
    this.ackTail = undefined;
    if (buf.length < 4) {
      this.ackTail = buf;
      return;
    }
    const usable = buf.length - (buf.length % 4);
    if (usable < buf.length) this.ackTail = Buffer.from(buf.subarray(usable));
    buf = buf.subarray(0, usable);
    // Only the latest count matters.
    const count = buf.readUInt32BE(usable - 4);
    // Frames newly acknowledged; a count that is not between the last one and `sent` is ignored.
    const moved = (count - this.acked) >>> 0;
    if (moved === 0 || moved > this.unacked.length - this.unackedHead) return;
    this.acked = count;
    this.progressAt = Date.now();
    for (let i = 0; i < moved; i++) this.outstandingBytes -= this.unacked[this.unackedHead++] as number;
    // The window opened: whatever waits may go.
    queueMicrotask(() => {
      if (this.state === 'open') this.opts.onDrain();
    });
    if (this.unackedHead === this.unacked.length) {
      this.unacked = [];
      this.unackedHead = 0;
    } else if (this.unackedHead > 1024) {
      this.unacked = this.unacked.slice(this.unackedHead);
      this.unackedHead = 0;
    }
  }

  private end(end: StreamEnd): void {
    if (this.state === 'ended') return;
    this.state = 'ended';
    clearTimeout(this.openTimer);
    this.socket.destroy();
    this.opts.onEnd(end);
  }
}

/** What a {@link StreamAcceptor} needs. */
export interface StreamAcceptorOptions {
  /** This node's id: messages addressed to anyone else are dropped. */
  readonly nodeId: string;
  /** Receives the messages of every authentic frame, in order (only those from the sender to this node). */
  readonly onMessages: (from: string, msgs: Message[]) => void;
  /** Counts streams dropped for a bad frame, by reason (metrics). */
  readonly onRefused?: (reason: 'bad_signature' | 'too_large' | 'decode') => void;
}

interface Inbound {
  readonly from: string;
  /** `from` and the lane: the key of the stream in the acceptor. */
  readonly slot: string;
  readonly socket: Duplex;
  readonly key: Uint8Array;
  chunks: Buffer[];
  have: number;
  /** Bytes needed before the next step: a length prefix, or a frame body and tag. */
  need: number;
  /** Payload length of the frame being read, or -1 while reading a length prefix. */
  frameLen: number;
  /** Frames received (the next frame's number). */
  received: number;
  ackTimer: NodeJS.Timeout | undefined;
}

/**
 * The listening side: takes over upgraded sockets whose handshake the peer server verified.
 * `onMessages` gets the payload of each authentic frame; a bad frame ends the stream.
 */
export class StreamAcceptor {
  private readonly opts: StreamAcceptorOptions;
  private readonly nodeId: string;
  private readonly streams = new Map<string, Inbound>();
  private closed = false;

  /** @param opts - see {@link StreamAcceptorOptions} */
  constructor(opts: StreamAcceptorOptions) {
    this.opts = opts;
    this.nodeId = opts.nodeId;
  }

  /** Open inbound streams (one per member and lane at most). */
  get size(): number {
    return this.streams.size;
  }

  /**
   * Accepts a verified upgrade: answers 101 and reads frames. A newer stream from the same member
   * on the same lane replaces the older one.
   *
   * @param from - the authenticated sender
   * @param lane - the lane of the (signed) upgrade path
   * @param key - the session key for the handshake's nonce
   * @param socket - the upgraded socket
   * @param head - bytes that arrived after the request head
   */
  accept(from: string, lane: StreamLane, key: Uint8Array, socket: Duplex, head: Buffer): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    const slot = `${from} ${lane}`;
    this.streams.get(slot)?.socket.destroy();
    const s: Inbound = { from, slot, socket, key, chunks: [], have: 0, need: LEN_BYTES, frameLen: -1, received: 0, ackTimer: undefined };
    this.streams.set(slot, s);
    const sock = socket as Socket;
    if (typeof sock.setNoDelay === 'function') sock.setNoDelay(true);
    if (typeof sock.setKeepAlive === 'function') sock.setKeepAlive(true, 30_000);
    if (typeof sock.setTimeout === 'function') sock.setTimeout(0);
    const drop = (): void => {
      if (s.ackTimer !== undefined) clearTimeout(s.ackTimer);
      s.ackTimer = undefined;
      if (this.streams.get(slot) === s) this.streams.delete(slot);
    };
    socket.on('close', drop);
    socket.on('error', () => socket.destroy());
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${STREAM_PROTOCOL}\r\n\r\n`);
    socket.on('data', (chunk: Buffer) => this.onData(s, chunk));
    if (head.length > 0) this.onData(s, head);
  }

  /** Ends every inbound stream; later upgrades are dropped. */
  close(): void {
    this.closed = true;
    for (const s of this.streams.values()) s.socket.destroy();
    this.streams.clear();
  }

  private onData(s: Inbound, chunk: Buffer): void {
    if (s.socket.destroyed) return;
    s.chunks.push(chunk);
    s.have += chunk.length;
    while (s.have >= s.need) {
      const buf = take(s, s.need);
      if (s.frameLen < 0) {
        const len = buf.readUInt32BE(0);
        if (len > MAX_FRAME_BYTES) return this.refuse(s, 'too_large');
        s.frameLen = len;
        s.need = len + TAG_BYTES;
        continue;
      }
      const payload = buf.subarray(0, s.frameLen);
      const tag = buf.subarray(s.frameLen);
      if (!timingSafeEqual(tag, frameTag(s.key, s.received, payload))) return this.refuse(s, 'bad_signature');
      s.received++;
      s.frameLen = -1;
      s.need = LEN_BYTES;
      s.ackTimer ??= setTimeout(() => this.ack(s), ACK_INTERVAL_MS);
      let msgs: Message[];
      try {
        msgs = decodeMessages(payload);
      } catch (err) {
        if (err instanceof RaftError) return this.refuse(s, 'decode');
        throw err;
      }
      // A member may only speak for itself: the handshake authenticated `from`.
      const mine = msgs.filter((m) => m.to === this.nodeId && m.from === s.from);
      if (mine.length > 0) {
        try {
          this.opts.onMessages(s.from, mine);
        } catch {
          s.socket.destroy();
          return;
        }
      }
      if (s.socket.destroyed) return;
    }
  }

  private ack(s: Inbound): void {
    s.ackTimer = undefined;
    if (s.socket.destroyed) return;
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(s.received >>> 0, 0);
    s.socket.write(b);
  }

  private refuse(s: Inbound, reason: 'bad_signature' | 'too_large' | 'decode'): void {
    this.opts.onRefused?.(reason);
    s.chunks = [];
    s.have = 0;
    s.socket.destroy();
  }
}

/** Removes exactly `n` bytes from the front of the stream's buffered chunks (no copy when one chunk holds them). */
function take(s: Inbound, n: number): Buffer {
  const first = s.chunks[0] as Buffer;
  let out: Buffer;
  if (first.length >= n) {
    out = first.subarray(0, n);
    if (first.length === n) s.chunks.shift();
    else s.chunks[0] = first.subarray(n);
  } else {
    out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = s.chunks[0] as Buffer;
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) s.chunks.shift();
      else s.chunks[0] = c.subarray(k);
    }
  }
  s.have -= n;
  return out;
}
