// A short tour of @coffer/raft (the built package): an in-memory three-node cluster elects a
// leader, commits a few proposals, loses its leader, and elects another. Prints what happens
// and exits. `bash scripts/start.sh` runs this until the server package exists.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { RawNode, MemoryStorage } = require('../packages/raft/dist/index.js');

const ids = ['n1', 'n2', 'n3'];
const enc = new TextEncoder();
const dec = new TextDecoder();

function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const nodes = new Map();
for (const [i, id] of ids.entries()) {
  const storage = MemoryStorage.bootstrap(ids);
  nodes.set(id, { id, storage, node: new RawNode({ id, electionTicks: 10, heartbeatTicks: 1, rng: seeded(i + 42) }, storage), up: true, kv: [] });
}

let tick = 0;
let inbox = [];
let lastLeader = null;
const log = (s) => console.log(`[tick ${String(tick).padStart(3)}] ${s}`);

function pump() {
  for (let busy = true; busy; ) {
    busy = false;
    for (const n of nodes.values()) {
      if (!n.up || !n.node.hasReady()) continue;
      busy = true;
      const rd = n.node.ready();
      // Persist first, then send, then apply: the order written on the Ready type.
      if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
      n.storage.append(rd.entries);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      inbox.push(...rd.messages);
      for (const e of rd.committedEntries) {
        if (e.type === 'normal' && e.data.length > 0) {
          n.kv.push(dec.decode(e.data));
          log(`${n.id} applied #${e.index}: ${dec.decode(e.data)}`);
        }
      }
      n.node.advance();
    }
    const msgs = inbox;
    inbox = [];
    for (const m of msgs) {
      const to = nodes.get(m.to);
      if (to.up && nodes.get(m.from).up) {
        to.node.step(m);
        busy = true;
      }
    }
  }
  const leader = [...nodes.values()].find((n) => n.up && n.node.status().raftState === 'leader');
  if (leader && leader.id !== lastLeader) {
    log(`${leader.id} is the leader of term ${leader.node.status().term}`);
    lastLeader = leader.id;
  }
  return leader ?? null;
}

function runUntil(cond, max = 200) {
  for (let i = 0; i < max; i++) {
    const l = pump();
    if (cond(l)) return l;
    tick++;
    for (const n of nodes.values()) if (n.up) n.node.tick();
  }
  throw new Error('the demo did not converge');
}

console.log('Coffer consensus demo: three in-memory @coffer/raft nodes (PreVote, CheckQuorum on)\n');
let leader = runUntil((l) => l !== null);
for (const cmd of ['put db/password (sealed)', 'put api/key (sealed)', 'delete old/secret']) {
  const { index, term } = leader.node.propose(enc.encode(cmd));
  log(`${leader.id} proposed "${cmd}" at index ${index}, term ${term}`);
}
runUntil(() => [...nodes.values()].every((n) => n.kv.length === 3));

log(`crashing the leader ${leader.id}`);
leader.up = false;
const old = leader.id;
leader = runUntil((l) => l !== null && l.id !== old);
const { index } = leader.node.propose(enc.encode('put after/failover'));
log(`${leader.id} proposed "put after/failover" at index ${index}`);
runUntil(() => [...nodes.values()].filter((n) => n.up).every((n) => n.kv.length === 4));

console.log('\nstate on the surviving nodes:');
for (const n of nodes.values()) if (n.up) console.log(`  ${n.id}: ${n.kv.join(' | ')}`);
console.log('\nThe server (packages/node) will replace this demo with a local three-node cluster.');
