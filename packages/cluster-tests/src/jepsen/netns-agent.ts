/**
 * HTTP relay for the network-namespace harness. Started by `NetnsCluster` inside the client
 * namespace (`ip netns exec <run>-cl node netns-agent.js --socket S --subnet 10.77.0.0/24`), it
 * listens on a Unix socket in the test's temp dir and performs the requests the test process asks
 * for — so node APIs are reached only from inside a namespace, never from the root one.
 *
 * POST /relay {target, method, path, token, body, timeoutMs} → 200 {status, body, ms} or
 * {status: 0, error: 'timeout' | code, ms}. It refuses targets outside the subnet, and refuses to
 * run at all in the machine's own network namespace.
 */
import { rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { unsealedReason } from './ns-guard.js';


function main(): void {
  const { values } = parseArgs({ options: { socket: { type: 'string' }, subnet: { type: 'string' } }, strict: true });
  const socket = values.socket;
  const subnet = values.subnet ?? '';
  const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(subnet);
  if (socket === undefined || m === null || !m[1]!.startsWith('10.')) throw new Error('usage: netns-agent --socket PATH --subnet 10.x.y.0/24');
  const why = unsealedReason();
  if (why !== null) throw new Error(`refusing to relay: ${why}`);
  const prefix = `${m[1]}.`;

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const answer = (code: number, obj: unknown): void => {
        const text = JSON.stringify(obj);
        res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      let r: { target?: unknown; method?: unknown; path?: unknown; token?: unknown; body?: unknown; timeoutMs?: unknown };
      try {
        r = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof r;
      } catch {
        return answer(400, { error: 'bad json' });
      }
      if (typeof r.target !== 'string' || typeof r.method !== 'string' || typeof r.path !== 'string' || !r.path.startsWith('/')) return answer(400, { error: 'bad request' });
      let url: URL;
      try {
        url = new URL(r.path, r.target);
      } catch {
        return answer(400, { error: 'bad url' });
      }
      if (url.protocol !== 'http:' || !url.hostname.startsWith(prefix)) return answer(403, { error: `target ${url.origin} is outside ${subnet}` });
      const headers: Record<string, string> = {};
      if (typeof r.token === 'string') headers['authorization'] = `Bearer ${r.token}`;
      if (r.body !== undefined) headers['content-type'] = 'application/json';
      const timeoutMs = typeof r.timeoutMs === 'number' && r.timeoutMs > 0 ? Math.min(r.timeoutMs, 120_000) : 5_000;
      const started = performance.now();
      fetch(url, { method: r.method, headers, ...(r.body === undefined ? {} : { body: JSON.stringify(r.body) }), signal: AbortSignal.timeout(timeoutMs) })
        .then(async (resp) => {
          const text = await resp.text();
          let body: unknown = text;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            body = text;
          }
          answer(200, { status: resp.status, body, ms: Math.round(performance.now() - started) });
        })
        .catch((err: unknown) => {
          const e = err as { name?: string; cause?: { code?: string } };
          answer(200, { status: 0, error: e.name === 'TimeoutError' ? 'timeout' : (e.cause?.code ?? e.name ?? 'error'), ms: Math.round(performance.now() - started) });
        });
    });
  });
  rmSync(socket, { force: true });
  server.listen(socket);
  const stop = (): void => {
    server.close();
    rmSync(socket, { force: true });
    process.exit(0);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`netns-agent: ${(err as Error).message}\n`);
    process.exit(2);
  }
}
