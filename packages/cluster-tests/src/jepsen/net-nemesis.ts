/**
 * Network faults for a {@link NetnsCluster}: nftables rules inside the node namespaces (netem is
 * not available in this kernel, so loss is `numgen random mod 100 < N drop`).
 *
 * Every node namespace gets one table, `inet coffer_nemesis`, rewritten atomically (one `nft -f`
 * transaction) whenever the fault set changes; `heal()` empties it everywhere. Faults apply to
 * traffic between nodes; the client namespace keeps reaching every node (so an isolated leader
 * is still asked to serve, which is the point), except where `withClient` says otherwise.
 */
import type { NetnsCluster, NetNode } from './netns.js';

/** One network fault. */
export type NetFault =
  /** Cut these nodes off from every other node (both directions); the client still reaches them. */
  | { kind: 'isolate'; nodes: string[] }
  /** Nodes in different groups cannot talk (both directions). */
  | { kind: 'partition'; groups: string[][] }
  /** Packets from `from` to `to` are dropped; `to` → `from` still flows. */
  | { kind: 'one-way'; from: string; to: string }
  /** Every node drops this percentage of the packets it receives (from peers and clients). */
  | { kind: 'loss'; percent: number };

/** Describes a fault in one line. */
export function describeFault(f: NetFault): string {
  switch (f.kind) {
    case 'isolate':
      return `isolate ${f.nodes.join(',')}`;
    case 'partition':
      return `partition ${f.groups.map((g) => g.join(',')).join(' | ')}`;
    case 'one-way':
      return `drop ${f.from}->${f.to}`;
    case 'loss':
      return `loss ${f.percent}%`;
  }
}

const TABLE = 'coffer_nemesis';

/** Applies and heals network faults inside a cluster's namespaces. */
export class NetNemesis {
  private readonly cluster: NetnsCluster;
  private readonly active: NetFault[] = [];
  /** Every fault applied so far (for the run's summary). */
  readonly log: { atMs: number; action: string }[] = [];

  constructor(cluster: NetnsCluster) {
    this.cluster = cluster;
  }

  private node(id: string): NetNode {
    const n = this.cluster.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Adds a fault (on top of those active). */
  apply(f: NetFault): void {
    for (const id of f.kind === 'isolate' ? f.nodes : f.kind === 'partition' ? f.groups.flat() : f.kind === 'one-way' ? [f.from, f.to] : []) this.node(id);
    if (f.kind === 'loss' && !(Number.isInteger(f.percent) && f.percent > 0 && f.percent < 100)) throw new Error('loss percent must be 1..99');
    this.active.push(f);
    this.log.push({ atMs: Date.now(), action: describeFault(f) });
    this.sync();
  }

  /** Removes every fault. */
  heal(): void {
    this.active.length = 0;
    this.log.push({ atMs: Date.now(), action: 'heal' });
    this.sync();
  }

  /** The faults in force. */
  get faults(): readonly NetFault[] {
    return this.active;
  }

  /** The nftables ruleset of one node for the faults in force. */
  rulesFor(n: NetNode): { input: string[]; output: string[] } {
    const ipOf = (id: string): string => this.node(id).ip;
    const blockIn = new Set<string>();
    const blockOut = new Set<string>();
    let loss = 0;
    const others = this.cluster.nodes.filter((m) => m !== n).map((m) => m.id);
    for (const f of this.active) {
      if (f.kind === 'isolate') {
        const cut = f.nodes.includes(n.id) ? others.filter((o) => !f.nodes.includes(o)) : others.filter((o) => f.nodes.includes(o));
        for (const o of cut) {
          blockIn.add(ipOf(o));
          blockOut.add(ipOf(o));
        }
      } else if (f.kind === 'partition') {
        const mine = f.groups.find((g) => g.includes(n.id));
        for (const o of others) {
          const theirs = f.groups.find((g) => g.includes(o));
          if (mine !== undefined && theirs !== undefined && mine !== theirs) {
            blockIn.add(ipOf(o));
            blockOut.add(ipOf(o));
          }
        }
      } else if (f.kind === 'one-way') {
        if (f.from === n.id) blockOut.add(ipOf(f.to));
        if (f.to === n.id) blockIn.add(ipOf(f.from));
      } else {
        loss = Math.max(loss, f.percent);
      }
    }
    const input: string[] = [];
    const output: string[] = [];
    if (blockIn.size > 0) input.push(`ip saddr { ${[...blockIn].sort().join(', ')} } drop`);
    if (blockOut.size > 0) output.push(`ip daddr { ${[...blockOut].sort().join(', ')} } drop`);
    if (loss > 0) input.push(`ip saddr 10.77.0.0/24 numgen random mod 100 < ${loss} drop`);
    return { input, output };
  }

  private sync(): void {
    for (const n of this.cluster.nodes) {
      const { input, output } = this.rulesFor(n);
      // Create-then-delete makes the delete safe on a namespace without the table; the new table
      // replaces the old one in the same transaction.
      const script = [
        `table inet ${TABLE}`,
        `delete table inet ${TABLE}`,
        `table inet ${TABLE} {`,
        '  chain input {',
        '    type filter hook input priority 0; policy accept;',
        ...input.map((r) => `    ${r}`),
        '  }',
        '  chain output {',
        '    type filter hook output priority 0; policy accept;',
        ...output.map((r) => `    ${r}`),
        '  }',
        '}',
        '',
      ].join('\n');
      this.cluster.nft(n.ns, script);
    }
  }
}

/** Kinds of network fault a seeded nemesis (net-scenario.ts) draws from. */
export type NetFaultKind = 'isolate-leader' | 'split' | 'one-way' | 'loss';
