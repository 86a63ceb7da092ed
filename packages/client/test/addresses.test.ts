import { parseAddresses, toEpochMs } from '@coffer/client';

describe('parseAddresses', () => {
  test('splits COFFER_ADDR-style lists and normalises', () => {
    expect(parseAddresses('http://a:8200, b:8210/ ,https://c')).toEqual(['http://a:8200', 'http://b:8210', 'https://c']);
    expect(parseAddresses(['http://127.0.0.1:8200/'])).toEqual(['http://127.0.0.1:8200']);
    expect(parseAddresses(' , ')).toEqual([]);
  });
  test('rejects non-http schemes and embedded credentials', () => {
    expect(() => parseAddresses('ftp://x')).toThrow(TypeError);
    expect(() => parseAddresses('http://u:p@x:1')).toThrow(/credentials/);
    expect(() => parseAddresses('http://[bad')).toThrow(TypeError);
  });
});

describe('toEpochMs', () => {
  test('accepts ISO text, epoch ms and epoch seconds', () => {
    expect(toEpochMs('2030-01-01T00:00:00Z')).toBe(1893456000000);
    expect(toEpochMs(1893456000000)).toBe(1893456000000);
    expect(toEpochMs(1893456000)).toBe(1893456000000);
    expect(toEpochMs(null)).toBeUndefined();
    expect(toEpochMs('soon')).toBeUndefined();
  });
});
