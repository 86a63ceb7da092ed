// Deterministic binary primitives shared by the command codec, the state records and the
// snapshot format. Big-endian, length-prefixed, no optional padding: one value has exactly one
// encoding, which is what makes digests and golden fixtures meaningful.
import { StateError, type StateErrorCode } from './errors.js';

const utf8Encoder = new TextEncoder();
// fatal: a malformed UTF-8 sequence is corruption, not something to paper over with U+FFFD.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
/** Strings up to this many bytes are checked for ASCII and then decoded as latin1 (`Reader.str`). */
const ASCII_FAST_MAX = 64;
/** One to 255 byte characters (a byte string; see `Writer.byteString`). */
const BYTE_STRING = /^[\x00-\xff]*$/;

/** Growable byte writer. */
export class Writer {
  private buf: Uint8Array;
  private view: DataView;
  private len = 0;

  constructor(initial = 256) {
    this.buf = new Uint8Array(initial);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  u8(v: number): this {
    this.ensure(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    this.ensure(4);
    this.view.setUint32(this.len, v);
    this.len += 4;
    return this;
  }

  /** Non-negative safe integer (timestamps in ms, indexes, counters) as 8 bytes. */
  u53(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`u53 out of range: ${v}`);
    this.ensure(8);
    this.view.setUint32(this.len, Math.floor(v / 0x100000000));
    this.view.setUint32(this.len + 4, v >>> 0);
    this.len += 8;
    return this;
  }

  bool(v: boolean): this {
    return this.u8(v ? 1 : 0);
  }

  bytes(v: Uint8Array): this {
    this.u32(v.length);
    this.raw(v);
    return this;
  }

  raw(v: Uint8Array): this {
    this.ensure(v.length);
    this.buf.set(v, this.len);
    this.len += v.length;
    return this;
  }

  /**
   * `n` raw bytes given as a byte string: `n` characters, each one byte (0–255). Digests are held
   * in memory this way (see `VersionMeta.ctDigest`).
   *
   * @throws {TypeError} a string that is not exactly `n` byte characters
   */
  byteString(v: string, n: number): this {
    if (v.length !== n || !BYTE_STRING.test(v)) throw new TypeError(`expected a byte string of ${n} characters`);
    this.ensure(n);
    for (let i = 0; i < n; i++) this.buf[this.len + i] = v.charCodeAt(i);
    this.len += n;
    return this;
  }

  str(v: string): this {
    // encodeInto writes straight into our buffer: no temporary allocation per string (hot path).
    this.ensure(4 + v.length * 3);
    const { written } = utf8Encoder.encodeInto(v, this.buf.subarray(this.len + 4));
    this.view.setUint32(this.len, written);
    this.len += 4 + written;
    return this;
  }

  strs(v: readonly string[]): this {
    this.u32(v.length);
    for (const s of v) this.str(s);
    return this;
  }

  optStr(v: string | null | undefined): this {
    if (v === null || v === undefined) return this.u8(0);
    return this.u8(1).str(v);
  }

  optU53(v: number | null | undefined): this {
    if (v === null || v === undefined) return this.u8(0);
    return this.u8(1).u53(v);
  }

  /** Empties the writer, keeping its buffer (reuse avoids an allocation per record). */
  reset(): this {
    this.len = 0;
    return this;
  }

  /** The written bytes (a copy sized exactly). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** What one `Reader.strLikeLast` call site decoded last. */
export type LastString = { bytes: Uint8Array | null; str: string };

/**
 * Bounds-checked reader; every failure is a `StateError` with the code given at construction.
 * Boot decodes a million records with it, so it stays lean: integers are read from the bytes
 * directly (no DataView per reader), and short ASCII strings skip the UTF-8 decoder.
 */
export class Reader {
  private readonly buf: Uint8Array;
  /** The same bytes as a Buffer, for its latin1 decoding. */
  private readonly asBuffer: Buffer;
  private pos = 0;
  private readonly code: StateErrorCode;

  constructor(buf: Uint8Array, code: StateErrorCode) {
    this.buf = buf;
    this.asBuffer = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.code = code;
  }

  private be32(at: number): number {
    const b = this.buf;
    return (((b[at] as number) << 24) | ((b[at + 1] as number) << 16) | ((b[at + 2] as number) << 8) | (b[at + 3] as number)) >>> 0;
  }

  fail(msg: string): never {
    throw new StateError(this.code, msg);
  }

  private need(n: number): void {
    if (this.pos + n > this.buf.length) this.fail(`truncated: need ${n} bytes at offset ${this.pos}`);
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  get offset(): number {
    return this.pos;
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++] as number;
  }

  u32(): number {
    this.need(4);
    const v = this.be32(this.pos);
    this.pos += 4;
    return v;
  }

  u53(): number {
    this.need(8);
    const hi = this.be32(this.pos);
    const lo = this.be32(this.pos + 4);
    this.pos += 8;
    if (hi > 0x1fffff) this.fail('integer beyond 2^53');
    // A small value stays a small integer: the arithmetic result is a double, and one double
    // stored into a record field makes V8 box that field (16 bytes) in every record of its shape.
    return hi === 0 && lo < 0x40000000 ? lo | 0 : hi * 0x100000000 + lo;
  }

  bool(): boolean {
    const b = this.u8();
    if (b > 1) this.fail(`bad boolean ${b}`);
    return b === 1;
  }

  bytes(): Uint8Array {
    const n = this.u32();
    return this.raw(n);
  }

  /** Length-prefixed bytes as a view into the input (no copy): only for short-lived values. */
  bytesView(): Uint8Array {
    const n = this.u32();
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  raw(n: number): Uint8Array {
    this.need(n);
    // A copy: decoded values must not pin (or alias) the caller's buffer. Not `this.buf.slice`:
    // on a Buffer (what LevelDB hands us) that is a view.
    const out = new Uint8Array(n);
    out.set(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** `n` raw bytes as a byte string (one character per byte; a string owns its memory). */
  byteString(n: number): string {
    this.need(n);
    // Not TextDecoder('latin1'): WHATWG maps that label to windows-1252, which changes 0x80–0x9f.
    const out = this.asBuffer.toString('latin1', this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  str(): string {
    const n = this.u32();
    this.need(n);
    if (n <= ASCII_FAST_MAX) {
      const b = this.buf;
      const end = this.pos + n;
      let i = this.pos;
      while (i < end && (b[i] as number) < 0x80) i++;
      if (i === end) {
        // All ASCII: latin1 gives the same string as UTF-8, without the decoder's per-call cost.
        const s = this.asBuffer.toString('latin1', this.pos, end);
        this.pos = end;
        return s;
      }
    }
    try {
      const s = utf8Decoder.decode(this.buf.subarray(this.pos, this.pos + n));
      this.pos += n;
      return s;
    } catch {
      return this.fail('malformed UTF-8');
    }
  }

  /**
   * Like `str()`, for a field that usually repeats the previous record's value (an actor, an
   * algorithm): when the bytes equal those `last` remembers, its string is returned without
   * decoding anything.
   *
   * @param last - one per call site; updated on a miss
   */
  strLikeLast(last: LastString): string {
    const start = this.pos + 4;
    const n = this.u32();
    this.need(n);
    const prev = last.bytes;
    if (prev !== null && prev.length === n) {
      const b = this.buf;
      let i = 0;
      while (i < n && prev[i] === b[start + i]) i++;
      if (i === n) {
        this.pos = start + n;
        return last.str;
      }
    }
    this.pos = start - 4;
    const s = this.str();
    // A copy (on a Buffer, `slice` would be a view that changes with the caller's buffer).
    last.bytes = n <= ASCII_FAST_MAX ? Uint8Array.from(this.buf.subarray(start, start + n)) : null;
    last.str = s;
    return s;
  }

  strs(): string[] {
    const n = this.u32();
    if (n > this.remaining / 4) this.fail('array length exceeds input');
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.str());
    return out;
  }

  opt(): boolean {
    return this.bool();
  }

  optStr(): string | null {
    return this.opt() ? this.str() : null;
  }

  optU53(): number | null {
    return this.opt() ? this.u53() : null;
  }

  /** Asserts the whole input was consumed: trailing bytes mean a different (or corrupt) encoding. */
  end(): void {
    if (this.pos !== this.buf.length) this.fail(`${this.buf.length - this.pos} trailing bytes`);
  }
}

/** Lower-case hex of bytes. */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

/** Byte equality (not constant-time; use only on non-secret data such as digests of ciphertext). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Constant-time equality for secret-derived bytes (token hashes): the time taken depends only on
 * the lengths, never on where the first difference is.
 *
 * @param a - first value
 * @param b - second value
 * @returns whether they are equal
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** Byte-wise string order (the order of keys on disk and in snapshots). */
export function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
