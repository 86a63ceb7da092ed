// HMAC-SHA256 (RFC 2104) for the many small MACs of the write path: every stored record carries
// one, and a `secret.put` tags about seven records on every node.
//
// node:crypto's `createHmac` has a fixed cost per call (a KeyObject lookup, an OpenSSL context, a
// stream object) that dwarfs hashing a record of a few hundred bytes. This computes the same
// function from its definition instead,
//   HMAC(K, m) = SHA-256((K ⊕ opad) || SHA-256((K ⊕ ipad) || m)),
// as two one-shot `crypto.hash` calls over buffers that already hold the padded key blocks. The
// tags are the same bytes `createHmac` gives (the tests compare the two), so records written
// before and after this change check alike. The hashes come back as latin1 strings, one byte per
// character: asking `crypto.hash` for a Buffer allocates a fresh ArrayBuffer per call, which costs
// more than the hash; a string of 32 characters costs almost nothing (`pnpm bench storage` prints
// the tag cost of one write).
//
// The instance keeps key-derived pad blocks; `destroy()` zeroes them (and its scratch space).
import { hash } from 'node:crypto';

/** SHA-256's block size: the key is padded (or first hashed) to this length. */
const BLOCK = 64;
/** SHA-256's output size. */
const OUT = 32;

/**
 * HMAC-SHA256 under one fixed key, one-shot. Not safe to share between threads (it reuses its
 * scratch buffer; each worker builds its own).
 *
 * @example
 * ```ts
 * const mac = new FastHmac(recordKey);
 * const tag = mac.keyedDigest('msapp/db', value); // latin1 string of the 32 tag bytes
 * mac.destroy();
 * ```
 */
export class FastHmac {
  /** `(K ⊕ ipad) || message`: the pad block stays at the front, messages are copied after it. */
  private inner: Buffer;
  /** `(K ⊕ opad) || inner hash`. */
  private readonly outer: Buffer;

  /** @param key - the MAC key (any length, as HMAC allows; copied) */
  constructor(key: Uint8Array) {
    const k = Buffer.alloc(BLOCK);
    if (key.length > BLOCK) hash('sha256', key, 'buffer').copy(k);
    else k.set(key);
    this.inner = Buffer.alloc(BLOCK + 1024);
    this.outer = Buffer.alloc(BLOCK + OUT);
    for (let i = 0; i < BLOCK; i++) {
      this.inner[i] = (k[i] as number) ^ 0x36;
      this.outer[i] = (k[i] as number) ^ 0x5c;
    }
    k.fill(0);
  }

  /**
   * The record tag of integrity.ts: the MAC of `u32 BE byteLength(key) || utf8(key) || value`,
   * without building that message first.
   *
   * @param key - a record name
   * @param value - the record's bytes
   * @returns the 32-byte tag as a latin1 string (one character per byte)
   */
  keyedDigest(key: string, value: Uint8Array): string {
    // At most 3 UTF-8 bytes per UTF-16 unit.
    this.reserve(4 + key.length * 3 + value.length);
    const kl = this.inner.write(key, BLOCK + 4, 'utf8');
    this.inner.writeUInt32BE(kl, BLOCK);
    const vs = BLOCK + 4 + kl;
    this.inner.set(value, vs);
    return this.finish(vs + value.length);
  }

  /** Overwrites the pad blocks and the scratch space with zeros; the instance is unusable after. */
  destroy(): void {
    this.inner.fill(0);
    this.outer.fill(0);
  }

  /** Grows the scratch space to hold `n` message bytes after the pad; returns the end offset. */
  private reserve(n: number): number {
    const need = BLOCK + n;
    if (need > this.inner.length) {
      const grown = Buffer.alloc(Math.max(need, this.inner.length * 2));
      this.inner.copy(grown, 0, 0, BLOCK);
      this.inner.fill(0);
      this.inner = grown;
    }
    return need;
  }

  private finish(end: number): string {
    this.outer.write(hash('sha256', this.inner.subarray(0, end), 'binary'), BLOCK, 'latin1');
    return hash('sha256', this.outer, 'binary');
  }
}
