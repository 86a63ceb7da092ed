// The versions family: `cluster.versions` records the command versions every listed member
// supports (so a later leader need not wait for a member that is down), replaces the previous
// record, survives a restart, and the codec refuses malformed tables.
import { StateError, StateMachine, encodeCommand, versionFloorOf, type Command } from '../src/index.js';
import { TEST_INTEGRITY, replica } from './helpers.js';

const T0 = 1_700_000_000_000;
let seq = 0;

const floor = (versions: [string, number][], members: string[]): Command => ({ type: 'cluster.versions', requestId: `req-${++seq}`, at: T0 + seq, versions, members });

test('the latest record is the floor, on every replica and after a restart', () => {
  const { sm, run } = replica();
  expect(versionFloorOf(sm)).toBeUndefined();
  expect(run(floor([['secret.put', 2]], ['n1', 'n2'])).status).toBe('ok');
  const second = floor([['secret.put', 3], ['transit.create', 1]], ['n1', 'n2', 'n3']);
  expect(run(second).status).toBe('ok');
  expect(versionFloorOf(sm)).toEqual({ versions: [['secret.put', 3], ['transit.create', 1]], members: ['n1', 'n2', 'n3'], at: second.at });
  const restored = StateMachine.fromRecords(sm.metaRecords(), { index: 2, term: 1 }, { keepBlobs: true, integrity: TEST_INTEGRITY });
  expect(restored.stateDigest()).toBe(sm.stateDigest());
  expect(versionFloorOf(restored)).toEqual(versionFloorOf(sm));
});

test('malformed tables are refused by the codec', () => {
  const bad: [string, number][][] = [
    [['b', 1], ['a', 1]], // not sorted
    [['a', 1], ['a', 2]], // repeated
    [['a', 0]], // version 0
    [['a', 256]], // over 255
    [['', 1]], // empty type
  ];
  for (const v of bad) expect(() => encodeCommand(floor(v, ['n1']))).toThrow(StateError);
  expect(() => encodeCommand(floor([['a', 1]], []))).toThrow(StateError);
  expect(() => encodeCommand(floor([['a', 1]], ['n2', 'n1']))).toThrow(StateError);
  expect(() => encodeCommand(floor([['a', 1]], ['n1']))).not.toThrow();
});
