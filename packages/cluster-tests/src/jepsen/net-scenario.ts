/**
 * Network scenarios for `runScenario`: a {@link ScenarioCluster} backed by a {@link NetnsCluster}
 * (the workload and every request run inside the client namespace) and a {@link Nemesis} that
 * injects nftables faults — leader isolation, minority/majority split, one-way drop, random
 * loss — and measures availability while each fault is in force.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sleep } from '../harness.js';
import { loadHistory, nowMs, type Op } from './history.js';
import { NetNemesis, describeFault, type NetFault, type NetFaultKind } from './net-nemesis.js';
import { NetnsCluster, type NetNode, type NetnsClusterOptions } from './netns.js';
import { highestTerm, MAX_ELECTION_ROUNDS, probeWrite, recoveryLimit, type FaultRecord, type Nemesis, type NemesisContext, type ScenarioCluster } from './run.js';
import type { NodeFinalState, WorkloadOptions } from './workload.js';

/** A {@link ScenarioCluster} in network namespaces. */
export class NamespaceScenarioCluster implements ScenarioCluster {
  readonly ns: NetnsCluster;
  readonly nemesis: NetNemesis;

  constructor(opts: NetnsClusterOptions = {}) {
    this.ns = new NetnsCluster({ snapshotEntries: 300, ...opts });
    this.nemesis = new NetNemesis(this.ns);
  }

  get endpoints(): string[] {
    return this.ns.nodes.map((n) => n.api);
  }

  get token(): string {
    return this.ns.bootstrapToken;
  }

  get electionMs(): number {
    return this.ns.electionMs;
  }

  get logDir(): string {
    return this.ns.root;
  }

  async start(): Promise<void> {
    try {
      await this.ns.start();
    } catch (err) {
      await this.ns.stop(true).catch(() => undefined);
      throw err;
    }
  }

  async stop(keep: boolean): Promise<void> {
    await this.ns.stop(keep);
  }

  /** Runs `workload-main.js run` inside the client namespace and loads the history it wrote. */
  async workload(opts: Omit<WorkloadOptions, 'endpoints' | 'token'>): Promise<Op[]> {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'coffer-netns-history-'));
    try {
      const out = path.join(dir, 'history.jsonl');
      const args = [
        'run',
        '--endpoints', this.endpoints.join(','),
        '--token-file', this.ns.tokenFile,
        '--duration-ms', String(opts.durationMs),
        '--seed', String(opts.seed),
        '--out', out,
        '--workers', String(opts.workers),
        '--keys', opts.keys.join(','),
        '--request-timeout-ms', String(opts.requestTimeoutMs),
        '--first-id', String(opts.firstId ?? 1),
      ];
      const r = await this.ns.runClient('workload-main.js', args, opts.durationMs + opts.requestTimeoutMs + 60_000);
      if (r.code !== 0) throw new Error(`workload in ${this.ns.clientNs} exited with ${r.code}: ${r.stderr.trim()}`);
      return loadHistory(out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  /** `workload-main.js final-read` inside the client namespace. */
  async finalRead(keys: readonly string[]): Promise<NodeFinalState[]> {
    const r = await this.ns.runClient('workload-main.js', ['final-read', '--endpoints', this.endpoints.join(','), '--token-file', this.ns.tokenFile, '--keys', keys.join(',')], 60_000);
    if (r.code !== 0) throw new Error(`final-read in ${this.ns.clientNs} exited with ${r.code}: ${r.stderr.trim()}`);
    return (JSON.parse(r.stdout) as { nodes: NodeFinalState[] }).nodes;
  }

  /** A read op through the relay agent, recorded like `perform` records it. */
  async performRead(o: Op, node: number, timeoutMs: number): Promise<void> {
    if (o.kind !== 'read') throw new Error('performRead only reads');
    const n = this.ns.nodes[node];
    if (n === undefined) throw new Error(`no node ${node}`);
    o.node = n.api;
    o.invokeMs = nowMs();
    const r = await this.ns.http(n, 'GET', `/v1/secrets/${o.key.split('/').map(encodeURIComponent).join('/')}`, undefined, { timeoutMs });
    const done = nowMs();
    const b = r.body as { version?: unknown; value?: unknown; error?: { code?: unknown } } | undefined;
    o.detail = r.status === 0 ? (r.error ?? 'error') : String(r.status);
    if (r.status === 200 && typeof b?.version === 'number' && typeof b.value === 'string') {
      o.outcome = 'ok';
      o.result = { version: b.version, value: b.value };
    } else if (r.status === 404 && b?.error?.code === 'not_found') {
      o.outcome = 'ok';
      o.result = { version: null, value: null };
    } else {
      o.outcome = 'fail';
    }
    o.completeMs = done;
  }

  /** One request through the relay agent. A request that got no answer throws, like `fetch`. */
  async request(node: number, method: string, p: string, body: unknown, timeoutMs: number): Promise<{ status: number; body: unknown }> {
    const n = this.ns.nodes[node];
    if (n === undefined) throw new Error(`no node ${node}`);
    const r = await this.ns.http(n, method, p, body, { timeoutMs });
    if (r.status === 0) {
      const err = new Error(`no answer from ${n.id}: ${r.error ?? 'error'}`);
      err.name = r.error === 'timeout' ? 'TimeoutError' : 'NetworkError';
      throw err;
    }
    return { status: r.status, body: r.body };
  }
}

/** Options of {@link netNemesis}. */
export interface NetNemesisOptions {
  /** Fault kinds to draw from. */
  kinds: readonly NetFaultKind[];
  /** How long each fault lasts (default 4–6 s). */
  faultMs?: [number, number];
  /** Healthy time between faults (default 1.5–3 s). */
  gapMs?: [number, number];
}

/**
 * A seeded nemesis of network faults for `runScenario` on a {@link NamespaceScenarioCluster}.
 *
 * Availability is measured for every fault: with a majority still connected, writes through the
 * majority side must succeed within 1.5 × election timeout per election round plus a second for
 * the election itself (`recoveryLimit`) (not enforced for
 * random loss, where TCP retransmission times dominate); nodes cut off from the majority must
 * answer requests with 503 — never hang until the client gives up.
 *
 * @param opts - see {@link NetNemesisOptions}
 * @returns the nemesis
 */
export function netNemesis(opts: NetNemesisOptions): Nemesis<NamespaceScenarioCluster> {
  const [fMin, fMax] = opts.faultMs ?? [4_000, 6_000];
  const [gMin, gMax] = opts.gapMs ?? [1_500, 3_000];
  return {
    name: `net(${opts.kinds.join(',')})`,
    async run(ctx: NemesisContext<NamespaceScenarioCluster>): Promise<FaultRecord[]> {
      const { cluster, rnd } = ctx;
      const c = cluster.ns;
      const ids = c.nodes.map((n) => n.id);
      const idx = (id: string): number => ids.indexOf(id);
      const records: FaultRecord[] = [];
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
      for (;;) {
        await sleep(gMin + rnd() * (gMax - gMin));
        const forMs = fMin + rnd() * (fMax - fMin);
        if (Date.now() + forMs > ctx.deadline) break;
        const kind = pick(opts.kinds);
        let fault: NetFault;
        let majority: string[];
        let minority: string[] = [];
        if (kind === 'isolate-leader') {
          const lead = (await c.leader(5_000).catch(() => undefined))?.id ?? pick(ids);
          fault = { kind: 'isolate', nodes: [lead] };
          minority = [lead];
          majority = ids.filter((x) => x !== lead);
        } else if (kind === 'split') {
          const m = pick(ids);
          fault = { kind: 'partition', groups: [[m], ids.filter((x) => x !== m)] };
          minority = [m];
          majority = ids.filter((x) => x !== m);
        } else if (kind === 'one-way') {
          const from = pick(ids);
          const to = pick(ids.filter((x) => x !== from));
          fault = { kind: 'one-way', from, to };
          // from and to cannot hold a TCP conversation; the third node reaches both.
          majority = ids.filter((x) => x !== from && x !== to);
        } else {
          fault = { kind: 'loss', percent: 5 + Math.floor(rnd() * 16) };
          majority = ids;
        }
        const termBefore = await highestTerm(cluster, ids.map(idx));
        const since = nowMs();
        cluster.nemesis.apply(fault);
        ctx.log(`${describeFault(fault)} for ${Math.round(forMs)} ms`);
        const rec: FaultRecord = { kind: `net-${kind}`, detail: describeFault(fault), startMs: since, endMs: since };
        const until = since + forMs;
        const probes: Promise<void>[] = [];
        // Majority side: writes succeed again within 1.5 x election timeout per election round,
        // plus a second for the election itself (see recoveryLimit).
        probes.push(
          probeWrite(cluster, majority.map(idx), since, Math.max(recoveryLimit(cluster.electionMs, MAX_ELECTION_ROUNDS) + 1_000, forMs - 200)).then(async (ms) => {
            rec.recoveryMs = ms;
            const termAfter = ms === null ? undefined : await highestTerm(cluster, majority.map(idx));
            if (termBefore !== undefined && termAfter !== undefined) rec.electionRounds = termAfter - termBefore;
            if (kind !== 'loss') rec.recoveryLimitMs = recoveryLimit(cluster.electionMs, rec.electionRounds);
          }),
        );
        // Minority side: every request answers 503, promptly (the client timeout is 2 x the
        // time a cut-off leader may take to step down and give up on its pending writes).
        if (minority.length > 0) {
          const statuses: number[] = [];
          let maxMs = 0;
          const budget = 4 * cluster.electionMs + 1_000;
          probes.push(
            (async () => {
              // At least one request; new ones only while the fault has time left.
              for (let i = 0; i === 0 || nowMs() < until - 300; i++) {
                const node = idx(minority[i % minority.length] as string);
                const t0 = nowMs();
                const r = await cluster.ns.http(cluster.ns.nodes[node] as NetNode, 'PUT', `/v1/secrets/probe/minority${node}`, { value: `m${i}` }, { timeoutMs: budget });
                const ms = nowMs() - t0;
                maxMs = Math.max(maxMs, ms);
                statuses.push(r.status);
                await sleep(150);
              }
              rec.noQuorumStatuses = statuses;
              rec.noQuorumMaxMs = Math.round(maxMs);
              if (statuses.length === 0) (rec.problems ??= []).push('no request reached the minority side');
            })(),
          );
        }
        await Promise.all(probes);
        const left = until - nowMs();
        if (left > 0) await sleep(left);
        cluster.nemesis.heal();
        rec.endMs = nowMs();
        ctx.log(`healed after ${Math.round(rec.endMs - since)} ms`);
        records.push(rec);
      }
      return records;
    },
    async heal(ctx: NemesisContext<NamespaceScenarioCluster>): Promise<void> {
      ctx.cluster.nemesis.heal();
    },
  };
}
