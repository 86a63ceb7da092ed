import { RoleRateLimiter } from '../../src/auth/rate-limit.js';

describe('RoleRateLimiter', () => {
  let now = 1_000_000;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  test('allows a burst of count, then refuses with Retry-After', () => {
    const rl = new RoleRateLimiter(clock);
    const limit = { count: 3, perMs: 60_000 };
    for (let i = 0; i < 3; i++) expect(rl.take('r', limit)).toEqual({ allowed: true });
    expect(rl.take('r', limit)).toEqual({ allowed: false, retryAfterSecs: 20 });
  });

  test('refills continuously', () => {
    const rl = new RoleRateLimiter(clock);
    const limit = { count: 2, perMs: 1000 };
    rl.take('r', limit);
    rl.take('r', limit);
    expect(rl.take('r', limit).allowed).toBe(false);
    now += 499;
    expect(rl.take('r', limit).allowed).toBe(false);
    now += 1;
    expect(rl.take('r', limit).allowed).toBe(true);
    now += 10_000; // never more than the capacity
    expect(rl.take('r', limit).allowed).toBe(true);
    expect(rl.take('r', limit).allowed).toBe(true);
    expect(rl.take('r', limit).allowed).toBe(false);
  });

  test('Retry-After is at least one second and rounds up', () => {
    const rl = new RoleRateLimiter(clock);
    const limit = { count: 10, perMs: 1000 };
    for (let i = 0; i < 10; i++) rl.take('r', limit);
    expect(rl.take('r', limit)).toEqual({ allowed: false, retryAfterSecs: 1 });
    const slow = { count: 1, perMs: 3_600_000 };
    rl.take('s', slow);
    now += 1000;
    expect(rl.take('s', slow)).toEqual({ allowed: false, retryAfterSecs: 3599 });
  });

  test('roles are independent; no limit means allowed; a changed limit starts fresh', () => {
    const rl = new RoleRateLimiter(clock);
    const one = { count: 1, perMs: 60_000 };
    expect(rl.take('a', one).allowed).toBe(true);
    expect(rl.take('a', one).allowed).toBe(false);
    expect(rl.take('b', one).allowed).toBe(true);
    expect(rl.take('a', undefined).allowed).toBe(true);
    expect(rl.take('a', { count: 2, perMs: 60_000 }).allowed).toBe(true);
    rl.forget('a');
    rl.forget('b');
    expect(rl.size).toBe(0);
  });

  test('a clock that goes backwards does not mint tokens', () => {
    const rl = new RoleRateLimiter(clock);
    const limit = { count: 1, perMs: 1000 };
    rl.take('r', limit);
    now -= 5000;
    expect(rl.take('r', limit).allowed).toBe(false);
  });
});
