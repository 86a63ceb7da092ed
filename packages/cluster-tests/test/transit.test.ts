/**
 * Transit (encryption as a service) against a real three-node cluster: round trips on every node,
 * tampering, contexts, rotation, rewrap, the minimum decryption version, guarded deletion, data
 * keys, node-vault unchanged, role scoping by key name, and what the replicated state holds
 * (sealed key versions only: checked on a downloaded snapshot with the cluster's keys).
 * Hostile requests per route are in transit-hostile.test.ts.
 */
import { spawn } from 'node:child_process';
import { hkdfSync, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vault from 'node-vault';
import { Envelopes, createLocalProvider, decryptWithKeyVersion, openTransitKey, type Envelope } from '../../crypto/src/index.js';
import { Integrity, decodeSnapshotBlob, transitKeys } from '../../state/src/index.js';
import { COFFER_BIN, REPO_ROOT, TestCluster, runCli, type HttpResult, type NodeHandle } from '../src/harness';
import { rawHttp } from '../src/hostile';

jest.setTimeout(240_000);

const b64 = (s: string | Buffer): string => (typeof s === 'string' ? Buffer.from(s, 'utf8') : s).toString('base64');
const unb64 = (s: string): Buffer => Buffer.from(s, 'base64');

const stateRequire = createRequire(path.join(REPO_ROOT, 'packages', 'state', 'package.json'));

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The byte patterns that betray `raw`: itself, hex, and the alignment-independent core of its base64 at each offset. */
function forms(raw: Buffer): { form: string; bytes: Buffer }[] {
  const out = [
    { form: 'raw', bytes: raw },
    { form: 'hex', bytes: Buffer.from(raw.toString('hex')) },
  ];
  for (const enc of ['base64', 'base64url'] as const) {
    for (let k = 0; k < 3; k++) {
      const text = Buffer.concat([Buffer.alloc(k), raw]).toString(enc).replace(/=+$/, '');
      out.push({ form: `${enc}@${k}`, bytes: Buffer.from(text.slice(k === 0 ? 0 : 4, text.length - 4)) });
    }
  }
  return out;
}

/** `./bin/coffer ARGS` with `input` on stdin. */
function cliWithStdin(args: string[], env: Record<string, string>, input: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(COFFER_BIN, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    p.stdin?.end(input);
  });
}

describe('transit on a real three-node cluster', () => {
  const cluster = new TestCluster();
  /** A copy of the `payments` key's version 1, opened in the snapshot test: searched for on disk at the end. */
  let paymentsKey: Buffer | undefined;
  let leader: NodeHandle;
  let followers: NodeHandle[];

  const call = (n: NodeHandle, method: string, p: string, body?: unknown, token?: string | null): Promise<HttpResult> =>
    cluster.call(n, method, p, body, token === undefined ? cluster.bootstrapToken : token);
  async function ok(n: NodeHandle, method: string, p: string, body?: unknown, token?: string | null): Promise<any> {
    const r = await call(n, method, p, body, token);
    if (r.status !== 200) throw new Error(`${method} ${p} on ${n.id}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
  const encrypt = async (n: NodeHandle, key: string, text: string, context?: string): Promise<string> =>
    (await ok(n, 'POST', `/v1/transit/encrypt/${key}`, { plaintext: b64(text), ...(context === undefined ? {} : { context: b64(context) }) })).data.ciphertext;
  const decrypt = (n: NodeHandle, key: string, ciphertext: string, context?: string): Promise<HttpResult> =>
    call(n, 'POST', `/v1/transit/decrypt/${key}`, { ciphertext, ...(context === undefined ? {} : { context: b64(context) }) });

  beforeAll(async () => {
    await cluster.start();
    leader = await cluster.bootstrapped();
    followers = cluster.nodes.filter((n) => n !== leader);
    await cluster.ready();
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('a key created through a follower round-trips on the leader and both followers', async () => {
    const created = await ok(followers[0] as NodeHandle, 'POST', '/v1/transit/keys/orders');
    expect(created).toMatchObject({ mount_type: 'transit', data: { name: 'orders', type: 'xchacha20-poly1305', latest_version: 1, min_decryption_version: 1, deletion_allowed: false } });
    expect(Object.keys(created.data.keys)).toEqual(['1']);
    // Creating it again changes nothing (Vault's behaviour).
    expect((await ok(leader, 'POST', '/v1/transit/keys/orders', { type: 'aes256-gcm' })).data).toMatchObject({ type: 'xchacha20-poly1305', latest_version: 1 });
    expect((await ok(leader, 'POST', '/v1/transit/keys/payments', { type: 'aes256-gcm' })).data.type).toBe('aes256-gcm');

    for (const key of ['orders', 'payments']) {
      for (const from of cluster.nodes) {
        const text = `card 4111-1111 via ${from.id} with ${key}`;
        const r = await ok(from, 'POST', `/v1/transit/encrypt/${key}`, { plaintext: b64(text) });
        expect(r.data.key_version).toBe(1);
        expect(r.data.ciphertext).toMatch(/^coffer:v1:[A-Za-z0-9+/]+=*$/);
        for (const to of cluster.nodes) {
          const d = await decrypt(to, key, r.data.ciphertext);
          expect(d.status).toBe(200);
          expect(unb64(d.body.data.plaintext).toString('utf8')).toBe(text);
        }
      }
    }
    // The key document never carries key material.
    const doc = await ok(followers[1] as NodeHandle, 'GET', '/v1/transit/keys/orders');
    expect(JSON.stringify(doc)).not.toMatch(/"(key|keys_material|material|envelope|wrapped)"/);
    expect(typeof doc.data.keys['1']).toBe('number');
  });

  test('a tampered, malformed or foreign ciphertext is refused with 400 naming the problem', async () => {
    const ct = await encrypt(leader, 'orders', 'do not touch');
    const payload = unb64(ct.slice('coffer:v1:'.length));
    for (const i of [0, 12, payload.length - 1]) {
      const flipped = Buffer.from(payload);
      flipped[i] = (flipped[i] as number) ^ 1;
      const r = await decrypt(followers[0] as NodeHandle, 'orders', `coffer:v1:${flipped.toString('base64')}`);
      expect(r.status).toBe(400);
      expect(r.body.errors[0]).toMatch(/authenticat|integrity|tamper/i);
    }
    for (const bad of ['vault:v1:AAAA', 'coffer:v0:AAAA', 'coffer:v1:!!!!', 'coffer:v1:AAAA', 'coffer:v01:' + payload.toString('base64')]) {
      const r = await decrypt(leader, 'orders', bad);
      expect(r.status).toBe(400);
      expect(r.body.errors).toHaveLength(1);
      expect(r.body.errors[0]).not.toContain(bad.slice(10));
    }
    // A ciphertext of another key (same type) does not open under this one.
    await ok(leader, 'POST', '/v1/transit/keys/orders-b');
    const other = await encrypt(leader, 'orders-b', 'moved');
    expect((await decrypt(leader, 'orders', other)).status).toBe(400);
    // A version the key does not have.
    const r = await decrypt(leader, 'orders', `coffer:v9:${payload.toString('base64')}`);
    expect(r.status).toBe(400);
    expect(r.body.errors[0]).toMatch(/version 9/);
  });

  test('the context is bound: the same context decrypts, another or none is refused', async () => {
    const ct = await encrypt(followers[1] as NodeHandle, 'orders', 'bound', 'tenant-42');
    const good = await decrypt(leader, 'orders', ct, 'tenant-42');
    expect(unb64(good.body.data.plaintext).toString()).toBe('bound');
    expect((await decrypt(leader, 'orders', ct, 'tenant-43')).status).toBe(400);
    expect((await decrypt(leader, 'orders', ct)).status).toBe(400);
    const bad = await call(leader, 'POST', '/v1/transit/decrypt/orders', { ciphertext: ct, context: 'not base64!' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatch(/"context"/);
  });

  test('rotate, rewrap moves old ciphertexts forward, and a version below the minimum is refused', async () => {
    await ok(leader, 'POST', '/v1/transit/keys/ledger', { type: 'aes256-gcm' });
    const v1 = await encrypt(followers[0] as NodeHandle, 'ledger', 'entry one', 'ctx');
    const rotated = await ok(followers[1] as NodeHandle, 'POST', '/v1/transit/keys/ledger/rotate');
    expect(rotated.data).toMatchObject({ latest_version: 2, min_decryption_version: 1 });
    expect(Object.keys(rotated.data.keys).sort()).toEqual(['1', '2']);
    // Every node encrypts with version 2 right after the rotation was acknowledged (read barrier).
    for (const n of cluster.nodes) expect(await encrypt(n, 'ledger', 'entry two')).toMatch(/^coffer:v2:/);
    // Old ciphertexts still decrypt until the minimum moves.
    expect(unb64((await decrypt(leader, 'ledger', v1, 'ctx')).body.data.plaintext).toString()).toBe('entry one');
    const rw = await ok(followers[0] as NodeHandle, 'POST', '/v1/transit/rewrap/ledger', { ciphertext: v1, context: b64('ctx') });
    expect(rw.data.key_version).toBe(2);
    expect(rw.data.ciphertext).toMatch(/^coffer:v2:/);
    expect(rw.data).not.toHaveProperty('plaintext');
    expect(unb64((await decrypt(followers[1] as NodeHandle, 'ledger', rw.data.ciphertext, 'ctx')).body.data.plaintext).toString()).toBe('entry one');

    expect((await call(leader, 'POST', '/v1/transit/keys/ledger/config', { min_decryption_version: 3 })).status).toBe(400);
    const cfg = await ok(followers[1] as NodeHandle, 'POST', '/v1/transit/keys/ledger/config', { min_decryption_version: 2 });
    expect(cfg.data.min_decryption_version).toBe(2);
    for (const n of cluster.nodes) {
      const old = await decrypt(n, 'ledger', v1, 'ctx');
      expect(old.status).toBe(400);
      expect(old.body.errors[0]).toMatch(/below the minimum decryption version 2/);
      expect((await call(n, 'POST', '/v1/transit/rewrap/ledger', { ciphertext: v1, context: b64('ctx') })).status).toBe(400);
    }
    expect(unb64((await decrypt(leader, 'ledger', rw.data.ciphertext, 'ctx')).body.data.plaintext).toString()).toBe('entry one');
  });

  test('deletion is refused unless allowed; a deleted key is gone on every node', async () => {
    await ok(leader, 'POST', '/v1/transit/keys/temp');
    const ct = await encrypt(leader, 'temp', 'short-lived');
    const refused = await call(followers[0] as NodeHandle, 'DELETE', '/v1/transit/keys/temp');
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0]).toMatch(/deletion is not allowed/);
    expect((await decrypt(leader, 'temp', ct)).status).toBe(200);
    await ok(followers[1] as NodeHandle, 'POST', '/v1/transit/keys/temp/config', { deletion_allowed: true });
    expect((await call(followers[0] as NodeHandle, 'DELETE', '/v1/transit/keys/temp')).status).toBe(204);
    for (const n of cluster.nodes) {
      expect((await call(n, 'GET', '/v1/transit/keys/temp')).status).toBe(404);
      const d = await decrypt(n, 'temp', ct);
      expect(d.status).toBe(400);
      expect(d.body.errors[0]).toMatch(/does not exist/);
    }
    expect((await call(leader, 'DELETE', '/v1/transit/keys/temp')).status).toBe(404);
  });

  test('datakey: the wrapped form decrypts to the plaintext form; wrapped mode returns no plaintext', async () => {
    const p = await ok(followers[0] as NodeHandle, 'POST', '/v1/transit/datakey/plaintext/orders', {});
    expect(unb64(p.data.plaintext)).toHaveLength(32);
    expect(p.data.ciphertext).toMatch(/^coffer:v1:/);
    const d = await decrypt(followers[1] as NodeHandle, 'orders', p.data.ciphertext);
    expect(d.body.data.plaintext).toBe(p.data.plaintext);
    const w = await ok(leader, 'POST', '/v1/transit/datakey/wrapped/orders', { bits: 512, context: b64('c') });
    expect(w.data).not.toHaveProperty('plaintext');
    expect(unb64((await decrypt(leader, 'orders', w.data.ciphertext, 'c')).body.data.plaintext)).toHaveLength(64);
    expect(unb64((await ok(leader, 'POST', '/v1/transit/datakey/plaintext/orders', { bits: 128 })).data.plaintext)).toHaveLength(16);
    const bad = await call(leader, 'POST', '/v1/transit/datakey/plaintext/orders', { bits: 100 });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0]).toMatch(/"bits"/);
  });

  test('a hot key is opened through the DEK cache: no unwrap per request', async () => {
    const n = followers[1] as NodeHandle;
    await encrypt(n, 'orders', 'warm the cache');
    const [hits0, misses0] = [await cluster.metric(n, 'coffer_dek_cache_hits_total'), await cluster.metric(n, 'coffer_dek_cache_misses_total')];
    for (let i = 0; i < 20; i++) {
      const ct = await encrypt(n, 'orders', `hot ${i}`);
      expect((await decrypt(n, 'orders', ct)).status).toBe(200);
    }
    const [hits1, misses1] = [await cluster.metric(n, 'coffer_dek_cache_hits_total'), await cluster.metric(n, 'coffer_dek_cache_misses_total')];
    // 40 opens of the same key version: all cache hits (a TTL expiry in between could cost one miss).
    expect(hits1 - hits0).toBeGreaterThanOrEqual(39);
    expect(misses1 - misses0).toBeLessThanOrEqual(1);
  });

  test('node-vault works unchanged: encryptData/decryptData, generic write, transitReadKey', async () => {
    for (const n of [leader, ...followers]) {
      const v = vault({ apiVersion: 'v1', endpoint: n.api, token: cluster.bootstrapToken });
      const e = await v.encryptData({ name: 'orders', plaintext: b64(`hello from ${n.id}`) });
      expect(e.data.ciphertext).toMatch(/^coffer:v1:/);
      const d = await v.decryptData({ name: 'orders', ciphertext: e.data.ciphertext });
      expect(unb64(d.data.plaintext).toString()).toBe(`hello from ${n.id}`);
      const g = await v.write('transit/encrypt/payments', { plaintext: b64('generic') });
      const gd = await v.write('transit/decrypt/payments', { ciphertext: g.data.ciphertext });
      expect(unb64(gd.data.plaintext).toString()).toBe('generic');
      // A payments ciphertext is not a ledger one: Vault's 400 reaches node-vault as an error.
      const rw = await v.rewrapData({ name: 'ledger', ciphertext: g.data.ciphertext }).then(() => 200, (err: { response?: { statusCode: number } }) => err.response?.statusCode);
      expect(rw).toBe(400);
      const k = await v.transitReadKey({ name: 'ledger' });
      expect(k.data.latest_version).toBe(2);
    }
  });

  test('a role scoped to paths ["app-*"] uses app-* keys only, and only with the actions it holds', async () => {
    for (const k of ['app-orders', 'other']) await ok(leader, 'POST', `/v1/transit/keys/${k}`);
    await ok(leader, 'PUT', '/v1/roles/app-crypto', { rules: [{ paths: ['app-*'], actions: ['transit.encrypt', 'transit.decrypt'] }] });
    await ok(leader, 'PUT', '/v1/roles/app-enc-only', { rules: [{ paths: ['app-*'], actions: ['transit.encrypt'] }] });
    const scoped = (await ok(leader, 'POST', '/v1/tokens', { name: 'app-crypto-tok', role: 'app-crypto' })).token as string;
    const encOnly = (await ok(leader, 'POST', '/v1/tokens', { name: 'app-enc-tok', role: 'app-enc-only' })).token as string;
    // A transit.* rule without paths is refused, as for secret.*.
    const noPaths = await call(leader, 'PUT', '/v1/roles/bad', { rules: [{ actions: ['transit.encrypt'] }] });
    expect(noPaths.status).toBe(400);

    for (const n of cluster.nodes) {
      const ct = await ok(n, 'POST', '/v1/transit/encrypt/app-orders', { plaintext: b64('mine') }, scoped);
      expect(unb64((await ok(n, 'POST', '/v1/transit/decrypt/app-orders', { ciphertext: ct.data.ciphertext }, scoped)).data.plaintext).toString()).toBe('mine');
      const otherCt = await encrypt(n, 'other', 'not yours');
      const denied = [
        await call(n, 'POST', '/v1/transit/encrypt/other', { plaintext: b64('x') }, scoped),
        await call(n, 'POST', '/v1/transit/decrypt/other', { ciphertext: otherCt }, scoped),
        await call(n, 'POST', '/v1/transit/rewrap/other', { ciphertext: otherCt }, scoped),
        await call(n, 'POST', '/v1/transit/datakey/plaintext/other', {}, scoped),
        await call(n, 'GET', '/v1/transit/keys/app-orders', undefined, scoped),
        await call(n, 'POST', '/v1/transit/keys/app-orders/rotate', undefined, scoped),
        await call(n, 'POST', '/v1/transit/keys/app-new', {}, scoped),
        await call(n, 'POST', '/v1/transit/decrypt/app-orders', { ciphertext: ct.data.ciphertext }, encOnly),
      ];
      for (const d of denied) {
        expect(d.status).toBe(403);
        expect(d.body.errors[0]).toMatch(/does not allow transit\./);
      }
      expect((await call(n, 'POST', '/v1/transit/rewrap/app-orders', { ciphertext: ct.data.ciphertext }, encOnly)).status).toBe(200);
    }
    expect((await call(leader, 'GET', '/v1/transit/keys/app-new')).status).toBe(404);
  });

  test('coffer transit create|rotate|encrypt|decrypt: UTF-8 on argv and stdin, --context, --json, exit codes', async () => {
    const env = { COFFER_ADDR: cluster.nodes.map((n) => n.api).join(','), COFFER_TOKEN: cluster.bootstrapToken };
    const created = await runCli(['transit', 'create', 'cli-key', '--type', 'aes256-gcm', '--json'], env);
    expect(created.code).toBe(0);
    expect(JSON.parse(created.stdout)).toMatchObject({ name: 'cli-key', type: 'aes256-gcm', latestVersion: 1 });
    const enc = await runCli(['transit', 'encrypt', 'cli-key', 'grüße aus der CLI'], env);
    expect(enc.code).toBe(0);
    const ct = enc.stdout.trim();
    expect(ct).toMatch(/^coffer:v1:/);
    const dec = await runCli(['transit', 'decrypt', 'cli-key', ct], env);
    expect(dec).toMatchObject({ code: 0 });
    expect(dec.stdout.trim()).toBe('grüße aus der CLI');
    // The API agrees: it is the API's ciphertext of those UTF-8 bytes.
    expect(unb64((await decrypt(leader, 'cli-key', ct)).body.data.plaintext).toString('utf8')).toBe('grüße aus der CLI');

    const fromStdin = await cliWithStdin(['transit', 'encrypt', 'cli-key', '-', '--context', 'tenant-7', '--json'], env, 'from stdin\n');
    expect(fromStdin.code).toBe(0);
    const j = JSON.parse(fromStdin.stdout);
    expect(j.keyVersion).toBe(1);
    const back = await runCli(['transit', 'decrypt', 'cli-key', j.ciphertext, '--context', 'tenant-7', '--json'], env);
    expect(JSON.parse(back.stdout)).toEqual({ plaintext: 'from stdin' });
    const noCtx = await runCli(['transit', 'decrypt', 'cli-key', j.ciphertext], env);
    expect(noCtx.code).toBe(1);
    expect(noCtx.stderr).toMatch(/authenticat/i);

    const rotated = await runCli(['transit', 'rotate', 'cli-key'], env);
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/latest version 2/);
    expect((await runCli(['transit', 'encrypt', 'cli-key', 'x'], env)).stdout).toMatch(/^coffer:v2:/);
    expect((await runCli(['transit', 'create', 'k', '--type', 'rsa-2048'], env)).code).toBe(2);
    const help = await runCli(['transit', 'encrypt', '--help'], env);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--context/);
    const denied = await runCli(['transit', 'encrypt', 'cli-key', 'x'], { ...env, COFFER_TOKEN: 'cof_wrong_0000000000000000000000000000' });
    expect(denied.code).toBe(1);
  });

  test('the replicated state holds sealed key versions only (checked on a snapshot)', async () => {
    const text = 'the snapshot must not hold the key that opens this';
    const ct = await encrypt(leader, 'payments', text);
    const snap = await rawHttp(leader, 'GET', '/v1/cluster/snapshot', { headers: { authorization: `Bearer ${cluster.bootstrapToken}` } });
    expect(snap.status).toBe(200);
    // With COFFER_CLUSTER_KEY the integrity root is the cluster key (storage-integrity.ts).
    const root = Buffer.from(cluster.clusterKey, 'base64');
    const hk = (info: string): Uint8Array => new Uint8Array(hkdfSync('sha256', root, new Uint8Array(0), info, 32));
    const integrity = new Integrity({ record: hk('coffer record mac v1'), snapshot: hk('coffer snapshot mac v1') });
    const contents = decodeSnapshotBlob(new Uint8Array(snap.raw), integrity);
    const found = contents.records.filter(([k]) => k.endsWith(`${transitKeys.prefix}payments`));
    expect(found).toHaveLength(1);
    const rec = transitKeys.decode((found[0] as [string, Uint8Array])[1]);
    expect(rec).toMatchObject({ name: 'payments', type: 'aes256-gcm', latestVersion: 1 });
    const stored = rec.versions.get(1)?.sealed;
    if (stored === undefined) throw new Error('no version 1');
    // A sealed 32-byte key: ciphertext = 32 + 16-byte tag, a wrapped DEK, the key id.
    expect(stored.ciphertext).toHaveLength(48);
    const env: Envelope = { ...stored, alg: 'xchacha20poly1305' };
    const ref = { name: 'payments', type: 'aes256-gcm' as const, version: 1 };

    const right = new Envelopes({ provider: createLocalProvider({ masterKeyBase64: cluster.masterKey }) });
    const key = await openTransitKey(right, env, ref);
    try {
      // It really is the key: it opens what the API encrypted.
      expect(Buffer.from(decryptWithKeyVersion({ ...ref, key }, ct)).toString()).toBe(text);
      // And it is nowhere in the snapshot in the clear.
      expect(Buffer.from(snap.raw).includes(Buffer.from(key))).toBe(false);
      paymentsKey = Buffer.from(key);
    } finally {
      key.fill(0);
    }
    const otherMaster = Buffer.alloc(32, 7).toString('base64');
    const wrong = new Envelopes({ provider: createLocalProvider({ masterKeyBase64: otherMaster }) });
    await expect(openTransitKey(wrong, env, ref)).rejects.toThrow();
  });
  test('no plaintext and no key material on disk, in logs or in the audit; every transit action is audited by key name', async () => {
    const CANARY = `TRANSIT-CANARY-${randomBytes(12).toString('hex')}`;
    for (const n of cluster.nodes) {
      const ct = await encrypt(n, 'payments', CANARY);
      expect(unb64((await decrypt(n, 'payments', ct)).body.data.plaintext).toString()).toBe(CANARY);
      await ok(n, 'POST', '/v1/transit/rewrap/payments', { ciphertext: ct });
      // Refused requests that carry the canary do not echo it either.
      const bad = await call(n, 'POST', '/v1/transit/encrypt/payments', { plaintext: b64(CANARY), extra: CANARY });
      expect(bad.status).toBe(400);
      expect(JSON.stringify(bad.body)).not.toContain(CANARY);
    }
    if (paymentsKey === undefined) throw new Error('the snapshot test did not run');
    const needles = [...forms(Buffer.from(CANARY)).map((f) => ({ ...f, what: `plaintext (${f.form})` })), ...forms(paymentsKey).map((f) => ({ ...f, what: `key (${f.form})` }))];
    for (const n of cluster.nodes) expect((await cluster.terminate(n)).code).toBe(0);
    const hits: string[] = [];
    const search = (where: string, data: Buffer): void => {
      for (const p of needles) if (data.includes(p.bytes)) hits.push(`${p.what} in ${where}`);
    };
    const levelDirs: string[] = [];
    let files = 0;
    for (const n of cluster.nodes) {
      for (const f of walk(n.dataDir)) {
        files++;
        search(path.relative(cluster.root, f), readFileSync(f));
        if (path.basename(f) === 'CURRENT') levelDirs.push(path.dirname(f));
      }
      search(`log of ${n.id}`, readFileSync(n.logFile));
    }
    // Through LevelDB itself (compressed blocks included).
    const { ClassicLevel } = stateRequire('classic-level') as { ClassicLevel: new (dir: string, opts: object) => { open(): Promise<void>; close(): Promise<void>; iterator(): AsyncIterable<[Buffer, Buffer]> } };
    let records = 0;
    for (const dir of levelDirs) {
      const db = new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
      await db.open();
      try {
        for await (const [k, v] of db.iterator()) {
          records++;
          search(`LevelDB ${path.relative(cluster.root, dir)}`, Buffer.concat([k, v]));
        }
      } finally {
        await db.close();
      }
    }
    expect(files).toBeGreaterThan(10);
    expect(records).toBeGreaterThan(10);
    expect(hits).toEqual([]);

    // The audit: each node's own lines, one per request, naming the key.
    const lines = cluster.nodes.flatMap((n) => readFileSync(path.join(n.dataDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { action: string; resource: string | null; outcome: string }));
    const seen = (action: string, resource: string, outcome = 'ok'): boolean => lines.some((l) => l.action === action && l.resource === resource && l.outcome === outcome);
    for (const [action, resource] of [
      ['transit.create', 'orders'],
      ['transit.rotate', 'ledger'],
      ['transit.config', 'ledger'],
      ['transit.delete', 'temp'],
      ['transit.read', 'orders'],
      ['transit.encrypt', 'payments'],
      ['transit.decrypt', 'payments'],
      ['transit.rewrap', 'payments'],
      ['transit.datakey.plaintext', 'orders'],
      ['transit.datakey.wrapped', 'orders'],
    ]) expect({ action, resource, seen: seen(action as string, resource as string) }).toEqual({ action, resource, seen: true });
    expect(seen('transit.encrypt', 'other', 'denied')).toBe(true);
  });
});
