import { ACTIONS, ADMIN_ROLE, SECRET_ACTIONS, compileRole, isAction, isAllowed, validateRoleDocument, type Action } from '../../src/auth/rbac.js';

describe('actions', () => {
  test('the tuple is exactly the contract list', () => {
    expect(ACTIONS.join(' ')).toBe(
      'secret.write secret.list secret.delete secret.destroy secret.rotate token.create token.read token.revoke ' +
        'role.read role.write allowlist.read allowlist.write kms.rewrap cluster.read cluster.manage audit.read ' +
        'secret.read identity.manage access.approve approle.manage transit.encrypt transit.decrypt transit.manage operator.seal',
    );
    expect(SECRET_ACTIONS).toEqual(['secret.write', 'secret.list', 'secret.delete', 'secret.destroy', 'secret.rotate', 'secret.read']);
    expect(isAction('secret.write')).toBe(true);
    expect(isAction('secret.read')).toBe(true);
    expect(isAction('secret.peek')).toBe(false);
    expect(isAction('toString')).toBe(false);
  });
});

describe('isAllowed', () => {
  const role = compileRole('deployer', {
    rules: [
      { paths: ['payments/*'], actions: ['secret.write', 'secret.list'] },
      { paths: ['apps/**'], actions: ['secret.rotate'] },
      { paths: [], actions: ['token.read'] },
    ],
    rateLimit: '100/m',
  });

  test('admin may do every action on every name', () => {
    for (const a of ACTIONS) expect(isAllowed(ADMIN_ROLE, a, 'any/name/at/all')).toBe(true);
    // Path-scoped actions (secret.*, transit.*) need a name to judge; global ones do not.
    for (const a of ACTIONS) expect(isAllowed(ADMIN_ROLE, a)).toBe(!a.startsWith('secret.') && !a.startsWith('transit.'));
  });

  test.each<[Action, string | undefined, boolean]>([
    ['secret.write', 'payments/stripe', true],
    ['secret.write', 'payments/eu/stripe', false],
    ['secret.write', 'billing/stripe', false],
    ['secret.list', 'payments/x', true],
    ['secret.delete', 'payments/stripe', false],
    ['secret.destroy', 'payments/stripe', false],
    ['secret.rotate', 'apps/web/db', true],
    ['secret.rotate', 'payments/stripe', false],
    ['secret.write', undefined, false],
    ['secret.write', '', false],
    ['token.read', undefined, true],
    ['token.read', 'whatever', true],
    ['token.create', undefined, false],
    ['cluster.manage', undefined, false],
    ['role.write', undefined, false],
  ])('%s on %s → %s', (action, resource, expected) => {
    expect(isAllowed(role, action, resource)).toBe(expected);
  });

  test('rate limit is parsed', () => {
    expect(role.rateLimit).toEqual({ count: 100, perMs: 60_000 });
    expect(ADMIN_ROLE.rateLimit).toBeUndefined();
  });

  test('an empty role allows nothing', () => {
    const none = compileRole('none', { rules: [] });
    for (const a of ACTIONS) expect(isAllowed(none, a, 'x')).toBe(false);
  });

  test('compileRole refuses invalid input', () => {
    expect(() => compileRole('self', { rules: [] })).toThrow(TypeError);
    expect(() => compileRole('r', { rules: [{ paths: ['a//b'], actions: ['secret.write'] }] })).toThrow(TypeError);
  });
});

describe('validateRoleDocument', () => {
  test('accepts the contract example', () => {
    const v = validateRoleDocument({ rules: [{ paths: ['payments/*'], actions: ['secret.write'] }], rateLimit: '100/m' });
    expect(v).toEqual({ ok: true, role: { rules: [{ paths: ['payments/*'], actions: ['secret.write'] }], rateLimit: '100/m' } });
  });
  test('global-only rules may omit paths', () => {
    expect(validateRoleDocument({ rules: [{ actions: ['cluster.read'] }] }).ok).toBe(true);
  });
  test.each<[unknown, RegExp]>([
    [null, /JSON object/],
    [[], /JSON object/],
    [{}, /^rules: must be an array/],
    [{ rules: {} }, /^rules: must be an array/],
    [{ rules: [], extra: 1 }, /^extra: unknown field/],
    [{ rules: [5] }, /^rules\[0\]: must be an object/],
    [{ rules: [{ paths: ['a'], actions: [] }] }, /^rules\[0\]\.actions: must be a non-empty array/],
    [{ rules: [{ paths: ['a'], actions: ['secret.write', 'secret.reed'] }] }, /^rules\[0\]\.actions\[1\]: "secret\.reed" is not an action/],
    [{ rules: [{ actions: ['secret.write'] }] }, /^rules\[0\]\.paths: required/],
    [{ rules: [{ paths: [], actions: ['secret.write'] }] }, /^rules\[0\]\.paths: must not be empty/],
    [{ rules: [{ paths: 'a/*', actions: ['secret.write'] }] }, /^rules\[0\]\.paths: must be an array/],
    [{ rules: [{ paths: ['ok/*', 'a/(x)'], actions: ['secret.write'] }] }, /^rules\[0\]\.paths\[1\]: path pattern "a\/\(x\)"/],
    [{ rules: [{ paths: ['a'], actions: ['secret.write'], action: 'x' }] }, /^rules\[0\]\.action: unknown field/],
    [{ rules: [], rateLimit: '100/fortnight' }, /^rateLimit: rate limit "100\/fortnight" has unknown period/],
    [{ rules: [], rateLimit: 100 }, /^rateLimit: must be a string/],
    [{ rules: Array.from({ length: 101 }, () => ({ actions: ['token.read'] })) }, /^rules: at most 100/],
  ])('%j is refused', (doc, re) => {
    const v = validateRoleDocument(doc);
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.errors[0]).toMatch(re);
  });
  test('collects several errors', () => {
    const v = validateRoleDocument({ rules: [{ paths: ['a//'], actions: ['nope'] }], rateLimit: 'x' });
    expect(!v.ok && v.errors.length).toBe(3);
  });
});
