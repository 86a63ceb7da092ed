// `pnpm bench storage [--overwrites N] [--secrets N] [--seconds S]`
// Storage benchmark of @coffer/state (built): synced Raft appends with one writer and with 64
// concurrent proposals (group commit), apply rate, snapshot/restore/reopen of many secrets, and
// on-disk size after many overwrites with compaction on. Prints numbers; never fails on speed.
import { mkdtempSync, rmSync, readdirSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as state from '../../packages/state/dist/index.js';
import { benchOptions } from './lib/options.mjs';

const { encodeCommand } = state;
// Every record is tagged with keys the disk does not hold (a build before storage integrity has no
// `Integrity` and ignores the argument, so this script measures both for a before/after).
const integrity = state.Integrity === undefined ? undefined : new state.Integrity({ record: randomBytes(32), snapshot: randomBytes(32) });
const openNodeStore = (dir) => state.openNodeStore(dir, integrity);

const { overwrites: OVERWRITES, secrets: SECRETS, seconds: SECONDS } = benchOptions({
  usage: 'pnpm bench storage [--overwrites N] [--secrets N] [--seconds S]',
  options: {
    overwrites: { type: 'integer', default: 1_000_000, help: 'overwrites of one secret for the on-disk size with compaction' },
    secrets: { type: 'integer', default: 100_000, help: 'secrets for snapshot, restore and reopen' },
    seconds: { type: 'number', default: 3, help: 'seconds per append/apply measurement' },
  },
});
const SNAPSHOT_ENTRIES = 10_000; // COFFER_SNAPSHOT_ENTRIES default

const dirs = [];
const tmp = () => {
  const d = mkdtempSync(path.join(tmpdir(), 'coffer-bench-'));
  dirs.push(d);
  return d;
};
const du = (d) => readdirSync(d, { recursive: true }).reduce((n, f) => {
  const s = statSync(path.join(d, f));
  return s.isFile() ? n + s.size : n;
}, 0);
const mib = (b) => `${(b / 1048576).toFixed(1)} MiB`;
const now = () => performance.now();

const T0 = 1_700_000_000_000;
const sealed = (n, i) => ({
  formatVersion: 1,
  alg: 'xchacha20poly1305',
  nonce: new Uint8Array(24).fill(i & 0xff),
  ciphertext: new Uint8Array(n).fill((i * 7) & 0xff),
  wrappedDek: new Uint8Array(60).fill((i * 3) & 0xff),
  kmsKeyId: 'local:k1',
});
const putCmd = (name, version, i, size = 256) =>
  encodeCommand({ type: 'secret.put', requestId: `r${i}`, at: T0 + i, name, version, cas: null, sealed: sealed(size, i), format: 'raw', description: null, rotation: null, actor: 'bench' });

async function appendBench() {
  const store = await openNodeStore(tmp());
  const data = putCmd('bench/x', 1, 0);
  let index = 0;
  const entry = () => ({ index: ++index, term: 1, type: 'normal', data });
  // one writer: each append waits for its own fsync
  let n = 0;
  let t = now();
  while (now() - t < SECONDS * 1000) {
    await store.log.append([entry()], { term: 1, vote: 'n1', commit: index }, { sync: true });
    n++;
  }
  const single = n / ((now() - t) / 1000);
  // 64 concurrent proposals: each appends its own entry and waits for durability
  const before = store.writerStats.syncedWrites;
  n = 0;
  t = now();
  const deadline = t + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (now() < deadline) {
        await store.log.append([entry()], undefined, { sync: true });
        n++;
      }
    }),
  );
  const elapsed = (now() - t) / 1000;
  const group = n / elapsed;
  const writes = store.writerStats.syncedWrites - before;
  await store.close();
  console.log(`synced appends, 1 writer:        ${single.toFixed(0)} /s`);
  console.log(`synced appends, 64 concurrent:   ${group.toFixed(0)} /s  (${writes} fsynced batches, ${(n / writes).toFixed(1)} appends per fsync)`);
  console.log(`group commit speed-up:           ${(group / single).toFixed(1)}x`);
}

async function applyAndSnapshotBench() {
  const dir = tmp();
  let store = await openNodeStore(dir);
  const BATCH = 1000;
  let index = 0;
  let t = now();
  for (let i = 0; i < SECRETS; i += BATCH) {
    const entries = [];
    for (let j = i; j < Math.min(SECRETS, i + BATCH); j++) entries.push({ index: ++index, term: 1, type: 'normal', data: putCmd(`app/${String(j).padStart(6, '0')}/db-password`, 1, j) });
    await store.applyEntries(entries);
  }
  const applyRate = SECRETS / ((now() - t) / 1000);
  console.log(`apply (secret.put, 256 B, batches of ${BATCH}): ${applyRate.toFixed(0)} entries/s  (${SECRETS} secrets)`);

  t = now();
  const snap = await store.createSnapshot();
  console.log(`snapshot of ${SECRETS} secrets:      ${((now() - t) / 1000).toFixed(2)} s, ${mib(snap.data.length)}`);
  const digest = store.state.stateDigest();

  const target = await openNodeStore(tmp());
  t = now();
  await target.restoreSnapshot(snap.data);
  console.log(`restore of ${SECRETS} secrets:       ${((now() - t) / 1000).toFixed(2)} s  (digest ${target.state.stateDigest() === digest ? 'matches' : 'DIFFERS'})`);
  await target.close();

  await store.close();
  t = now();
  store = await openNodeStore(dir);
  console.log(`reopen (restart) with ${SECRETS} secrets: ${((now() - t) / 1000).toFixed(2)} s  (digest ${store.state.stateDigest() === digest ? 'matches' : 'DIFFERS'})`);
  await store.close();
}

async function diskBench() {
  const dir = tmp();
  const store = await openNodeStore(dir);
  const NAMES = 1000;
  const BATCH = 500;
  const latest = new Array(NAMES).fill(0);
  let index = 0;
  let sinceSnap = 0;
  const t = now();
  for (let i = 0; i < OVERWRITES; i += BATCH) {
    const entries = [];
    for (let j = i; j < Math.min(OVERWRITES, i + BATCH); j++) {
      const k = j % NAMES;
      entries.push({ index: ++index, term: 1, type: 'normal', data: putCmd(`churn/${k}`, ++latest[k], j) });
    }
    // The Raft path: append (group-committed, synced as Raft requires), then apply.
    await store.log.append(entries, { term: 1, vote: 'n1', commit: index }, { sync: true });
    await store.applyEntries(entries);
    sinceSnap += entries.length;
    if (sinceSnap >= SNAPSHOT_ENTRIES) {
      const snap = await store.createSnapshot();
      await store.log.saveSnapshot({ index: snap.index, term: snap.term, confState: { voters: ['n1'], learners: [] } }, snap.data);
      await store.log.compact(snap.index);
      sinceSnap = 0;
    }
  }
  const secs = (now() - t) / 1000;
  let live = 0;
  for await (const [k, v] of store.db.iterator()) live += Buffer.byteLength(k) + v.length;
  await store.close();
  const disk = du(dir);
  console.log(`${OVERWRITES} overwrites of ${NAMES} names (append+apply, snapshot+compact every ${SNAPSHOT_ENTRIES}): ${secs.toFixed(1)} s`);
  console.log(`  live data (keys+values, incl. saved snapshot and log tail): ${mib(live)}`);
  console.log(`  on disk: ${mib(disk)}  (bound 2x live + 64 MiB = ${mib(2 * live + 64 * 1048576)}: ${disk <= 2 * live + 64 * 1048576 ? 'within' : 'EXCEEDED'})`);
}

/** CPU the integrity tags add to one secret.put: its Raft entry, hard state, and the records its apply writes. */
function tagCostBench() {
  if (integrity === undefined) return;
  const entry = putCmd('app/000001/db-password', 3, 1);
  // What one write stores: the entry (~command size), hard state, the secret's metadata (grows with
  // versions; ~400 B with a few), the sealed blob (~350 B), an idempotency entry, two counters, applied.
  const records = [['rl0000000000000001', new Uint8Array(entry.length + 12)], ['rh', new Uint8Array(24)], ['msapp/000001/db-password', new Uint8Array(400)], ['bcapp/000001/db-password\u00003', new Uint8Array(360)], ['md0000000000000001', new Uint8Array(48)], ['mgdedupseq', new Uint8Array(9)], ['a', new Uint8Array(17)]];
  const N = 50_000;
  let t = now();
  for (let i = 0; i < N; i++) for (const [k, v] of records) integrity.sealRecord(k, v);
  const seal = ((now() - t) * 1000) / N;
  const sealedRecs = records.map(([k, v]) => [k, integrity.sealRecord(k, v)]);
  t = now();
  for (let i = 0; i < N; i++) for (const [k, v] of sealedRecs) integrity.openRecord(k, v);
  const open = ((now() - t) * 1000) / N;
  console.log(`integrity tags per secret.put:   ${records.length} records, ${seal.toFixed(1)} µs to tag, ${open.toFixed(1)} µs to check (CPU, one core)`);
}

try {
  console.log(`@coffer/state storage benchmark (node ${process.version}; ${SECONDS}s per append run; integrity tags ${integrity === undefined ? 'NOT in this build' : 'on'})`);
  tagCostBench();
  await appendBench();
  await applyAndSnapshotBench();
  await diskBench();
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}
