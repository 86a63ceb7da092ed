// `pnpm bench storage-cpu [N] [STATE_DIST]`
// CPU (user + sys, all threads) per secret.put through the store — Raft append (not synced, to keep
// the disk out of it) + apply, batches of 64 like a busy group commit — and the CPU of a reopen.
// CPU time is far less sensitive than wall time to other work on a shared machine. STATE_DIST (an
// older build's packages/state/dist/index.js) gives the before figure of a before/after.
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { benchOptions } from './lib/options.mjs';

const { n: N, 'state-dist': STATE_DIST } = benchOptions({
  usage: 'pnpm bench storage-cpu [N] [STATE_DIST]',
  positionals: [
    { name: 'n', type: 'integer', default: 20000, help: 'secret.put commands' },
    { name: 'state-dist', type: 'string', help: "an older build's packages/state/dist/index.js, for the before figure (default: this build)" },
  ],
});
const state = await import(STATE_DIST ?? new URL('../../packages/state/dist/index.js', import.meta.url).href);
const integrity = state.Integrity === undefined ? undefined : new state.Integrity({ record: randomBytes(32), snapshot: randomBytes(32) });
const dir = mkdtempSync(path.join(tmpdir(), 'coffer-cpu-'));
const store = await state.openNodeStore(dir, integrity);
const sealed = (i) => ({ formatVersion: 1, alg: 'xchacha20poly1305', nonce: new Uint8Array(24).fill(i & 0xff), ciphertext: new Uint8Array(256).fill((i * 7) & 0xff), wrappedDek: new Uint8Array(60).fill(3), kmsKeyId: 'local:k1' });
let index = 0;
const latest = new Map();
const run = async (n) => {
  for (let i = 0; i < n; i += 64) {
    const es = [];
    for (let j = i; j < Math.min(n, i + 64); j++) {
      const name = `app/${j % 2000}/db`;
      const v = (latest.get(name) ?? 0) + 1;
      latest.set(name, v);
      es.push({ index: ++index, term: 1, type: 'normal', data: state.encodeCommand({ type: 'secret.put', requestId: `r${index}`, at: 1_700_000_000_000 + index, name, version: v, cas: null, sealed: sealed(j), format: 'raw', description: null, rotation: null, actor: 'bench' }) });
    }
    await store.log.append(es, { term: 1, vote: 'n1', commit: index }, { sync: false });
    await store.applyEntries(es);
  }
};
await run(4000); // warm-up
const c0 = process.cpuUsage();
const t0 = performance.now();
await run(N);
const c = process.cpuUsage(c0);
const wall = performance.now() - t0;
await store.close();
const r0 = process.cpuUsage();
const reopened = await state.openNodeStore(dir, integrity);
const rc = process.cpuUsage(r0);
await reopened.close();
rmSync(dir, { recursive: true, force: true });
console.log(`${integrity ? 'AFTER ' : 'BEFORE'} reopen cpu ${((rc.user + rc.system) / 1000).toFixed(0)} ms for ${latest.size} secrets, ${index} entries in the log`);
console.log(`${integrity ? 'AFTER ' : 'BEFORE'} cpu/write ${((c.user + c.system) / N).toFixed(1)} µs (user ${(c.user / N).toFixed(1)}, sys ${(c.system / N).toFixed(1)}), wall/write ${((wall * 1000) / N).toFixed(1)} µs`);
