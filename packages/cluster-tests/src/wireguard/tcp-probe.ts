/**
 * TCP reachability probe, run inside a network namespace of the WireGuard test
 * (`ip netns exec NS node dist/wireguard/tcp-probe.js 10.78.0.1:8201 10.77.0.11:8201`).
 *
 * Prints one JSON line: `{"10.78.0.1:8201": "connected" | "refused" | "timeout" | "unreachable" | code}`.
 * It sends nothing but a TCP handshake, and refuses to run unless its namespace is sealed (no
 * default route, not the machine's or the test process's namespace: see ns-guard) and every
 * target is a 10.x address, so a probe can never leave the machine.
 */
import { connect } from 'node:net';
import { unsealedReason } from '../jepsen/ns-guard.js';

/** What one connection attempt saw. */
export type ProbeResult = 'connected' | 'refused' | 'timeout' | 'unreachable' | string;

function probe(host: string, port: number, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (r: ProbeResult): void => {
      s.destroy();
      resolve(r);
    };
    s.setTimeout(timeoutMs, () => done('timeout'));
    s.once('connect', () => done('connected'));
    s.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('refused');
      else if (err.code === 'ENETUNREACH' || err.code === 'EHOSTUNREACH') done('unreachable');
      else done(err.code ?? 'error');
    });
  });
}

async function main(argv: string[]): Promise<void> {
  let timeoutMs = 1_500;
  const targets: [string, number][] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--timeout-ms') {
      timeoutMs = Number(argv[++i]);
      continue;
    }
    const m = /^(10\.\d{1,3}\.\d{1,3}\.\d{1,3}):(\d{1,5})$/.exec(a);
    if (m === null) throw new Error(`refusing target ${a}: only 10.x.y.z:port inside the test namespaces`);
    targets.push([m[1] as string, Number(m[2])]);
  }
  if (targets.length === 0 || !(timeoutMs > 0 && timeoutMs <= 10_000)) throw new Error('usage: tcp-probe.js [--timeout-ms N] 10.x.y.z:PORT...');
  const why = unsealedReason();
  if (why !== null) throw new Error(`refusing to probe: ${why}`);
  const results = await Promise.all(targets.map(([h, p]) => probe(h, p, timeoutMs)));
  const out: Record<string, ProbeResult> = {};
  targets.forEach(([h, p], i) => (out[`${h}:${p}`] = results[i] as ProbeResult));
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`tcp-probe: ${(err as Error).message}\n`);
      process.exit(2);
    },
  );
}
