// The rotation family: begin only from the current version and never twice; commit turns the
// pending value into version v+1 exactly as a put would (v keeps its grace window); commit and fail
// apply only to the pending attempt; no secret.put while a rotation is pending; destroyAll drops
// it; the table survives a snapshot.
import { pendingRotations, rotationRecords, rotationStateOf, type Command, type SealedValue } from '../src/index.js';
import { sealed, replica } from './helpers.js';

const T0 = 1_700_000_000_000;
let seq = 0;
const rid = (): string => `req-${++seq}`;

const put = (name: string, version: number, at = T0, casRequired = false): Command => ({
  type: 'secret.put', requestId: rid(), at, name, version, cas: casRequired ? version - 1 : null, sealed: sealed(version), format: 'userpass',
  description: null, rotation: { intervalSecs: 3600, graceSecs: 60, target: 'coffer-target:v1:{}' }, actor: 'ops',
});
const begin = (name: string, fromVersion: number, attemptId: string, s: SealedValue = sealed(40), at = T0 + 1000): Command => ({
  type: 'rotation.begin', requestId: rid(), at, name, fromVersion, attemptId, format: 'userpass', sealed: s, actor: 'rotation-worker',
});
const commit = (name: string, attemptId: string, at = T0 + 2000): Command => ({ type: 'rotation.commit', requestId: rid(), at, name, attemptId });
const fail = (name: string, attemptId: string, drop: boolean, at = T0 + 2000): Command => ({
  type: 'rotation.fail', requestId: rid(), at, name, attemptId, error: { code: 'rotation_target_refused', message: 'permission denied to alter role' }, drop,
});

describe('rotation.begin', () => {
  it('holds the sealed value of v+1 while v stays current and readable', () => {
    const { sm, run } = replica();
    run(put('db', 1));
    expect(run(begin('db', 1, 'a1', sealed(41)))).toMatchObject({ status: 'ok', version: 2 });
    expect(sm.latestVersion('db')).toBe(1);
    expect(sm.readableVersion('db', T0 + 1500)?.version).toBe(1);
    expect(sm.verifiableVersions('db', T0 + 1500)).toEqual([1]);
    expect(rotationStateOf(sm, 'db')?.pending).toMatchObject({ attemptId: 'a1', fromVersion: 1, sealed: sealed(41), actor: 'rotation-worker', startedAt: T0 + 1000 });
    expect(pendingRotations(sm)).toEqual(['db']);
  });

  it('is refused from a version that is not current, for a missing secret, and while one is pending', () => {
    const { sm, run } = replica();
    run(put('db', 1));
    run(put('db', 2));
    expect(run(begin('db', 1, 'a1'))).toEqual({ status: 'version_conflict', currentVersion: 2 });
    expect(run(begin('nope', 1, 'a1')).status).toBe('not_found');
    expect(run(begin('db', 2, 'a1')).status).toBe('ok');
    expect(run(begin('db', 2, 'a2'))).toEqual({ status: 'rotation_pending', currentVersion: 2 });
    expect(rotationStateOf(sm, 'db')?.pending?.attemptId).toBe('a1');
  });
});

describe('rotation.commit', () => {
  it('makes the pending value version v+1 (created at the commit); v stays verifiable for its grace window', () => {
    const { sm, run } = replica();
    run(put('db', 1));
    run(begin('db', 1, 'a1', sealed(41)));
    expect(run(commit('db', 'a1', T0 + 2000))).toEqual({ status: 'ok', version: 2, createdAt: T0 + 2000 });
    expect(sm.latestVersion('db')).toBe(2);
    expect(sm.getSecret('db')?.versions[1]).toMatchObject({ version: 2, createdAt: T0 + 2000, createdBy: 'rotation-worker', format: 'userpass' });
    expect(sm.verifiableVersions('db', T0 + 2000 + 59_000)).toEqual([2, 1]);
    expect(sm.verifiableVersions('db', T0 + 2000 + 60_000)).toEqual([2]);
    expect(rotationStateOf(sm, 'db')).toBeUndefined();
    expect(pendingRotations(sm)).toEqual([]);
  });

  it('works on a cas-required secret', () => {
    const { sm, run } = replica();
    run(put('db', 1, T0, true));
    run({ type: 'secret.metadata', requestId: rid(), at: T0, name: 'db', maxVersions: null, casRequired: true, customMetadata: null, description: null, rotation: null, deleteVersionAfterSecs: null, actor: 'ops' });
    run(begin('db', 1, 'a1'));
    expect(run(commit('db', 'a1')).status).toBe('ok');
    expect(sm.latestVersion('db')).toBe(2);
  });

  it('applies only to the pending attempt: a deposed leader\'s late commit or a second commit changes nothing', () => {
    const { sm, run } = replica();
    run(put('db', 1));
    run(begin('db', 1, 'a1'));
    expect(run(commit('db', 'other')).status).toBe('noop');
    expect(sm.latestVersion('db')).toBe(1);
    expect(run(commit('db', 'a1')).status).toBe('ok');
    expect(run(commit('db', 'a1')).status).toBe('noop');
    expect(sm.latestVersion('db')).toBe(2);
  });
});

describe('rotation.fail', () => {
  it('records the error and drops the pending value when asked; the secret is unchanged', () => {
    const { sm, run } = replica();
    run(put('db', 1));
    const before = sm.stateDigest();
    run(begin('db', 1, 'a1'));
    expect(run(fail('db', 'a1', true, T0 + 3000)).status).toBe('ok');
    expect(sm.latestVersion('db')).toBe(1);
    expect(rotationStateOf(sm, 'db')).toEqual({ name: 'db', pending: null, lastError: { code: 'rotation_target_refused', message: 'permission denied to alter role', at: T0 + 3000 } });
    expect(sm.stateDigest()).not.toBe(before);
    // A later rotation can begin; its success clears the error.
    expect(run(begin('db', 1, 'a2')).status).toBe('ok');
    expect(rotationStateOf(sm, 'db')?.lastError?.code).toBe('rotation_target_refused');
    expect(run(commit('db', 'a2')).status).toBe('ok');
    expect(rotationStateOf(sm, 'db')).toBeUndefined();
  });

  it('keeps the pending value without drop (unknown outcome), and ignores other attempts', () => {
    const { sm, run } = replica();
    run(put('db', 1));
    run(begin('db', 1, 'a1'));
    expect(run(fail('db', 'other', true)).status).toBe('noop');
    expect(run(fail('db', 'a1', false)).status).toBe('ok');
    expect(rotationStateOf(sm, 'db')?.pending?.attemptId).toBe('a1');
    expect(rotationStateOf(sm, 'db')?.lastError).not.toBeNull();
    expect(run(commit('db', 'a1')).status).toBe('ok');
    expect(sm.latestVersion('db')).toBe(2);
  });
});

describe('with the secret family', () => {
  it('refuses secret.put while a rotation is pending, and accepts it afterwards', () => {
    const { sm, run } = replica();
    run(put('db', 1));
    run(begin('db', 1, 'a1'));
    expect(run(put('db', 2))).toEqual({ status: 'rotation_pending', currentVersion: 1 });
    run(fail('db', 'a1', true));
    expect(run(put('db', 2)).status).toBe('ok');
    expect(sm.latestVersion('db')).toBe(2);
  });

  it('secret.destroyAll drops the pending rotation with the secret', () => {
    const { sm, run } = replica();
    run(put('db', 1));
    run(begin('db', 1, 'a1'));
    expect(run({ type: 'secret.destroyAll', requestId: rid(), at: T0 + 5, name: 'db', actor: 'ops' }).status).toBe('ok');
    expect(rotationStateOf(sm, 'db')).toBeUndefined();
    expect(run(commit('db', 'a1')).status).toBe('noop');
    expect(run(put('db', 1)).status).toBe('ok');
  });

  it('travels in a snapshot: a restored replica holds the same row and the same digest', () => {
    const a = replica();
    a.run(put('db', 1));
    a.run(put('x', 1));
    a.run(begin('db', 1, 'a1', sealed(44)));
    a.run(begin('x', 1, 'a2'));
    a.run(fail('x', 'a2', true));
    const blob = a.sm.createSnapshot();
    const b = replica();
    expect(b.run({ type: 'state.restore', requestId: rid(), at: T0 + 300, snapshot: blob }).status).toBe('ok');
    for (const name of ['db', 'x']) {
      const [ra, rb] = [rotationStateOf(a.sm, name), rotationStateOf(b.sm, name)];
      if (ra === undefined || rb === undefined) throw new Error('missing');
      expect(Buffer.from(rotationRecords.encode(rb)).equals(Buffer.from(rotationRecords.encode(ra)))).toBe(true);
    }
    expect(b.run(commit('db', 'a1')).status).toBe('ok');
    expect(b.sm.latestVersion('db')).toBe(2);
  });
});
