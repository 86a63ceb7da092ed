import { RaftError } from './errors.js';
import type { ConfChange, ConfChangeType, Entry, Message, MessageType, SnapshotMeta } from './types.js';

// Wire format version 1 (first byte of every buffer). Type numbers are append-only.
const MESSAGES_V1 = 1;
const CONF_CHANGE_V1 = 1;

const MSG_TYPES: readonly MessageType[] = [
  'MsgHup', 'MsgBeat', 'MsgApp', 'MsgAppResp', 'MsgVote', 'MsgVoteResp', 'MsgPreVote', 'MsgPreVoteResp',
  'MsgSnap', 'MsgSnapResp', 'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgTransferLeader', 'MsgTimeoutNow',
  'MsgReadIndex', 'MsgReadIndexResp', 'MsgUnreachable', 'MsgProp',
];
const MSG_TYPE_NUM: Map<MessageType, number> = new Map(MSG_TYPES.map((t, i) => [t, i]));
const CC_TYPES: readonly ConfChangeType[] = ['addLearner', 'addVoter', 'remove'];

const utf8Enc = new TextEncoder();
const utf8Dec = new TextDecoder('utf-8', { fatal: true });

class Writer {
  buf = new Uint8Array(256);
  pos = 0;
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
  }
  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }
  // Unsigned LEB128 for integers up to 2^53 (division, not bit ops, past 2^31).
  uint(v: number): void {
    if (!Number.isSafeInteger(v) || v < 0) throw new TypeError(`cannot encode ${v} as an unsigned integer`);
    this.ensure(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
  }
  bytes(b: Uint8Array): void {
    this.uint(b.length);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  str(s: string): void {
    this.bytes(utf8Enc.encode(s));
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

class Reader {
  pos = 0;
  private readonly b: Uint8Array;
  constructor(buf: Uint8Array) {
    this.b = buf;
  }
  fail(what: string): never {
    throw new RaftError('RAFT_DECODE', `malformed raft encoding: ${what} at byte ${this.pos}`);
  }
  u8(): number {
    if (this.pos >= this.b.length) this.fail('truncated');
    return this.b[this.pos++]!;
  }
  uint(): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      v += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(v)) this.fail('integer too large');
        return v;
      }
      mul *= 0x80;
    }
    return this.fail('integer too long');
  }
  bytes(): Uint8Array {
    const n = this.uint();
    if (n > this.b.length - this.pos) this.fail('truncated bytes');
    const out = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  str(): string {
    const b = this.bytes();
    try {
      return utf8Dec.decode(b);
    } catch (cause) {
      throw new RaftError('RAFT_DECODE', 'malformed raft encoding: invalid utf-8', { cause });
    }
  }
  count(minBytesEach: number): number {
    const n = this.uint();
    // Refuse counts the remaining bytes cannot hold, so garbage cannot make us allocate wildly.
    if (n * minBytesEach > this.b.length - this.pos) this.fail('count exceeds input');
    return n;
  }
  end(): void {
    if (this.pos !== this.b.length) this.fail('trailing bytes');
  }
}

function writeMeta(w: Writer, m: SnapshotMeta): void {
  w.uint(m.index);
  w.uint(m.term);
  w.uint(m.confState.voters.length);
  for (const v of m.confState.voters) w.str(v);
  w.uint(m.confState.learners.length);
  for (const v of m.confState.learners) w.str(v);
}

function readMeta(r: Reader): SnapshotMeta {
  const index = r.uint();
  const term = r.uint();
  const voters: string[] = [];
  for (let n = r.count(1); n > 0; n--) voters.push(r.str());
  const learners: string[] = [];
  for (let n = r.count(1); n > 0; n--) learners.push(r.str());
  return { index, term, confState: { voters, learners } };
}

/**
 * Encodes a batch of messages into one buffer (so a transport can send many per request).
 *
 * @param msgs - the messages
 * @returns the encoding, first byte the format version
 * @throws {TypeError} when a field is not encodable (negative or unsafe integer)
 * @example
 * ```ts
 * const body = encodeMessages(rd.messages.filter((m) => m.to === 'n2'));
 * ```
 */
export function encodeMessages(msgs: Message[]): Uint8Array {
  const w = new Writer();
  w.u8(MESSAGES_V1);
  w.uint(msgs.length);
  for (const m of msgs) {
    const t = MSG_TYPE_NUM.get(m.type);
    if (t === undefined) throw new TypeError(`unknown message type ${String(m.type)}`);
    w.u8(t);
    w.str(m.to);
    w.str(m.from);
    w.uint(m.term);
    w.uint(m.logTerm);
    w.uint(m.index);
    w.uint(m.commit);
    w.u8(m.reject ? 1 : 0);
    w.uint(m.rejectHint);
    w.bytes(m.context);
    w.uint(m.entries.length);
    for (const e of m.entries) {
      w.uint(e.term);
      w.uint(e.index);
      w.u8(e.type === 'normal' ? 0 : 1);
      w.bytes(e.data);
    }
    if (m.snapshot === undefined) {
      w.u8(0);
    } else {
      w.u8(1);
      writeMeta(w, m.snapshot.meta);
      w.uint(m.snapshot.offset);
      w.uint(m.snapshot.totalBytes);
      w.bytes(m.snapshot.data);
    }
  }
  return w.done();
}

/**
 * Decodes a buffer made by {@link encodeMessages}. Never throws anything but a RaftError on bad input.
 *
 * @param buf - the received bytes
 * @returns the messages
 * @throws {RAFT_DECODE} on an unknown version, unknown type, truncation or trailing bytes
 * @example
 * ```ts
 * for (const m of decodeMessages(body)) node.step(m);
 * ```
 */
export function decodeMessages(buf: Uint8Array): Message[] {
  if (!(buf instanceof Uint8Array)) throw new RaftError('RAFT_DECODE', 'expected a Uint8Array');
  const r = new Reader(buf);
  const v = r.u8();
  if (v !== MESSAGES_V1) r.fail(`unknown format version ${v}`);
  const out: Message[] = [];
  for (let n = r.count(12); n > 0; n--) {
    const type = MSG_TYPES[r.u8()] ?? r.fail('unknown message type');
    const to = r.str();
    const from = r.str();
    const term = r.uint();
    const logTerm = r.uint();
    const index = r.uint();
    const commit = r.uint();
    const rej = r.u8();
    if (rej > 1) r.fail('bad reject flag');
    const rejectHint = r.uint();
    const context = r.bytes();
    const entries: Entry[] = [];
    for (let k = r.count(4); k > 0; k--) {
      const eterm = r.uint();
      const eindex = r.uint();
      const et = r.u8();
      if (et > 1) r.fail('unknown entry type');
      entries.push({ term: eterm, index: eindex, type: et === 0 ? 'normal' : 'confChange', data: r.bytes() });
    }
    const m: Message = { type, to, from, term, logTerm, index, commit, entries, reject: rej === 1, rejectHint, context };
    const hasSnap = r.u8();
    if (hasSnap > 1) r.fail('bad snapshot flag');
    if (hasSnap === 1) {
      const meta = readMeta(r);
      const offset = r.uint();
      const totalBytes = r.uint();
      const data = r.bytes();
      if (offset + data.length > totalBytes) r.fail('snapshot chunk beyond its total size');
      m.snapshot = { meta, offset, totalBytes, data };
    }
    out.push(m);
  }
  r.end();
  return out;
}

/**
 * Encodes a membership change (the data of a confChange entry).
 *
 * @param cc - the change
 * @returns its encoding, first byte the format version
 * @throws {TypeError} on an unknown change type
 */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  const t = CC_TYPES.indexOf(cc.type);
  if (t < 0) throw new TypeError(`unknown conf change type ${String(cc.type)}`);
  const w = new Writer();
  w.u8(CONF_CHANGE_V1);
  w.u8(t);
  w.str(cc.nodeId);
  w.bytes(cc.context);
  return w.done();
}

/**
 * Decodes the data of a committed confChange entry.
 *
 * @param buf - entry data
 * @returns the change, `context` exactly as proposed
 * @throws {RAFT_DECODE} on malformed input
 * @example
 * ```ts
 * if (e.type === 'confChange') node.applyConfChange(decodeConfChange(e.data));
 * ```
 */
export function decodeConfChange(buf: Uint8Array): ConfChange {
  const r = new Reader(buf);
  const v = r.u8();
  if (v !== CONF_CHANGE_V1) r.fail(`unknown conf change version ${v}`);
  const type = CC_TYPES[r.u8()] ?? r.fail('unknown conf change type');
  const nodeId = r.str();
  if (nodeId === '') r.fail('empty node id');
  const context = r.bytes();
  r.end();
  return { type, nodeId, context };
}
