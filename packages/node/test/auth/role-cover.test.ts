import { ADMIN_ROLE, compileRole, globCovers, missingGrant } from '../../src/auth/rbac.js';
import { compileGlob } from '../../src/auth/glob.js';

describe('globCovers', () => {
  test.each([
    ['**', 'a/b/c', true],
    ['**', '**', true],
    ['a/**', 'a/b/*', true],
    ['a/**', 'a/**', true],
    ['a/**', 'a/**/x', true],
    ['a/*', 'a/b', true],
    ['a/*', 'a/db-*', true],
    ['a/db-*', 'a/db-prod-*', true],
    ['a/db-*', 'a/*', false],
    ['a/*', 'a/**', false],
    ['a/*', 'a/b/c', false],
    ['a/**', 'a', false],
    ['a/**', '**', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/*/b', true],
    ['a/b', 'a/*', false],
    ['*-x', '*-y', false],
  ])('%s covers %s: %s', (outer, inner, want) => {
    expect(globCovers(outer, inner)).toBe(want);
  });

  test('sound: whenever it says yes, every sample name the inner glob matches, the outer matches', () => {
    const patterns = ['**', 'a/**', 'a/*', 'a/b', 'a/db-*', 'a/*-x', '*/b', 'a/**/b', '*/*', 'a/*/**', 'db-*', '*', 'a/x-*-y'];
    const names = ['a', 'b', 'a/b', 'a/db-1', 'a/q-x', 'a/x-1-y', 'x/b', 'a/c/b', 'a/c/d', 'a/b/c/b', 'db-', 'db-x', 'a/x--y'];
    for (const o of patterns) {
      for (const i of patterns) {
        if (!globCovers(o, i)) continue;
        const og = compileGlob(o);
        const ig = compileGlob(i);
        for (const n of names) if (ig.matches(n)) expect({ o, i, n, m: og.matches(n) }).toEqual({ o, i, n, m: true });
      }
    }
  });
});

describe('missingGrant', () => {
  const ops = compileRole('ops', { rules: [{ paths: ['apps/**'], actions: ['secret.write', 'secret.list'] }, { actions: ['token.create', 'token.read'], paths: [] }] });
  test('admin covers every role; a role covers itself', () => {
    expect(missingGrant(ADMIN_ROLE, ops)).toBeUndefined();
    expect(missingGrant(ops, ops)).toBeUndefined();
  });
  test('a narrower role is covered', () => {
    const narrow = compileRole('narrow', { rules: [{ paths: ['apps/web/*'], actions: ['secret.write'] }] });
    expect(missingGrant(ops, narrow)).toBeUndefined();
  });
  test('admin, extra actions or wider paths are not', () => {
    expect(missingGrant(ops, ADMIN_ROLE)).toBeDefined();
    expect(missingGrant(ops, compileRole('x', { rules: [{ paths: [], actions: ['cluster.manage'] }] }))).toBe('cluster.manage');
    expect(missingGrant(ops, compileRole('y', { rules: [{ paths: ['**'], actions: ['secret.write'] }] }))).toBe('secret.write on "**"');
    expect(missingGrant(ops, compileRole('z', { rules: [{ paths: ['apps/**'], actions: ['secret.destroy'] }] }))).toBe('secret.destroy');
  });
});
