import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import * as fc from 'fast-check';
import { Integrity, StateMachine, encodeCommand, type Command, type CommandResult, type CommandType, type LogEntry, type SealedValue } from '../src/index.js';

/** A fresh temp dir and its cleanup. */
export function tempDir(prefix = 'coffer-state-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) & 0xff);

export function sealed(seed: number, keyId = 'key-1'): SealedValue {
  return { formatVersion: 1, alg: 'xchacha20poly1305', nonce: bytes(24, seed), ciphertext: bytes(16 + (seed % 40), seed + 1), wrappedDek: bytes(48, seed + 2), kmsKeyId: keyId };
}

/**
 * One fully-populated sample per command type, in the current version. Golden fixtures are the
 * encodings of these; they pin the wire format.
 */
export const SAMPLES: Record<CommandType, Command> = {
  noop: { type: 'noop', requestId: 'req-noop', at: 1_700_000_000_000 },
  'secret.put': {
    type: 'secret.put',
    requestId: 'req-put',
    at: 1_700_000_000_001,
    name: 'payments/stripe/api-key',
    version: 3,
    cas: 2,
    sealed: sealed(7),
    format: 'userpass',
    description: 'Stripe API key',
    rotation: { intervalSecs: 86_400, graceSecs: 3_600, target: 'postgres://db/app' },
    actor: 'token:ci',
  },
  'secret.metadata': {
    type: 'secret.metadata',
    requestId: 'req-meta',
    at: 1_700_000_000_002,
    name: 'payments/stripe/api-key',
    maxVersions: 5,
    casRequired: true,
    customMetadata: { owner: 'payments', 'cost-center': '42' },
    description: 'desc',
    rotation: 'clear',
    deleteVersionAfterSecs: 0,
    actor: 'token:admin',
  },
  'secret.delete': { type: 'secret.delete', requestId: 'req-del', at: 1_700_000_000_003, name: 'a/b', versions: [1, 2], actor: 'x' },
  'secret.undelete': { type: 'secret.undelete', requestId: 'req-undel', at: 1_700_000_000_004, name: 'a/b', versions: [2], actor: 'x' },
  'secret.destroy': { type: 'secret.destroy', requestId: 'req-destroy', at: 1_700_000_000_005, name: 'a/b', versions: [1], actor: 'x' },
  'secret.destroyAll': { type: 'secret.destroyAll', requestId: 'req-destroyall', at: 1_700_000_000_006, name: 'a/b', actor: 'x' },
  'token.create': {
    type: 'token.create',
    requestId: 'req-tc',
    at: 1_700_000_000_007,
    name: 'ci',
    role: 'deployer',
    tokenHash: bytes(32, 9),
    expiresAt: 1_800_000_000_000,
    actor: 'token:admin',
  },
  'token.revoke': { type: 'token.revoke', requestId: 'req-tr', at: 1_700_000_000_008, name: 'ci', actor: 'token:admin' },
  'token.rotate': { type: 'token.rotate', requestId: 'req-trot', at: 1_700_000_000_009, name: 'ci', tokenHash: bytes(32, 10), expiresAt: null, actor: 'token:ci' },
  'token.expire': { type: 'token.expire', requestId: 'req-te', at: 1_700_000_000_010, names: ['old-1', 'old-2'] },
  'role.put': {
    type: 'role.put',
    requestId: 'req-rp',
    at: 1_700_000_000_011,
    name: 'deployer',
    rules: [{ paths: ['payments/*', 'shared/**'], actions: ['secret.write', 'secret.list'] }],
    rateLimit: '100/m',
    actor: 'token:admin',
    maxTtlSecs: 2_592_000,
  },
  'role.delete': { type: 'role.delete', requestId: 'req-rd', at: 1_700_000_000_012, name: 'deployer', actor: 'token:admin' },
  'allowlist.replace': { type: 'allowlist.replace', requestId: 'req-al', at: 1_700_000_000_013, cidrs: ['10.8.0.0/24', '::1/128'], actor: 'token:admin' },
  'allowlist.seed': { type: 'allowlist.seed', requestId: 'req-as', at: 1_700_000_000_023, cidrs: ['10.8.0.0/24'] },
  bootstrap: { type: 'bootstrap', requestId: 'req-boot', at: 1_700_000_000_014, tokenHash: bytes(32, 11), cidrs: ['127.0.0.1/32'] },
  'kms.rewrap': {
    type: 'kms.rewrap',
    requestId: 'req-rw',
    at: 1_700_000_000_015,
    name: 'payments/stripe/api-key',
    version: 3,
    wrappedDek: bytes(64, 12),
    kmsKeyId: 'arn:aws:kms:eu-west-1:1:key/k2',
    expectedKmsKeyId: 'arn:aws:kms:eu-west-1:1:key/k1',
    marker: '2025-01-01T00:00:00Z',
  },
  'kms.watermark': {
    type: 'kms.watermark',
    requestId: 'req-wm',
    at: 1_700_000_000_016,
    marker: '2025-01-01T00:00:00Z',
    passStartedAt: 1_700_000_000_000,
    passFinishedAt: null,
    rewrapped: 10,
    failed: 1,
  },
  'auth.failure': { type: 'auth.failure', requestId: 'req-af', at: 1_700_000_000_017, ip: '203.0.113.9', retainMs: 900_000 },
  'auth.reset': { type: 'auth.reset', requestId: 'req-ar', at: 1_700_000_000_018, ip: '203.0.113.9' },
  'member.upsert': { type: 'member.upsert', requestId: 'req-mu', at: 1_700_000_000_019, id: 'n2', raftAddr: 'http://10.0.0.2:8201', apiAddr: 'http://10.0.0.2:8200' },
  'member.remove': { type: 'member.remove', requestId: 'req-mr', at: 1_700_000_000_020, id: 'n2' },
  'state.restore': { type: 'state.restore', requestId: 'req-restore', at: 1_700_000_000_021, snapshot: bytes(40, 13) },
  'snapshot.schedule': {
    type: 'snapshot.schedule',
    requestId: 'req-snap',
    at: 1_700_000_000_024,
    phase: 'done',
    slotAt: 1_700_000_000_000,
    nodeId: 'n1',
    index: 4_242,
    sizeBytes: 123_456,
    error: null,
  },
  'approle.put': {
    type: 'approle.put',
    requestId: 'req-ap',
    at: 1_700_000_000_040,
    name: 'ci-deployer',
    role: 'deployer',
    roleId: '8f14e45f-ceea-467f-a0e6-1a2b3c4d5e6f',
    tokenTtlSecs: 3_600,
    secretIdTtlSecs: 2_592_000,
    secretIdUses: 10,
    boundCidrs: ['10.8.0.0/24', 'fd00::/8'],
    actor: 'ops',
  },
  'approle.delete': { type: 'approle.delete', requestId: 'req-ad', at: 1_700_000_000_041, name: 'ci-deployer', actor: 'ops' },
  'approle.secretId': { type: 'approle.secretId', requestId: 'req-as', at: 1_700_000_000_042, name: 'ci-deployer', secretIdHash: bytes(32, 40), actor: 'ops' },
  'approle.login': {
    type: 'approle.login',
    requestId: 'req-al',
    at: 1_700_000_000_043,
    roleId: '8f14e45f-ceea-467f-a0e6-1a2b3c4d5e6f',
    secretIdHash: bytes(32, 40),
    tokenHash: bytes(32, 41),
    tokenName: 'approle-ci-deployer-0a1b2c3d4e5f',
    approleUpdatedAt: 1_700_000_000_040,
  },
  'seal.init': { type: 'seal.init', requestId: 'req-si', at: 1_700_000_000_060, shares: 5, threshold: 3, keyCheck: bytes(32, 60), keyId: 'local:0123456789abcdef' },
  'cluster.versions': { type: 'cluster.versions', requestId: 'req-cv', at: 1_700_000_000_070, versions: [['secret.put', 3], ['transit.create', 1]], members: ['n1', 'n2', 'n3'] },
  'identity.put': { type: 'identity.put', requestId: 'req-ip', at: 1_700_000_000_025, name: 'build-agent', identityType: 'agent', publicKey: bytes(32, 25), fingerprint: 'SHA256:0a1b2c3d4e5f6071', actor: 'ops' },
  'identity.disable': { type: 'identity.disable', requestId: 'req-idis', at: 1_700_000_000_026, name: 'build-agent', actor: 'ops' },
  'identity.delete': { type: 'identity.delete', requestId: 'req-idel', at: 1_700_000_000_027, name: 'build-agent', actor: 'ops' },
  'membership.put': { type: 'membership.put', requestId: 'req-mp', at: 1_700_000_000_028, identity: 'build-agent', org: 'acme', project: 'web', role: 'member', actor: 'ops' },
  'membership.delete': { type: 'membership.delete', requestId: 'req-md', at: 1_700_000_000_029, identity: 'build-agent', org: 'acme', project: null, actor: 'identity:alice' },
  'access.request': {
    type: 'access.request',
    requestId: 'req-aq',
    at: 1_700_000_000_030,
    id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301',
    requester: 'identity:build-agent',
    identity: 'build-agent',
    org: 'acme',
    project: 'web',
    role: 'readonly',
    justification: 'deploy the web app',
  },
  'access.decide': { type: 'access.decide', requestId: 'req-ad2', at: 1_700_000_000_031, id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', decision: 'approved', actor: 'identity:alice' },
  'session.create': {
    type: 'session.create',
    requestId: 'req-sc',
    at: 1_700_000_000_032,
    tokenHash: bytes(32, 32),
    identity: 'build-agent',
    expiresAt: 1_700_000_003_632,
    nonceId: '00112233445566778899aabbccddeeff',
    nonceExpiresAt: 1_700_000_060_000,
  },
  'transit.create': { type: 'transit.create', requestId: 'req-trc', at: 1_700_000_000_050, name: 'orders', keyType: 'aes256-gcm', sealed: sealed(50), actor: 'ops' },
  'transit.rotate': { type: 'transit.rotate', requestId: 'req-trr', at: 1_700_000_000_051, name: 'orders', version: 2, sealed: sealed(51), actor: 'ops' },
  'transit.config': { type: 'transit.config', requestId: 'req-trcfg', at: 1_700_000_000_052, name: 'orders', minDecryptionVersion: 2, deletionAllowed: true, actor: 'ops' },
  'transit.delete': { type: 'transit.delete', requestId: 'req-trd', at: 1_700_000_000_053, name: 'orders', actor: 'ops' },
  'transit.rewrap': {
    type: 'transit.rewrap',
    requestId: 'req-trw',
    at: 1_700_000_000_054,
    name: 'orders',
    version: 2,
    versionCreatedAt: 1_700_000_000_051,
    wrappedDek: bytes(48, 54),
    kmsKeyId: 'key-2',
    expectedKmsKeyId: 'key-1',
    marker: 'm2',
  },
  'rotation.begin': { type: 'rotation.begin', requestId: 'req-rob', at: 1_700_000_000_065, name: 'db/app', fromVersion: 3, attemptId: 'att-1', format: 'userpass', sealed: sealed(65), actor: 'rotation-worker' },
  'rotation.commit': { type: 'rotation.commit', requestId: 'req-roc', at: 1_700_000_000_066, name: 'db/app', attemptId: 'att-1' },
  'rotation.fail': { type: 'rotation.fail', requestId: 'req-rof', at: 1_700_000_000_067, name: 'db/app', attemptId: 'att-1', error: { code: 'rotation_target_refused', message: 'permission denied to alter role' }, drop: true },
};

// ---- fast-check arbitraries: a small name space so commands collide and interact ----

const NAMES = ['a', 'a/b', 'a/c', 'b/x', 'c'];
const TOKENS = ['t1', 't2', 't3'];
const ROLES = ['admin', 'r1', 'r2'];
const IPS = ['10.0.0.1', '10.0.0.2'];

const name = fc.constantFrom(...NAMES);
const tname = fc.constantFrom(...TOKENS);
const role = fc.constantFrom(...ROLES);
const ver = fc.integer({ min: 0, max: 6 });
const hash = fc.integer({ min: 0, max: 5 }).map((s) => bytes(32, s + 100));
const dt = fc.integer({ min: 0, max: 400_000 });
const reqId = fc.oneof(fc.constant(''), fc.integer({ min: 0, max: 30 }).map((i) => `r${i}`));

/** A command "template": `at` and `version` get filled in by `realize` (monotonic time, plausible versions). */
export type Step = { dt: number; requestId: string; make: (at: number, latest: (n: string) => number) => Command };

const step = <T>(arb: fc.Arbitrary<T>, make: (v: T, base: { requestId: string; at: number }, latest: (n: string) => number) => Command): fc.Arbitrary<Step> =>
  fc.record({ dt, requestId: reqId, v: arb }).map(({ dt, requestId, v }) => ({
    dt,
    requestId,
    make: (at, latest) => make(v, { requestId, at }, latest),
  }));

export const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: step(fc.record({ name, seed: fc.nat(50), off: fc.integer({ min: 0, max: 3 }), cas: fc.option(ver), fmt: fc.constantFrom('raw', 'base64', 'kv', 'userpass' as const), rot: fc.boolean() }), (v, b, latest) => ({
    type: 'secret.put', ...b, name: v.name, version: Math.max(1, latest(v.name) + (v.off === 0 ? 0 : 1)), cas: v.cas, sealed: sealed(v.seed), format: v.fmt,
    description: v.seed % 3 === 0 ? `d${v.seed}` : null, rotation: v.rot ? { intervalSecs: 60 + v.seed, graceSecs: v.seed, target: null } : null, actor: 'a',
  }) as Command) },
  { weight: 1, arbitrary: step(fc.record({ name, mv: fc.option(fc.integer({ min: 1, max: 4 })), cas: fc.option(fc.boolean()), rot: fc.constantFrom(null, 'clear' as const, { intervalSecs: 120, graceSecs: 5, target: null }) }), (v, b) => ({
    type: 'secret.metadata', ...b, name: v.name, maxVersions: v.mv, casRequired: v.cas, customMetadata: v.mv ? { k: String(v.mv) } : null, description: null, rotation: v.rot, deleteVersionAfterSecs: null, actor: 'a',
  }) as Command) },
  { weight: 2, arbitrary: step(fc.record({ name, t: fc.constantFrom('secret.delete', 'secret.undelete', 'secret.destroy' as const), versions: fc.array(fc.integer({ min: 1, max: 6 }), { maxLength: 3 }) }), (v, b) => ({ type: v.t, ...b, name: v.name, versions: v.versions, actor: 'a' }) as Command) },
  { weight: 1, arbitrary: step(name, (n, b) => ({ type: 'secret.destroyAll', ...b, name: n, actor: 'a' })) },
  { weight: 2, arbitrary: step(fc.record({ n: tname, role, hash, exp: fc.option(fc.integer({ min: 0, max: 3_000_000 })) }), (v, b) => ({ type: 'token.create', ...b, name: v.n, role: v.role, tokenHash: v.hash, expiresAt: v.exp === null ? null : b.at + v.exp - 1_000_000, actor: 'a' }) as Command) },
  { weight: 1, arbitrary: step(tname, (n, b) => ({ type: 'token.revoke', ...b, name: n, actor: 'a' })) },
  { weight: 1, arbitrary: step(fc.record({ n: tname, hash }), (v, b) => ({ type: 'token.rotate', ...b, name: v.n, tokenHash: v.hash, expiresAt: null, actor: 'a' })) },
  { weight: 1, arbitrary: step(fc.subarray(TOKENS), (names, b) => ({ type: 'token.expire', ...b, names })) },
  { weight: 1, arbitrary: step(fc.record({ n: role, p: fc.constantFrom('a/*', '**') }), (v, b) => ({ type: 'role.put', ...b, name: v.n, rules: [{ paths: [v.p], actions: ['secret.write'] }], rateLimit: null, actor: 'a', maxTtlSecs: null })) },
  { weight: 1, arbitrary: step(role, (n, b) => ({ type: 'role.delete', ...b, name: n, actor: 'a' })) },
  { weight: 1, arbitrary: step(fc.subarray(['10.0.0.0/8', '::1/128']), (cidrs, b) => ({ type: 'allowlist.replace', ...b, cidrs, actor: 'a' })) },
  { weight: 1, arbitrary: step(hash, (h, b) => ({ type: 'bootstrap', ...b, tokenHash: h, cidrs: ['127.0.0.1/32'] })) },
  { weight: 2, arbitrary: step(fc.record({ name, v: fc.integer({ min: 1, max: 6 }), k: fc.constantFrom('key-1', 'key-2'), m: fc.constantFrom('m1', 'm2'), seed: fc.nat(9) }), (v, b) => ({
    type: 'kms.rewrap', ...b, name: v.name, version: v.v, wrappedDek: bytes(48, v.seed), kmsKeyId: v.k, expectedKmsKeyId: 'key-1', marker: v.m,
  }) as Command) },
  { weight: 1, arbitrary: step(fc.constantFrom('m1', 'm2'), (m, b) => ({ type: 'kms.watermark', ...b, marker: m, passStartedAt: b.at, passFinishedAt: null, rewrapped: 1, failed: 0 })) },
  { weight: 2, arbitrary: step(fc.record({ ip: fc.constantFrom(...IPS), retain: fc.constantFrom(300_000, 900_000) }), (v, b) => ({ type: 'auth.failure', ...b, ip: v.ip, retainMs: v.retain })) },
  { weight: 1, arbitrary: step(fc.constantFrom(...IPS), (ip, b) => ({ type: 'auth.reset', ...b, ip })) },
  { weight: 1, arbitrary: step(fc.constantFrom('n1', 'n2'), (id, b) => ({ type: 'member.upsert', ...b, id, raftAddr: `http://${id}:8201`, apiAddr: `http://${id}:8200` })) },
  { weight: 1, arbitrary: step(fc.constantFrom('n1', 'n2'), (id, b) => ({ type: 'member.remove', ...b, id })) },
  { weight: 1, arbitrary: step(fc.record({ phase: fc.constantFrom('claim', 'done', 'failed' as const), slot: fc.integer({ min: 1, max: 3 }), id: fc.constantFrom('n1', 'n2') }), (v, b) => ({
    type: 'snapshot.schedule', ...b, phase: v.phase, slotAt: v.slot * 1000, nodeId: v.id, index: v.phase === 'done' ? 7 : 0, sizeBytes: v.phase === 'done' ? 100 : 0, error: v.phase === 'failed' ? 'disk full' : null,
  }) as Command) },
  { weight: 1, arbitrary: step(fc.constant(null), (_n, b) => ({ type: 'noop', ...b })) },
  { weight: 2, arbitrary: step(fc.record({ name, k: fc.integer({ min: 0, max: 3 }), a: fc.constantFrom('x1', 'x2'), seed: fc.nat(50), off: fc.constantFrom(0, 0, 1) }), (v, b, latest) => ([
    { type: 'rotation.begin', ...b, name: v.name, fromVersion: Math.max(1, latest(v.name) + v.off), attemptId: v.a, format: 'userpass', sealed: sealed(v.seed), actor: 'w' },
    { type: 'rotation.commit', ...b, name: v.name, attemptId: v.a },
    { type: 'rotation.fail', ...b, name: v.name, attemptId: v.a, error: { code: 'rotation_target_refused', message: `m${v.seed}` }, drop: true },
    { type: 'rotation.fail', ...b, name: v.name, attemptId: v.a, error: { code: 'rotation_target_unavailable', message: 'timeout' }, drop: false },
  ] as Command[])[v.k] as Command) },
  { weight: 2, arbitrary: step(fc.record({ who: fc.constantFrom('i1', 'i2'), k: fc.integer({ min: 0, max: 5 }), n: fc.integer({ min: 0, max: 6 }) }), (v, b) => ([
    { type: 'identity.put', ...b, name: v.who, identityType: 'agent', publicKey: bytes(32, v.n), fingerprint: `f${v.n}`, actor: 'a' },
    { type: 'identity.disable', ...b, name: v.who, actor: 'a' },
    { type: 'identity.delete', ...b, name: v.who, actor: 'a' },
    { type: 'membership.put', ...b, identity: v.who, org: 'o', project: v.n % 2 === 0 ? null : 'p', role: v.n % 2 === 0 ? 'admin' : 'member', actor: 'a' },
    { type: 'access.request', ...b, id: `q${v.n}`, requester: `identity:${v.who}`, identity: v.who, org: 'o', project: 'p', role: 'readonly', justification: '' },
    { type: 'access.decide', ...b, id: `q${v.n}`, decision: v.n % 2 === 0 ? 'approved' : 'denied', actor: v.n === 0 ? 'identity:i1' : 'a' },
  ] as Command[])[v.k] as Command) },
  { weight: 2, arbitrary: step(fc.record({ who: fc.constantFrom('i1', 'i2'), n: fc.integer({ min: 0, max: 8 }), life: fc.integer({ min: 1, max: 4_000_000 }) }), (v, b) => ({
    type: 'session.create', ...b, tokenHash: bytes(32, 200 + v.n), identity: v.who, expiresAt: b.at + v.life, nonceId: v.n.toString(16).padStart(32, '0'), nonceExpiresAt: b.at + 60_000,
  }) as Command) },
  { weight: 1, arbitrary: step(fc.record({ role, uses: fc.option(fc.integer({ min: 1, max: 3 })), ttl: fc.option(fc.integer({ min: 1, max: 300 })) }), (v, b) => ({
    type: 'approle.put', ...b, name: 'ap', role: v.role, roleId: 'rid', tokenTtlSecs: 60, secretIdTtlSecs: v.ttl, secretIdUses: v.uses, boundCidrs: [], actor: 'a',
  }) as Command) },
  { weight: 1, arbitrary: step(hash, (h, b) => ({ type: 'approle.secretId', ...b, name: 'ap', secretIdHash: h, actor: 'a' })) },
  { weight: 2, arbitrary: step(fc.record({ h: hash, t: hash, n: tname }), (v, b) => ({
    type: 'approle.login', ...b, roleId: 'rid', secretIdHash: v.h, tokenHash: v.t, tokenName: `ap-${v.n}`, approleUpdatedAt: b.at % 2 === 0 ? 0 : b.at,
  }) as Command) },
  { weight: 1, arbitrary: step(fc.constant('ap'), (n, b) => ({ type: 'approle.delete', ...b, name: n, actor: 'a' })) },
  { weight: 1, arbitrary: step(fc.record({ k: fc.constantFrom('k1', 'k2'), t: fc.constantFrom('xchacha20-poly1305', 'aes256-gcm' as const), seed: fc.nat(50) }), (v, b) => ({ type: 'transit.create', ...b, name: v.k, keyType: v.t, sealed: sealed(v.seed), actor: 'a' }) as Command) },
  { weight: 1, arbitrary: step(fc.record({ k: fc.constantFrom('k1', 'k2'), v: fc.integer({ min: 2, max: 4 }), seed: fc.nat(50) }), (v, b) => ({ type: 'transit.rotate', ...b, name: v.k, version: v.v, sealed: sealed(v.seed), actor: 'a' }) as Command) },
  { weight: 1, arbitrary: step(fc.record({ k: fc.constantFrom('k1', 'k2'), min: fc.option(fc.integer({ min: 1, max: 3 })), del: fc.option(fc.boolean()) }), (v, b) => ({ type: 'transit.config', ...b, name: v.k, minDecryptionVersion: v.min, deletionAllowed: v.del, actor: 'a' }) as Command) },
  { weight: 1, arbitrary: step(fc.constantFrom('k1', 'k2'), (k, b) => ({ type: 'transit.delete', ...b, name: k, actor: 'a' })) },
  { weight: 1, arbitrary: step(fc.record({ k: fc.constantFrom('k1', 'k2'), v: fc.integer({ min: 1, max: 3 }), m: fc.constantFrom('m1', 'm2'), seed: fc.nat(9) }), (v, b) => ({
    type: 'transit.rewrap', ...b, name: v.k, version: v.v, versionCreatedAt: b.at % 3 === 0 ? 0 : b.at, wrappedDek: bytes(48, v.seed), kmsKeyId: 'key-2', expectedKmsKeyId: 'key-1', marker: v.m,
  }) as Command) },
  { weight: 1, arbitrary: step(fc.record({ n: fc.integer({ min: 2, max: 5 }), seed: fc.nat(50) }), (v, b) => ({ type: 'seal.init', ...b, shares: v.n, threshold: 2, keyCheck: bytes(32, v.seed), keyId: 'local:00000000000000aa' }) as Command) },
  { weight: 1, arbitrary: step(fc.record({ v: fc.integer({ min: 1, max: 9 }), n: fc.integer({ min: 1, max: 5 }) }), (v, b) => ({ type: 'cluster.versions', ...b, versions: [['secret.put', v.v], ['token.create', 1]], members: Array.from({ length: v.n }, (_, i) => `n${i + 1}`) }) as Command) },
);

/**
 * Turns steps into concrete log entries, consulting `latest` (a replica's view) for versions so
 * that most puts succeed. Every replica must get the same entries, so realise once and share.
 */
export function realize(steps: readonly Step[], latest: (n: string) => number, apply: (e: LogEntry) => void, startIndex = 1, startAt = 1_700_000_000_000): LogEntry[] {
  const out: LogEntry[] = [];
  let at = startAt;
  let index = startIndex;
  for (const s of steps) {
    at += s.dt;
    const e: LogEntry = { term: 1, index: index++, type: 'normal', data: encodeCommand(s.make(at, latest)) };
    apply(e);
    out.push(e);
  }
  return out;
}

/** Integrity keys of the test "cluster" (fixed, so stores reopen and snapshots move between them). */
export const TEST_INTEGRITY: Integrity = new Integrity({ record: bytes(32, 101), snapshot: bytes(32, 102) });

/**
 * One replica for a family's tests: a state machine (blobs kept, test integrity keys) and `run`,
 * which applies a command as the next log entry and returns its result.
 */
export function replica(): { sm: StateMachine; run: (c: Command) => CommandResult } {
  const sm = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
  let index = 0;
  const run = (c: Command): CommandResult => {
    const r = sm.apply({ term: 1, index: ++index, type: 'normal', data: encodeCommand(c) });
    if (!r) throw new Error('entry not applied');
    return r.result;
  };
  return { sm, run };
}
