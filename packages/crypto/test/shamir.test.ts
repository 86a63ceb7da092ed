// Shamir wrapper: hand-made vectors and a reference GF(2^8) implementation (written here, from the
// definition: AES field x^8+x^4+x^3+x+1) checked against the library in both directions; any k of
// n rebuild, k-1 do not; shares look uniform; argument validation.
import fc from 'fast-check';
import { combineShares, shamirParamsError, splitSecret, SHAMIR_MAX_SHARES } from '../src/shamir.js';
import { randomBytes } from '../src/bytes.js';

// --- reference field arithmetic -------------------------------------------------------------
function gfMul(a: number, b: number): number {
  let p = 0;
  for (let i = 0; i < 8; i++) {
    if (b & 1) p ^= a;
    const hi = a & 0x80;
    a = (a << 1) & 0xff;
    if (hi) a ^= 0x1b;
    b >>= 1;
  }
  return p;
}
function gfInv(a: number): number {
  // a^254 = a^-1 in GF(2^8)
  let r = 1;
  for (let i = 0; i < 254; i++) r = gfMul(r, a);
  return r;
}
// Evaluates sum(coeffs[i] x^i).
function refEval(coeffs: number[], x: number): number {
  let y = 0;
  for (let i = coeffs.length - 1; i >= 0; i--) y = gfMul(y, x) ^ coeffs[i]!;
  return y;
}
// Lagrange interpolation at 0, byte by byte; shares are y ‖ x.
function refCombine(shares: Uint8Array[]): Uint8Array {
  const len = shares[0]!.length - 1;
  const xs = shares.map((s) => s[len]!);
  const out = new Uint8Array(len);
  for (let b = 0; b < len; b++) {
    let acc = 0;
    for (let i = 0; i < shares.length; i++) {
      let basis = 1;
      for (let j = 0; j < shares.length; j++) {
        if (i === j) continue;
        basis = gfMul(basis, gfMul(xs[j]!, gfInv(xs[i]! ^ xs[j]!)));
      }
      acc ^= gfMul(shares[i]![b]!, basis);
    }
    out[b] = acc;
  }
  return out;
}
// Shares of `secret` for explicit per-byte polynomials: coeffs[b] = [a1, a2, ...] (a0 = secret[b]).
function refSplit(secret: Uint8Array, coeffs: number[][], xs: number[]): Uint8Array[] {
  return xs.map((x) => {
    const share = new Uint8Array(secret.length + 1);
    secret.forEach((s, b) => (share[b] = refEval([s, ...coeffs[b]!], x)));
    share[secret.length] = x;
    return share;
  });
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

describe('reference field', () => {
  test('matches the AES field (FIPS-197 §4.2: {57}·{83} = {c1}, {57}·{13} = {fe})', () => {
    expect(gfMul(0x57, 0x83)).toBe(0xc1);
    expect(gfMul(0x57, 0x13)).toBe(0xfe);
    for (let a = 1; a < 256; a++) expect(gfMul(a, gfInv(a))).toBe(1);
  });
});

describe('vectors', () => {
  test('a hand-computed 2-of-3 split of one byte combines to the secret from every pair', () => {
    // f(x) = 0x42 + 0x03·x: f(1) = 0x41, f(2) = 0x42 ^ {03}·{02} = 0x42 ^ 0x06 = 0x44, f(3) = 0x42 ^ 0x05 = 0x47.
    const s1 = Uint8Array.of(0x41, 1);
    const s2 = Uint8Array.of(0x44, 2);
    const s3 = Uint8Array.of(0x47, 3);
    expect(gfMul(0x03, 0x03)).toBe(0x05);
    for (const pair of [[s1, s2], [s2, s3], [s3, s1]]) expect(hex(refCombine(pair))).toBe('42');
  });

  test.each([
    [[s(0x41, 1), s(0x44, 2)]],
    [[s(0x44, 2), s(0x47, 3)]],
    [[s(0x47, 3), s(0x41, 1)]],
  ])('the library combines the hand vector %#', async (pair) => {
    expect(hex(await combineShares(pair))).toBe('42');
  });

  test('fixed 3-of-5 split of a 32-byte key (reference shares) combines from every 3-subset', async () => {
    const secret = Uint8Array.from({ length: 32 }, (_, i) => (i * 37 + 11) & 0xff);
    const coeffs = Array.from({ length: 32 }, (_, b) => [(b * 7 + 1) & 0xff, (b * 13 + 5) & 0xff]);
    const shares = refSplit(secret, coeffs, [9, 200, 17, 255, 1]);
    // Pinned (computed once by a separate Python evaluation of the same polynomials), so the
    // reference itself cannot drift.
    expect(hex(shares[0]!)).toBe('5c86bc0591add5a4aafd250478f0f3398b49339319ad2d1ff1b8fec78e06405909');
    expect(hex(shares[1]!)).toBe('6d99b91053c345244b6311de8b9b915b01b7d79f5ffadef57a5726ab6474f502c8');
    expect(shares.map((x) => x[32])).toEqual([9, 200, 17, 255, 1]);
    for (let a = 0; a < 5; a++)
      for (let b = a + 1; b < 5; b++)
        for (let c = b + 1; c < 5; c++) expect(hex(await combineShares([shares[c]!, shares[a]!, shares[b]!]))).toBe(hex(secret));
  });

  test('one share of one: the share is secret ‖ 0x01 and combines to the secret', async () => {
    const secret = randomBytes(32);
    const [only, ...rest] = await splitSecret(secret, 1, 1);
    expect(rest).toHaveLength(0);
    expect(hex(only!)).toBe(hex(secret) + '01');
    expect(hex(await combineShares([only!]))).toBe(hex(secret));
  });

  test('what the library splits, the reference combines (same field, same layout)', async () => {
    const secret = randomBytes(32);
    const shares = await splitSecret(secret, 5, 3);
    expect(hex(refCombine([shares[4]!, shares[1]!, shares[2]!]))).toBe(hex(secret));
  });
});

function s(y: number, x: number): Uint8Array {
  return Uint8Array.of(y, x);
}

describe('properties', () => {
  const params = fc
    .integer({ min: 2, max: 12 })
    .chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 2, max: n })))
    .chain(([n, k]) => fc.tuple(fc.constant(n), fc.constant(k), fc.shuffledSubarray([...Array(n).keys()], { minLength: k, maxLength: k })));

  test('any k of n shares rebuild the secret', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), params, async (secret, [n, k, pick]) => {
        const shares = await splitSecret(secret, n, k);
        expect(shares).toHaveLength(n);
        const xs = shares.map((x) => x[32]!);
        expect(new Set(xs).size).toBe(n);
        expect(xs.every((x) => x >= 1 && x <= 255)).toBe(true);
        const chosen = pick.map((i) => shares[i]!);
        expect(hex(await combineShares(chosen))).toBe(hex(secret));
        expect(hex(refCombine(chosen))).toBe(hex(secret));
      }),
      { numRuns: 150 },
    );
  });

  test('any k-1 shares do not give the secret', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 32, maxLength: 32 }), params, async (secret, [n, k, pick]) => {
        const shares = await splitSecret(secret, n, k);
        const fewer = pick.slice(0, k - 1).map((i) => shares[i]!);
        // 32 random bytes: equal only with probability 2^-256.
        expect(hex(await combineShares(fewer))).not.toBe(hex(secret));
      }),
      { numRuns: 150 },
    );
  });

  test('a single share byte is uniform whatever the secret (chi-square, 2-of-2, 25,600 splits)', async () => {
    const counts = new Array<number>(256).fill(0);
    const secret = new Uint8Array(32); // all zero: a broken split (zero coefficients) would show at once
    for (let i = 0; i < 800; i++) {
      const [a] = await splitSecret(secret, 2, 2);
      for (let b = 0; b < 32; b++) counts[a![b]!]!++;
    }
    const expected = (800 * 32) / 256;
    const chi = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    // 255 degrees of freedom: mean 255, p = 1e-6 at about 390.
    expect(chi).toBeLessThan(390);
  });

  test('splitting twice gives different shares (fresh randomness)', async () => {
    const secret = randomBytes(32);
    const a = await splitSecret(secret, 3, 2);
    const b = await splitSecret(secret, 3, 2);
    expect(a.map(hex)).not.toEqual(b.map(hex));
  });
});

describe('validation', () => {
  test.each([
    [5, 3, undefined],
    [1, 1, undefined],
    [2, 2, undefined],
    [255, 255, undefined],
    [255, 2, undefined],
    [0, 0, 'shares must be between 1 and 255'],
    [256, 3, 'shares must be between 1 and 255'],
    [3, 5, 'threshold (5) cannot exceed the number of shares (3)'],
    [3, 1, 'threshold must be at least 2 when there is more than one share'],
    [3, 0, 'threshold must be at least 1'],
    [2.5, 2, 'shares must be an integer'],
    [3, '2', 'threshold must be an integer'],
    [Number.NaN, 2, 'shares must be an integer'],
  ])('shares %p threshold %p → %p', async (n, t, message) => {
    expect(shamirParamsError(n, t)).toBe(message);
    if (message === undefined) {
      // Ill-typed on purpose for the refused rows: called through Reflect.apply, not a cast.
      const shares: Uint8Array[] = await Reflect.apply(splitSecret, undefined, [randomBytes(32), n, t]);
      expect(shares).toHaveLength(Number(n));
    } else {
      await expect(Reflect.apply(splitSecret, undefined, [randomBytes(32), n, t])).rejects.toThrow(message);
    }
  });

  test('secret size and type', async () => {
    await expect(splitSecret(new Uint8Array(0), 3, 2)).rejects.toThrow('secret must be 1..1024 bytes');
    await expect(splitSecret(new Uint8Array(1025), 3, 2)).rejects.toThrow('secret must be 1..1024 bytes');
    await expect(Reflect.apply(splitSecret, undefined, ['key', 3, 2])).rejects.toThrow(TypeError);
    // Buffers (and offset views) are accepted; the library itself would refuse them.
    const buf = Buffer.concat([Buffer.alloc(5), randomBytes(32)]).subarray(5);
    const shares = await splitSecret(buf, 3, 2);
    expect(hex(await combineShares([Buffer.from(shares[0]!), shares[2]!]))).toBe(buf.toString('hex'));
  });

  test('combine refuses shapes no split produces, naming the problem', async () => {
    const [a, b, c] = await splitSecret(randomBytes(32), 3, 2);
    await expect(combineShares([])).rejects.toThrow(`between 1 and ${SHAMIR_MAX_SHARES} shares are needed`);
    await expect(combineShares([a!, a!])).rejects.toThrow(`two shares have the same index ${a![32]}`);
    const sameX = Uint8Array.from(b!);
    sameX[32] = a![32]!;
    await expect(combineShares([a!, sameX])).rejects.toThrow('two shares have the same index');
    await expect(combineShares([a!, b!.subarray(0, 32)])).rejects.toThrow('share 2 is 32 bytes; the others are 33');
    const zero = Uint8Array.from(c!);
    zero[32] = 0;
    await expect(combineShares([a!, zero])).rejects.toThrow('share 2 has index 0');
    await expect(combineShares([Uint8Array.of(1)])).rejects.toThrow('at least 2 bytes');
    await expect(Reflect.apply(combineShares, undefined, ['ab'])).rejects.toThrow(TypeError);
    await expect(Reflect.apply(combineShares, undefined, [[a!, 'x']])).rejects.toThrow('share 2 is not a Uint8Array');
  });

  test('the caller’s shares are not modified by combine', async () => {
    const shares = await splitSecret(randomBytes(32), 3, 2);
    const before = shares.map(hex);
    await combineShares(shares.slice(0, 2));
    expect(shares.map(hex)).toEqual(before);
  });
});
