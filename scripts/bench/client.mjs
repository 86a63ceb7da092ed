// `pnpm bench client [N]`: @coffer/client overhead against a loopback stand-in node (node:http, one JSON route), so the
// numbers show the client's own cost: keep-alive reads, concurrent reads, cache hits, and the
// cost of a dead first address. Prints numbers; never fails on speed.
import { createServer } from 'node:http';
import { once } from 'node:events';
import { CofferClient } from '../../packages/client/dist/index.js';
import { benchOptions } from './lib/options.mjs';

const { n: N } = benchOptions({
  usage: 'pnpm bench client [N]',
  positionals: [{ name: 'n', type: 'integer', default: 5000, help: 'requests per measurement' }],
});

const body = JSON.stringify({ name: 'app/db', version: 3, value: 'x'.repeat(64), createdAt: '2026-01-01T00:00:00Z' });
const server = createServer((req, res) => {
  req.resume();
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = `http://127.0.0.1:${server.address().port}`;

const dead = createServer();
dead.listen(0, '127.0.0.1');
await once(dead, 'listening');
const deadUrl = `http://127.0.0.1:${dead.address().port}`;
await new Promise((r) => dead.close(r));

function report(label, n, ms, extra = '') {
  console.log(`${label.padEnd(44)} ${String(n).padStart(6)} req  ${(n / (ms / 1000)).toFixed(0).padStart(7)} req/s  ${((ms * 1000) / n).toFixed(1).padStart(7)} µs/req ${extra}`);
}

async function sequential(client, n) {
  for (let i = 0; i < 1000; i++) await client.secrets.get('app/db');
  const t = performance.now();
  for (let i = 0; i < n; i++) await client.secrets.get('app/db');
  return performance.now() - t;
}

async function concurrent(client, n, inFlight) {
  let next = 0;
  const t = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < n) await client.secrets.get('app/db');
    }),
  );
  return performance.now() - t;
}

try {
  const plain = new CofferClient({ addresses: [url], connections: 1 });
  report('sequential get, 1 connection', N, await sequential(plain, N));
  await plain.close();

  const pooled = new CofferClient({ addresses: [url], connections: 16 });
  report('concurrent get, 64 in flight, 16 connections', N * 2, await concurrent(pooled, N * 2, 64));
  await pooled.close();

  const cached = new CofferClient({ addresses: [url], cache: true });
  report('cached get (fresh hits)', N * 20, await sequential(cached, N * 20));
  await cached.close();

  const failover = new CofferClient({ addresses: [deadUrl, url], retry: { baseDelayMs: 1, maxDelayMs: 2 } });
  let t = performance.now();
  await failover.secrets.get('app/db');
  const first = performance.now() - t;
  report('get with a dead first node (after failover)', N, await sequential(failover, N), `(first request incl. failover: ${first.toFixed(1)} ms)`);
  await failover.close();
} finally {
  server.close();
}
