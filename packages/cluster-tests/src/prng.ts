/**
 * The seeded PRNG of Coffer's tests, simulations and benchmarks: mulberry32 (32-bit state, one
 * multiply-xorshift round per draw). Small and fast, with no claim to quality beyond spreading
 * seeds well; never use it where an attacker could gain from predicting it (keys, tokens, nonces
 * come from `node:crypto`). The same seed gives the same sequence on every platform, so a failing
 * seed printed by a test replays exactly.
 *
 * One implementation instead of a copy per file: cluster-tests (Jepsen workloads and nemeses), the
 * raft simulator, state's crash stream, node's driver tests, the raft benchmark and the soak (the
 * last two through this package's dist/) import it. It must stay a leaf: no imports, so a package's
 * tests that reach it by a relative path (the one such path eslint.config.mjs allows) pull in
 * nothing else.
 *
 * @example
 * ```ts
 * const rnd = prng(42);
 * const coin = rnd() < 0.5; // rnd() is in [0, 1)
 * ```
 */

/**
 * @param seed - any number; its low 32 bits are the initial state
 * @returns a function giving the next value in [0, 1) of the sequence
 */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
