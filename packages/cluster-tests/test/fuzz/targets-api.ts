// The API's route body and query validators, driven through the real request pipeline: a one-node
// harness (packages/node/test/api/harness.ts: real state machine, envelopes, audit file, express
// app on loopback) receives mutated valid requests of every route family, native and Vault. Each
// must be answered with a 2xx/3xx or a 4xx in the documented error shape, never a 5xx, a reset
// connection or a hang. The validators live inline in api.ts and vault.ts, so this is the only way
// to reach all of them with the checks they run in production order.
//
// Input bytes: `METHOD SP PATH[?QUERY] LF BODY`. The target fixes Content-Length itself; a request
// the HTTP client refuses to send (an invalid method or path) is an input that never reached the
// server and counts as "unsendable".
import * as fs from 'node:fs';
import * as http from 'node:http';
import fc from 'fast-check';
import { ADMIN_TOKEN, startHarness, type Harness } from '../../../node/test/api/harness.js';
import { fail, type FuzzTarget } from './engine.js';

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

/** A valid request of each route family the pipeline validates (bodies and queries). */
const VALID: readonly [string, string, unknown?][] = [
  ['PUT', '/v1/secrets/app/db', { value: 'x', cas: 0, description: 'd', rotation: { intervalSecs: 60, graceSecs: 0, target: 't' } }],
  ['PUT', '/v1/secrets/app/b64', { valueBase64: 'QUJD' }],
  ['PUT', '/v1/secrets/app/up', { format: 'userpass', username: 'u', password: 'p' }],
  ['GET', '/v1/secrets/app/db?version=1&consistency=stale'],
  ['GET', '/v1/secrets?prefix=app&limit=10&after=app/a'],
  ['POST', '/v1/batch/secrets', { names: ['app/db', 'app/b64'] }],
  ['POST', '/v1/verify/app/db', { value: 'x' }],
  ['POST', '/v1/rotate/app/db', {}],
  ['GET', '/v1/versions/app/db?consistency=linearizable'],
  ['POST', '/v1/delete/app/db', { versions: [1] }],
  ['POST', '/v1/undelete/app/db', { versions: [1] }],
  ['POST', '/v1/destroy/app/old', { versions: [1, 2] }],
  ['POST', '/v1/tokens', { name: 'fz', role: 'reader', ttl: '90d' }],
  ['POST', '/v1/tokens/fz/rotate', { ttl: '1d' }],
  ['GET', '/v1/tokens?consistency=stale'],
  ['PUT', '/v1/roles/reader', { rules: [{ paths: ['app/*'], actions: ['secret.read'] }], rateLimit: '100/m' }],
  ['GET', '/v1/roles/reader'],
  ['PUT', '/v1/allowlist', { cidrs: ['127.0.0.0/8', '::1/128'] }],
  ['GET', '/v1/sys/health?standbyok=true&activecode=200'],
  ['POST', '/v1/secret/data/app/kv', { data: { a: 'b', n: { m: [1, 2] } }, options: { cas: 0 } }],
  ['PUT', '/v1/secret/data/app/kv', { data: { a: 'c' } }],
  ['PATCH', '/v1/secret/data/app/kv', { data: { a: null, c: { d: 1 } }, options: {} }],
  ['GET', '/v1/secret/data/app/kv?version=1'],
  ['POST', '/v1/secret/metadata/app/kv', { max_versions: 5, cas_required: false, custom_metadata: { k: 'v' }, delete_version_after: '1h30m' }],
  ['GET', '/v1/secret/metadata/app/kv'],
  ['GET', '/v1/secret/metadata/app?list=true'],
  ['POST', '/v1/secret/delete/app/kv', { versions: [1] }],
  ['POST', '/v1/secret/undelete/app/kv', { versions: [1] }],
  ['PUT', '/v1/secret/destroy/app/kv', { versions: [1] }],
  ['GET', '/v1/sys/internal/ui/mounts/secret/app'],
  ['POST', '/v1/identities', { name: 'fz-agent', type: 'agent', publicKey: 'O2onvM62pC1io6jQKm8Nc2UyFXcd4kOmOsBIoYtZ2ik=' }],
  ['GET', '/v1/identities/fz-agent?consistency=stale'],
  ['PUT', '/v1/memberships/fz-agent', { org: 'acme', project: 'web', role: 'member' }],
  ['DELETE', '/v1/memberships/fz-agent', { org: 'acme', project: 'web' }],
  ['POST', '/v1/auth/challenge', { identity: 'fz-agent' }],
  ['POST', '/v1/auth/login', { identity: 'fz-agent', nonce: 'A'.repeat(96), signature: 'A'.repeat(86) + '==' }],
  ['POST', '/v1/access-requests', { org: 'acme', project: 'web', role: 'readonly', justification: 'fuzz' }],
  ['GET', '/v1/access-requests?status=pending'],
];

function encodeRequest(method: string, target: string, body?: unknown): Uint8Array {
  return utf8(`${method} ${target}\n${body === undefined ? '' : JSON.stringify(body)}`);
}

let h: Harness | undefined;
let agent: http.Agent | undefined;
let served = 0;
/** Restart the one-node harness now and then: accepted writes accumulate in its memory. */
const RESTART_EVERY = 20_000;

async function start(): Promise<void> {
  // The harness keeps its data dir and fsynced audit file under os.tmpdir(): on tmpfs when there
  // is one, so the run measures the pipeline rather than the disk.
  const tmp = process.env['TMPDIR'];
  if (fs.existsSync('/dev/shm')) process.env['TMPDIR'] = '/dev/shm';
  try {
    h = await startHarness({ cidrs: ['127.0.0.0/8'] });
  } finally {
    if (tmp === undefined) delete process.env['TMPDIR'];
    else process.env['TMPDIR'] = tmp;
  }
  agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  // Something to read, rotate, delete, patch and list.
  for (const [m, p, b] of VALID.slice(0, 3)) await send(m, p, b === undefined ? undefined : utf8(JSON.stringify(b)));
  await send('POST', '/v1/secret/data/app/kv', utf8(JSON.stringify({ data: { a: 'b' } })));
  served = 0;
}

async function stop(): Promise<void> {
  agent?.destroy();
  await h?.close();
  h = undefined;
  agent = undefined;
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

function send(method: string, target: string, body: Uint8Array | undefined): Promise<Answer | 'unsendable'> {
  if (!target.startsWith('/')) return Promise.resolve('unsendable');
  const headers: Record<string, string | number> = { authorization: `Bearer ${ADMIN_TOKEN}` };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    headers['content-length'] = body.length;
  }
  const base = new URL((h as Harness).base);
  return new Promise((resolve, reject) => {
    let req: http.ClientRequest;
    try {
      // node:http sends the path exactly as given (no URL normalisation of `..` or `%2e`).
      req = http.request({ host: base.hostname, port: Number(base.port), method, path: target, headers, agent: agent as http.Agent });
    } catch {
      // The client refused to build the request (bad characters in the method or path).
      resolve('unsendable');
      return;
    }
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: unknown;
        try {
          parsed = text === '' ? undefined : JSON.parse(text);
        } catch {
          parsed = text;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : Buffer.from(body));
  });
}

/** Every route body and query validator, through the real pipeline on a one-node harness. */
export const apiRoutes: FuzzTarget = {
  name: 'node.api-routes',
  pkg: 'node',
  what: 'request bodies and queries of every native and Vault route, through the real pipeline (http/api.ts, http/vault.ts)',
  seeds: fc.constantFrom(...VALID).map(([m, p, b]) => encodeRequest(m, p, b)),
  async: true,
  timeoutMs: 2_000,
  ciRuns: 1_000,
  maxRandomBytes: 256,
  setup: start,
  teardown: stop,
  run: async (b) => {
    if (served++ >= RESTART_EVERY) {
      await stop();
      await start();
    }
    const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
    const nl = buf.indexOf(0x0a);
    const line = (nl === -1 ? buf : buf.subarray(0, nl)).toString('latin1');
    const sp = line.indexOf(' ');
    const method = sp === -1 ? line : line.slice(0, sp);
    const target = sp === -1 ? '/' : line.slice(sp + 1);
    const body = nl === -1 ? undefined : new Uint8Array(buf.subarray(nl + 1));
    if (!/^[A-Z]{1,10}$/.test(method)) return 'unsendable';
    return { method, target, answer: await send(method, target, method === 'GET' || method === 'HEAD' ? undefined : body) };
  },
  // Transport errors (a reset connection, a timeout) are crashes: the server must always answer.
  refusal: () => undefined,
  check: (_b, out) => {
    if (out === 'unsendable') return 'unsendable';
    const { method, target, answer } = out as { method: string; target: string; answer: Answer | 'unsendable' };
    if (answer === 'unsendable') return 'unsendable';
    const { status, body } = answer;
    const shown = String(JSON.stringify(body)).slice(0, 300);
    if (status >= 500) fail(`${status} for ${method} ${target}: ${shown}`);
    // A method node's HTTP parser does not know never reaches the app: node answers 400 itself.
    if (!http.METHODS.includes(method)) return status === 400 ? 'unknown method' : fail(`${status} for unknown method ${method}`);
    // Node's HTTP parser refuses some heads before the app sees them: bytes it does not allow in
    // a path (400) or a head over its 16 KiB limit (431), with no body. The app always answers
    // with a JSON body.
    if ((status === 400 || status === 431) && body === undefined) return `http parser ${status}`;
    if (status >= 400) {
      const vault = target.startsWith('/v1/secret/') || target.startsWith('/v1/sys/');
      const b = body as { errors?: unknown; error?: { code?: unknown; message?: unknown } } | undefined;
      // Vault answers a deleted or destroyed version with 404 and its metadata in the envelope.
      const vaultDeleted = vault && status === 404 && typeof (body as { data?: unknown } | undefined)?.data === 'object';
      const shaped = vault ? vaultDeleted || Array.isArray(b?.errors) || typeof b?.error?.code === 'string' : typeof b?.error?.code === 'string' && typeof b?.error?.message === 'string';
      if (!shaped) fail(`${status} without the documented error shape for ${method} ${target}: ${shown}`);
      return `${status} ${vault ? 'vault' : String(b?.error?.code)}`;
    }
    return `${status}`;
  },
};
