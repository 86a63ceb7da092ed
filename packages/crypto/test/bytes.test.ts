// Helpers the node relies on: randomness, hashing, constant-time compare, tokens.
import {
  constantTimeEqual,
  generateToken,
  hashToken,
  hmacSha256,
  isTokenFormat,
  randomBytes,
  sha256,
  zeroize,
  TOKEN_PREFIX,
} from '../src/index.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

test('sha256 and hmacSha256 match published vectors (FIPS 180-2, RFC 4231 case 2)', () => {
  expect(hex(sha256(new TextEncoder().encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  expect(hex(hmacSha256(new TextEncoder().encode('Jefe'), new TextEncoder().encode('what do ya want for nothing?')))).toBe(
    '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843',
  );
  expect(sha256(new Uint8Array(0))).toBeInstanceOf(Uint8Array);
});

test('constantTimeEqual compares contents, handles subarrays, and is false on length mismatch', () => {
  const a = new Uint8Array([1, 2, 3, 4]);
  expect(constantTimeEqual(a, Uint8Array.from(a))).toBe(true);
  expect(constantTimeEqual(a, new Uint8Array([1, 2, 3, 5]))).toBe(false);
  expect(constantTimeEqual(a, a.subarray(0, 3))).toBe(false);
  expect(constantTimeEqual(a.subarray(1), new Uint8Array([2, 3, 4]))).toBe(true);
  expect(constantTimeEqual(new Uint8Array(0), new Uint8Array(0))).toBe(true);
  expect(() => constantTimeEqual('a' as unknown as Uint8Array, a)).toThrow(TypeError);
});

test('zeroize wipes in place and ignores undefined', () => {
  const b = new Uint8Array([9, 9, 9]);
  zeroize(b);
  expect([...b]).toEqual([0, 0, 0]);
  expect(() => zeroize(undefined)).not.toThrow();
});

test('randomBytes: exact lengths, fresh values across the pool boundary, and large requests', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2000; i++) {
    const n = [24, 32, 64, 7][i % 4]!;
    const r = randomBytes(n);
    expect(r).toHaveLength(n);
    seen.add(hex(r));
  }
  expect(seen.size).toBe(2000);
  expect(randomBytes(0)).toHaveLength(0);
  const big = randomBytes(100_000);
  expect(big).toHaveLength(100_000);
  expect(big.some((b) => b !== 0)).toBe(true);
  expect(() => randomBytes(-1)).toThrow(RangeError);
  expect(() => randomBytes(1.5)).toThrow(RangeError);
});

test('tokens: cof_ prefix, 256 bits in base64url, unique; only the hash is stored', () => {
  const t = generateToken();
  expect(t.startsWith(TOKEN_PREFIX)).toBe(true);
  expect(t).toMatch(/^cof_[A-Za-z0-9_-]{43}$/);
  expect(Buffer.from(t.slice(4), 'base64url')).toHaveLength(32);
  expect(isTokenFormat(t)).toBe(true);
  expect(isTokenFormat(`${t}x`)).toBe(false);
  expect(isTokenFormat('cof_short')).toBe(false);
  const many = new Set(Array.from({ length: 1000 }, () => generateToken()));
  expect(many.size).toBe(1000);
  const h = hashToken(t);
  expect(h).toHaveLength(32);
  expect(constantTimeEqual(h, sha256(new TextEncoder().encode(t)))).toBe(true);
  expect(constantTimeEqual(h, hashToken(generateToken()))).toBe(false);
});

test('generateToken uses the injected randomness', () => {
  const t = generateToken((n) => new Uint8Array(n).fill(0xff));
  expect(t).toBe(`cof_${Buffer.alloc(32, 0xff).toString('base64url')}`);
});
