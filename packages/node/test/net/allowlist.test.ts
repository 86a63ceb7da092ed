import * as ipaddr from 'ipaddr.js';
import { Allowlist, clientIp, NO_PROXY_TRUST, normaliseIp, parseCidr, validateCidrs } from '../../src/net/allowlist.js';

describe('validateCidrs', () => {
  test('canonicalises entries and single addresses', () => {
    const v = validateCidrs(['10.8.0.0/24', '10.0.0.1', '::1', 'FD00::/8', '10.0.0.7/24', ' 192.168.1.0/24 ']);
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.cidrs).toEqual(['10.8.0.0/24', '10.0.0.1/32', '::1/128', 'fd00::/8', '10.0.0.0/24', '192.168.1.0/24']);
  });
  test('IPv4-mapped IPv6 CIDRs become IPv4', () => {
    expect(parseCidr('::ffff:10.0.0.0/104')).toMatchObject({ cidr: '10.0.0.0/8', kind: 'ipv4' });
    expect(parseCidr('::ffff:10.1.2.3')).toMatchObject({ cidr: '10.1.2.3/32', kind: 'ipv4' });
    expect(typeof parseCidr('::ffff:0:0/80')).toBe('string');
  });
  test('duplicates collapse', () => {
    const v = validateCidrs(['10.0.0.1', '10.0.0.1/32', '::ffff:10.0.0.1']);
    expect(v.ok && v.cidrs).toEqual(['10.0.0.1/32']);
  });
  test.each([
    ['abc', /"abc" is not an IPv4 or IPv6/],
    ['10.0.0.0/33', /invalid prefix length \(0-32\)/],
    ['::/129', /invalid prefix length \(0-128\)/],
    ['10.0.0.0/-1', /invalid prefix/],
    ['10.0.0.0/', /invalid prefix/],
    ['127.1', /not an IPv4/],
    ['0x7f.0.0.1', /not an IPv4/],
    ['010.0.0.1', /not an IPv4/],
    ['1.2.3.4.5', /not an IPv4/],
    ['fe80::1%eth0', /zone id/],
    ['', /empty/],
  ])('rejects %j naming the entry', (entry, re) => {
    const v = validateCidrs(['10.0.0.0/8', entry]);
    expect(v.ok).toBe(false);
    if (!v.ok) {
      expect(v.errors).toHaveLength(1);
      expect(v.errors[0]).toMatch(re);
    }
  });
  test('reports every bad entry; non-arrays refused', () => {
    const v = validateCidrs(['x', '10.0.0.0/8', 'y']);
    expect(!v.ok && v.errors.length).toBe(2);
    expect(validateCidrs('10.0.0.0/8').ok).toBe(false);
    expect(validateCidrs([42]).ok).toBe(false);
  });
});

describe('Allowlist', () => {
  const list = Allowlist.from(['10.8.0.0/24', '2001:db8::/32', '127.0.0.1']);
  test.each([
    ['10.8.0.9', true],
    ['10.8.1.9', false],
    ['::ffff:10.8.0.9', true],
    ['::ffff:10.8.1.9', false],
    ['127.0.0.1', true],
    ['::ffff:127.0.0.1', true],
    ['127.0.0.2', false],
    ['2001:db8::1', true],
    ['2001:db9::1', false],
    ['::1', false],
    ['not-an-ip', false],
    ['', false],
  ])('%s → %s', (ip, expected) => {
    expect(list.allows(ip)).toBe(expected);
  });
  test('undefined is denied', () => {
    expect(list.allows(undefined)).toBe(false);
  });
  test('an IPv4 entry never matches IPv6 space and vice versa', () => {
    expect(Allowlist.from(['0.0.0.0/0']).allows('::1')).toBe(false);
    expect(Allowlist.from(['::/0']).allows('10.0.0.1')).toBe(false);
    expect(Allowlist.from(['::/0']).allows('::ffff:10.0.0.1')).toBe(false);
  });
  test('empty list denies everything', () => {
    expect(Allowlist.from([]).allows('127.0.0.1')).toBe(false);
    expect(Allowlist.denyAll().allows('127.0.0.1')).toBe(false);
  });
  test('one invalid entry denies everything (fail closed) and keeps the errors', () => {
    const bad = Allowlist.from(['127.0.0.0/8', '10.0.0.0/40']);
    expect(bad.allows('127.0.0.1')).toBe(false);
    expect(bad.entries).toHaveLength(0);
    expect(bad.errors[0]).toMatch(/"10\.0\.0\.0\/40"/);
  });
});

describe('clientIp', () => {
  const req = (remoteAddress: string | undefined, xff?: string | string[]) => ({
    socket: { remoteAddress },
    headers: xff === undefined ? {} : { 'x-forwarded-for': xff as string },
  });
  const none = NO_PROXY_TRUST;
  const direct = { trustDirectPeer: true, proxies: Allowlist.denyAll() };
  const listed = { trustDirectPeer: false, proxies: Allowlist.from(['127.0.0.0/8', '10.1.0.0/16']) };
  test('socket address, normalised', () => {
    expect(clientIp(req('::ffff:127.0.0.1'), none)).toBe('127.0.0.1');
    expect(clientIp(req('::1'), none)).toBe('::1');
  });
  test('X-Forwarded-For is ignored unless the direct peer is a trusted proxy', () => {
    expect(clientIp(req('127.0.0.1', '10.8.0.9'), none)).toBe('127.0.0.1');
    expect(clientIp(req('192.0.2.1', '10.8.0.9'), listed)).toBe('192.0.2.1');
  });
  test('COFFER_TRUST_PROXY: the direct peer is the one trusted proxy, the right-most entry is the client', () => {
    expect(clientIp(req('127.0.0.1', '10.8.0.9, 172.16.0.1'), direct)).toBe('172.16.0.1');
    expect(clientIp(req('127.0.0.1', ' ::ffff:10.8.0.9 '), direct)).toBe('10.8.0.9');
    expect(clientIp(req('127.0.0.1', ['10.8.0.9', '172.16.0.2']), direct)).toBe('172.16.0.2');
    expect(clientIp(req('127.0.0.1'), direct)).toBe('127.0.0.1');
  });
  test('COFFER_TRUSTED_PROXIES: the right-most entry that is not a trusted proxy', () => {
    expect(clientIp(req('127.0.0.1', '10.8.0.9, 10.1.0.4'), listed)).toBe('10.8.0.9');
    expect(clientIp(req('127.0.0.1', 'spoofed, 10.8.0.9, 10.1.0.4'), listed)).toBe('10.8.0.9');
    // Every hop a trusted proxy: the left-most (a request from a proxy host itself).
    expect(clientIp(req('127.0.0.1', '10.1.0.9, 10.1.0.4'), listed)).toBe('10.1.0.9');
  });
  test('a garbage entry where the client should be yields undefined (deny), not the socket address', () => {
    expect(clientIp(req('127.0.0.1', '127.0.0.1, evil'), direct)).toBeUndefined();
    expect(clientIp(req('127.0.0.1', 'evil, 10.1.0.4'), listed)).toBeUndefined();
  });
  test('no address at all', () => {
    expect(clientIp(req(undefined), NO_PROXY_TRUST)).toBeUndefined();
    expect(normaliseIp('fe80::1%eth0')).toBe('fe80::1');
  });
});

describe('IPv4 fast path agrees with the general parser', () => {
  test('random addresses against random prefixes', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const ip = () => Array.from({ length: 4 }, () => Math.floor(rnd() * 256)).join('.');
    for (let i = 0; i < 300; i++) {
      const prefix = Math.floor(rnd() * 33);
      const list = Allowlist.from([`${ip()}/${prefix}`]);
      const e = list.entries[0];
      if (e === undefined) throw new Error('entry expected');
      for (let j = 0; j < 20; j++) {
        const a = ip();
        const expected = ipaddr.IPv4.parse(a).match(e.network as ipaddr.IPv4, e.prefix);
        expect(list.allows(a)).toBe(expected);
        expect(list.allows(`::ffff:${a}`)).toBe(expected);
        expect(list.allows(`::FFFF:${a}`)).toBe(expected);
      }
    }
  });
  test('leading zeros and out-of-range octets are refused', () => {
    const all = Allowlist.from(['0.0.0.0/0']);
    expect(all.allows('10.0.0.1')).toBe(true);
    expect(all.allows('010.0.0.1')).toBe(false);
    expect(all.allows('256.0.0.1')).toBe(false);
    expect(all.allows('::ffff:256.0.0.1')).toBe(false);
  });
});
