import { constants as fsConstants, existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AUDIT_GENESIS_HASH, AuditLog, auditRecordHash, verifyAuditFile, type AuditEntry } from '../../src/audit/audit-log.js';

let dir: string;
let file: string;
let t = Date.UTC(2030, 0, 1);
const now = () => t++;
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'coffer-audit-'));
  file = path.join(dir, 'sub', 'audit.jsonl');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

const entry = (i: number, extra: Partial<AuditEntry> = {}): AuditEntry => ({
  requestId: `req-${i}`,
  actor: i % 2 === 0 ? 'ci' : null,
  clientIp: '10.0.0.7',
  action: 'secret.write',
  resource: `apps/s${i}`,
  outcome: i % 3 === 0 ? 'denied' : 'ok',
  status: i % 3 === 0 ? 403 : 200,
  ...extra,
});

const lines = (): string[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
const writeLines = (ls: string[]): void => writeFileSync(file, ls.map((l) => `${l}\n`).join(''));

async function writeN(n: number): Promise<void> {
  const log = await AuditLog.open({ path: file, nodeId: 'n1', now });
  try {
    for (let i = 1; i <= n; i++) await log.append(entry(i));
  } finally {
    await log.close();
  }
}

describe('AuditLog', () => {
  test('writes chained lines with the fixed field order, mode 0600', async () => {
    await writeN(3);
    const ls = lines();
    expect(ls).toHaveLength(3);
    const recs = ls.map((l) => JSON.parse(l));
    expect(Object.keys(recs[0])).toEqual(['time', 'node', 'requestId', 'actor', 'clientIp', 'action', 'resource', 'outcome', 'status', 'seq', 'prev', 'hash']);
    expect(recs[0]).toMatchObject({ node: 'n1', requestId: 'req-1', actor: null, seq: 1, prev: AUDIT_GENESIS_HASH, time: '2030-01-01T00:00:00.000Z' });
    expect(recs[1].prev).toBe(recs[0].hash);
    expect(recs[2].prev).toBe(recs[1].hash);
    expect(recs[2]).toMatchObject({ outcome: 'denied', status: 403, seq: 3 });
    for (const r of recs) {
      const { hash, ...rest } = r;
      expect(auditRecordHash(rest)).toBe(hash);
    }
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(await verifyAuditFile(file)).toEqual({ ok: true, lines: 3, lastHash: recs[2].hash });
  });

  test('reopening continues the chain', async () => {
    await writeN(2);
    const log = await AuditLog.open({ path: file, nodeId: 'n1', now });
    expect(log.openInfo).toEqual({ existingLines: 2, truncatedBytes: 0 });
    expect(log.head().seq).toBe(2);
    await log.append(entry(3));
    await log.close();
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, lines: 3 });
  });

  test('concurrent appends share one write and fsync (group commit)', async () => {
    const log = await AuditLog.open({ path: file, nodeId: 'n1', now });
    await Promise.all(Array.from({ length: 100 }, (_, i) => log.append(entry(i + 1))));
    expect(log.stats()).toEqual({ lines: 100, writes: 1, syncs: 1, failures: 0 });
    // Appends made while a write is in flight are grouped into the next one.
    const first = log.append(entry(101));
    await Promise.resolve();
    await Promise.resolve();
    const rest = Array.from({ length: 50 }, (_, i) => log.append(entry(102 + i)));
    await Promise.all([first, ...rest]);
    expect(log.stats().syncs).toBeLessThanOrEqual(3);
    expect(log.stats().lines).toBe(151);
    await log.close();
    const v = await verifyAuditFile(file);
    expect(v).toMatchObject({ ok: true, lines: 151 });
    expect(lines().map((l) => JSON.parse(l).requestId)).toEqual(Array.from({ length: 151 }, (_, i) => `req-${i + 1}`));
  });

  test('field allowlist: extra properties never reach the file', async () => {
    const log = await AuditLog.open({ path: file, nodeId: 'n1', now });
    const sneaky = { ...entry(1), value: 'CANARY-SECRET-VALUE', token: 'CANARY-RAW-TOKEN', headers: { authorization: 'Bearer CANARY' } };
    await log.append(sneaky as AuditEntry);
    await log.close();
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('CANARY');
  });

  test('bad fields reject with TypeError and write nothing', async () => {
    const log = await AuditLog.open({ path: file, nodeId: 'n1', now });
    await expect(log.append(entry(1, { status: 99 }))).rejects.toThrow(TypeError);
    await expect(log.append(entry(1, { outcome: 'maybe' as 'ok' }))).rejects.toThrow(TypeError);
    await expect(log.append(entry(1, { resource: 'x'.repeat(2000) }))).rejects.toThrow(TypeError);
    await expect(log.append(entry(1, { requestId: 5 as unknown as string }))).rejects.toThrow(TypeError);
    await log.close();
    expect(readFileSync(file, 'utf8')).toBe('');
  });

  test('append after close rejects', async () => {
    const log = await AuditLog.open({ path: file, nodeId: 'n1', now });
    await log.close();
    await expect(log.append(entry(1))).rejects.toMatchObject({ code: 'NODE_AUDIT_CLOSED' });
  });

  // /dev/full answers every write with ENOSPC: a real failing disk, no mocks.
  (existsSync('/dev/full') ? test : test.skip)('fail-closed: a failing write rejects every waiting append', async () => {
    const failures: Error[] = [];
    const log = await AuditLog.open({ path: '/dev/full', nodeId: 'n1', now, onWriteError: (e) => failures.push(e) });
    const results = await Promise.allSettled([log.append(entry(1)), log.append(entry(2))]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect((results[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'NODE_AUDIT_WRITE_FAILED' });
    expect(failures).toHaveLength(1);
    await expect(log.append(entry(3))).rejects.toMatchObject({ code: 'NODE_AUDIT_WRITE_FAILED' });
    expect(log.stats().lines).toBe(0);
    await log.close();
  });

  // Durability before the append resolves: lines go through a descriptor opened O_DSYNC (each
  // write returns once on stable storage) instead of write + fdatasync. Without it (and without
  // the fdatasync) an acknowledged action's line could be lost in a crash.
  (existsSync('/proc/self/fdinfo') ? test : test.skip)('the file is written through an O_DSYNC descriptor; every batch counts as synced', async () => {
    const log = await AuditLog.open({ path: file, nodeId: 'n1', now });
    await Promise.all([log.append(entry(1)), log.append(entry(2))]);
    await log.append(entry(3));
    const fds = readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === file;
      } catch {
        return false;
      }
    });
    expect(fds).toHaveLength(1);
    const flags = parseInt(/^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fds[0]}`, 'utf8'))?.[1] ?? '0', 8);
    expect(flags & fsConstants.O_DSYNC).toBe(fsConstants.O_DSYNC);
    expect(flags & fsConstants.O_APPEND).toBe(fsConstants.O_APPEND);
    expect(log.stats()).toMatchObject({ lines: 3, writes: 2, syncs: 2 });
    await log.close();
  });

  test('a torn final fragment is cut off and the chain continues', async () => {
    await writeN(2);
    appendFileSync(file, '{"time":"2030-01-01T00:00:00.000Z","node":"n1","requ');
    const log = await AuditLog.open({ path: file, nodeId: 'n1', now });
    expect(log.openInfo.truncatedBytes).toBeGreaterThan(0);
    await log.append(entry(3));
    await log.close();
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, lines: 3 });
  });

  test('a corrupt last line refuses to open', async () => {
    await writeN(2);
    const ls = lines();
    writeLines([ls[0] as string, (ls[1] as string).replace('"status":200', '"status":201')]);
    await expect(AuditLog.open({ path: file, nodeId: 'n1', now })).rejects.toMatchObject({ code: 'NODE_AUDIT_CORRUPT' });
    writeLines([ls[0] as string, 'garbage']);
    await expect(AuditLog.open({ path: file, nodeId: 'n1', now })).rejects.toMatchObject({ code: 'NODE_AUDIT_CORRUPT' });
  });
});

describe('verifyAuditFile', () => {
  let good: string[];
  beforeEach(async () => {
    await writeN(5);
    good = lines();
  });
  const at = (i: number): string => good[i] as string;

  test('intact file', async () => {
    expect(await verifyAuditFile(file)).toMatchObject({ ok: true, lines: 5 });
  });
  test('empty file', async () => {
    writeFileSync(file, '');
    expect(await verifyAuditFile(file)).toEqual({ ok: true, lines: 0, lastHash: AUDIT_GENESIS_HASH });
  });
  test('edited line', async () => {
    writeLines([at(0), at(1), at(2).replace('10.0.0.7', '10.0.0.8'), at(3), at(4)]);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, lines: 2, firstBadLine: 3, reason: expect.stringMatching(/hash does not match/) });
  });
  test('edited line with a recomputed hash still breaks the next link', async () => {
    const rec = JSON.parse(at(2));
    rec.actor = 'someone-else';
    const { hash: _old, ...rest } = rec;
    const forged = JSON.stringify({ ...rest, hash: auditRecordHash(rest) });
    writeLines([at(0), at(1), forged, at(3), at(4)]);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 4, reason: expect.stringMatching(/prev does not match/) });
  });
  test('removed line', async () => {
    writeLines([at(0), at(1), at(3), at(4)]);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 3, reason: expect.stringMatching(/prev does not match the hash of line 2/) });
  });
  test('removed first line', async () => {
    writeLines([at(1), at(2), at(3), at(4)]);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 1, reason: expect.stringMatching(/first line/) });
  });
  test('reordered lines', async () => {
    writeLines([at(0), at(2), at(1), at(3), at(4)]);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 2 });
  });
  test('inserted line', async () => {
    writeLines([at(0), at(1), at(1), at(2), at(3), at(4)]);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 3 });
  });
  test('extra field, blank line, non-JSON, torn tail', async () => {
    const rec = JSON.parse(at(1));
    writeLines([at(0), JSON.stringify({ ...rec, value: 'x' })]);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 2, reason: 'fields differ from the audit record format' });
    writeLines([at(0), '', at(1)]);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 2, reason: 'empty line' });
    writeLines([at(0), '{nope']);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, firstBadLine: 2, reason: 'not valid JSON' });
    writeFileSync(file, `${at(0)}\n${at(1)}`);
    expect(await verifyAuditFile(file)).toMatchObject({ ok: false, lines: 1, firstBadLine: 2, reason: expect.stringMatching(/incomplete/) });
  });
  test('missing file throws', async () => {
    await expect(verifyAuditFile(path.join(dir, 'nope.jsonl'))).rejects.toThrow();
  });
});
