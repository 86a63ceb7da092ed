/**
 * Disk and backups, through real node processes: what a disk writer or a backup holder can do.
 *
 * - A stopped member's LevelDB is edited as an operator with write access to its data dir would:
 *   a forged admin token record is added, a byte of a real token record is flipped, a sealed value
 *   is flipped, and a version's ciphertext is copied under another name. After a restart the forged
 *   token does not work, the edited records are refused, and the node still serves what is intact;
 *   the failures are in `/metrics`, the node's log (record names only) and the audit log.
 * - A snapshot downloaded with `GET /v1/cluster/snapshot` is edited (a token hash swapped for one
 *   whose raw token the attacker knows) and its checksum recomputed the way the old format allowed:
 *   `POST /v1/cluster/restore` and the offline `coffer snapshot restore` refuse it with a clear
 *   error, as they refuse a genuine snapshot checked under another cluster key.
 */
import { createHash, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as rec from '../../state/src/records.js';
import { REPO_ROOT, runCli, TestCluster, type NodeHandle } from '../src/harness';

jest.setTimeout(240_000);

// classic-level as @coffer/state resolves it (this package does not depend on it).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { ClassicLevel } = require(require.resolve('classic-level', { paths: [path.join(REPO_ROOT, 'packages', 'state')] })) as typeof import('classic-level');

const sha256 = (s: string | Uint8Array): Buffer => createHash('sha256').update(s).digest();

/** Edits a stopped node's LevelDB (string keys, byte values), as a disk writer would. */
async function onDisk(n: NodeHandle, fn: (db: InstanceType<typeof ClassicLevel<string, Uint8Array>>) => Promise<void>): Promise<void> {
  const db = new ClassicLevel<string, Uint8Array>(path.join(n.dataDir, 'store'), { keyEncoding: 'utf8', valueEncoding: 'view' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

async function rawGet(n: NodeHandle, p: string, token: string): Promise<{ status: number; bytes: Buffer }> {
  const r = await fetch(`${n.api}${p}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });
  return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
}

async function rawPost(n: NodeHandle, p: string, token: string, body: Uint8Array): Promise<{ status: number; body: any }> {
  const r = await fetch(`${n.api}${p}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' },
    body,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  try {
    return { status: r.status, body: JSON.parse(text) };
  } catch {
    return { status: r.status, body: text };
  }
}

/** The blob with its trailing 32 bytes replaced by sha256 of the rest: what format 1 checked. */
function rehashed(blob: Buffer, version?: number): Buffer {
  const out = Buffer.from(blob);
  if (version !== undefined) out[4] = version;
  createHash('sha256').update(out.subarray(0, out.length - 32)).digest().copy(out, out.length - 32);
  return out;
}

describe('disk and backups', () => {
  // Lockout off: this suite presents refused tokens on purpose, from one address.
  const cluster = new TestCluster({ env: { COFFER_AUTH_MAX_FAILURES: '0' } });
  let leader: NodeHandle;
  /** The member whose data dir the first test edits (left as it is for the rest of the suite). */
  let victim: NodeHandle | undefined;
  const canary = `canary-${randomBytes(6).toString('hex')}-disk`;

  beforeAll(async () => {
    await cluster.start();
    leader = await cluster.bootstrapped();
    for (const [name, value] of [['app/db', `${canary}-db`], ['app/other', `${canary}-other`], ['app/copy', `${canary}-copy`], ['app/intact', `${canary}-intact`]]) {
      expect((await cluster.call(leader, 'PUT', `/v1/secrets/${name}`, { value })).status).toBe(200);
    }
  });
  afterAll(async () => {
    await cluster.stop();
  });

  test('records edited, forged or moved on a stopped member are refused after its restart; it serves the rest and reports them', async () => {
    const made = await cluster.call(leader, 'POST', '/v1/tokens', { name: 'ci', role: 'admin' });
    expect(made.status).toBe(200);
    const ciToken = made.body.token as string;
    const edited = cluster.nodes.find((n) => n !== leader) as NodeHandle;
    victim = edited;
    // It has applied everything so far (it authorises the new token itself).
    await cluster.eventually(async () => (await cluster.http(edited, 'GET', '/v1/tokens/self', undefined, ciToken)).status === 200, 20_000, 'ci token on the edited member');
    await cluster.eventually(async () => (await cluster.http(edited, 'GET', '/v1/secrets/app/intact?consistency=stale', undefined, null)).status === 200, 20_000, 'secrets on the edited member');
    expect((await cluster.terminate(edited)).code).toBe(0);

    // The attacker: write access to the data dir, no cluster key.
    const forgedToken = `cof_forged_${randomBytes(24).toString('base64url')}`;
    const forged = rec.encodeToken({ name: 'forged', role: 'admin', tokenHash: sha256(forgedToken), createdAt: Date.now(), createdBy: 'x', expiresAt: null, revokedAt: null, rotatedAt: null });
    // A key the attacker might guess ("the cluster key is the key"): not the derived record key.
    const guessedKey = Buffer.from(cluster.clusterKey, 'base64');
    await onDisk(edited, async (db) => {
      await db.put('mtforged', forged);
      await db.put('mtforged2', Buffer.concat([forged, createHash('sha256').update(guessedKey).update('mtforged2').update(forged).digest()]));
      const ci = (await db.get('mtci')) as Uint8Array;
      const flipped = Buffer.from(ci);
      flipped.writeUInt8(flipped.readUInt8(5) ^ 0x01, 5);
      await db.put('mtci', flipped);
      const other = Buffer.from((await db.get('bcapp/other\u00001')) as Uint8Array);
      other.writeUInt8(other.readUInt8(40) ^ 0x01, 40);
      await db.put('bcapp/other\u00001', other);
      // A version's sealed value copied under another name (same version number).
      await db.put('bcapp/copy\u00001', (await db.get('bcapp/db\u00001')) as Uint8Array);
    });

    await cluster.spawnNode(edited);
    await cluster.eventually(async () => (await cluster.http(edited, 'GET', '/v1/sys/health?standbyok=true', undefined, null)).status === 200, 30_000, 'edited healthy');

    // The forged admin tokens do not work, on the victim or anywhere else.
    for (const n of cluster.nodes) {
      expect((await cluster.http(n, 'GET', '/v1/tokens/self', undefined, forgedToken)).status).toBe(401);
      expect((await cluster.http(n, 'PUT', '/v1/secrets/app/evil', { value: 'x' }, forgedToken)).status).toBe(401);
    }
    // The edited token record is refused on the victim (the other members still have it).
    expect((await cluster.http(edited, 'GET', '/v1/tokens/self', undefined, ciToken)).status).toBe(401);
    expect((await cluster.http(leader, 'GET', '/v1/tokens/self', undefined, ciToken)).status).toBe(200);
    // Intact data is served; the edited and the moved values are refused with an integrity error.
    const intact = await cluster.http(edited, 'GET', '/v1/secrets/app/intact?consistency=stale', undefined, null);
    expect(intact).toMatchObject({ status: 200, body: { value: `${canary}-intact` } });
    for (const name of ['app/other', 'app/copy']) {
      const r = await cluster.http(edited, 'GET', `/v1/secrets/${name}?consistency=stale`, undefined, null);
      expect(r.status).toBe(500);
      expect(r.body.error.code).toBe('integrity_error');
      expect(JSON.stringify(r.body)).not.toContain(canary);
    }
    expect((await cluster.http(leader, 'GET', '/v1/secrets/app/copy?consistency=stale', undefined, null)).body.value).toBe(`${canary}-copy`);

    // Reported: metrics by kind, the log (record names, never values), the audit log.
    const metrics = String((await cluster.http(edited, 'GET', '/metrics', undefined, null)).body);
    const kinds = Object.fromEntries([...metrics.matchAll(/^coffer_integrity_failures_total\{kind="(\w+)"\} (\d+)/gm)].map((m) => [m[1], Number(m[2])]));
    expect(kinds['record']).toBeGreaterThanOrEqual(3); // mtforged, mtforged2, mtci
    expect(kinds['blob']).toBeGreaterThanOrEqual(2); // bcapp/other, bcapp/copy
    expect(kinds['value']).toBeGreaterThanOrEqual(2);
    const log = readFileSync(edited.logFile, 'utf8');
    for (const key of ['mtforged', 'mtforged2', 'mtci', 'bcapp/copy\\u00001']) expect(log).toContain(`"record":"${key}"`);
    expect(log).not.toContain(forgedToken);
    expect(log).not.toContain(sha256(forgedToken).toString('hex'));
    expect(log).not.toContain(canary);
    const audit = readFileSync(path.join(edited.dataDir, 'audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    for (const name of ['app/other', 'app/copy']) {
      expect(audit.some((a) => a.resource === name && a.outcome === 'error' && a.status === 500)).toBe(true);
    }
    // Records refused while the node started are audited too (key names only).
    for (const key of ['record:mtforged', 'record:mtforged2', 'record:mtci']) {
      expect(audit.some((a) => a.action === 'storage.integrity' && a.resource === key && a.outcome === 'error')).toBe(true);
    }
  });

  test('a data dir without tags (as an older version wrote it) is refused until adopted once with COFFER_INTEGRITY_ADOPT', async () => {
    leader = await cluster.leader();
    // Not the member edited above: its forged records are not in the old format either.
    const n = (cluster.nodes.find((x) => x !== leader && x !== victim) ?? cluster.nodes.find((x) => x !== victim)) as NodeHandle;
    await cluster.eventually(async () => (await cluster.http(n, 'GET', '/v1/secrets/app/intact?consistency=stale', undefined, null)).status === 200, 20_000, 'secrets on n');
    expect((await cluster.terminate(n)).code).toBe(0);
    // What the previous version left: no marker, no tags, a format-1 saved snapshot (if any).
    await onDisk(n, async (db) => {
      const batch = db.batch();
      for await (const [k, v] of db.iterator()) {
        if (k === 'zintegrity') batch.del(k);
        else if (k === 'rd') batch.put(k, rehashed(Buffer.from(v), 1));
        else batch.put(k, v.subarray(0, v.length - 32));
      }
      await batch.write();
    });
    await expect(cluster.spawnNode(n)).rejects.toThrow(/exited/);
    expect(readFileSync(n.logFile, 'utf8')).toContain('COFFER_INTEGRITY_ADOPT=true');
    await cluster.spawnNode(n, { COFFER_INTEGRITY_ADOPT: 'true' }).catch((err: unknown) => {
      throw new Error(`${String(err)}\n${readFileSync(n.logFile, 'utf8').split('\n').slice(-6).join('\n')}`);
    });
    expect(readFileSync(n.logFile, 'utf8')).toContain('ADOPTED a data dir written before storage integrity tags');
    const r = await cluster.http(n, 'GET', '/v1/secrets/app/intact?consistency=stale', undefined, null);
    expect(r).toMatchObject({ status: 200, body: { value: `${canary}-intact` } });
    // Adopted for good: a plain restart opens it without the variable.
    expect((await cluster.terminate(n)).code).toBe(0);
    await cluster.spawnNode(n);
    expect((await cluster.http(n, 'GET', '/v1/secrets/app/intact?consistency=stale', undefined, null)).status).toBe(200);
  });

  test('an edited, re-checksummed snapshot is refused online and offline; so is a genuine one under another cluster key', async () => {
    leader = await cluster.leader();
    const dl = await rawGet(leader, '/v1/cluster/snapshot', cluster.bootstrapToken);
    expect(dl.status).toBe(200);
    const blob = dl.bytes;
    // Swap the bootstrap token's hash for the hash of a token the attacker knows, then fix up the
    // checksum as format 1 allowed (and, in a second copy, also claim format 1).
    const mine = `cof_mine_${randomBytes(24).toString('base64url')}`;
    const at = blob.indexOf(sha256(cluster.bootstrapToken));
    expect(at).toBeGreaterThan(0);
    const edited = Buffer.from(blob);
    sha256(mine).copy(edited, at);
    const v2 = rehashed(edited);
    const v1 = rehashed(edited, 1);

    for (const body of [v2, v1]) {
      const r = await rawPost(leader, '/v1/cluster/restore', cluster.bootstrapToken, body);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_snapshot');
    }
    const r = await rawPost(leader, '/v1/cluster/restore', cluster.bootstrapToken, v2);
    expect(r.body.error.message).toBe('the snapshot is not authentic: it was edited or comes from a cluster with another key');
    for (const n of cluster.nodes) expect((await cluster.http(n, 'GET', '/v1/tokens/self', undefined, mine)).status).toBe(401);
    expect((await cluster.http(leader, 'GET', '/v1/tokens/self')).status).toBe(200);
    // The audit log records the refused restores.
    const audit = readFileSync(path.join(leader.dataDir, 'audit.jsonl'), 'utf8');
    expect(audit.split('\n').filter((l) => l.includes('"status":400') && l.includes('cluster')).length).toBeGreaterThanOrEqual(2);

    // Offline: the same configuration variables as the server decide.
    const files = { genuine: path.join(cluster.root, 'genuine.snap'), edited: path.join(cluster.root, 'edited.snap') };
    writeFileSync(files.genuine, blob);
    writeFileSync(files.edited, v2);
    const same = { COFFER_CLUSTER_KEY: cluster.clusterKey, COFFER_LOCAL_MASTER_KEY: cluster.masterKey };
    const other = { COFFER_CLUSTER_KEY: randomBytes(32).toString('base64'), COFFER_LOCAL_MASTER_KEY: cluster.masterKey };
    const refusedEdited = await runCli(['snapshot', 'restore', files.edited, '--data-dir', path.join(cluster.root, 'x1'), '--node-id', 'x1'], same);
    expect(refusedEdited.code).not.toBe(0);
    expect(refusedEdited.stderr).toContain('not authentic');
    const refusedForeign = await runCli(['snapshot', 'restore', files.genuine, '--data-dir', path.join(cluster.root, 'x2'), '--node-id', 'x2'], other);
    expect(refusedForeign.code).not.toBe(0);
    expect(refusedForeign.stderr).toContain('not authentic');
    const ok = await runCli(['snapshot', 'restore', files.genuine, '--data-dir', path.join(cluster.root, 'x3'), '--node-id', 'x3'], same);
    expect(ok).toMatchObject({ code: 0 });
    // The tag is HMAC-SHA256 under HKDF(cluster key, "coffer snapshot mac v1"): never the raw key.
    const key = Buffer.from(hkdfSync('sha256', Buffer.from(cluster.clusterKey, 'base64'), new Uint8Array(0), 'coffer snapshot mac v1', 32));
    const body = blob.subarray(0, blob.length - 32);
    expect(createHmac('sha256', key).update(body).digest().equals(blob.subarray(blob.length - 32))).toBe(true);
    expect(createHmac('sha256', Buffer.from(cluster.clusterKey, 'base64')).update(body).digest().equals(blob.subarray(blob.length - 32))).toBe(false);
  });
});
