// The seal family: the first seal.init in the log wins on every replica, a later one changes
// nothing (already_exists), malformed configs are refused by the codec, and the config survives
// a snapshot and a restart.
import { StateError, StateMachine, decodeCommand, encodeCommand, sealConfigOf, type Command } from '../src/index.js';
import { TEST_INTEGRITY, bytes, replica } from './helpers.js';

const T0 = 1_700_000_000_000;
let seq = 0;

const init = (seed: number, keyId: string, shares = 5, threshold = 3): Command => ({
  type: 'seal.init', requestId: `req-${++seq}`, at: T0 + seq, shares, threshold, keyCheck: bytes(32, seed), keyId,
});

test('the first init wins on every replica; a later one is a no-op answered already_exists', () => {
  const first = init(1, 'local:00000000000000a1');
  const second = init(2, 'local:00000000000000b2', 3, 2);
  const { sm, run } = replica();
  expect(sealConfigOf(sm)).toBeUndefined();
  expect(run(first).status).toBe('ok');
  const digest = sm.stateDigest();
  expect(run(second).status).toBe('already_exists');
  const cfg = sealConfigOf(sm);
  expect(cfg).toMatchObject({ shares: 5, threshold: 3, keyId: 'local:00000000000000a1', initializedAt: first.at });
  expect(Buffer.from(cfg?.keyCheck ?? []).equals(Buffer.from(bytes(32, 1)))).toBe(true);
  // The loser left the config alone: a replica that never saw it has the same config record.
  const other = replica();
  other.run(first);
  expect(sealConfigOf(other.sm)).toEqual(cfg);
  expect(digest).not.toBe('');
});

test('a retried init (same requestId) answers the same result and does not win twice', () => {
  const { sm, run } = replica();
  const c = init(3, 'local:00000000000000c3');
  expect(run(c).status).toBe('ok');
  expect(run(c).status).toBe('ok');
  expect(sealConfigOf(sm)?.keyId).toBe('local:00000000000000c3');
});

test.each([
  ['shares 0', { shares: 0, threshold: 0 }],
  ['threshold above shares', { shares: 3, threshold: 4 }],
  ['threshold 1 of many', { shares: 5, threshold: 1 }],
  ['shares 256', { shares: 256, threshold: 3 }],
  ['short key check', { keyCheck: bytes(31, 1) }],
  ['bad key id', { keyId: 'aws:00000000000000a1' }],
  ['upper-case key id', { keyId: 'local:00000000000000A1' }],
])('the codec refuses %s', (_what, patch) => {
  const c = { ...init(4, 'local:00000000000000d4'), ...patch } as Command;
  expect(() => encodeCommand(c)).toThrow(StateError);
});

test('1 of 1 is a valid configuration', () => {
  const { sm, run } = replica();
  expect(run(init(5, 'local:00000000000000e5', 1, 1)).status).toBe('ok');
  expect(sealConfigOf(sm)).toMatchObject({ shares: 1, threshold: 1 });
});

test('round trip through the codec', () => {
  const c = init(6, 'local:00000000000000f6');
  expect(decodeCommand(encodeCommand(c))).toEqual(c);
});

test('the config is in the snapshot records and the digest', () => {
  const a = replica();
  const b = replica();
  a.run(init(7, 'local:0000000000000007'));
  b.run(init(8, 'local:0000000000000008'));
  expect(a.sm.stateDigest()).not.toBe(b.sm.stateDigest());
  const restored = StateMachine.fromRecords(a.sm.metaRecords(), { index: 1, term: 1 }, { keepBlobs: true, integrity: TEST_INTEGRITY });
  expect(restored.stateDigest()).toBe(a.sm.stateDigest());
  expect(sealConfigOf(restored)?.keyId).toBe('local:0000000000000007');
});

test('checkSnapshot reports the snapshot\'s seal config (a sealed cluster refuses another key\'s snapshot)', () => {
  const a = replica();
  a.run(init(9, 'local:0000000000000009'));
  expect(a.sm.checkSnapshot(a.sm.createSnapshot()).seal?.keyId).toBe('local:0000000000000009');
  const b = replica();
  b.run({ type: 'noop', requestId: 'n', at: T0 });
  expect(b.sm.checkSnapshot(b.sm.createSnapshot()).seal).toBeUndefined();
});
