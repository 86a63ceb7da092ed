// XChaCha20-Poly1305 backends: published vectors, agreement with each other, and tamper refusal.
import { hchacha20, nobleAead, nodeAead, sodiumAead, sodiumLoad, aead, bySize, LARGE_MESSAGE, type Aead } from '../src/internal/aead.js';
import { CryptoError } from '../src/errors.js';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const toHex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

// draft-irtf-cfrg-xchacha-03 §2.2.1, "Test Vector for the HChaCha20 Block Function".
describe('HChaCha20 (draft-irtf-cfrg-xchacha-03 §2.2.1)', () => {
  test('derives the published subkey', () => {
    const key = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const nonce = hex('000000090000004a0000000031415927');
    expect(toHex(hchacha20(key, nonce))).toBe('82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
  });
});

// draft-irtf-cfrg-xchacha-03 §A.3.1, "Example and Test Vector for AEAD_XChaCha20_Poly1305".
const A31 = {
  plaintext: new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  ),
  aad: hex('50515253c0c1c2c3c4c5c6c7'),
  key: hex('808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f'),
  iv: hex('404142434445464748494a4b4c4d4e4f5051525354555657'),
  ciphertext: hex(`
    bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb
    731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452
    2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9
    21f9664c97637da9768812f615c68b13b52e`),
  tag: hex('c0875924c1c7987947deafd8780acf49'),
};

// The addon ships prebuilt for this platform: failing to load it here is a failure, not a skip.
test('the libsodium addon loads', () => {
  expect(sodiumLoad.error).toBeUndefined();
  expect(sodiumAead).toBeDefined();
});
const backends: Aead[] = [aead, ...(sodiumAead ? [sodiumAead] : []), nodeAead, nobleAead];

function expectIntegrity(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown).toBeInstanceOf(CryptoError);
  expect((thrown as CryptoError).code).toBe('CRYPTO_INTEGRITY');
}

test('the default backend is libsodium, with OpenSSL for large messages, on this platform', () => {
  expect(aead.name).toBe('sodium+node');
});

test('bySize routes by plaintext length, on both sides of the threshold', () => {
  const calls: string[] = [];
  const spy = (tag: string, impl: Aead): Aead => ({
    name: impl.name,
    seal: (k, n, p, a, o) => (calls.push(`${tag}.seal`), impl.seal(k, n, p, a, o)),
    open: (k, n, s, a) => (calls.push(`${tag}.open`), impl.open(k, n, s, a)),
  });
  const both = bySize('sodium+node', spy('small', nobleAead), spy('large', nodeAead));
  const key = new Uint8Array(32).fill(1);
  const nonce = new Uint8Array(24).fill(2);
  for (const len of [0, LARGE_MESSAGE - 1, LARGE_MESSAGE, LARGE_MESSAGE + 1]) {
    calls.length = 0;
    const pt = new Uint8Array(len).fill(3);
    const sealed = both.seal(key, nonce, pt, new Uint8Array(0));
    expect(Buffer.compare(both.open(key, nonce, sealed, new Uint8Array(0)), pt)).toBe(0);
    const side = len >= LARGE_MESSAGE ? 'large' : 'small';
    expect(calls).toEqual([`${side}.seal`, `${side}.open`]);
  }
});

describe.each(backends.map((b, i) => [i === 0 ? `default (${b.name})` : b.name, b] as const))('%s backend', (_name, impl) => {
  test('§A.3.1 vector: seal produces the published ciphertext and tag', () => {
    const sealed = impl.seal(A31.key, A31.iv, A31.plaintext, A31.aad);
    expect(toHex(sealed)).toBe(toHex(A31.ciphertext) + toHex(A31.tag));
  });

  test('§A.3.1 vector: open recovers the plaintext', () => {
    const sealed = new Uint8Array([...A31.ciphertext, ...A31.tag]);
    expect(toHex(impl.open(A31.key, A31.iv, sealed, A31.aad))).toBe(toHex(A31.plaintext));
  });

  test('every single-bit flip of ciphertext, tag or nonce is refused', () => {
    const sealed = new Uint8Array([...A31.ciphertext, ...A31.tag]);
    for (let i = 0; i < sealed.length * 8; i++) {
      const bad = sealed.slice();
      bad[i >> 3]! ^= 1 << (i & 7);
      expectIntegrity(() => impl.open(A31.key, A31.iv, bad, A31.aad));
    }
    for (let i = 0; i < A31.iv.length * 8; i++) {
      const nonce = A31.iv.slice();
      nonce[i >> 3]! ^= 1 << (i & 7);
      expectIntegrity(() => impl.open(A31.key, nonce, sealed, A31.aad));
    }
  });

  test('wrong AAD, wrong key, truncation and an empty input are refused', () => {
    const sealed = new Uint8Array([...A31.ciphertext, ...A31.tag]);
    expectIntegrity(() => impl.open(A31.key, A31.iv, sealed, new Uint8Array(0)));
    expectIntegrity(() => impl.open(A31.key, A31.iv, sealed, A31.aad.subarray(1)));
    const key = A31.key.slice();
    key[31]! ^= 0x80;
    expectIntegrity(() => impl.open(key, A31.iv, sealed, A31.aad));
    expectIntegrity(() => impl.open(A31.key, A31.iv, sealed.subarray(0, sealed.length - 1), A31.aad));
    expectIntegrity(() => impl.open(A31.key, A31.iv, sealed.subarray(0, 15), A31.aad));
    expectIntegrity(() => impl.open(A31.key, A31.iv, new Uint8Array(0), A31.aad));
  });

  test('rejects keys and nonces of the wrong size as programmer errors', () => {
    expect(() => impl.seal(new Uint8Array(31), A31.iv, A31.plaintext, A31.aad)).toThrow(RangeError);
    expect(() => impl.seal(A31.key, new Uint8Array(12), A31.plaintext, A31.aad)).toThrow(RangeError);
    expect(() => impl.open(new Uint8Array(33), A31.iv, A31.ciphertext, A31.aad)).toThrow(RangeError);
    expect(() => impl.open(A31.key, new Uint8Array(25), A31.ciphertext, A31.aad)).toThrow(RangeError);
  });

  test('seal into a caller buffer (also a view into a larger one) gives the same bytes', () => {
    const big = new Uint8Array(A31.plaintext.length + 16 + 9).fill(0xee);
    const view = big.subarray(5, 5 + A31.plaintext.length + 16);
    expect(impl.seal(A31.key, A31.iv, A31.plaintext, A31.aad, view)).toBe(view);
    expect(toHex(view)).toBe(toHex(A31.ciphertext) + toHex(A31.tag));
    expect([...big.subarray(0, 5), ...big.subarray(5 + view.length)]).toEqual(new Array(9).fill(0xee));
    expect(() => impl.seal(A31.key, A31.iv, A31.plaintext, A31.aad, new Uint8Array(A31.plaintext.length + 15))).toThrow(RangeError);
  });

  test('opens from views into larger buffers (key, nonce, sealed, aad at odd offsets)', () => {
    const at = (b: Uint8Array, off: number): Uint8Array => {
      const host = new Uint8Array(b.length + off + 3).fill(0x5a);
      host.set(b, off);
      return host.subarray(off, off + b.length);
    };
    const sealed = at(new Uint8Array([...A31.ciphertext, ...A31.tag]), 7);
    const pt = impl.open(at(A31.key, 3), at(A31.iv, 1), sealed, at(A31.aad, 5));
    expect(toHex(pt)).toBe(toHex(A31.plaintext));
    expect(pt.byteOffset).toBe(0);
    expect(pt.buffer.byteLength).toBe(pt.length);
  });
});

test('all backends agree on random inputs of many lengths (and open each other)', () => {
  const lengths = [0, 1, 15, 16, 17, 63, 64, 65, 127, 128, 1000, 4096, LARGE_MESSAGE - 1, LARGE_MESSAGE, 65537];
  let seed = 7;
  const bytes = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      out[i] = seed >>> 24;
    }
    return out;
  };
  for (const len of lengths) {
    const key = bytes(32);
    const nonce = bytes(24);
    const aad = bytes(len % 50);
    const pt = bytes(len);
    const sealedBy = backends.map((impl) => impl.seal(key, nonce, pt, aad));
    for (const s of sealedBy) {
      expect(s.length).toBe(len + 16);
      expect(toHex(s)).toBe(toHex(sealedBy[0]!));
    }
    // Each backend opens what every other one sealed.
    for (const impl of backends) {
      for (const s of sealedBy) expect(toHex(impl.open(key, nonce, s, aad))).toBe(toHex(pt));
    }
  }
});
