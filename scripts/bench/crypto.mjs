// `pnpm bench crypto [seconds]`: seal+open throughput of @coffer/crypto (local provider, DEK cache
// hit on open), the AEAD alone per backend, and KMS calls per operation. Prints numbers; never
// fails on speed. Single-threaded: the figures are per core.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';

const require = createRequire(import.meta.url);
const crypto = require('../../packages/crypto/dist/index.js');
const { nodeAead, nobleAead } = require('../../packages/crypto/dist/internal/aead.js');

const seconds = Number(process.argv[2] ?? 2);
const sizes = [1024, 64 * 1024];

// Rates are reported per second of this process's CPU time (user + system, all threads, so GC
// helpers count against us) — i.e. "per core" — and per wall-clock second. On a shared machine
// the wall figure drops with other load; the CPU figure is the one comparable across runs.
function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function result(n, t0, c0) {
  return { perCpu: n / (cpuSeconds() - c0), perWall: n / ((performance.now() - t0) / 1000) };
}

function rate(fn) {
  for (let i = 0; i < 200; i++) fn(i); // warm-up
  let n = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) fn(n++);
  }
  return result(n, t0, c0);
}

async function rateAsync(fn) {
  for (let i = 0; i < 200; i++) await fn(i);
  let n = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) await fn(n++);
  }
  return result(n, t0, c0);
}

const fmt = (x) => Math.round(x).toLocaleString('en-US');
const both = (r) => `${fmt(r.perCpu).padStart(9)} /cpu-s (${fmt(r.perWall)} /wall-s)`;
const load = (await import('node:os')).loadavg()[0].toFixed(2);
console.log(`@coffer/crypto benchmark — node ${process.version}, AEAD backend in use: ${crypto.AEAD_BACKEND}, ${seconds}s per figure, load average ${load}`);

// 1. Raw AEAD (seal then open of the same value), both backends.
console.log('\nXChaCha20-Poly1305 seal+open per second (AEAD only)');
const key = crypto.randomBytes(32);
const aad = crypto.encodeAad(1, 'xchacha20poly1305', { name: 'bench/secret', version: 1 });
for (const size of sizes) {
  const pt = crypto.randomBytes(size);
  for (const impl of [nodeAead, nobleAead]) {
    const r = rate(() => {
      const nonce = crypto.randomBytes(24);
      impl.open(key, nonce, impl.seal(key, nonce, pt, aad), aad);
    });
    console.log(`  ${impl.name.padEnd(5)} ${String(size).padStart(6)} B: ${both(r)}  (${fmt(r.perCpu * size / 2 ** 20)} MiB per cpu-s each way)`);
  }
}

// 2. Full envelope path: seal (fresh DEK, local wrap) + open (DEK cache hit).
console.log('\nEnvelope seal+open per second (local provider; open hits the DEK cache)');
let kmsCalls = 0;
const hooks = { onKmsLatency: () => { kmsCalls++; } };
const provider = crypto.createLocalProvider({ masterKeyBase64: Buffer.from(crypto.randomBytes(32)).toString('base64'), hooks });
let hits = 0, misses = 0;
const cache = new crypto.DekCache({ ttlSecs: 300, maxEntries: 10_000, onHit: () => hits++, onMiss: () => misses++ });
const envelopes = new crypto.Envelopes({ provider, cache });
for (const size of sizes) {
  const pt = crypto.randomBytes(size);
  kmsCalls = 0; hits = 0; misses = 0;
  let ops = 0;
  const r = await rateAsync(async (i) => {
    const ctx = { name: 'bench/secret', version: i };
    const env = await envelopes.seal(pt, ctx);
    const out = await envelopes.open(env, ctx);
    crypto.zeroize(out);
    ops++;
  });
  console.log(`  ${String(size).padStart(6)} B: ${both(r)} seal+open   KMS calls per seal+open: ${(kmsCalls / ops).toFixed(2)}   cache hits per open: ${(hits / ops).toFixed(2)}`);
}

// 3. Same, cache disabled: every open unwraps through the provider.
const noCache = new crypto.Envelopes({ provider, cache: new crypto.DekCache({ ttlSecs: 0 }) });
console.log('\nEnvelope seal+open per second, DEK cache disabled (open unwraps via the provider)');
for (const size of sizes) {
  const pt = crypto.randomBytes(size);
  kmsCalls = 0;
  let ops = 0;
  const r = await rateAsync(async (i) => {
    const ctx = { name: 'bench/secret', version: i };
    const out = await noCache.open(await noCache.seal(pt, ctx), ctx);
    crypto.zeroize(out);
    ops++;
  });
  console.log(`  ${String(size).padStart(6)} B: ${both(r)} seal+open   KMS calls per seal+open: ${(kmsCalls / ops).toFixed(2)}`);
}

// 4. Open only, cache hit (the read path).
console.log('\nEnvelope open per second, cache hit (read path)');
for (const size of sizes) {
  const pt = crypto.randomBytes(size);
  const ctx = { name: 'bench/read', version: 1 };
  const env = await envelopes.seal(pt, ctx);
  kmsCalls = 0;
  let ops = 0;
  const r = await rateAsync(async () => { crypto.zeroize(await envelopes.open(env, ctx)); ops++; });
  console.log(`  ${String(size).padStart(6)} B: ${both(r)} open   KMS calls per open: ${(kmsCalls / ops).toFixed(2)}`);
}
console.log('\nWith the aws provider: 1 KMS call (GenerateDataKey) per seal, 0 per cached open, 1 (Decrypt) per uncached open.');
await provider.close();
