// Upgrade gating's tables: a member's hello, else the replicated floor when it lists the member,
// else the baseline; the floor to propose once every member has said hello.
import { BASELINE_COMMAND_VERSIONS, SUPPORTED_COMMAND_VERSIONS, type VersionFloorRecord } from '@coffer/state';
import { CommandVersions, parseCommandTable } from '../../src/cluster/command-versions.js';
import { ServiceError } from '../../src/service/errors.js';

const members = { voters: ['n1', 'n2', 'n3'], learners: [] };
const full = { ...SUPPORTED_COMMAND_VERSIONS };
// A command type newer than the baseline (what an older member cannot apply).
const newer = Object.keys(SUPPORTED_COMMAND_VERSIONS).find((t) => BASELINE_COMMAND_VERSIONS[t as keyof typeof BASELINE_COMMAND_VERSIONS] === undefined) as keyof typeof SUPPORTED_COMMAND_VERSIONS;

test('a member that has not said hello counts at the baseline, unless the replicated floor lists it', () => {
  let floor: VersionFloorRecord | undefined;
  const v = new CommandVersions('n1', () => floor);
  v.record('n2', full);
  expect(() => v.check(newer, members)).toThrow(ServiceError);
  floor = { versions: Object.entries(full).sort(([a], [b]) => (a < b ? -1 : 1)) as [string, number][], members: ['n1', 'n2'], at: 1 };
  expect(() => v.check(newer, members)).toThrow(/not every member can apply/); // n3 is not listed
  floor = { ...floor, members: ['n1', 'n2', 'n3'] };
  expect(() => v.check(newer, members)).not.toThrow();
  // A hello always wins over the floor: n3 now says it cannot apply `newer`.
  const older: Record<string, number> = { ...full };
  delete older[newer];
  v.record('n3', older);
  expect(() => v.check(newer, members)).toThrow(ServiceError);
});

test('the floor is proposed once every member has said hello, as the versions all of them apply, and not again', () => {
  let floor: VersionFloorRecord | undefined;
  const v = new CommandVersions('n1', () => floor);
  expect(v.floorProposal(members, 5)).toBeUndefined();
  v.record('n2', full);
  expect(v.floorProposal(members, 5)).toBeUndefined(); // n3 has not said
  const older: Record<string, number> = { ...full };
  delete older[newer];
  v.record('n3', older);
  const cmd = v.floorProposal(members, 5);
  expect(cmd).toMatchObject({ type: 'cluster.versions', members: ['n1', 'n2', 'n3'], at: 5 });
  const versions = (cmd as { versions: [string, number][] }).versions;
  expect(versions.map(([t]) => t)).not.toContain(newer);
  expect(versions.map(([t]) => t)).toEqual([...versions.map(([t]) => t)].sort());
  floor = { versions, members: ['n1', 'n2', 'n3'], at: 5 };
  expect(v.floorProposal(members, 6)).toBeUndefined();
  // A one-member cluster has nobody to wait for.
  expect(new CommandVersions('n1').floorProposal({ voters: ['n1'], learners: [] }, 1)).toBeUndefined();
});

test('parseCommandTable refuses what a hello must not carry', () => {
  expect(parseCommandTable({ 'secret.put': 2 })).toEqual({ 'secret.put': 2 });
  expect(parseCommandTable(null)).toBeUndefined();
  expect(parseCommandTable([])).toBeUndefined();
  expect(parseCommandTable({ 'secret.put': 0 })).toBeUndefined();
  expect(parseCommandTable({ 'secret.put': 1.5 })).toBeUndefined();
  expect(parseCommandTable({ ['x'.repeat(65)]: 1 })).toBeUndefined();
  expect(parseCommandTable(Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`t${i}`, 1])))).toBeUndefined();
});
