// The image's HEALTHCHECK. Healthy (exit 0) when this node's GET /v1/sys/health answers 200 (leader)
// or 429 (follower serving as standby); unhealthy (exit 1) on 503 (not ready yet, no quorum,
// removed, shutting down), any other status, a refused connection or no answer within 3 s.
//
// node:20-slim has no curl or wget, and adding them only for this would grow the attack surface:
// the runtime that runs the server runs the check. It reads the same variables as the server
// (COFFER_API_ADDR, COFFER_TLS_CERT_FILE); a wildcard listen address is checked on loopback.
import http from 'node:http';
import https from 'node:https';

const TIMEOUT_MS = 3_000;

function target(addr) {
  let host;
  let port;
  if (addr.startsWith('[')) {
    const close = addr.indexOf(']');
    host = addr.slice(1, close);
    port = addr.slice(close + 2);
  } else {
    const colon = addr.lastIndexOf(':');
    host = addr.slice(0, colon);
    port = addr.slice(colon + 1);
  }
  if (host === '0.0.0.0' || host === '') host = '127.0.0.1';
  if (host === '::' || host === '0:0:0:0:0:0:0:0') host = '::1';
  return { host, port: Number(port) };
}

const { host, port } = target(process.env.COFFER_API_ADDR ?? '127.0.0.1:8200');
const tls = (process.env.COFFER_TLS_CERT_FILE ?? '') !== '';
const client = tls ? https : http;
const req = client.request(
  {
    host,
    port,
    path: '/v1/sys/health',
    method: 'GET',
    timeout: TIMEOUT_MS,
    // NB: the check talks to its own process over the container's loopback; the certificate names
    // the service, not 127.0.0.1, and the health answer carries nothing secret.
    ...(tls ? { rejectUnauthorized: false } : {}),
  },
  (res) => {
    res.resume();
    const ok = res.statusCode === 200 || res.statusCode === 429;
    if (!ok) process.stderr.write(`coffer health: ${res.statusCode}\n`);
    process.exit(ok ? 0 : 1);
  },
);
req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
req.on('error', (err) => {
  process.stderr.write(`coffer health: ${err.message}\n`);
  process.exit(1);
});
req.end();
