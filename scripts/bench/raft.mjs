// `pnpm bench raft`: proposals committed per second by an in-memory 3-node @coffer/raft cluster
// on one core, with batching (many proposals per Ready/MsgApp). Every node persists to a
// MemoryStorage and applies committed entries; messages go straight from one node to another
// (or through the binary codec with --codec). Prints numbers; never fails on speed.
import { createRequire } from 'node:module';
import { benchOptions } from './lib/options.mjs';

const require = createRequire(import.meta.url);
const { RawNode, MemoryStorage, encodeMessages, decodeMessages } = require('../../packages/raft/dist/index.js');
// The shared seeded PRNG (packages/cluster-tests/src/prng.ts).
const { prng } = require('../../packages/cluster-tests/dist/prng.js');

const {
  total: TOTAL,
  batch: BATCH,
  size: SIZE,
  codec: useCodec,
} = benchOptions({
  usage: 'pnpm bench raft [--total N] [--batch N] [--size BYTES] [--codec]',
  options: {
    total: { type: 'integer', default: 1_000_000, help: 'proposals to commit' },
    batch: { type: 'integer', default: 1024, help: 'proposals per Ready' },
    size: { type: 'integer', min: 0, default: 16, help: 'bytes per proposal' },
    codec: { type: 'boolean', help: 'send messages through the binary codec' },
  },
});

function run(total, batch) {
  const ids = ['n1', 'n2', 'n3'];
  const nodes = new Map();
  for (const [i, id] of ids.entries()) {
    const storage = MemoryStorage.bootstrap(ids);
    const node = new RawNode(
      { id, electionTicks: 10, heartbeatTicks: 1, rng: prng(i + 1), maxSizePerMsg: 4 << 20, maxInflightMsgs: 256 },
      storage,
    );
    nodes.set(id, { id, storage, node, applied: 0, compactedTo: 0 });
  }
  let inbox = [];
  const pump = () => {
    let busy = true;
    while (busy) {
      busy = false;
      for (const n of nodes.values()) {
        if (!n.node.hasReady()) continue;
        busy = true;
        const rd = n.node.ready();
        if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
        n.storage.append(rd.entries);
        if (rd.hardState) n.storage.setHardState(rd.hardState);
        if (useCodec) {
          for (const to of ids) {
            const batchTo = rd.messages.filter((m) => m.to === to);
            if (batchTo.length) inbox.push(...decodeMessages(encodeMessages(batchTo)));
          }
        } else {
          for (const m of rd.messages) inbox.push(m);
        }
        for (const e of rd.committedEntries) if (e.type === 'normal' && e.data.length > 0) n.applied++;
        n.node.advance();
        // Keep memory flat: snapshot + compact every so often, as a real node would.
        const last = rd.committedEntries.at(-1);
        if (last && last.index - n.compactedTo > 200_000) {
          n.storage.createSnapshot(last.index, { voters: ids, learners: [] }, new Uint8Array(0));
          n.storage.compact(last.index - 1000);
          n.compactedTo = last.index;
        }
      }
      if (inbox.length) {
        busy = true;
        const msgs = inbox;
        inbox = [];
        for (const m of msgs) nodes.get(m.to).node.step(m);
      }
    }
  };
  const leader = nodes.get('n1');
  leader.node.campaign();
  pump();
  if (leader.node.status().raftState !== 'leader') throw new Error('no leader');
  const payload = new Uint8Array(SIZE).fill(7);
  const t0 = process.hrtime.bigint();
  let proposed = 0;
  while (proposed < total) {
    const n = Math.min(batch, total - proposed);
    for (let i = 0; i < n; i++) leader.node.propose(payload);
    proposed += n;
    pump();
    // A tick now and then, like a real driver (heartbeats, CheckQuorum).
    if ((proposed / batch) % 16 === 0) for (const x of nodes.values()) x.node.tick();
  }
  pump();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const n of nodes.values()) if (n.applied !== total) throw new Error(`${n.id} applied ${n.applied} of ${total}`);
  return { secs, rate: total / secs };
}

run(Math.min(100_000, TOTAL), BATCH); // warm-up
globalThis.gc?.();
const results = [];
for (let i = 0; i < 3; i++) results.push(run(TOTAL, BATCH));
results.sort((a, b) => b.rate - a.rate);
const best = results[0];
const median = results[1];
console.log(`raft: 3 nodes in one process, ${TOTAL.toLocaleString('en')} proposals of ${SIZE} bytes, batch ${BATCH}${useCodec ? ', via the binary codec' : ''}`);
console.log(`  committed and applied on all 3 nodes: median ${Math.round(median.rate).toLocaleString('en')} proposals/s (best ${Math.round(best.rate).toLocaleString('en')}/s, ${median.secs.toFixed(2)} s per run)`);
