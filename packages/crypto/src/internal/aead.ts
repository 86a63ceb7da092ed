// XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03), three interchangeable implementations; the one
// in use (`aead`) is libsodium below LARGE_MESSAGE bytes and OpenSSL above when both are present:
//
//  - `sodium`: libsodium's crypto_aead_xchacha20poly1305_ietf_* through sodium-native (prebuilt
//             N-API addon). One native call per operation, no cipher context, output written
//             into a buffer we allocate, HChaCha20 subkey wiped inside libsodium, tag checked
//             BEFORE anything is decrypted. ~4x less CPU than `node` at 1 KiB. Preferred when the
//             addon loads.
//  - `node`:  HChaCha20 from @noble/ciphers derives the subkey (§2.3), then Node's native
//             (OpenSSL) IETF ChaCha20-Poly1305 runs with nonce 0x00000000 || nonce[16..24].
//             ~2.3x faster at 1 KiB and ~7x at 64 KiB than the pure-JS AEAD on our machines.
//  - `noble`: @noble/ciphers' xchacha20poly1305, pure JS; the reference the tests compare with
//             and the last fallback (no addon, and OpenSSL without chacha20-poly1305).
//
// Every backend must pass the same known-answer vectors and tamper tests, and all must produce the
// same bytes (test/aead.test.ts).
import { createCipheriv, createDecipheriv, getCiphers } from 'node:crypto';
import { hchacha, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { CryptoError } from '../errors.js';
import { zeroize } from '../bytes.js';

export const KEY_LENGTH = 32;
export const NONCE_LENGTH = 24;
export const TAG_LENGTH = 16;

/**
 * Names of the backends. `sodium+node` is libsodium below {@link LARGE_MESSAGE} bytes and
 * OpenSSL from there on (same algorithm, same bytes; each is faster on its side).
 */
export type AeadName = 'sodium+node' | 'sodium' | 'node' | 'noble';

/** One AEAD backend. `seal` returns ciphertext || tag; `open` throws CRYPTO_INTEGRITY on failure. */
export interface Aead {
  readonly name: AeadName;
  /**
   * `out`, when given, must be exactly `plaintext.length + 16` bytes, must not overlap `plaintext`,
   * and receives ciphertext || tag (saves an allocation and a copy, e.g. when the result is part
   * of a larger record).
   */
  seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array, out?: Uint8Array): Uint8Array;
  open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array;
}

// "expand 32-byte k" as little-endian words (RFC 8439 §2.3).
const SIGMA = new Uint32Array([0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]);

// Scratch words reused by every hchacha20 call (all synchronous, so never shared between calls),
// wiped after each use. Allocating them per call was a measurable share of GC time.
const K_WORDS = new Uint32Array(8);
const N_WORDS = new Uint32Array(4);
const OUT_WORDS = new Uint32Array(8);

function readWordsLE(bytes: Uint8Array, out: Uint32Array): Uint32Array {
  const count = out.length;
  for (let i = 0; i < count; i++) {
    const o = i * 4;
    out[i] = (bytes[o]! | (bytes[o + 1]! << 8) | (bytes[o + 2]! << 16) | (bytes[o + 3]! << 24)) >>> 0;
  }
  return out;
}

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2): 32-byte key and 16-byte nonce → 32-byte subkey.
 * The block function itself is noble's; only the byte/word conversion is ours.
 */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  if (key.length !== KEY_LENGTH) throw new RangeError('hchacha20: key must be 32 bytes');
  if (nonce16.length !== 16) throw new RangeError('hchacha20: nonce must be 16 bytes');
  const k = readWordsLE(key, K_WORDS);
  const n = readWordsLE(nonce16, N_WORDS);
  const w = OUT_WORDS;
  try {
    hchacha(SIGMA, k, n, w);
    const out = new Uint8Array(32);
    for (let i = 0; i < 8; i++) {
      const v = w[i]!;
      const o = i * 4;
      out[o] = v & 0xff;
      out[o + 1] = (v >>> 8) & 0xff;
      out[o + 2] = (v >>> 16) & 0xff;
      out[o + 3] = v >>> 24;
    }
    return out;
  } finally {
    k.fill(0);
    w.fill(0);
  }
}

function checkKeyNonce(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== KEY_LENGTH) throw new RangeError('xchacha20poly1305: key must be 32 bytes');
  if (nonce.length !== NONCE_LENGTH) throw new RangeError('xchacha20poly1305: nonce must be 24 bytes');
}

function outputFor(plaintext: Uint8Array, out: Uint8Array | undefined): Uint8Array {
  if (out === undefined) return new Uint8Array(plaintext.length + TAG_LENGTH);
  if (!(out instanceof Uint8Array) || out.length !== plaintext.length + TAG_LENGTH) {
    throw new RangeError('xchacha20poly1305: out must be plaintext.length + 16 bytes');
  }
  return out;
}

function integrity(cause?: unknown): CryptoError {
  return new CryptoError('CRYPTO_INTEGRITY', 'authentication failed: ciphertext, nonce, key or context do not match', cause === undefined ? undefined : { cause });
}

// §2.3: the IETF ChaCha20 nonce is four zero bytes followed by the last 8 bytes of the 24.
function ietfNonce(nonce: Uint8Array): Uint8Array {
  const iv = new Uint8Array(12);
  iv.set(nonce.subarray(16, 24), 4);
  return iv;
}

export const nodeAead: Aead = {
  name: 'node',
  seal(key, nonce, plaintext, aad, out) {
    checkKeyNonce(key, nonce);
    const dest = outputFor(plaintext, out);
    const subkey = hchacha20(key, nonce.subarray(0, 16));
    try {
      const c = createCipheriv('chacha20-poly1305', subkey, ietfNonce(nonce), { authTagLength: TAG_LENGTH });
      c.setAAD(aad, { plaintextLength: plaintext.length });
      const ct = c.update(plaintext);
      c.final();
      const tag = c.getAuthTag();
      dest.set(ct, 0);
      dest.set(tag, ct.length);
      return dest;
    } finally {
      // NB: OpenSSL keeps its own copy of the subkey inside the cipher context; it is cleansed
      // when the context is freed (on GC), which we cannot force.
      zeroize(subkey);
    }
  },
  open(key, nonce, sealed, aad) {
    checkKeyNonce(key, nonce);
    if (sealed.length < TAG_LENGTH) throw integrity();
    const ctLen = sealed.length - TAG_LENGTH;
    const subkey = hchacha20(key, nonce.subarray(0, 16));
    let pt: Buffer | undefined;
    try {
      const d = createDecipheriv('chacha20-poly1305', subkey, ietfNonce(nonce), { authTagLength: TAG_LENGTH });
      d.setAuthTag(sealed.subarray(ctLen));
      d.setAAD(aad, { plaintextLength: ctLen });
      // NB: update() releases plaintext BEFORE the tag is checked in final(). It must never leave
      // this function unless final() succeeds; on failure it is wiped.
      pt = d.update(sealed.subarray(0, ctLen));
      d.final();
    } catch (err) {
      zeroize(pt);
      throw integrity(err);
    } finally {
      zeroize(subkey);
    }
    // The plaintext goes to the caller, who may hand `.buffer` on: never let it be a view into a
    // shared allocation (OpenSSL output is an exact-size buffer today; this guards the future).
    if (pt.byteOffset !== 0 || pt.buffer.byteLength !== pt.length) {
      const copy = new Uint8Array(pt);
      zeroize(pt);
      return copy;
    }
    return new Uint8Array(pt.buffer, 0, pt.length);
  },
};

export const nobleAead: Aead = {
  name: 'noble',
  seal(key, nonce, plaintext, aad, out) {
    checkKeyNonce(key, nonce);
    const dest = outputFor(plaintext, out);
    const sealed = xchacha20poly1305(key, nonce, aad).encrypt(plaintext);
    if (out === undefined) return sealed;
    dest.set(sealed);
    return dest;
  },
  open(key, nonce, sealed, aad) {
    checkKeyNonce(key, nonce);
    if (sealed.length < TAG_LENGTH) throw integrity();
    try {
      // noble verifies the tag before decrypting (RFC 8439 §2.8), so nothing leaks on failure.
      return xchacha20poly1305(key, nonce, aad).decrypt(sealed);
    } catch (err) {
      throw integrity(err);
    }
  },
};

// The few sodium-native functions we use (the package ships no types of its own).
interface SodiumNative {
  crypto_aead_xchacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_xchacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
}

/** How loading the libsodium addon went: the module, or why it is not used. */
export const sodiumLoad: { readonly sodium: SodiumNative | undefined; readonly error: string | undefined } = (() => {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sodium = require('sodium-native') as SodiumNative;
    if (typeof sodium.crypto_aead_xchacha20poly1305_ietf_encrypt !== 'function') return { sodium: undefined, error: 'sodium-native lacks xchacha20poly1305' };
    return { sodium, error: undefined };
  } catch (err) {
    // No prebuilt binary for this platform: fall back to the OpenSSL or pure-JS backend.
    return { sodium: undefined, error: err instanceof Error ? err.message : String(err) };
  }
})();

function sodiumAeadOf(sodium: SodiumNative): Aead {
  return {
    name: 'sodium',
    seal(key, nonce, plaintext, aad, out) {
      checkKeyNonce(key, nonce);
      const dest = outputFor(plaintext, out);
      sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(dest, plaintext, aad, null, nonce, key);
      return dest;
    },
    open(key, nonce, sealed, aad) {
      checkKeyNonce(key, nonce);
      if (sealed.length < TAG_LENGTH) throw integrity();
      // A fresh, exact-size buffer that belongs to the caller. libsodium verifies the tag before it
      // decrypts anything and zero-fills `pt` on failure; we wipe it again regardless.
      const pt = new Uint8Array(sealed.length - TAG_LENGTH);
      try {
        sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(pt, null, sealed, aad, nonce, key);
      } catch (err) {
        zeroize(pt);
        throw integrity(err);
      }
      return pt;
    },
  };
}

/** libsodium's XChaCha20-Poly1305, or undefined when the addon did not load. */
export const sodiumAead: Aead | undefined = sodiumLoad.sodium ? sodiumAeadOf(sodiumLoad.sodium) : undefined;

/**
 * Plaintext length from which OpenSSL beats libsodium. libsodium's call costs ~1 µs against
 * OpenSSL's ~5 µs of cipher-context setup, but OpenSSL's ChaCha20/Poly1305 assembly (AVX-512 on
 * our machines) streams ~2x faster than the prebuilt libsodium: measured crossover 12–16 KiB.
 */
export const LARGE_MESSAGE: number = 16 * 1024;

/** Small messages through `small`, messages of {@link LARGE_MESSAGE} bytes or more through `large`. */
export function bySize(name: AeadName, small: Aead, large: Aead): Aead {
  return {
    name,
    seal: (key, nonce, plaintext, aad, out) => (plaintext.length >= LARGE_MESSAGE ? large : small).seal(key, nonce, plaintext, aad, out),
    open: (key, nonce, sealed, aad) => (sealed.length - TAG_LENGTH >= LARGE_MESSAGE ? large : small).open(key, nonce, sealed, aad),
  };
}

const opensslChacha: boolean = getCiphers().includes('chacha20-poly1305');

/**
 * The backend in use: libsodium when its addon loads (prebuilt for linux/darwin/win32 x64+arm64),
 * handing large messages to OpenSSL's chacha20-poly1305 (present in Node 20 builds); else OpenSSL
 * alone; else pure JS.
 */
export const aead: Aead = sodiumAead
  ? opensslChacha
    ? bySize('sodium+node', sodiumAead, nodeAead)
    : sodiumAead
  : opensslChacha
    ? nodeAead
    : nobleAead;
