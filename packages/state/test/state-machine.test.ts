import { createHash } from 'node:crypto';
import {
  DEDUP_CAPACITY,
  StateError,
  StateMachine,
  encodeCommand,
  type Command,
  type CommandResult,
  type LogEntry,
} from '../src/index.js';
import { SAMPLES, TEST_INTEGRITY, bytes, sealed } from './helpers.js';

const T0 = 1_700_000_000_000;

/** A replica with a helper that applies commands at consecutive indexes. */
function replica(): { sm: StateMachine; run: (c: Command) => CommandResult; entry: (c: Command) => LogEntry } {
  const sm = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
  let index = 0;
  const entry = (c: Command): LogEntry => ({ term: 1, index: ++index, type: 'normal', data: encodeCommand(c) });
  const run = (c: Command): CommandResult => {
    const r = sm.apply(entry(c));
    if (!r) throw new Error('entry not applied');
    return r.result;
  };
  return { sm, run, entry };
}

let seq = 0;
const rid = (): string => `req-${++seq}`;
const put = (name: string, version: number, at = T0, extra: Partial<Extract<Command, { type: 'secret.put' }>> = {}): Command => ({
  type: 'secret.put',
  requestId: rid(),
  at,
  name,
  version,
  cas: null,
  sealed: sealed(version),
  format: 'raw',
  description: null,
  rotation: null,
  actor: 'tester',
  ...extra,
});
const tokenHash = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());

describe('secrets', () => {
  test('put needs version latest+1 (version_conflict otherwise) and stores the sealed value as given', () => {
    const { sm, run } = replica();
    expect(run(put('db/pw', 1, T0))).toEqual({ status: 'ok', version: 1, createdAt: T0 });
    expect(run(put('db/pw', 1))).toEqual({ status: 'version_conflict', currentVersion: 1 });
    expect(run(put('db/pw', 3))).toEqual({ status: 'version_conflict', currentVersion: 1 });
    expect(run(put('db/pw', 2, T0 + 5))).toMatchObject({ status: 'ok', version: 2 });
    expect(sm.latestVersion('db/pw')).toBe(2);
    expect(sm.readSealedSync('db/pw', 1)).toEqual(sealed(1));
    expect(sm.readSealedSync('db/pw', 2)).toEqual(sealed(2));
  });


  test('records loaded from a store do not alias its buffers', () => {
    const { sm, run } = replica();
    run(put('db/a', 1));
    run(put('db/b', 1));
    run(put('db/b', 2));
    expect(run({ type: 'token.create', requestId: rid(), at: T0, name: 'ci', role: 'admin', tokenHash: new Uint8Array(32).fill(7), expiresAt: null, actor: 'a' })).toMatchObject({ status: 'ok' });
    // LevelDB hands out Buffers; a decoded record must own its bytes (a view would pin the whole
    // value, and a later write into the buffer would change the state).
    const records = sm.metaRecords().map(([k, v]) => [k, Buffer.from(v)] as const);
    const reloaded = StateMachine.fromRecords(records, { index: sm.applied, term: 1 });
    const before = JSON.stringify([reloaded.getSecret('db/a'), reloaded.getSecret('db/b'), reloaded.listTokens()]);
    for (const [, b] of records) b.fill(0);
    expect(JSON.stringify([reloaded.getSecret('db/a'), reloaded.getSecret('db/b'), reloaded.listTokens()])).toBe(before);
    expect(reloaded.getSecret('db/b')?.versions).toHaveLength(2);
    expect(reloaded.getSecret('db/b')).toEqual(sm.getSecret('db/b'));
  });

  test('a version records the sha256 of its sealed record and wrapped DEK, as byte strings that survive a reload', () => {
    const { sm, run } = replica();
    run(put('db/pw', 1));
    const v = sm.getSecret('db/pw')?.versions[0];
    const s = sealed(1);
    const hex = (d: string | undefined): string => Buffer.from(d ?? '', 'latin1').toString('hex');
    expect(hex(v?.dekDigest)).toBe(createHash('sha256').update(s.wrappedDek).digest('hex'));
    // The sealed record (`bc…`) holds the whole envelope, so its digest is not the ciphertext's.
    expect(v?.ctDigest).toHaveLength(32);
    expect(hex(v?.ctDigest)).not.toBe(createHash('sha256').update(s.ciphertext).digest('hex'));
    const reloaded = StateMachine.fromRecords(sm.metaRecords(), { index: sm.applied, term: 1 });
    expect(reloaded.getSecret('db/pw')).toEqual(sm.getSecret('db/pw'));
    expect(reloaded.stateDigest()).toBe(sm.stateDigest());
  });
  test('check-and-set: 0 means must not exist; n means current must be n; casRequired refuses writes without cas', () => {
    const { sm, run } = replica();
    expect(run(put('k', 1, T0, { cas: 0 })).status).toBe('ok');
    expect(run(put('k', 2, T0, { cas: 0 }))).toEqual({ status: 'cas_conflict', currentVersion: 1 });
    expect(run(put('k', 2, T0, { cas: 5 }))).toEqual({ status: 'cas_conflict', currentVersion: 1 });
    expect(run(put('k', 2, T0, { cas: 1 })).status).toBe('ok');
    run({ ...(SAMPLES['secret.metadata'] as Extract<Command, { type: 'secret.metadata' }>), requestId: rid(), name: 'k', maxVersions: null, casRequired: true });
    expect(run(put('k', 3))).toEqual({ status: 'cas_required', currentVersion: 2 });
    expect(run(put('k', 3, T0, { cas: 2 })).status).toBe('ok');
    expect(sm.latestVersion('k')).toBe(3);
  });

  test('versions beyond maxVersions are pruned oldest-first and their ciphertext erased', () => {
    const { sm, run } = replica();
    for (let v = 1; v <= 12; v++) run(put('p', v));
    const s = sm.getSecret('p');
    expect(s?.versions.map((v) => v.version)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(s?.currentVersion).toBe(12);
    expect(sm.readSealedSync('p', 2)).toBeUndefined();
    run({ type: 'secret.metadata', requestId: rid(), at: T0, name: 'p', maxVersions: 2, casRequired: null, customMetadata: null, description: null, rotation: null, deleteVersionAfterSecs: null, actor: 'a' });
    expect(sm.getSecret('p')?.versions.map((v) => v.version)).toEqual([11, 12]);
    expect(sm.readSealedSync('p', 10)).toBeUndefined();
  });

  test('soft delete / undelete / destroy / destroyAll follow Vault semantics', () => {
    const { sm, run } = replica();
    run(put('s', 1, T0));
    run(put('s', 2, T0 + 1));
    const del = (type: 'secret.delete' | 'secret.undelete' | 'secret.destroy', versions: number[]): CommandResult =>
      run({ type, requestId: rid(), at: T0 + 10, name: 's', versions, actor: 'a' });
    expect(del('secret.delete', [])).toEqual({ status: 'ok', count: 1, currentVersion: 2 }); // latest
    expect(sm.getSecret('s')?.versions[1]?.deletedAt).toBe(T0 + 10);
    expect(sm.readableVersion('s', T0 + 20)).toBeUndefined();
    expect(sm.readableVersion('s', T0 + 20, 1)?.version).toBe(1);
    expect(del('secret.delete', [2])).toMatchObject({ status: 'noop', count: 0 });
    expect(del('secret.undelete', [2])).toMatchObject({ status: 'ok', count: 1 });
    expect(sm.readableVersion('s', T0 + 20)?.version).toBe(2);
    expect(del('secret.destroy', [1, 7])).toMatchObject({ status: 'ok', count: 1 });
    expect(sm.readSealedSync('s', 1)).toBeUndefined();
    expect(sm.getSecret('s')?.versions[0]?.destroyed).toBe(true);
    expect(del('secret.undelete', [1])).toMatchObject({ status: 'noop' });
    expect(run({ type: 'secret.destroyAll', requestId: rid(), at: T0, name: 's', actor: 'a' })).toMatchObject({ status: 'ok' });
    expect(sm.getSecret('s')).toBeUndefined();
    expect(sm.readSealedSync('s', 2)).toBeUndefined();
    expect(run({ type: 'secret.destroyAll', requestId: rid(), at: T0, name: 's', actor: 'a' })).toEqual({ status: 'not_found' });
    expect(del('secret.delete', [1])).toEqual({ status: 'not_found' });
    expect(run(put('s', 1)).status).toBe('ok'); // a destroyed-all name starts again at 1
  });

  test('listNames is sorted and prefix-bounded', () => {
    const { sm, run } = replica();
    for (const n of ['b/2', 'a/1', 'b/1', 'c', 'b']) run(put(n, 1));
    expect(sm.listNames('b')).toEqual(['b', 'b/1', 'b/2']);
    expect(sm.listNames('b/')).toEqual(['b/1', 'b/2']);
    expect(sm.listNames('')).toEqual(['a/1', 'b', 'b/1', 'b/2', 'c']);
    expect(sm.listNames('', 2, 'b')).toEqual(['b/1', 'b/2']);
    expect(sm.listNames('zz')).toEqual([]);
  });

  test('rotation due and grace window', () => {
    const { sm, run } = replica();
    run(put('r', 1, T0, { rotation: { intervalSecs: 60, graceSecs: 30, target: null } }));
    expect(sm.rotationDue(T0 + 59_999)).toEqual([]);
    expect(sm.rotationDue(T0 + 60_000)).toEqual(['r']);
    run(put('r', 2, T0 + 60_000));
    expect(sm.rotationDue(T0 + 60_001)).toEqual([]);
    expect(sm.verifiableVersions('r', T0 + 60_001)).toEqual([2, 1]);
    expect(sm.verifiableVersions('r', T0 + 90_000)).toEqual([2]);
  });
});

describe('tokens, roles, allowlist, bootstrap', () => {
  test('token create / lookup / revoke / rotate / expire', () => {
    const { sm, run } = replica();
    const h1 = tokenHash('raw-1');
    expect(run({ type: 'token.create', requestId: rid(), at: T0, name: 'ci', role: 'nope', tokenHash: h1, expiresAt: null, actor: 'a' })).toEqual({ status: 'role_not_found' });
    expect(run({ type: 'token.create', requestId: rid(), at: T0, name: 'ci', role: 'admin', tokenHash: h1, expiresAt: T0 + 1000, actor: 'a' })).toMatchObject({ status: 'ok' });
    expect(sm.tokenByHash(h1)?.name).toBe('ci');
    expect(sm.tokenByHash(tokenHash('raw-2'))).toBeUndefined();
    // name unique while live
    expect(run({ type: 'token.create', requestId: rid(), at: T0 + 1, name: 'ci', role: 'admin', tokenHash: tokenHash('x'), expiresAt: null, actor: 'a' })).toEqual({ status: 'already_exists' });
    const h2 = tokenHash('raw-2');
    expect(run({ type: 'token.rotate', requestId: rid(), at: T0 + 2, name: 'ci', tokenHash: h2, expiresAt: null, actor: 'a' })).toEqual({ status: 'ok' });
    expect(sm.tokenByHash(h1)).toBeUndefined();
    expect(sm.tokenByHash(h2)?.rotatedAt).toBe(T0 + 2);
    // expired at T0+1000: the name is free again, rotation refused
    expect(run({ type: 'token.rotate', requestId: rid(), at: T0 + 1000, name: 'ci', tokenHash: tokenHash('y'), expiresAt: null, actor: 'a' })).toEqual({ status: 'token_inactive' });
    expect(sm.tokensToPurge(T0 + 1001)).toEqual(['ci']);
    expect(run({ type: 'token.expire', requestId: rid(), at: T0 + 1001, names: ['ci', 'ghost'] })).toEqual({ status: 'ok', count: 1 });
    expect(sm.tokenByName('ci')).toBeUndefined();
    expect(sm.tokenByHash(h2)).toBeUndefined();
    run({ type: 'token.create', requestId: rid(), at: T0, name: 'x', role: 'admin', tokenHash: h1, expiresAt: null, actor: 'a' });
    expect(run({ type: 'token.revoke', requestId: rid(), at: T0 + 5, name: 'x', actor: 'a' })).toEqual({ status: 'ok' });
    expect(run({ type: 'token.revoke', requestId: rid(), at: T0 + 6, name: 'x', actor: 'a' })).toEqual({ status: 'noop' });
    expect(sm.tokenByName('x')?.revokedAt).toBe(T0 + 5);
    expect(run({ type: 'token.revoke', requestId: rid(), at: T0, name: 'none', actor: 'a' })).toEqual({ status: 'not_found' });
  });

  test('roles: admin is immutable; a role in use by a live token cannot be deleted', () => {
    const { sm, run } = replica();
    const rules = [{ paths: ['app/*'], actions: ['secret.write'] }];
    expect(run({ type: 'role.put', requestId: rid(), at: T0, name: 'admin', rules, rateLimit: null, actor: 'a', maxTtlSecs: null })).toEqual({ status: 'immutable' });
    expect(run({ type: 'role.delete', requestId: rid(), at: T0, name: 'admin', actor: 'a' })).toEqual({ status: 'immutable' });
    expect(sm.getRole('admin')?.rules).toEqual([{ paths: ['**'], actions: ['*'] }]);
    expect(run({ type: 'role.put', requestId: rid(), at: T0, name: 'dev', rules, rateLimit: '10/s', actor: 'a', maxTtlSecs: 3600 })).toEqual({ status: 'ok' });
    run({ type: 'token.create', requestId: rid(), at: T0, name: 'd', role: 'dev', tokenHash: tokenHash('d'), expiresAt: T0 + 100, actor: 'a' });
    expect(run({ type: 'role.delete', requestId: rid(), at: T0 + 50, name: 'dev', actor: 'a' })).toEqual({ status: 'role_in_use', count: 1 });
    expect(run({ type: 'role.delete', requestId: rid(), at: T0 + 100, name: 'dev', actor: 'a' })).toEqual({ status: 'ok' });
    expect(sm.listRoles().map((r) => r.name)).toEqual(['admin']);
  });

  test('bootstrap: seeds admin token and allowlist; same hash again is a no-op; a different one is refused', () => {
    const { sm, run } = replica();
    const h = tokenHash('boot');
    expect(sm.getAllowlist()).toEqual([]);
    expect(run({ type: 'bootstrap', requestId: rid(), at: T0, tokenHash: h, cidrs: ['10.0.0.0/8'] })).toEqual({ status: 'ok' });
    expect(sm.tokenByHash(h)).toMatchObject({ name: 'bootstrap-admin', role: 'admin' });
    expect(sm.getAllowlist()).toEqual(['10.0.0.0/8']);
    const d = sm.stateDigest();
    expect(run({ type: 'bootstrap', requestId: rid(), at: T0 + 1, tokenHash: h, cidrs: ['0.0.0.0/0'] })).toEqual({ status: 'noop' });
    expect(run({ type: 'bootstrap', requestId: rid(), at: T0 + 1, tokenHash: tokenHash('other'), cidrs: [] })).toEqual({ status: 'already_bootstrapped' });
    expect(sm.getAllowlist()).toEqual(['10.0.0.0/8']);
    expect(sm.tokenByHash(h)?.name).toBe('bootstrap-admin');
    // only the idempotency table moved
    expect(sm.stateDigest()).not.toBe(d);
    run({ type: 'allowlist.replace', requestId: rid(), at: T0 + 2, cidrs: ['192.168.0.0/16'], actor: 'a' });
    expect(sm.getAllowlist()).toEqual(['192.168.0.0/16']);
  });
});

describe('KMS re-wrap', () => {
  test('rewrap is idempotent: marker, expected key id and destroyed versions are respected', () => {
    const { sm, run } = replica();
    run(put('s', 1));
    run(put('s', 2));
    const rw = (version: number, marker: string, expected = 'key-1', dek = bytes(48, 99)): CommandResult =>
      run({ type: 'kms.rewrap', requestId: rid(), at: T0, name: 's', version, wrappedDek: dek, kmsKeyId: 'key-2', expectedKmsKeyId: expected, marker });
    expect(sm.rewrapProgress('m1')).toEqual({ done: 0, pending: 2 });
    expect(rw(1, 'm1')).toEqual({ status: 'ok', version: 1 });
    expect(sm.readSealedSync('s', 1)).toMatchObject({ wrappedDek: bytes(48, 99), kmsKeyId: 'key-2', ciphertext: sealed(1).ciphertext });
    const d = sm.stateDigest();
    expect(rw(1, 'm1', 'key-2', bytes(48, 5))).toEqual({ status: 'stale' });
    expect(sm.readSealedSync('s', 1)?.wrappedDek).toEqual(bytes(48, 99));
    expect(rw(2, 'm1', 'key-other')).toEqual({ status: 'stale' });
    expect(rw(9, 'm1')).toEqual({ status: 'not_found' });
    expect(sm.rewrapPending('m1')).toEqual([{ name: 's', version: 2, kmsKeyId: 'key-1' }]);
    expect(sm.rewrapProgress('m1')).toEqual({ done: 1, pending: 1 });
    run({ type: 'secret.destroy', requestId: rid(), at: T0, name: 's', versions: [2], actor: 'a' });
    expect(rw(2, 'm1')).toEqual({ status: 'stale' });
    expect(sm.rewrapProgress('m1')).toEqual({ done: 1, pending: 0 });
    expect(d).not.toBe(sm.stateDigest());
    run({ type: 'kms.watermark', requestId: rid(), at: T0 + 9, marker: 'm1', passStartedAt: T0, passFinishedAt: T0 + 9, rewrapped: 1, failed: 0 });
    expect(sm.getWatermark()).toMatchObject({ marker: 'm1', passFinishedAt: T0 + 9, rewrapped: 1 });
  });
});

describe('lockout', () => {
  const policy = { maxFailures: 3, windowMs: 60_000, lockoutMs: 300_000 };
  test('cluster-wide counters lock an IP after maxFailures within the window', () => {
    const { sm, run } = replica();
    const fail = (at: number): CommandResult => run({ type: 'auth.failure', requestId: rid(), at, ip: '1.2.3.4', retainMs: 360_000 });
    fail(T0);
    fail(T0 + 70_000);
    expect(sm.isLockedOut('1.2.3.4', T0 + 70_001, policy).locked).toBe(false);
    fail(T0 + 80_000);
    expect(sm.isLockedOut('1.2.3.4', T0 + 80_001, policy).locked).toBe(false); // T0 fell out of the window
    fail(T0 + 90_000);
    expect(sm.isLockedOut('1.2.3.4', T0 + 90_001, policy)).toEqual({ locked: true, retryAfterMs: 299_999 });
    expect(sm.isLockedOut('1.2.3.4', T0 + 390_000, policy).locked).toBe(false);
    expect(sm.isLockedOut('5.6.7.8', T0 + 90_001, policy).locked).toBe(false);
    expect(sm.isLockedOut('1.2.3.4', T0 + 90_001, { ...policy, maxFailures: 0 }).locked).toBe(false);
    expect(sm.failuresInWindow('1.2.3.4', T0 + 90_001, 60_000)).toBe(3);
    run({ type: 'auth.reset', requestId: rid(), at: T0 + 91_000, ip: '1.2.3.4' });
    expect(sm.isLockedOut('1.2.3.4', T0 + 91_001, policy).locked).toBe(false);
  });

  test('stale IPs are swept deterministically so the table stays bounded', () => {
    const { sm, run } = replica();
    for (let i = 0; i < 50; i++) run({ type: 'auth.failure', requestId: rid(), at: T0 + i, ip: `10.0.0.${i}`, retainMs: 1000 });
    run({ type: 'auth.failure', requestId: rid(), at: T0 + 10_000, ip: 'fresh', retainMs: 1000 });
    expect(sm.failuresInWindow('10.0.0.1', T0 + 10_000, 1e9)).toBe(0);
    expect(sm.failuresInWindow('fresh', T0 + 10_000, 1e9)).toBe(1);
  });
});

describe('idempotency, members, errors', () => {
  test('a re-proposed requestId returns the first result and changes nothing', () => {
    const { sm, run } = replica();
    const c = put('x', 1);
    expect(run(c)).toMatchObject({ status: 'ok', version: 1 });
    const d = sm.stateDigest();
    const again = sm.apply({ term: 1, index: sm.applied + 1, type: 'normal', data: encodeCommand(c) });
    expect(again).toMatchObject({ duplicate: true, result: { status: 'ok', version: 1 } });
    expect(sm.stateDigest()).toBe(d);
    expect(sm.latestVersion('x')).toBe(1);
    expect(sm.resultOf(c.requestId)).toMatchObject({ status: 'ok', version: 1 });
  });

  test('the idempotency table is bounded (FIFO)', () => {
    const { sm, run } = replica();
    for (let i = 0; i < DEDUP_CAPACITY + 5; i++) run({ type: 'noop', requestId: `n${i}`, at: T0 });
    expect(sm.resultOf('n0')).toBeUndefined();
    expect(sm.resultOf('n4')).toBeUndefined();
    expect(sm.resultOf('n5')).toEqual({ status: 'ok' });
  });

  test('member address book', () => {
    const { sm, run } = replica();
    run({ type: 'member.upsert', requestId: rid(), at: T0, id: 'n2', raftAddr: 'r2', apiAddr: 'a2' });
    run({ type: 'member.upsert', requestId: rid(), at: T0, id: 'n1', raftAddr: 'r1', apiAddr: 'a1' });
    expect(sm.listMembers().map((m) => m.id)).toEqual(['n1', 'n2']);
    expect(run({ type: 'member.remove', requestId: rid(), at: T0, id: 'n2' })).toEqual({ status: 'ok' });
    expect(run({ type: 'member.remove', requestId: rid(), at: T0, id: 'n2' })).toEqual({ status: 'not_found' });
  });

  test('an undecodable entry throws a typed error and leaves the state untouched', () => {
    const { sm, run } = replica();
    run(put('x', 1));
    const d = sm.stateDigest();
    const applied = sm.applied;
    const bad: [Uint8Array, string][] = [
      [Uint8Array.from([1, 200, 1, 2]), 'SM_UNKNOWN_COMMAND'],
      [Uint8Array.from([7, 1, 0, 0]), 'SM_UNSUPPORTED_VERSION'],
      [encodeCommand(put('x', 2)).subarray(0, 30), 'SM_CORRUPT_COMMAND'],
    ];
    for (const [data, code] of bad) {
      let err: unknown;
      try {
        sm.apply({ term: 1, index: applied + 1, type: 'normal', data });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(StateError);
      expect((err as StateError).code).toBe(code);
      expect((err as StateError).index).toBe(applied + 1);
      expect(sm.stateDigest()).toBe(d);
      expect(sm.applied).toBe(applied);
    }
  });

  test('entries are never applied twice nor skipped', () => {
    const { sm, entry } = replica();
    const e1 = entry(put('x', 1));
    expect(sm.apply(e1)).not.toBeNull();
    expect(sm.apply(e1)).toBeNull();
    const e3 = { ...entry(put('x', 2)), index: 3 };
    expect(() => sm.apply(e3)).toThrow(expect.objectContaining({ code: 'SM_INVARIANT' }));
    expect(sm.apply({ term: 2, index: 2, type: 'confChange', data: Uint8Array.of(1, 2, 3) })).toMatchObject({ requestId: null });
    expect(sm.applied).toBe(2);
    expect(sm.appliedTermValue).toBe(2);
  });

  test('state.restore replaces everything but the address book; a bad blob changes nothing', () => {
    const a = replica();
    a.run(put('keep', 1));
    a.run({ type: 'member.upsert', requestId: rid(), at: T0, id: 'a-member', raftAddr: 'r', apiAddr: 'a' });
    const blob = a.sm.createSnapshot();
    const b = replica();
    b.run(put('gone', 1));
    b.run({ type: 'member.upsert', requestId: rid(), at: T0, id: 'b-member', raftAddr: 'r', apiAddr: 'a' });
    const before = b.sm.stateDigest();
    expect(b.run({ type: 'state.restore', requestId: rid(), at: T0, snapshot: blob.subarray(0, blob.length - 1) })).toEqual({ status: 'invalid_snapshot' });
    expect(b.sm.getSecret('gone')).toBeDefined();
    expect(b.sm.stateDigest()).not.toBe(before); // only the remembered result
    expect(b.run({ type: 'state.restore', requestId: rid(), at: T0, snapshot: blob })).toMatchObject({ status: 'ok', count: 1 });
    expect(b.sm.getSecret('gone')).toBeUndefined();
    expect(b.sm.readSealedSync('keep', 1)).toEqual(sealed(1));
    expect(b.sm.listMembers().map((m) => m.id)).toEqual(['b-member']);
  });
});
