/**
 * Canary (issue 11, "The adversarial suite"): a distinctive value, the raw bootstrap token and
 * freshly minted and rotated tokens go through every API that takes a value or a token — native
 * put (text, base64, userpass), Vault KV v2 put and patch, verify, rotate, batch read, token create
 * and rotate, snapshot download and restore — and through failed requests carrying them (wrong
 * tokens in every header, malformed bodies). Then none of them may appear, as bytes or in their
 * base64/base64url/hex/UTF-16 forms, in any file under any node's data dir (LevelDB, Raft log,
 * snapshots, audit), in the node logs, in `/metrics`, in any error body, or in a downloaded snapshot.
 *
 * NB: LevelDB compresses table blocks with snappy, so a byte search over its files can miss an
 * occurrence inside a compressed block. The files are searched anyway (write-ahead logs are not
 * compressed), and every LevelDB under the data dirs is also opened with classic-level after the
 * nodes stopped and every key and value searched.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { REPO_ROOT, TestCluster, type NodeHandle } from '../src/harness';
import { rawHttp, type RawResult } from '../src/hostile';

jest.setTimeout(180_000);

/** The project's own LevelDB binding (a dependency of @coffer/state). */
const stateRequire = createRequire(path.join(REPO_ROOT, 'packages', 'state', 'package.json'));

/** Every file under `dir`. */
function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/**
 * The byte patterns that betray `secret`: itself, UTF-16LE, hex (both cases), and the part of its
 * base64/base64url encoding that does not depend on the neighbouring bytes, for each of the three
 * alignments it can have inside a larger encoded buffer.
 */
function forms(secret: string): { form: string; bytes: Buffer }[] {
  const raw = Buffer.from(secret, 'utf8');
  const out = [
    { form: 'utf8', bytes: raw },
    { form: 'utf16le', bytes: Buffer.from(secret, 'utf16le') },
    { form: 'hex', bytes: Buffer.from(raw.toString('hex')) },
    { form: 'HEX', bytes: Buffer.from(raw.toString('hex').toUpperCase()) },
  ];
  for (const enc of ['base64', 'base64url'] as const) {
    for (let k = 0; k < 3; k++) {
      const text = Buffer.concat([Buffer.alloc(k), raw]).toString(enc).replace(/=+$/, '');
      const core = text.slice(k === 0 ? 0 : 4, text.length - 4);
      out.push({ form: `${enc}@${k}`, bytes: Buffer.from(core) });
    }
  }
  return out;
}

describe('canary: values and raw tokens never reach disk, logs, metrics, errors or snapshots', () => {
  const cluster = new TestCluster();
  const CANARY = `CANARY-${randomBytes(16).toString('hex')}`;
  /** Everything that must never be found: label → value. */
  const needles = new Map<string, string>();
  const errorBodies: { what: string; res: RawResult }[] = [];
  const metricsTexts: { node: string; text: string }[] = [];
  let snapshot: Buffer = Buffer.alloc(0);
  let leader: NodeHandle;
  let follower: NodeHandle;
  let ipSeq = 0;
  const freshIp = (): string => `127.30.${Math.floor(ipSeq / 250)}.${(ipSeq++ % 250) + 1}`;

  beforeAll(async () => {
    await cluster.start();
    await cluster.ready();
    leader = await cluster.leader();
    follower = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    needles.set('canary', CANARY);
    needles.set('bootstrap token', cluster.bootstrapToken);
  });
  afterAll(async () => {
    await cluster.stop();
  });

  /** A request with the admin token; the answer must be `want` (e.g. 200). */
  async function ok(n: NodeHandle, method: string, p: string, body: unknown, want = 200, token = cluster.bootstrapToken, headers: Record<string, string> = {}): Promise<RawResult> {
    const h: Record<string, string> = { authorization: `Bearer ${token}`, ...(body !== undefined && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}), ...headers };
    const res = await rawHttp(n, method, p, { headers: h, ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) }) });
    expect([method, p, res.status]).toEqual([method, p, want]);
    return res;
  }
  /** A request that must fail; its body is kept for the search. */
  async function refused(what: string, n: NodeHandle, method: string, p: string, headers: Record<string, string>, body?: Buffer | string): Promise<void> {
    const res = await rawHttp(n, method, p, { from: freshIp(), headers, ...(body === undefined ? {} : { body }) });
    expect([what, res.status >= 400 && res.status < 500]).toEqual([what, true]);
    errorBodies.push({ what, res });
  }

  test('the canary and raw tokens go through every API that takes a value or a token, and through failed requests', async () => {
    for (const n of [leader, follower]) {
      const s = n === leader ? 'l' : 'f';
      await ok(n, 'PUT', `/v1/secrets/can/${s}/plain`, { value: `${CANARY}-plain` });
      await ok(n, 'PUT', `/v1/secrets/can/${s}/b64`, { valueBase64: Buffer.from(`${CANARY}-b64`).toString('base64') });
      await ok(n, 'PUT', `/v1/secrets/can/${s}/up`, { format: 'userpass', username: `${s}-user`, password: `${CANARY}-pw` });
      await ok(n, 'PUT', `/v1/secrets/can/${s}/cas`, { value: `${CANARY}-cas`, cas: 0 });
      await ok(n, 'POST', `/v1/secret/data/can/${s}/vault`, { data: { k: `${CANARY}-vault` } });
      await ok(n, 'PATCH', `/v1/secret/data/can/${s}/vault`, { data: { k2: `${CANARY}-patch` } }, 200, cluster.bootstrapToken, { 'content-type': 'application/merge-patch+json' });
      const good = await ok(n, 'POST', `/v1/verify/can/${s}/plain`, { value: `${CANARY}-plain` });
      expect(good.body.valid).toBe(true);
      const bad = await ok(n, 'POST', `/v1/verify/can/${s}/plain`, { value: `${CANARY}-wrong` });
      expect(bad.body.valid).toBe(false);
      const batch = await ok(n, 'POST', '/v1/batch/secrets', { names: [`can/${s}/plain`, `can/${s}/b64`, `can/${s}/up`] });
      expect(batch.body.secrets).toHaveLength(3);
      const read = await ok(n, 'GET', `/v1/secret/data/can/${s}/vault`, undefined);
      expect(read.body.data.data).toEqual({ k: `${CANARY}-vault`, k2: `${CANARY}-patch` });
      // Rotation makes a value of the server's own: that one must not leak either.
      await ok(n, 'POST', `/v1/rotate/can/${s}/cas`, {});
      const rotated = await ok(n, 'GET', `/v1/secrets/can/${s}/cas`, undefined);
      expect(rotated.body.value).not.toContain(CANARY);
      needles.set(`rotated value (${s})`, rotated.body.value as string);
      await ok(n, 'POST', `/v1/rotate/can/${s}/up`, {});
      const up = await ok(n, 'GET', `/v1/secrets/can/${s}/up`, undefined);
      needles.set(`rotated password (${s})`, up.body.password as string);

      const minted = await ok(n, 'POST', '/v1/tokens', { name: `can-${s}`, role: 'admin' });
      needles.set(`minted token (${s})`, minted.body.token as string);
      const rot = await ok(n, 'POST', `/v1/tokens/can-${s}/rotate`, {});
      needles.set(`rotated token (${s})`, rot.body.token as string);
      // The new token in use, in both headers.
      await ok(n, 'GET', '/v1/tokens/self', undefined, 200, rot.body.token as string);
      const vt = await rawHttp(n, 'GET', '/v1/tokens/self', { headers: { 'x-vault-token': rot.body.token as string } });
      expect(vt.status).toBe(200);
      // The rotated-away one, refused.
      await refused(`rotated-away token (${s})`, n, 'GET', '/v1/tokens/self', { authorization: `Bearer ${minted.body.token as string}` });

      // Failed requests carrying the canary.
      const json = { 'content-type': 'application/json' };
      await refused(`canary as bearer (${s})`, n, 'GET', '/v1/tokens', { authorization: `Bearer ${CANARY}-bearer` });
      await refused(`canary as X-Vault-Token (${s})`, n, 'GET', '/v1/tokens', { 'x-vault-token': `${CANARY}-vt` });
      await refused(`canary in Basic auth (${s})`, n, 'GET', '/v1/tokens', { authorization: `Basic ${Buffer.from(`admin:${CANARY}-basic`).toString('base64')}` });
      await refused(`canary as bearer on a forwarded write (${s})`, n, 'PUT', '/v1/secrets/can/denied', { authorization: `Bearer ${CANARY}-fwd`, ...json }, JSON.stringify({ value: `${CANARY}-denied` }));
      await refused(`canary as bearer on a Vault write (${s})`, n, 'POST', '/v1/secret/data/can/denied', { 'x-vault-token': `${CANARY}-vfwd`, ...json }, JSON.stringify({ data: { k: `${CANARY}-vdenied` } }));
      const auth = { authorization: `Bearer ${cluster.bootstrapToken}`, ...json };
      await refused(`truncated JSON with the canary (${s})`, n, 'PUT', `/v1/secrets/can/${s}/bad`, auth, `{"value": "${CANARY}-trunc`);
      await refused(`JSON with the canary and a bad token (${s})`, n, 'PUT', `/v1/secrets/can/${s}/bad`, auth, `{"value": ${CANARY}-bare}`);
      await refused(`unknown field next to the canary (${s})`, n, 'PUT', `/v1/secrets/can/${s}/bad`, auth, JSON.stringify({ value: `${CANARY}-unknown`, bogus: 1 }));
      await refused(`two values (${s})`, n, 'PUT', `/v1/secrets/can/${s}/bad`, auth, JSON.stringify({ value: `${CANARY}-two`, valueBase64: 'QQ==' }));
      await refused(`value of the wrong type (${s})`, n, 'PUT', `/v1/secrets/can/${s}/bad`, auth, JSON.stringify({ value: [`${CANARY}-array`] }));
      await refused(`check-and-set conflict (${s})`, n, 'PUT', `/v1/secrets/can/${s}/plain`, auth, JSON.stringify({ value: `${CANARY}-cas-conflict`, cas: 99 }));
      await refused(`Vault data not an object (${s})`, n, 'POST', `/v1/secret/data/can/${s}/vault`, auth, JSON.stringify({ data: `${CANARY}-vault-str` }));
      await refused(`verify with extra fields (${s})`, n, 'POST', `/v1/verify/can/${s}/plain`, json, JSON.stringify({ value: `${CANARY}-plain`, extra: true }));
      await refused(`verify of a missing secret (${s})`, n, 'POST', '/v1/verify/can/missing', json, JSON.stringify({ value: `${CANARY}-missing` }));
      // (Names are not secret — an error may quote a bad name — so the canary never goes into one.)
      await refused(`batch with an unknown field holding the canary (${s})`, n, 'POST', '/v1/batch/secrets', json, JSON.stringify({ names: ['can/l/plain'], value: `${CANARY}-batch` }));
      await refused(`token create with a bad body (${s})`, n, 'POST', '/v1/tokens', auth, `{"name":"x","role":"admin","token":"${CANARY}-tok"}`);
      await refused(`restore of garbage containing the canary (${s})`, n, 'POST', '/v1/cluster/restore', { authorization: `Bearer ${cluster.bootstrapToken}`, 'content-type': 'application/octet-stream' }, `CFSN${CANARY}-restore`);
    }
    // A snapshot, downloaded and restored through consensus.
    const snap = await ok(leader, 'GET', '/v1/cluster/snapshot', undefined);
    snapshot = snap.raw;
    expect(snapshot.length).toBeGreaterThan(100);
    const restored = await ok(follower, 'POST', '/v1/cluster/restore', snapshot, 200, cluster.bootstrapToken, { 'content-type': 'application/octet-stream' });
    expect(restored.body.restored).toBe(true);
    // After the restore the values are still there (it was a real restore of real data).
    await cluster.eventually(async () => (await rawHttp(follower, 'GET', '/v1/secrets/can/l/plain')).body?.value === `${CANARY}-plain`, 15_000, 'value after restore');
    for (const n of cluster.nodes) {
      const m = await rawHttp(n, 'GET', '/metrics');
      expect(m.status).toBe(200);
      metricsTexts.push({ node: n.id, text: m.text });
    }
  });

  test('none of them is in any data file, LevelDB record, log, audit line, metric, error body or snapshot', async () => {
    expect(needles.size).toBeGreaterThanOrEqual(10);
    const patterns = [...needles].flatMap(([label, value]) => forms(value).map((f) => ({ label, ...f })));
    const hits: string[] = [];
    const search = (where: string, data: Buffer): void => {
      for (const p of patterns) if (data.includes(p.bytes)) hits.push(`${p.label} (${p.form}) in ${where}`);
    };
    for (const e of errorBodies) search(`error body of "${e.what}" (${e.res.status})`, e.res.raw);
    for (const m of metricsTexts) search(`/metrics of ${m.node}`, Buffer.from(m.text));
    search('the downloaded snapshot', snapshot);

    // Stop the nodes so every file is complete and LevelDB can be opened.
    for (const n of cluster.nodes) expect((await cluster.terminate(n)).code).toBe(0);
    let files = 0;
    let bytes = 0;
    const levelDirs: string[] = [];
    for (const n of cluster.nodes) {
      for (const f of walk(n.dataDir)) {
        const data = readFileSync(f);
        files++;
        bytes += data.length;
        search(path.relative(cluster.root, f), data);
        if (path.basename(f) === 'CURRENT') levelDirs.push(path.dirname(f));
      }
      search(`log of ${n.id}`, readFileSync(n.logFile));
    }
    // The searches can see: names are not secret and must show up in the audit files.
    const audits = cluster.nodes.map((n) => path.join(n.dataDir, 'audit.jsonl')).filter((f) => existsSync(f));
    expect(audits).toHaveLength(3);
    expect(readFileSync(path.join(leader.dataDir, 'audit.jsonl'), 'utf8')).toContain('can/l/plain');
    expect(readFileSync(path.join(follower.dataDir, 'audit.jsonl'), 'utf8')).toContain('can/f/plain');

    // Through LevelDB itself (snappy-compressed blocks included).
    const { ClassicLevel } = stateRequire('classic-level') as { ClassicLevel: new (dir: string, opts: object) => { open(): Promise<void>; close(): Promise<void>; iterator(): AsyncIterable<[Buffer, Buffer]> } };
    expect(levelDirs.length).toBeGreaterThanOrEqual(3);
    let records = 0;
    let sawName = false;
    for (const dir of levelDirs) {
      const db = new ClassicLevel(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
      await db.open();
      try {
        for await (const [k, v] of db.iterator()) {
          records++;
          const both = Buffer.concat([k, Buffer.from([0]), v]);
          if (both.includes(Buffer.from('can/l/plain'))) sawName = true;
          search(`LevelDB ${path.relative(cluster.root, dir)} record ${k.toString('latin1').slice(0, 60)}`, both);
        }
      } finally {
        await db.close();
      }
    }
    expect(records).toBeGreaterThan(10);
    expect(sawName).toBe(true);
    console.log(
      `canary: ${needles.size} secrets × ${patterns.length / needles.size} forms searched in ${files} files (${(bytes / 1024 / 1024).toFixed(1)} MiB) under 3 data dirs, ` +
        `3 node logs, ${records} LevelDB records in ${levelDirs.length} databases, ${metricsTexts.length} /metrics answers, ${errorBodies.length} error bodies and 1 snapshot (${snapshot.length} bytes); ${hits.length} hits`,
    );
    expect(hits).toEqual([]);
  });
});
