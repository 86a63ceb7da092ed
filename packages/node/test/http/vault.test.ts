// Pure helpers of the Vault KV v2 surface: the LIST rewrite, list detection, folders, durations.
import { rewriteListHead } from '../../src/http/list-method.js';
import { checkFolder, goDuration, isVaultList, mergePatch, parseGoDuration } from '../../src/http/vault.js';

const head = (s: string): Buffer => Buffer.from(s, 'latin1');

describe('rewriteListHead', () => {
  test('rewrites the request line, drops keep-alive, closes the connection', () => {
    const r = rewriteListHead(head('LIST /v1/secret/metadata/app HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\nX-Vault-Token: t\r\n\r\n'));
    expect('head' in r && r.head.toString('latin1')).toBe('GET /v1/secret/metadata/app?list=true HTTP/1.1\r\nHost: x\r\nX-Vault-Token: t\r\nConnection: close\r\n\r\n');
  });
  test('keeps an existing query', () => {
    const r = rewriteListHead(head('LIST /v1/secret/metadata/?x=1 HTTP/1.1\r\nContent-Length: 0\r\n\r\n'));
    expect('head' in r && r.head.toString('latin1')).toBe('GET /v1/secret/metadata/?x=1&list=true HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  test('refuses bodies, incomplete heads and malformed request lines', () => {
    expect(rewriteListHead(head('LIST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc'))).toEqual({ status: 400, message: 'LIST requests take no body' });
    expect(rewriteListHead(head('LIST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'))).toEqual({ status: 400, message: 'LIST requests take no body' });
    expect(rewriteListHead(head('LIST /a HTTP/1.1\r\nHost: x\r\n'))).toMatchObject({ status: 400 });
    expect(rewriteListHead(head(`LIST /a HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`))).toMatchObject({ status: 431 });
    expect(rewriteListHead(head('LIST a HTTP/1.1\r\n\r\n'))).toMatchObject({ status: 400 });
    expect(rewriteListHead(head('LIST /a b HTTP/1.1\r\n\r\n'))).toMatchObject({ status: 400 });
  });
});

test('isVaultList accepts the values Vault parses as true', () => {
  for (const q of ['list=true', 'list=1', 'a=b&list=t', 'list=TRUE']) expect(isVaultList(q)).toBe(true);
  for (const q of ['', 'list=false', 'list=0', 'list=', 'nolist=1x', 'x=1']) expect(isVaultList(q)).toBe(false);
});

test('checkFolder: empty, with or without a trailing slash, invalid names refused', () => {
  expect(checkFolder('')).toBe('');
  expect(checkFolder('/')).toBe('');
  expect(checkFolder('app')).toBe('app/');
  expect(checkFolder('app/db/')).toBe('app/db/');
  expect(() => checkFolder('a//b')).toThrow(/empty segment/);
  expect(() => checkFolder('a b')).toThrow();
});

test('Go durations both ways', () => {
  expect([0, 45, 90, 3600, 3725].map(goDuration)).toEqual(['0s', '45s', '1m30s', '1h0m0s', '1h2m5s']);
  expect(['0s', '30m', '72h', '1h2m5s'].map(parseGoDuration)).toEqual([0, 1800, 259200, 3725]);
  expect(parseGoDuration(120)).toBe(120);
  for (const bad of ['', 'x', '5d', '-1s', 1.5, -1, true]) expect(() => parseGoDuration(bad)).toThrow(/delete_version_after/);
});

test('mergePatch follows RFC 7386', () => {
  const target = { a: 'b', c: { d: 'e', f: 'g' }, keep: [1, 2] };
  expect(mergePatch(target, { a: 'z', c: { f: null } })).toEqual({ a: 'z', c: { d: 'e' }, keep: [1, 2] });
  expect(target).toEqual({ a: 'b', c: { d: 'e', f: 'g' }, keep: [1, 2] });
  expect(mergePatch({ a: [1] }, { a: [2, 3] })).toEqual({ a: [2, 3] });
  expect(mergePatch({ a: 'x' }, { a: { b: 'c' } })).toEqual({ a: { b: 'c' } });
  expect(mergePatch({ a: { b: 'c' } }, { a: 'x' })).toEqual({ a: 'x' });
  expect(mergePatch({}, { a: { b: null } })).toEqual({ a: {} });
});
