// `pnpm bench crypto [seconds] [repeats]`: throughput of @coffer/crypto with the local provider —
// seal only, open only (DEK cache hit), seal+open, seal+open without a cache — and the AEAD alone
// per backend, with KMS calls per operation. Prints numbers; never fails on speed.
//
// How it counts. Every figure is operations per second of this process's CPU time: user +
// system time from process.cpuUsage(), summed over ALL threads of the process (the JS thread plus
// V8's GC and compiler helper threads), over the measured interval. The work itself runs on the
// one JS thread, so this is "per core": what one core would do if it ran nothing else. The
// wall-clock rate is printed beside it; on a shared, busy machine it drops with other load (and
// can exceed the CPU rate when helper threads are starved). Each figure is measured `repeats`
// times, round-robin across figures so that changing machine load hits them all alike, and the
// MEDIAN is printed with the min–max range of the per-CPU rate.
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { loadavg } from 'node:os';
import { benchOptions } from './lib/options.mjs';

const require = createRequire(import.meta.url);
const crypto = require('../../packages/crypto/dist/index.js');
const { nodeAead, nobleAead, sodiumAead, sodiumLoad } = require('../../packages/crypto/dist/internal/aead.js');

const { seconds, repeats } = benchOptions({
  usage: 'pnpm bench crypto [SECONDS] [REPEATS]',
  positionals: [
    { name: 'seconds', type: 'number', default: 1, help: 'seconds per run' },
    { name: 'repeats', type: 'integer', default: 5, help: 'runs per figure (the median is printed)' },
  ],
});
const sizes = [1024, 64 * 1024];

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// One timed run of `fn` (async or not) for `seconds`; `fn(i)` performs ONE operation.
async function run(fn, isAsync) {
  let n = 0;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const end = t0 + seconds * 1000;
  while (performance.now() < end) {
    if (isAsync) for (let i = 0; i < 50; i++) await fn(n++);
    else for (let i = 0; i < 50; i++) fn(n++);
  }
  const cpu = cpuSeconds() - c0;
  const wall = (performance.now() - t0) / 1000;
  return { perCpu: n / cpu, perWall: n / wall, ops: n };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (x) => Math.round(x).toLocaleString('en-US');

// A figure: label, the op, and optional KMS/cache accounting read after each run.
const figures = [];
function figure(section, label, fn, { isAsync = true, before, after, warmup = 500 } = {}) {
  figures.push({ section, label, fn, isAsync, before, after, warmup, runs: [], notes: '' });
}

// --- the AEAD alone -------------------------------------------------------------------------
const AEAD = 'XChaCha20-Poly1305 seal+open (AEAD only; one op = seal then open of the same value)';
const aeadKey = crypto.randomBytes(32);
const aad = crypto.encodeAad(1, 'xchacha20poly1305', { name: 'bench/secret', version: 1 });
for (const size of sizes) {
  const pt = crypto.randomBytes(size);
  for (const impl of [sodiumAead, nodeAead, nobleAead].filter(Boolean)) {
    figure(AEAD, `${impl.name.padEnd(6)} ${String(size).padStart(6)} B`, () => {
      const nonce = crypto.randomBytes(24);
      crypto.zeroize(impl.open(aeadKey, nonce, impl.seal(aeadKey, nonce, pt, aad), aad));
    }, { isAsync: false });
  }
}

// --- the envelope path, local provider ------------------------------------------------------
let kmsCalls = 0;
const hooks = { onKmsLatency: () => { kmsCalls++; } };
const provider = crypto.createLocalProvider({ masterKeyBase64: Buffer.from(crypto.randomBytes(32)).toString('base64'), hooks });
let hits = 0;
let misses = 0;
const cache = new crypto.DekCache({ ttlSecs: 300, maxEntries: 10_000, onHit: () => hits++, onMiss: () => misses++ });
const envelopes = new crypto.Envelopes({ provider, cache });
const noCache = new crypto.Envelopes({ provider, cache: new crypto.DekCache({ ttlSecs: 0 }) });
const reset = () => { kmsCalls = 0; hits = 0; misses = 0; };
const kmsNote = (ops) => `KMS calls/op ${(kmsCalls / ops).toFixed(2)}`;
const hitNote = (ops) => `cache hits/op ${(hits / ops).toFixed(2)}, misses/op ${(misses / ops).toFixed(2)}`;

const ENV = 'Envelope, local provider (fresh DEK per seal, wrapped under the master key; cache TTL 300 s, 10,000 entries)';
let version = 0; // every seal gets a new version, as the node does
for (const size of sizes) {
  const pt = crypto.randomBytes(size);
  figure(ENV, `seal only              ${String(size).padStart(6)} B`, async () => {
    await envelopes.seal(pt, { name: 'bench/secret', version: version++ });
  }, { before: reset, after: (ops) => `${kmsNote(ops)}` });

  // A working set of 1,000 sealed versions, opened round-robin: every open is a cache hit.
  const readSet = [];
  figure(ENV, `open only, cache hit   ${String(size).padStart(6)} B`, async (i) => {
    const e = readSet[i % readSet.length];
    crypto.zeroize(await envelopes.open(e.env, e.ctx));
  }, {
    before: async () => {
      if (readSet.length === 0) {
        for (let v = 0; v < 1000; v++) {
          const ctx = { name: 'bench/read', version: v };
          readSet.push({ ctx, env: await envelopes.seal(pt, ctx) });
        }
      }
      // Seal-only runs may have pushed the read set out of the LRU: warm it again (not timed).
      for (const e of readSet) crypto.zeroize(await envelopes.open(e.env, e.ctx));
      reset();
    },
    after: (ops) => `${kmsNote(ops)}, ${hitNote(ops)}`,
  });

  figure(ENV, `seal+open, cache hit   ${String(size).padStart(6)} B`, async () => {
    const ctx = { name: 'bench/secret', version: version++ };
    crypto.zeroize(await envelopes.open(await envelopes.seal(pt, ctx), ctx));
  }, { before: reset, after: (ops) => `${kmsNote(ops)}, ${hitNote(ops)}` });

  figure(ENV, `seal+open, no cache    ${String(size).padStart(6)} B`, async () => {
    const ctx = { name: 'bench/secret', version: version++ };
    crypto.zeroize(await noCache.open(await noCache.seal(pt, ctx), ctx));
  }, { before: reset, after: (ops) => kmsNote(ops) });
}

// --- run ------------------------------------------------------------------------------------
const load0 = loadavg()[0].toFixed(2);
console.log(`@coffer/crypto benchmark — node ${process.version}, AEAD backend in use: ${crypto.AEAD_BACKEND}` +
  (sodiumLoad?.error ? ` (libsodium addon not loaded: ${sodiumLoad.error})` : ''));
console.log(`${seconds}s per run, ${repeats} runs per figure (round-robin), load average at start ${load0}`);
console.log('Rates: operations per CPU-second of this process (user+system, all threads) = per core; median of the runs [min–max]; wall-clock median in ().');

for (const f of figures) {
  if (f.before) await f.before();
  for (let i = 0; i < f.warmup; i++) f.isAsync ? await f.fn(i) : f.fn(i);
}
for (let r = 0; r < repeats; r++) {
  for (const f of figures) {
    if (f.before) await f.before();
    const res = await run(f.fn, f.isAsync);
    if (f.after) f.notes = f.after(res.ops);
    f.runs.push(res);
  }
}

let section = '';
for (const f of figures) {
  if (f.section !== section) {
    section = f.section;
    console.log(`\n${section}`);
  }
  const cpu = f.runs.map((r) => r.perCpu);
  const wall = f.runs.map((r) => r.perWall);
  const range = `[${fmt(Math.min(...cpu))}–${fmt(Math.max(...cpu))}]`;
  console.log(`  ${f.label}: ${fmt(median(cpu)).padStart(9)} /cpu-s ${range.padEnd(17)} (${fmt(median(wall))} /wall-s)${f.notes ? '   ' + f.notes : ''}`);
}
console.log(`\nload average at end ${loadavg()[0].toFixed(2)}`);
console.log('KMS calls per operation are the same with the aws provider: 1 (GenerateDataKey) per seal, 0 per cached open, 1 (Decrypt) per uncached open.');
await provider.close();
