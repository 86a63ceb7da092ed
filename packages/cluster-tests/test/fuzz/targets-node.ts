// Fuzz targets for @coffer/node's readers of outside bytes: peer request authentication, the audit
// file (reader on open, `coffer audit verify`), JSON bodies and the parsers behind the API routes
// (values, durations, rate limits, CIDRs, names, globs, role documents, Vault fields, LIST heads).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Duplex } from 'node:stream';
import fc from 'fast-check';
import { decodeMessages, encodeMessages, type Message } from '@coffer/raft';
import { AuditLog, verifyAuditFile } from '../../../node/src/audit/audit-log.js';
import { compileGlob, globProblem } from '../../../node/src/auth/glob.js';
import { compileRole, validateRoleDocument } from '../../../node/src/auth/rbac.js';
import { parseDuration, parseRateLimit } from '../../../node/src/duration.js';
import { NodeError } from '../../../node/src/errors.js';
import { parseJsonObject } from '../../../node/src/http/body.js';
import { httpStatus } from '../../../node/src/http/errors.js';
import { ServiceError } from '../../../node/src/service/errors.js';
import { rewriteListHead } from '../../../node/src/http/list-method.js';
import { checkFolder, isVaultList, mergePatch, parseGoDuration } from '../../../node/src/http/vault.js';
import { normaliseIp, parseCidr, validateCidrs } from '../../../node/src/net/allowlist.js';
import { PeerVerifier, bodyDigest, bodyMatches, derivePeerKey, deriveStreamKey, signPeerRequest } from '../../../node/src/peer/auth.js';
import { frameTag, MAX_FRAME_BYTES, StreamAcceptor } from '../../../node/src/raft/stream.js';
import { valueFromBody } from '../../../node/src/service/values.js';
import { checkNodeId, checkRoleName, checkSecretName, checkTokenName } from '../../../node/src/validate.js';
import { fail, type FuzzTarget } from './engine.js';
import { messageArb } from './targets-raft.js';

const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
const text = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString('utf8');

/** A 4xx ServiceError is the API's refusal; a 5xx is not (the client did nothing the server may blame). */
const clientRefusal = (err: unknown): string | undefined => (err instanceof ServiceError && httpStatus(err) >= 400 && httpStatus(err) < 500 ? `${err.code} ${err.message}` : undefined);
const nodeRefusal = (...codes: string[]) => (err: unknown): string | undefined => (err instanceof NodeError && codes.includes(err.code) ? `${err.code} ${err.message}` : undefined);
const never = (): undefined => undefined;

/** Deep JSON nesting: the one shape JSON.parse accepts that recursive code downstream may not. */
const deepJson: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.constantFrom('array', 'object', 'data'), fc.integer({ min: 1_000, max: 12_000 }), fc.constantFrom('1', '{}', '"x"', 'null'))
  .map(([shape, depth, leaf]) => {
    if (shape === 'array') return utf8(`${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`);
    const nested = `${'{"a":'.repeat(depth)}${leaf}${'}'.repeat(depth)}`;
    return utf8(shape === 'object' ? nested : `{"data":${nested}}`);
  });

// ---- peer requests --------------------------------------------------------------------------------

const CLUSTER_KEY = new Uint8Array(32).fill(9);
const PEER_NOW = 1_900_000_000_000;
const PEER_PATHS = ['/raft/v1/messages', '/raft/v1/rpc/hello', '/raft/v1/rpc/join'];
let verifier = new PeerVerifier({ clusterKey: CLUSTER_KEY, nodeId: 'n2', now: () => PEER_NOW, maxNonces: 1000 });
const signer = derivePeerKey(CLUSTER_KEY);

/** `name: value` lines, a blank line, then the body: how a peer request's auth inputs arrive. */
function serialisePeer(method: string, p: string, headers: Record<string, string>, body: Uint8Array): Uint8Array {
  const head = [`${method} ${p}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\n');
  const out = new Uint8Array(head.length + 2 + body.length);
  out.set(utf8(`${head}\n\n`).subarray(0, head.length + 2));
  out.set(body, head.length + 2);
  return out;
}

function parsePeer(b: Uint8Array): { method: string; path: string; headers: Record<string, string | string[]>; body: Uint8Array } {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const end = buf.indexOf('\n\n');
  const head = (end === -1 ? buf : buf.subarray(0, end)).toString('latin1').split('\n');
  const [method = '', p = ''] = (head[0] ?? '').split(' ');
  const headers: Record<string, string | string[]> = {};
  for (const line of head.slice(1)) {
    const c = line.indexOf(':');
    if (c <= 0) continue;
    const k = line.slice(0, c).trim().toLowerCase();
    const v = line.slice(c + 1).trim();
    const prev = headers[k];
    headers[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return { method, path: p, headers, body: end === -1 ? new Uint8Array(0) : new Uint8Array(b.subarray(end + 2)) };
}

/** Peer-port authentication: headers and body of a request to the Raft port, before any decoding. */
export const peerAuth: FuzzTarget = {
  name: 'node.peer-auth',
  pkg: 'node',
  what: 'peer request authentication headers and body hash (peer/auth.ts PeerVerifier)',
  seeds: fc
    .tuple(fc.constantFrom(...PEER_PATHS), fc.uint8Array({ maxLength: 64 }), fc.constantFrom('n1', 'n3', 'n2'), fc.integer({ min: -40_000, max: 40_000 }), fc.uint8Array({ minLength: 16, maxLength: 16 }))
    .map(([p, body, from, skew, nonce]) => {
      const headers = signPeerRequest(signer, { method: 'POST', path: p, from, to: 'n2', body, now: PEER_NOW + skew, nonce: Buffer.from(nonce).toString('hex') });
      return serialisePeer('POST', p, headers, body);
    }),
  run: (b) => {
    const r = parsePeer(b);
    // A bounded nonce cache: rebuilt now and then so replays of seeds stay possible but memory stays flat.
    if (verifier.rememberedNonces >= 900) verifier = new PeerVerifier({ clusterKey: CLUSTER_KEY, nodeId: 'n2', now: () => PEER_NOW, maxNonces: 1000 });
    // Both ways the node verifies: the peer server checks the headers (and the declared body hash)
    // before reading the body, then the body against that hash; a returned batch is checked with
    // its body in hand. Which one is decided by the input (its length's parity).
    if (b.length % 2 === 0) {
      const v = verifier.verify({ method: r.method, path: r.path, headers: r.headers });
      return v.ok ? { ...v, bodyOk: bodyMatches(v, r.body) } : v;
    }
    return verifier.verify({ method: r.method, path: r.path, headers: r.headers, body: r.body });
  },
  // verify() answers with a verdict; it has no documented exception for any input.
  refusal: never,
  check: (b, out) => {
    const v = out as { ok: boolean; from?: string; reason?: string; bodyHash?: string; bodyOk?: boolean };
    if (v.ok) {
      const r = parsePeer(b);
      const from = r.headers['x-coffer-from'];
      if (v.from !== from) fail(`accepted, but as "${String(v.from)}" while the request says "${String(from)}"`);
      if (v.bodyOk === undefined && v.bodyHash !== bodyDigest(r.body)) fail('accepted with the body in hand, but the signed hash is not the body\'s');
      return v.bodyOk === false ? 'headers accepted, body refused' : 'accepted';
    }
    return `refused ${String(v.reason)}`;
  },
};

// ---- audit file --------------------------------------------------------------------------------------

let auditDir = '';
let auditSeeds: Uint8Array[] = [];
let auditCounter = 0;

async function makeAuditSeeds(): Promise<void> {
  auditDir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'coffer-fuzz-audit-'));
  const file = path.join(auditDir, 'seed.jsonl');
  let clock = Date.UTC(2030, 0, 1);
  const log = await AuditLog.open({ path: file, nodeId: 'n1', now: () => (clock += 1000) });
  const actions = ['secret.read', 'secret.write', 'token.create', 'role.write'];
  for (let i = 0; i < 6; i++) {
    await log.append({ requestId: `r${i}`, actor: i % 2 === 0 ? 'ci' : null, clientIp: i % 3 === 0 ? null : '10.0.0.7', action: actions[i % 4] as string, resource: i === 4 ? null : `app/x${i}`, outcome: i === 5 ? 'denied' : 'ok', status: i === 5 ? 403 : 200 });
  }
  await log.close();
  const whole = new Uint8Array(fs.readFileSync(file));
  auditSeeds = [];
  // Every prefix of whole lines, plus the whole file: valid chains of 0..6 lines.
  for (let i = 0; i <= whole.length; i++) if (i === 0 || whole[i - 1] === 0x0a) auditSeeds.push(whole.slice(0, i));
}

const auditSeedArb = fc.nat().map((i) => auditSeeds[i % Math.max(1, auditSeeds.length)] ?? new Uint8Array(0));

/** `coffer audit verify FILE`: a whole audit file, streamed. */
export const auditVerify: FuzzTarget = {
  name: 'node.audit-verify',
  pkg: 'node',
  what: 'an audit file checked by `coffer audit verify` (audit-log.ts verifyAuditFile)',
  seeds: auditSeedArb,
  async: true,
  maxRandomBytes: 1024,
  setup: makeAuditSeeds,
  teardown: async () => fs.rmSync(auditDir, { recursive: true, force: true }),
  run: async (b) => {
    const file = path.join(auditDir, 'verify.jsonl');
    fs.writeFileSync(file, b);
    return verifyAuditFile(file);
  },
  refusal: never,
  check: (b, out) => {
    const r = out as { ok: boolean; lines: number; firstBadLine?: number; reason?: string; lastHash: string };
    if (!/^[0-9a-f]{64}$/.test(r.lastHash)) fail('lastHash is not a hash');
    if (r.ok) {
      let nl = 0;
      for (const c of b) if (c === 0x0a) nl++;
      if (r.lines !== nl) fail(`ok with ${r.lines} lines for a file of ${nl} lines`);
      return 'ok';
    }
    if (typeof r.reason !== 'string' || r.firstBadLine !== r.lines + 1) fail('a refusal without a reason or with an inconsistent line number');
    return `bad ${r.reason}`;
  },
};

/** Opening the audit log at boot: reads and checks the last line of whatever file is there. */
export const auditOpen: FuzzTarget = {
  name: 'node.audit-open',
  pkg: 'node',
  what: 'the audit file a node opens at boot (audit-log.ts AuditLog.open, tail check)',
  seeds: auditSeedArb,
  async: true,
  maxRandomBytes: 1024,
  setup: makeAuditSeeds,
  teardown: async () => fs.rmSync(auditDir, { recursive: true, force: true }),
  run: async (b) => {
    const file = path.join(auditDir, `open-${auditCounter++ % 4}.jsonl`);
    fs.writeFileSync(file, b);
    const log = await AuditLog.open({ path: file, nodeId: 'n1' });
    const info = log.openInfo;
    await log.close();
    return info;
  },
  refusal: nodeRefusal('NODE_AUDIT_CORRUPT'),
  check: (_b, out) => {
    const info = out as { existingLines: number; truncatedBytes: number };
    if (!Number.isSafeInteger(info.existingLines) || info.existingLines < 0) fail('existingLines is not a count');
    return info.truncatedBytes > 0 ? 'opened after cutting a torn tail' : 'opened';
  },
};

// ---- JSON bodies and values -------------------------------------------------------------------------

const bodyJson = (v: unknown): Uint8Array => utf8(JSON.stringify(v));

/** Every JSON body of the API goes through parseJsonObject. */
export const jsonBody: FuzzTarget = {
  name: 'node.json-body',
  pkg: 'node',
  what: 'a JSON request body (http/body.ts parseJsonObject)',
  seeds: fc.oneof(fc.jsonValue({ maxDepth: 3 }).map(bodyJson), fc.object({ maxDepth: 2 }).map(bodyJson)),
  extra: deepJson,
  run: (b) => parseJsonObject(b, b.length % 2 === 0),
  refusal: clientRefusal,
  check: (_b, out) => {
    if (typeof out !== 'object' || out === null || Array.isArray(out)) fail('not a JSON object');
    if (({} as Record<string, unknown>)['polluted'] !== undefined) fail('Object.prototype was polluted');
  },
};

const valueBodyArb = fc.oneof(
  fc.record({ value: fc.oneof(fc.string(), fc.integer(), fc.constant(null)) }, { requiredKeys: [] }),
  fc.record({ valueBase64: fc.oneof(fc.base64String(), fc.string(), fc.constantFrom('-_-_', '====', 'QQ==', 'QQ')) }),
  fc.record({ format: fc.constantFrom('userpass', 'raw', 'kv'), username: fc.oneof(fc.string(), fc.integer()), password: fc.oneof(fc.string(), fc.constant(null)) }, { requiredKeys: ['format'] }),
  fc.record({ value: fc.string(), valueBase64: fc.base64String() }),
);

/** The value fields of a native secret write (`PUT /v1/secrets/{name}`). */
export const secretValue: FuzzTarget = {
  name: 'node.secret-value',
  pkg: 'node',
  what: 'the value of a secret write body (service/values.ts valueFromBody)',
  seeds: valueBodyArb.map(bodyJson),
  run: (b) => valueFromBody(parseJsonObject(b, false)),
  refusal: clientRefusal,
  check: (_b, out) => {
    const v = out as { plaintext: Uint8Array; format: string };
    if (!(v.plaintext instanceof Uint8Array) || v.plaintext.length > 1024 * 1024) fail('plaintext missing or over the limit');
    return `ok ${v.format}`;
  },
};

// ---- small text parsers -----------------------------------------------------------------------------

const durationSeeds = fc.oneof(
  fc.tuple(fc.nat({ max: 10_000 }), fc.constantFrom('s', 'min', 'h', 'd', 'w', 'm', 'y', 'ms', 'M', '')).map(([n, u]) => `${n}${u}`),
  fc.constantFrom('90d', '12w', '6m', '1y', '0s', '-1d', '1.5d', '9007199254740993s', '99999999999999999999999999999y', ' 1d', '1d ', '1e3s', '0x10s', '１d', '__proto__', 'constructor', 'toString'),
);

/** Token TTLs (`POST /v1/tokens {"ttl"}`, rotate). */
export const duration: FuzzTarget = {
  name: 'node.duration',
  pkg: 'node',
  what: 'a token TTL such as "90d" (duration.ts parseDuration)',
  seeds: durationSeeds.map(utf8),
  run: (b) => parseDuration(text(b)),
  refusal: nodeRefusal('NODE_INVALID_DURATION'),
  check: (_b, out) => {
    if (!Number.isSafeInteger(out) || (out as number) <= 0) fail(`duration ${String(out)} is not a positive safe integer`);
  },
};

/** Role rate limits (`PUT /v1/roles/{name} {"rateLimit"}`). */
export const rateLimit: FuzzTarget = {
  name: 'node.rate-limit',
  pkg: 'node',
  what: 'a role rate limit such as "100/m" (duration.ts parseRateLimit)',
  seeds: fc.oneof(fc.tuple(fc.nat({ max: 2_000_000_000 }), fc.constantFrom('s', 'm', 'min', 'h', 'd', 'y', '')).map(([n, u]) => `${n}/${u}`), fc.constantFrom('100/m', '0/s', '1/x', '/m', '1//m', 'toString/m', '1/__proto__')).map(utf8),
  run: (b) => parseRateLimit(text(b)),
  refusal: nodeRefusal('NODE_INVALID_RATE_LIMIT'),
  check: (_b, out) => {
    const r = out as { count: number; perMs: number };
    if (!Number.isSafeInteger(r.count) || r.count < 1 || !(r.perMs > 0)) fail('rate limit out of range');
  },
};

const cidrSeeds = fc.oneof(
  fc.constantFrom('10.0.0.0/8', '127.0.0.1', '::1', '::1/128', 'fe80::1%eth0', '::ffff:10.0.0.0/104', '::ffff:10.0.0.0/95', '1.2.3.4/33', '300.1.1.1/8', '010.0.0.1', '1.2.3', '0x7f.1', '::', '::/0', '0.0.0.0/0', '1.2.3.4/008', ' 10.0.0.0/8 ', '2001:db8::/32', '2001:db8:0:0:0:0:0:0:0/64'),
  fc.ipV4().map((ip) => ip),
  fc.tuple(fc.ipV6(), fc.nat({ max: 140 })).map(([ip, p]) => `${ip}/${p}`),
  fc.tuple(fc.ipV4Extended(), fc.nat({ max: 40 })).map(([ip, p]) => `${ip}/${p}`),
);

/** Allowlist entries (`PUT /v1/allowlist {"cidrs"}`, COFFER_READ_ALLOWLIST) and client addresses. */
export const cidr: FuzzTarget = {
  name: 'node.cidr',
  pkg: 'node',
  what: 'allowlist CIDRs and client addresses (net/allowlist.ts parseCidr, validateCidrs, normaliseIp)',
  seeds: fc.oneof(cidrSeeds.map(utf8), fc.array(cidrSeeds, { maxLength: 4 }).map(bodyJson)),
  run: (b) => {
    const s = text(b);
    let list: unknown = null;
    try {
      list = JSON.parse(s);
    } catch {
      list = null;
    }
    return { one: parseCidr(s), list: list === null ? undefined : validateCidrs(list), ip: normaliseIp(s) };
  },
  refusal: never,
  check: (_b, out) => {
    const r = out as { one: unknown; list: unknown; ip: unknown };
    if (typeof r.one !== 'string') {
      const e = r.one as { cidr: string; prefix: number };
      // Canonical form is a fixed point: parsing what we print gives the same entry.
      const again = parseCidr(e.cidr);
      if (typeof again === 'string' || again.cidr !== e.cidr) fail(`canonical CIDR ${e.cidr} does not parse back to itself`);
    }
    if (r.ip !== undefined && (typeof r.ip !== 'string' || normaliseIp(r.ip) !== r.ip)) fail('normalised address is not a fixed point');
    return typeof r.one === 'string' ? 'refused' : 'cidr';
  },
};

const nameSeeds = fc.oneof(
  fc.constantFrom('app/db', 'a', 'self', '..', 'a/../b', 'a//b', '/a', 'a/', '.', 'x'.repeat(513), 'ü', 'a\u0000b', 'a b', '%2e%2e', 'admin', 'n1', '__proto__'),
  fc.stringMatching(/^[A-Za-z0-9._/-]{1,40}$/),
);

/** Names in paths and bodies: secret, token, role, member ids and Vault list folders. */
export const names: FuzzTarget = {
  name: 'node.names',
  pkg: 'node',
  what: 'secret, token, role and member names (validate.ts), Vault list folders (vault.ts checkFolder)',
  seeds: nameSeeds.map(utf8),
  run: (b) => {
    const s = text(b);
    const checks = [checkSecretName(s), checkTokenName(s), checkRoleName(s), checkNodeId(s)];
    let folder: string | undefined;
    try {
      folder = checkFolder(s);
    } catch (err) {
      if (clientRefusal(err) === undefined) throw err;
    }
    return { checks, folder, s };
  },
  refusal: never,
  check: (_b, out) => {
    const r = out as { checks: { ok: boolean; reason?: string }[]; folder: string | undefined; s: string };
    for (const c of r.checks) if (!c.ok && typeof c.reason !== 'string') fail('refusal without a reason');
    const secretOk = (r.checks[0] as { ok: boolean }).ok;
    if (secretOk && (r.s.split('/').some((seg) => seg === '' || seg === '.' || seg === '..') || Buffer.byteLength(r.s) > 512)) fail(`secret name ${JSON.stringify(r.s)} accepted`);
    return `secret:${r.checks[0]?.ok === true ? 'y' : 'n'} token:${r.checks[1]?.ok === true ? 'y' : 'n'} role:${r.checks[2]?.ok === true ? 'y' : 'n'} node:${r.checks[3]?.ok === true ? 'y' : 'n'}`;
  },
};

/** Role path globs (`PUT /v1/roles/{name}` rules): compile, then match without blowing up (ReDoS). */
export const glob: FuzzTarget = {
  name: 'node.glob',
  pkg: 'node',
  what: 'role path globs and their matching (auth/glob.ts)',
  seeds: fc.tuple(fc.array(fc.constantFrom('*', '**', 'a', 'app', 'a*', '*b', 'a*b*c', 'x'.repeat(30), '.', '..', ''), { minLength: 1, maxLength: 8 }), fc.string({ maxLength: 60 })).map(([segs, name]) => utf8(`${segs.join('/')}\n${name}`)),
  extra: fc.tuple(fc.integer({ min: 5, max: 60 }), fc.integer({ min: 5, max: 120 })).map(([k, n]) => utf8(`${'a*'.repeat(k)}b\n${'a'.repeat(n)}`)),
  run: (b) => {
    const s = text(b);
    const nl = s.indexOf('\n');
    const pattern = nl === -1 ? s : s.slice(0, nl);
    const name = nl === -1 ? 'app/db' : s.slice(nl + 1);
    if (globProblem(pattern) !== undefined) return 'refused';
    const g = compileGlob(pattern);
    return g.matches(name) ? 'match' : 'no match';
  },
  refusal: never,
};

/** Role documents (`PUT /v1/roles/{name}` body). */
export const roleDocument: FuzzTarget = {
  name: 'node.role-document',
  pkg: 'node',
  what: 'a role document body (auth/rbac.ts validateRoleDocument, compileRole)',
  seeds: fc
    .record({
      rules: fc.array(fc.record({ paths: fc.array(fc.constantFrom('app/*', '**', 'a/**', 'x', '*'), { maxLength: 3 }), actions: fc.array(fc.constantFrom('secret.read', 'secret.write', 'token.create', 'role.write', 'admin', 'bogus'), { maxLength: 3 }) }), { maxLength: 3 }),
      rateLimit: fc.option(fc.constantFrom('100/m', '1/s', 'x'), { nil: undefined }),
    }, { requiredKeys: ['rules'] })
    .map(bodyJson),
  run: (b) => {
    const doc = parseJsonObject(b, false);
    const v = validateRoleDocument(doc);
    if (v.ok) compileRole('fuzz', v.role);
    return v;
  },
  refusal: clientRefusal,
  check: (_b, out) => {
    const v = out as { ok: boolean; errors?: unknown };
    if (!v.ok && (!Array.isArray(v.errors) || v.errors.length === 0)) fail('refused without errors');
    return v.ok ? 'ok' : 'refused';
  },
};

/** Vault KV v2 body fields: `delete_version_after`, a PATCH merged into the stored data map. */
export const vaultFields: FuzzTarget = {
  name: 'node.vault-fields',
  pkg: 'node',
  what: 'Vault KV v2 fields: delete_version_after, PATCH merge, ?list= (http/vault.ts)',
  seeds: fc
    .record({
      delete_version_after: fc.oneof(fc.constantFrom('0s', '30m', '72h', '1h30m10s', '', '-1s', '9999999h', '1d'), fc.integer(), fc.double()),
      data: fc.jsonValue({ maxDepth: 3 }),
      list: fc.constantFrom('list=true', 'list=1', 'list=false', 'list=%zz', 'a=b&list=T', ''),
    })
    .map(bodyJson),
  extra: deepJson,
  run: (b) => {
    const body = parseJsonObject(b, false);
    const secs = body['delete_version_after'] === undefined ? 0 : parseGoDuration(body['delete_version_after']);
    const merged = mergePatch({ a: 1, b: { c: 2 } }, body['data'] ?? null);
    const list = typeof body['list'] === 'string' ? isVaultList(body['list']) : false;
    // What a KV write or PATCH stores: the JSON text of the data map.
    const stored = JSON.stringify(merged ?? null);
    return { secs, stored, list };
  },
  refusal: clientRefusal,
  check: (_b, out) => {
    const r = out as { secs: number };
    if (!Number.isSafeInteger(r.secs) || r.secs < 0) fail('delete_version_after is not a whole number of seconds');
  },
};

/** Vault's LIST method: raw request heads rewritten before node's HTTP parser sees them. */
export const listHead: FuzzTarget = {
  name: 'node.list-head',
  pkg: 'node',
  what: 'a raw LIST request head (http/list-method.ts rewriteListHead)',
  seeds: fc
    .tuple(fc.constantFrom('/v1/secret/metadata/app', '/v1/secret/metadata/', '/v1/secret/metadata/a?b=c', '/x y'), fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2'), fc.array(fc.constantFrom('Host: a', 'X-Vault-Token: t', 'Connection: keep-alive', 'Content-Length: 0', 'Content-Length: 5', 'Transfer-Encoding: chunked', 'Keep-Alive: 5', 'x'), { maxLength: 4 }), fc.constantFrom('', 'body'))
    .map(([p, v, hs, body]) => utf8(`LIST ${p} ${v}\r\n${hs.map((h) => `${h}\r\n`).join('')}\r\n${body}`)),
  maxRandomBytes: 2048,
  run: (b) => rewriteListHead(Buffer.from(b.buffer, b.byteOffset, b.length)),
  refusal: never,
  check: (_b, out) => {
    const r = out as { head?: Buffer; status?: number };
    if (r.head !== undefined) {
      const h = r.head.toString('latin1');
      if (!h.startsWith('GET /') || !h.endsWith('\r\n\r\n') || !/list=true HTTP\/1\.[01]\r\n/.test(h)) fail('rewritten head is not a GET …list=true request');
      return 'rewritten';
    }
    if (r.status !== 400 && r.status !== 431) fail(`unexpected status ${String(r.status)}`);
    return `refused ${r.status}`;
  },
};

// ---- Raft streams ---------------------------------------------------------------------------------

const STREAM_KEY = deriveStreamKey(signer, 'n1', 'n2', '00'.repeat(16));

/** Frames as the dialer writes them: u32 length | payload | 16-byte tag, numbered from 0. */
function framesOf(payloads: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(payloads.map((p, i) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(p.length, 0);
    return Buffer.concat([len, p, frameTag(STREAM_KEY, i, p)]);
  })));
}

/** Walks the frames of an input the way an honest reader would: payloads of the leading frames whose tags verify, and whether a bad one followed. */
function expectedFrames(b: Uint8Array): { payloads: Uint8Array[]; bad: boolean } {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.length);
  const payloads: Uint8Array[] = [];
  let off = 0;
  while (off + 4 <= buf.length) {
    const len = buf.readUInt32BE(off);
    if (len > MAX_FRAME_BYTES) return { payloads, bad: true };
    if (off + 4 + len + 16 > buf.length) break;
    const p = buf.subarray(off + 4, off + 4 + len);
    if (!frameTag(STREAM_KEY, payloads.length, p).equals(buf.subarray(off + 4 + len, off + 4 + len + 16))) return { payloads, bad: true };
    payloads.push(p);
    off += 4 + len + 16;
  }
  return { payloads, bad: false };
}

/** The bytes after a Raft stream's handshake (raft/stream.ts StreamAcceptor): framing, tags, then the codec. */
export const raftStream: FuzzTarget = {
  name: 'node.raft-stream',
  pkg: 'node',
  what: 'frames on an accepted Raft stream (raft/stream.ts StreamAcceptor), fed in two pieces',
  seeds: fc.array(fc.array(messageArb, { maxLength: 3 }), { maxLength: 3 }).map((batches) => framesOf(batches.map((ms) => encodeMessages(ms.map((m) => ({ ...m, from: 'n1', to: 'n2' })))))),
  // Re-tags every complete frame, so that mutations reach the codec and the sender/receiver filter.
  fixup: (b) => {
    const buf = Buffer.from(b);
    let off = 0;
    for (let i = 0; off + 4 <= buf.length; i++) {
      const len = buf.readUInt32BE(off);
      if (len > MAX_FRAME_BYTES || off + 4 + len + 16 > buf.length) break;
      frameTag(STREAM_KEY, i, buf.subarray(off + 4, off + 4 + len)).copy(buf, off + 4 + len);
      off += 4 + len + 16;
    }
    return new Uint8Array(buf);
  },
  run: (b) => {
    const delivered: Message[] = [];
    const refusals: string[] = [];
    const acceptor = new StreamAcceptor({ nodeId: 'n2', onMessages: (_from, msgs) => delivered.push(...msgs), onRefused: (r) => refusals.push(r) });
    const socket = new Duplex({ read: () => undefined, write: (_c, _e, cb) => cb() });
    acceptor.accept('n1', 'app', STREAM_KEY, socket, Buffer.alloc(0));
    // Two reads split at an input-chosen point: a frame may straddle them.
    const cut = b.length === 0 ? 0 : (b[0] as number) % (b.length + 1);
    socket.emit('data', Buffer.from(b.subarray(0, cut)));
    if (!socket.destroyed) socket.emit('data', Buffer.from(b.subarray(cut)));
    const destroyed = socket.destroyed;
    acceptor.close();
    return { delivered, refusals, destroyed };
  },
  // The acceptor never throws: a bad frame ends the stream.
  refusal: never,
  check: (b, out) => {
    const r = out as { delivered: Message[]; refusals: string[]; destroyed: boolean };
    for (const m of r.delivered) if (m.from !== 'n1' || m.to !== 'n2') fail(`delivered a message from ${m.from} to ${m.to} on n1's stream to n2`);
    const want = expectedFrames(b);
    // Every delivered message comes from a frame whose tag verifies, in order.
    const fromFrames: Message[] = [];
    let undecodable = false;
    for (const p of want.payloads) {
      try {
        fromFrames.push(...decodeMessages(p).filter((m) => m.from === 'n1' && m.to === 'n2'));
      } catch {
        undecodable = true;
        break;
      }
    }
    if (r.delivered.length !== fromFrames.length) fail(`delivered ${r.delivered.length} messages; the authentic frames hold ${fromFrames.length}`);
    if ((want.bad || undecodable) !== r.destroyed) fail(`stream ${r.destroyed ? 'ended' : 'kept'} though its frames are ${want.bad || undecodable ? 'bad' : 'good so far'}`);
    return r.destroyed ? `ended ${r.refusals.join(',')}` : `delivered ${Math.min(r.delivered.length, 3)}`;
  },
};

export const NODE_TARGETS: readonly FuzzTarget[] = [peerAuth, raftStream, auditVerify, auditOpen, jsonBody, secretValue, duration, rateLimit, cidr, names, glob, roleDocument, vaultFields, listHead];
