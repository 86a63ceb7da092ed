import { compileGlob, globProblem } from '../../src/auth/glob.js';

describe('compileGlob', () => {
  test.each([
    // pattern, name, matches
    ['payments/stripe', 'payments/stripe', true],
    ['payments/stripe', 'payments/stripe2', false],
    ['payments/*', 'payments/stripe', true],
    ['payments/*', 'payments', false],
    ['payments/*', 'payments/eu/stripe', false],
    ['payments/*/key', 'payments/eu/key', true],
    ['payments/*/key', 'payments/eu/x/key', false],
    ['db-*', 'db-main', true],
    ['db-*', 'db-', true],
    ['db-*', 'xdb-main', false],
    ['*-key', 'api-key', true],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['*', 'top', true],
    ['*', 'a/b', false],
    ['**', 'a', true],
    ['**', 'a/b/c', true],
    ['payments/**', 'payments/a', true],
    ['payments/**', 'payments/a/b/c', true],
    ['payments/**', 'payments', false],
    ['payments/**', 'paymentsX/a', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'a/x/y/c', false],
    ['**/key', 'key', true],
    ['**/key', 'x/y/key', true],
    ['**/key', 'x/y/key2', false],
    ['a.b', 'aXb', false], // '.' is literal, not a regex wildcard
    ['**/*/**/z', 'a/b/c/z', true],
  ])('%s vs %s → %s', (pattern, name, expected) => {
    expect(compileGlob(pattern).matches(name)).toBe(expected);
  });

  test('stays fast on adversarial patterns (no exponential backtracking)', () => {
    const g = compileGlob('**/**/**/**/**/**/**/**/**/**/z');
    const name = Array.from({ length: 60 }, () => 'a').join('/');
    expect(g.matches(name)).toBe(false);
    const s = compileGlob('*a*a*a*a*a*a*a*a*b');
    expect(s.matches('a'.repeat(200))).toBe(false);
  });

  test('invalid patterns throw TypeError', () => {
    expect(() => compileGlob('a/x**')).toThrow(TypeError);
  });
});

describe('globProblem', () => {
  test.each(['payments/*', '**', 'a/**/b', 'db-*'])('accepts %j', (p) => {
    expect(globProblem(p)).toBeUndefined();
  });
  test.each([
    ['', /empty/],
    ['a//b', /empty segment/],
    ['a/x**', /whole segment/],
    ['a/(b|c)', /may contain only/],
    ['a/[bc]', /may contain only/],
    ['a/b?', /may contain only/],
    ['../x', /".." segment/],
    ['x'.repeat(513), /longer than 512/],
  ])('rejects %j', (p, re) => {
    expect(globProblem(p)).toMatch(re);
  });
  test('non-strings', () => {
    expect(globProblem(5)).toMatch(/string/);
  });
});
