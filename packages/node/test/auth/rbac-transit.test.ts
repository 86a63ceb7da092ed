// transit.* actions are scoped by rule paths over transit key names, like secret.* over secret names.
import { ADMIN_ROLE, PATH_SCOPED_ACTIONS, TRANSIT_ACTIONS, compileRole, isAllowed, isPathScoped, missingGrant, validateRoleDocument } from '../../src/auth/rbac.js';

describe('transit actions are path-scoped', () => {
  const app = compileRole('app', { rules: [{ paths: ['app-*'], actions: ['transit.encrypt', 'transit.decrypt'] }] });

  test('the scoped actions are secret.* and transit.*', () => {
    expect(TRANSIT_ACTIONS).toEqual(['transit.encrypt', 'transit.decrypt', 'transit.manage']);
    expect(PATH_SCOPED_ACTIONS.filter((a) => a.startsWith('transit.'))).toEqual(TRANSIT_ACTIONS);
    expect(isPathScoped('transit.manage')).toBe(true);
    expect(isPathScoped('token.read')).toBe(false);
  });

  test.each([
    ['transit.encrypt', 'app-orders', true],
    ['transit.decrypt', 'app-orders', true],
    ['transit.encrypt', 'other', false],
    ['transit.decrypt', 'other', false],
    ['transit.manage', 'app-orders', false],
    ['transit.encrypt', undefined, false],
    ['transit.encrypt', '', false],
  ] as const)('%s on %s → %s', (action, key, expected) => {
    expect(isAllowed(app, action, key)).toBe(expected);
  });

  test('admin may use every key, but only on a named key', () => {
    for (const a of TRANSIT_ACTIONS) {
      expect(isAllowed(ADMIN_ROLE, a, 'any-key')).toBe(true);
      expect(isAllowed(ADMIN_ROLE, a)).toBe(false);
    }
  });

  test('a rule granting transit.* needs non-empty paths', () => {
    const v = validateRoleDocument({ rules: [{ actions: ['transit.encrypt'] }] });
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.errors[0]).toMatch(/rules\[0\]\.paths: required when the rule grants secret\.\* or transit\.\* actions/);
    const empty = validateRoleDocument({ rules: [{ paths: [], actions: ['transit.manage'] }] });
    expect(empty.ok).toBe(false);
  });

  test('nobody grants what they do not hold: key globs are compared like secret globs', () => {
    const all = compileRole('all', { rules: [{ paths: ['**'], actions: ['transit.encrypt'] }] });
    const narrow = compileRole('narrow', { rules: [{ paths: ['app-orders'], actions: ['transit.encrypt'] }] });
    expect(missingGrant(all, narrow)).toBeUndefined();
    expect(missingGrant(narrow, all)).toBe('transit.encrypt on "**"');
    expect(missingGrant(app, narrow)).toBeUndefined();
    expect(missingGrant(narrow, app)).toBe('transit.encrypt on "app-*"');
  });
});
