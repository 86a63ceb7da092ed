/**
 * The WireGuard overlay, tested for real: the operator's generator (deploy/wireguard/coffer-wg.mjs)
 * writes the keys and configs; `wg-quick up` brings them up on userspace wireguard-go inside network
 * namespaces joined by a bridge; three `./bin/coffer server` processes listen (API and Raft) on the
 * overlay addresses only. Shows: the cluster forms over WireGuard; writes and linearizable reads
 * work; a client peer on the allowlist reads, a client peer off it cannot, a LAN host that is no
 * peer cannot even connect; the Raft port answers nodes only — not the LAN (directly or routed
 * to the overlay address), not client peers — and the generated firewall is what stops the routed
 * case.
 *
 * Needs root, `ip`, `nft`, `wireguard-go`, `wg`/`wg-quick` and /dev/net/tun. Not root: skipped
 * with a printed reason. Root without the tools: FAILS (CI runs as root; scripts/system-deps.sh
 * installs them). Run alone: ./node_modules/.bin/jest packages/cluster-tests/test/wireguard.test.ts
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkHistory, describeVerdict } from '../src/jepsen/checker';
import { loadHistory } from '../src/jepsen/history';
import { DIST_JEPSEN, NETNS_PREFIX } from '../src/jepsen/netns';
import { OverlayCluster, WG_GENERATOR, cleanupStaleOverlay, type OverlayNode } from '../src/wireguard/overlay';

jest.setTimeout(90_000);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
if (!isRoot) process.stdout.write('wireguard.test.ts SKIPPED: not root — it creates network namespaces, tun devices and nftables rules (CI runs it as root)\n');
const describeRoot = isRoot ? describe : describe.skip;

function gen(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [WG_GENERATOR, ...args], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function mode(p: string): number {
  return statSync(p).mode & 0o777;
}

describe('deploy/wireguard/coffer-wg.mjs (no network)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'coffer-wg-gen-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('--help explains; bad usage exits 2 naming the option', () => {
    const h = gen(['--help']);
    expect(h.status).toBe(0);
    for (const word of ['--nodes', '--clients', '--subnet', '--listen-port', '--keygen', 'COFFER_RAFT_ADDR', 'nftables']) expect(h.stdout).toContain(word);
    const bad = gen(['--nodes', 'n1=10.0.0.1', '--subnet', '10.8.0.1/24', '--out', dir]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--subnet: .*host bits/);
    expect(gen(['--out', dir]).status).toBe(2);
  });

  test('configs, key modes, the printed COFFER_* values; keys are kept on a re-run', () => {
    const out = path.join(dir, 'o');
    const r = gen(OverlayCluster.generatorArgs(out, 'node'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Node's crypto X25519");
    expect(r.stdout).toContain('COFFER_RAFT_ADDR=10.78.0.1:8201');
    expect(r.stdout).toContain('COFFER_ADVERTISE_RAFT=http://10.78.0.3:8201');
    expect(r.stdout).toContain('COFFER_INITIAL_CLUSTER=n1=http://10.78.0.1:8201,n2=http://10.78.0.2:8201,n3=http://10.78.0.3:8201');
    expect(mode(path.join(out, 'keys'))).toBe(0o700);
    for (const name of ['n1', 'n2', 'n3', 'svc', 'oth']) {
      expect(mode(path.join(out, 'keys', `${name}.key`))).toBe(0o600);
      expect(mode(path.join(out, `${name}.conf`))).toBe(0o600);
      // Node's X25519 keys are WireGuard keys: wg derives the same public key.
      const priv = readFileSync(path.join(out, 'keys', `${name}.key`), 'utf8');
      const pub = spawnSync('wg', ['pubkey'], { input: priv, encoding: 'utf8' });
      if (pub.error === undefined) expect(pub.stdout.trim()).toBe(readFileSync(path.join(out, 'keys', `${name}.pub`), 'utf8').trim());
    }
    const n3 = readFileSync(path.join(out, 'n3.conf'), 'utf8');
    expect(n3).toContain('Address = 10.78.0.3/24');
    expect(n3).toContain('ListenPort = 51821');
    expect(n3).toMatch(/PostUp = nft .*iifname != \{ "lo", "%i" \} ip daddr 10\.78\.0\.3 drop/);
    expect(n3).toMatch(/tcp dport 8201 ip saddr != \{ 10\.78\.0\.1, 10\.78\.0\.2, 10\.78\.0\.3 \} drop/);
    expect(n3.match(/\[Peer\]/g)).toHaveLength(4);
    const svc = readFileSync(path.join(out, 'svc.conf'), 'utf8');
    expect(svc).toContain('Endpoint = 10.77.0.13:51821');
    expect(svc).not.toContain('ListenPort');
    expect(svc).not.toContain('PostUp');
    const before = readFileSync(path.join(out, 'keys', 'n1.key'), 'utf8');
    expect(gen(['--nodes', 'n1=10.77.0.11,n2=10.77.0.12,n3=10.77.0.13:51821', '--clients', 'svc,oth,late', '--subnet', '10.78.0.0/24', '--keygen', 'node', '--out', out]).status).toBe(0);
    expect(readFileSync(path.join(out, 'keys', 'n1.key'), 'utf8')).toBe(before);
    expect(readFileSync(path.join(out, 'n1.conf'), 'utf8')).toContain('AllowedIPs = 10.78.0.103/32');
  });
});

function ourLeftovers(c: OverlayCluster): string[] {
  const left: string[] = [];
  const ns = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout ?? '';
  for (const l of ns.split('\n')) if (l.startsWith(c.run)) left.push(`namespace ${l.split(/\s+/)[0]}`);
  // Absent where wg-quick used the kernel module (no wireguard-go ever ran).
  const socks = existsSync('/var/run/wireguard') ? readdirSync('/var/run/wireguard') : [];
  for (const i of c.interfaceNames()) if (socks.includes(`${i}.sock`)) left.push(`socket ${i}.sock`);
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
    } catch {
      continue;
    }
    // A zombie has an empty cmdline: only live processes count.
    if (/wireguard-go/.test(cmd) && c.interfaceNames().some((i) => cmd.includes(i))) left.push(`process ${pid} ${cmd}`);
  }
  const stale = spawnSync('ip', ['-4', 'addr', 'show'], { encoding: 'utf8' }).stdout ?? '';
  if (/10\.7[78]\.0\./.test(stale)) left.push('an address of the test subnets in the root namespace');
  return left;
}

describeRoot('a 3-node cluster on a WireGuard overlay (namespaces, wireguard-go, wg-quick)', () => {
  let c: OverlayCluster;
  let failed = false;
  const t0 = Date.now();

  beforeAll(async () => {
    cleanupStaleOverlay();
    c = new OverlayCluster();
    try {
      await c.start();
    } catch (err) {
      failed = true;
      throw err;
    }
  });

  /** A test whose failure keeps the run's logs (temp dir) for reading. */
  const step = (name: string, fn: () => Promise<void>): void => {
    test(name, async () => {
      try {
        await fn();
      } catch (err) {
        failed = true;
        throw err;
      }
    });
  };

  afterAll(async () => {
    if (c === undefined) return;
    await c.stop(failed);
    if (failed) process.stdout.write(`wireguard test: logs kept in ${c.root}\n`);
    expect(ourLeftovers(c)).toEqual([]);
    expect(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout).not.toContain(`${NETNS_PREFIX}${process.pid}-`);
    const phases = Object.entries(c.timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ');
    process.stdout.write(`wireguard test: ${((Date.now() - t0) / 1000).toFixed(1)} s including set-up and teardown (${phases})\n`);
  });

  step('the cluster forms over WireGuard: members on overlay addresses, nothing listening elsewhere', async () => {
    const leader = await c.leader();
    let cluster: { leader?: string; members?: { id: string; raftAddr: string; healthy: boolean }[] } = {};
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = await c.http('svc', leader, 'GET', '/v1/cluster');
      cluster = r.body as typeof cluster;
      if (r.status === 200 && cluster.members?.length === 3 && cluster.members.every((m) => m.healthy)) break;
      await new Promise((res) => setTimeout(res, 200));
    }
    const current = c.nodes.find((n) => n.id === cluster.leader);
    expect(current).toBeDefined();
    expect(cluster.members?.map((m) => [m.id, m.raftAddr, m.healthy]).sort()).toEqual(c.nodes.map((n) => [n.id, n.raft, true]));
    for (const n of c.nodes) {
      // API and Raft bound to the overlay address only.
      expect(c.listeners(n.ns)).toEqual([`${n.overlay}:8200`, `${n.overlay}:8201`]);
      // Node-to-node traffic is routed into the WireGuard interface, not onto the bridge.
      for (const m of c.nodes) if (m !== n) expect(c.routeGet(n.ns, m.overlay)).toMatch(new RegExp(`dev ${n.iface}\\b`));
    }
    // Raft crossed WireGuard: the leader's interface has exchanged traffic with both other nodes
    // (followers talk only to the leader, so only its peers are sure to have traffic).
    const keys = Object.fromEntries(c.overlay.nodes.map((x) => [x.publicKey, x.id]));
    const transfer = c
      .wgShow(current as OverlayNode, 'transfer')
      .trim()
      .split('\n')
      .map((l) => l.split('\t'))
      .filter(([k]) => keys[k ?? ''] !== undefined)
      .map(([k, rx, tx]) => [keys[k ?? ''], Number(rx) > 0, Number(tx) > 0]);
    expect(transfer.sort()).toEqual(c.nodes.filter((n) => n !== current).map((n) => [n.id, true, true]));
    expect(c.routeGet(c.svc.ns, c.nodes[0]!.overlay)).toMatch(new RegExp(`dev ${c.svc.iface}\\b`));
  });

  step('writes (through a follower too) and linearizable reads work over the overlay', async () => {
    const leader = await c.leader();
    const follower = c.nodes.find((n) => n !== leader) as OverlayNode;
    let w = await c.http('svc', follower, 'PUT', '/v1/secrets/wg/hello', { value: 'over-the-overlay' });
    for (let i = 0; i < 20 && w.status === 503; i++) {
      await new Promise((res) => setTimeout(res, 250));
      w = await c.http('svc', follower, 'PUT', '/v1/secrets/wg/hello', { value: 'over-the-overlay' });
    }
    expect(w.status).toBe(200);
    for (const n of c.nodes) {
      const r = await c.http('svc', n, 'GET', '/v1/secrets/wg/hello');
      expect([n.id, r.status, (r.body as { value?: string }).value]).toEqual([n.id, 200, 'over-the-overlay']);
    }
    // A concurrent history against all three nodes, from the client peer, checked for linearizability.
    const hist = path.join(c.root, 'history.jsonl');
    const endpoints = c.nodes.map((n) => n.api).join(',');
    const run = await c.exec(c.svc.ns, [process.execPath, path.join(DIST_JEPSEN, 'workload-main.js'), 'run', '--endpoints', endpoints, '--token-file', c.tokenFile, '--duration-ms', '3000', '--seed', '16', '--workers', '4', '--keys', 'wg/a,wg/b', '--out', hist], 30_000);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const stats = JSON.parse(run.stdout.trim().split('\n').pop() as string) as { ok: number; unexpected: number };
    expect(stats.unexpected).toBe(0);
    const ops = loadHistory(hist);
    const okReads = ops.filter((o) => o.kind === 'read' && o.outcome === 'ok' && o.result?.value !== null).length;
    const okWrites = ops.filter((o) => o.kind !== 'read' && o.outcome === 'ok').length;
    expect(okReads).toBeGreaterThan(5);
    expect(okWrites).toBeGreaterThan(5);
    const verdict = checkHistory(ops);
    if (!verdict.valid) throw new Error(describeVerdict(verdict));
    expect(verdict.valid).toBe(true);
  });

  step('a client peer on the allowlist reads; a client peer off it gets 403; a LAN host cannot connect', async () => {
    const n1 = c.nodes[0]!;
    expect((await c.http('svc', n1, 'PUT', '/v1/secrets/wg/allowlisted', { value: 'for-svc-only' })).status).toBe(200);
    const mine = await c.http('svc', n1, 'GET', '/v1/secrets/wg/allowlisted');
    expect([mine.status, (mine.body as { value?: string }).value]).toEqual([200, 'for-svc-only']);
    // Same token, same node, from the other peer: connected (health answers), refused by the allowlist.
    const health = await c.http('oth', n1, 'GET', '/v1/sys/health?standbyok=true', undefined, { token: null });
    expect(health.status).toBe(200);
    for (const n of c.nodes) {
      const theirs = await c.http('oth', n, 'GET', '/v1/secrets/wg/allowlisted');
      expect([n.id, theirs.status, (theirs.body as { error?: { code?: string } }).error?.code]).toEqual([n.id, 403, 'not_allowlisted']);
      expect(JSON.stringify(theirs.body)).not.toContain('for-svc-only');
    }
    // The LAN host has no route into the overlay at all.
    expect(c.routeGet(c.out.ns, n1.overlay)).toMatch(/^error: .*unreachable/i);
    expect(await c.probe(c.out.ns, [`${n1.overlay}:8200`])).toEqual({ [`${n1.overlay}:8200`]: 'unreachable' });
  });

  /** The LAN host routes the overlay subnet to a node's LAN address, as any host on the LAN could. */
  const routeOverlayVia = async (n: OverlayNode): Promise<void> => {
    const r = await c.exec(c.out.ns, ['ip', 'route', 'replace', '10.78.0.0/24', 'via', n.underlay]);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(c.routeGet(c.out.ns, n.overlay)).toMatch(new RegExp(`via ${n.underlay.replace(/\./g, '\\.')} dev eth0`));
  };

  step('the Raft port is unreachable from outside the overlay, and from client peers', async () => {
    const [n1, n2] = c.nodes as [OverlayNode, OverlayNode];
    // From the LAN, at the node's own (underlay) address: nothing listens there. `refused` (a RST
    // came back) also shows the LAN host does reach the node.
    expect(c.routeGet(c.out.ns, n1.underlay)).toMatch(/dev eth0/);
    expect(await c.probe(c.out.ns, [`${n1.underlay}:8201`, `${n1.underlay}:8200`])).toEqual({ [`${n1.underlay}:8201`]: 'refused', [`${n1.underlay}:8200`]: 'refused' });
    // A LAN host that routes the overlay subnet to the node (Linux would accept a packet for any
    // local address on any interface): the generated firewall drops it.
    await routeOverlayVia(n1);
    expect(await c.probe(c.out.ns, [`${n1.overlay}:8201`, `${n1.overlay}:8200`])).toEqual({ [`${n1.overlay}:8201`]: 'timeout', [`${n1.overlay}:8200`]: 'timeout' });
    // Client peers are on the overlay but are not members: API yes, Raft no. Control: a member
    // reaches both.
    const [svc, oth, member] = await Promise.all([c.svc.ns, c.oth.ns, n2.ns].map((ns) => c.probe(ns, [`${n1.overlay}:8201`, `${n1.overlay}:8200`])));
    expect({ svc, oth, member }).toEqual({
      svc: { [`${n1.overlay}:8201`]: 'timeout', [`${n1.overlay}:8200`]: 'connected' },
      oth: { [`${n1.overlay}:8201`]: 'timeout', [`${n1.overlay}:8200`]: 'connected' },
      member: { [`${n1.overlay}:8201`]: 'connected', [`${n1.overlay}:8200`]: 'connected' },
    });
  });

  step('control: without the generated firewall the routed LAN host would reach the Raft port', async () => {
    const n1 = c.nodes[0]!;
    const table = c.overlay.firewallTable;
    expect(table).toBe('coffer_overlay');
    const del = await c.exec(n1.ns, ['nft', 'delete', 'table', 'inet', table as string]);
    expect(del.code).toBe(0);
    await routeOverlayVia(n1);
    expect(await c.probe(c.out.ns, [`${n1.overlay}:8201`])).toEqual({ [`${n1.overlay}:8201`]: 'connected' });
  });
});
