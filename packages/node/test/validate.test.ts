import { checkRoleName, checkSecretName, checkTokenName, isValidSecretName } from '../src/validate.js';

describe('secret names', () => {
  test.each(['a', 'payments/stripe/api-key', 'A.b_c-d/e', 'x'.repeat(512), '..a/b..', '.hidden'])('accepts %j', (n) => {
    expect(checkSecretName(n)).toEqual({ ok: true });
    expect(isValidSecretName(n)).toBe(true);
  });
  test.each([
    ['', /empty/],
    ['x'.repeat(513), /longer than 512/],
    ['a//b', /empty segment/],
    ['/a', /empty segment/],
    ['a/', /empty segment/],
    ['a/./b', /"\." segment/],
    ['a/../b', /"\.\." segment/],
    ['..', /"\.\." segment/],
    ['a b', /may contain only/],
    ['a%2fb', /may contain only/],
    ['é', /may contain only/],
    ['a\\b', /may contain only/],
  ])('rejects %j', (n, re) => {
    const r = checkSecretName(n);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toMatch(re);
  });
  test('non-strings are refused', () => {
    expect(checkSecretName(42).ok).toBe(false);
    expect(isValidSecretName(undefined)).toBe(false);
  });
});

describe('token and role names', () => {
  test.each(['ci', 'billing-service', 'a.b_c', 'x'.repeat(64), 'admin'])('accepts %j', (n) => {
    expect(checkTokenName(n).ok).toBe(true);
    expect(checkRoleName(n).ok).toBe(true);
  });
  test.each(['', 'x'.repeat(65), 'self', 'a/b', 'a b', 'ü', '.', '..'])('rejects %j', (n) => {
    expect(checkTokenName(n).ok).toBe(false);
    expect(checkRoleName(n).ok).toBe(false);
  });
  test('the reason says reserved for self', () => {
    const r = checkTokenName('self');
    expect(!r.ok && r.reason).toMatch(/reserved/);
  });
});
