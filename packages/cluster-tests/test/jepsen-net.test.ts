/**
 * Network faults against real node processes in network namespaces (one per node, a bridge
 * namespace, a client namespace running the workload): leader isolation, minority/majority split,
 * one-way drop, random packet loss — nftables rules inside the node namespaces.
 *
 * Needs root, `ip` and `nft`. Without them this FAILS (it never skips): CI runs as root.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NamespaceScenarioCluster, netNemesis } from '../src/jepsen/net-scenario';
import { DIST_JEPSEN, NETNS_PREFIX, NetnsCluster, assertNamespaceAddress, cleanupStale, requireNamespaceSupport } from '../src/jepsen/netns';
import { NetNemesis } from '../src/jepsen/net-nemesis';
import { runScenario, summaryLine, type ScenarioResult } from '../src/jepsen/run';
import { checkNamespacedAddress } from '../src/jepsen/workload';
import type { NetFaultKind } from '../src/jepsen/net-nemesis';

jest.setTimeout(150_000);

const SEED = Number(process.env['JEPSEN_SEED'] ?? 7);
const results: ScenarioResult[] = [];

function ourNamespaces(): string[] {
  const out = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  return out
    .split('\n')
    .map((l) => l.split(/\s+/)[0] ?? '')
    .filter((n) => n.startsWith(`${NETNS_PREFIX}${process.pid}-`));
}

beforeAll(() => {
  // Loud, not a skip: these tests are required to run.
  requireNamespaceSupport();
  if (!existsSync(path.join(DIST_JEPSEN, 'workload-main.js'))) throw new Error('build first (tsc -b): the workload runs from dist inside the client namespace');
  cleanupStale();
});

afterAll(() => {
  if (results.length > 0) process.stdout.write(`jepsen-net summary: ${summaryLine(results)}\n`);
});

describe('network-namespace harness', () => {
  test('the guards refuse addresses outside the namespaces, and private addresses from the root namespace', () => {
    expect(() => assertNamespaceAddress('http://10.77.0.11:8200')).not.toThrow();
    expect(() => assertNamespaceAddress('http://10.0.0.1:8200')).toThrow(/refuses/);
    expect(() => assertNamespaceAddress('http://127.0.0.1:8200')).toThrow(/refuses/);
    // The test process lives in a namespace with a default route: a private address could leave.
    expect(() => checkNamespacedAddress('http://10.77.0.11:8200')).toThrow(/refusing/);
    expect(() => checkNamespacedAddress('http://127.0.0.1:8200')).not.toThrow();
  });

  test('cleanupStale removes the namespaces of runs whose process is gone, and only those', () => {
    const dead = `${NETNS_PREFIX}999999999-0dead0-n1`; // above any pid_max: no such process
    const live = `${NETNS_PREFIX}${process.pid}-11ve00-n1`;
    try {
      for (const ns of [dead, live]) expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
      const removed = cleanupStale();
      expect(removed).toContain(dead);
      expect(removed).not.toContain(live);
      expect(ourNamespaces()).toEqual([live]);
    } finally {
      for (const ns of [dead, live]) spawnSync('ip', ['netns', 'del', ns]);
    }
    expect(ourNamespaces()).toEqual([]);
  });

  test('nodes are reachable only from inside; nftables rules cut exactly what they say; teardown leaves nothing', async () => {
    const c = new NetnsCluster();
    try {
      await c.start();
      expect(ourNamespaces().sort()).toEqual([c.bridgeNs, c.clientNs, ...c.nodes.map((n) => n.ns)].sort());
      // No route out of a node namespace, and the root namespace has no interface in the subnet.
      expect(spawnSync('ip', ['-n', c.nodes[0]!.ns, 'route', 'show', 'default'], { encoding: 'utf8' }).stdout.trim()).toBe('');
      expect(spawnSync('ip', ['-4', 'addr', 'show'], { encoding: 'utf8' }).stdout).not.toMatch(/10\.77\.0\./);
      const [n1, n2, n3] = c.nodes as [NonNullable<(typeof c.nodes)[0]>, NonNullable<(typeof c.nodes)[0]>, NonNullable<(typeof c.nodes)[0]>];
      // A TCP connect to the node's Raft port from inside a namespace (1 s budget).
      const script = "const s=require('net').connect(+process.argv[2],process.argv[1]);s.setTimeout(1000,()=>process.exit(1));s.on('connect',()=>process.exit(0));s.on('error',()=>process.exit(1))";
      const ping = async (from: string, to: string): Promise<boolean> => (await c.exec(from, [process.execPath, '-e', script, to, '8201'], 10_000)).code === 0;
      expect(await ping(n1.ns, n2.ip)).toBe(true);
      const nem = new NetNemesis(c);
      nem.apply({ kind: 'one-way', from: 'n1', to: 'n2' });
      expect(await ping(n1.ns, n2.ip)).toBe(false);
      expect(await ping(n1.ns, n3.ip)).toBe(true);
      expect(await ping(c.clientNs, n1.ip)).toBe(true);
      nem.heal();
      nem.apply({ kind: 'isolate', nodes: ['n3'] });
      expect(await ping(n3.ns, n1.ip)).toBe(false);
      expect(await ping(n2.ns, n3.ip)).toBe(false);
      expect(await ping(n1.ns, n2.ip)).toBe(true);
      expect(await ping(c.clientNs, n3.ip)).toBe(true);
      nem.heal();
      expect(await ping(n3.ns, n1.ip)).toBe(true);
      expect(() => c.http('http://127.0.0.1:1', 'GET', '/')).toThrow(/refuses/);
    } finally {
      await c.stop();
    }
    expect(ourNamespaces()).toEqual([]);
    expect(existsSync(c.root)).toBe(false);
  });
});

describe('network faults with the workload and the linearizability checker', () => {
  const kinds: [NetFaultKind, number][] = [
    ['isolate-leader', SEED],
    ['split', SEED + 1],
    ['one-way', SEED + 2],
    ['loss', SEED + 3],
  ];
  test.each(kinds)('%s (seed %d): linearizable, no acknowledged write lost, converged, available', async (kind, seed) => {
    const r = await runScenario({
      name: `net-${kind}`,
      seed,
      durationMs: 14_000,
      workers: 6,
      nemesis: netNemesis({ kinds: [kind] }),
      makeCluster: () => new NamespaceScenarioCluster(),
      log: (m) => process.stdout.write(`[net-${kind}] ${m}\n`),
    });
    results.push(r);
    process.stdout.write(
      `[net-${kind}] ops ${r.ops} (ok ${r.stats.ok}, fail ${r.stats.fail}, unknown ${r.stats.unknown}); faults: ${r.faults
        .map((f) => `${f.detail} recovery ${f.recoveryMs === undefined || f.recoveryMs === null ? String(f.recoveryMs) : Math.round(f.recoveryMs)} ms${f.noQuorumMaxMs === undefined ? '' : `, minority max ${f.noQuorumMaxMs} ms [${[...new Set(f.noQuorumStatuses)].join(',')}]`}`)
        .join('; ')}; ${r.elapsedMs} ms\n`,
    );
    expect(r.failures).toEqual([]);
    expect(r.faults.length).toBeGreaterThan(0);
    expect(r.violations).toBe(0);
    expect(r.missingAcked).toEqual([]);
    expect(r.digestsEqual).toBe(true);
    expect(r.stats.ok).toBeGreaterThan(50);
    for (const f of r.faults) {
      expect(f.recoveryMs).not.toBeNull();
      if (kind !== 'loss') expect({ fault: f.detail, recoveryMs: f.recoveryMs !== null && f.recoveryMs !== undefined && f.recoveryMs <= 2 * 1000 }).toEqual({ fault: f.detail, recoveryMs: true });
      if (kind === 'isolate-leader' || kind === 'split') {
        expect(f.noQuorumStatuses?.length).toBeGreaterThan(0);
        expect(new Set(f.noQuorumStatuses)).toEqual(new Set([503]));
      }
    }
    expect(ourNamespaces()).toEqual([]);
  });
});
