import { parseDuration, parseRateLimit } from '../src/duration.js';

const DAY = 86_400_000;

describe('parseDuration', () => {
  test.each([
    ['30s', 30_000],
    ['30min', 1_800_000],
    ['36h', 36 * 3_600_000],
    ['90d', 90 * DAY],
    ['12w', 84 * DAY],
    ['6m', 180 * DAY], // months, not minutes
    ['1y', 365 * DAY],
    ['007d', 7 * DAY],
  ])('%s', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  test.each([
    ['', /empty/],
    ['0d', /greater than zero/],
    ['-5d', /negative/],
    ['5', /not <positive integer><unit>/],
    ['d', /not <positive integer><unit>/],
    ['1.5h', /not <positive integer><unit>/],
    ['5 d', /not <positive integer><unit>/],
    ['5D', /not <positive integer><unit>/],
    ['5ms', /unknown unit "ms"/],
    ['3mo', /unknown unit "mo"/],
    ['99999999999999y', /too large/],
    ['9'.repeat(40) + 's', /not <positive integer><unit>/],
  ])('rejects %j', (input, re) => {
    expect(() => parseDuration(input)).toThrow(re);
    try {
      parseDuration(input);
    } catch (e) {
      expect((e as { code: string }).code).toBe('NODE_INVALID_DURATION');
      if (input.length > 0 && input.length < 20) expect((e as Error).message).toContain(JSON.stringify(input));
    }
  });
});

describe('parseRateLimit', () => {
  test.each([
    ['100/m', 100, 60_000], // minute here, as a rate
    ['10/s', 10, 1000],
    ['5000/h', 5000, 3_600_000],
    ['1/d', 1, DAY],
    ['20/min', 20, 60_000],
  ])('%s', (input, count, perMs) => {
    expect(parseRateLimit(input)).toEqual({ count, perMs });
  });

  test.each(['', '100', '/m', '0/m', '100/w', '1.5/s', '-1/s', '100 / m', '2000000000/s'])('rejects %j', (input) => {
    expect(() => parseRateLimit(input)).toThrow(expect.objectContaining({ code: 'NODE_INVALID_RATE_LIMIT' }));
  });
});
