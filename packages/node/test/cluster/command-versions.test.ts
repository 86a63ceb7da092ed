// Upgrade gating's tables: a member's hello, else the replicated floor when it lists the member,
// else the baseline; the floor to propose once every member has said hello.
import { BASELINE_COMMAND_VERSIONS, encodeCommand, SUPPORTED_COMMAND_VERSIONS, type VersionFloorRecord } from '@coffer/state';
import { CommandVersions, parseCommandTable, sameHandedVersions } from '../../src/cluster/command-versions.js';
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

describe('proposals a follower hands to the leader (Raft MsgProp)', () => {
  const put = encodeCommand({
    type: 'secret.put', requestId: 'r1', at: 1, name: 'app/x', version: 1, cas: null, format: 'raw', description: null, rotation: null, actor: 'a',
    sealed: { formatVersion: 1, alg: 'xchacha20poly1305', nonce: new Uint8Array(24), ciphertext: new Uint8Array(32), wrappedDek: new Uint8Array(40), kmsKeyId: 'local' },
  });

  test('the leader admits a secret put every member can apply, in the version this build encodes, and nothing else', () => {
    const v = new CommandVersions('n1');
    v.record('n2', full);
    v.record('n3', full);
    expect(v.admitsHanded(put, members)).toBe(true);
    // Any other command type, even one every member applies (a member may only hand secret puts).
    expect(v.admitsHanded(encodeCommand({ type: 'token.revoke', requestId: 'r2', at: 1, name: 't', actor: 'a' }), members)).toBe(false);
    // Another encoding version of secret.put, or bytes that are not a command.
    const other = Uint8Array.from(put);
    other[0] = (other[0] as number) + 1;
    expect(v.admitsHanded(other, members)).toBe(false);
    expect(v.admitsHanded(new Uint8Array([1]), members)).toBe(false);
    expect(v.admitsHanded(new Uint8Array(0), members)).toBe(false);
    // A member that says it cannot apply secret.put at this version.
    const older: Record<string, number> = { ...full, 'secret.put': SUPPORTED_COMMAND_VERSIONS['secret.put'] - 1 };
    v.record('n3', older);
    expect(v.admitsHanded(put, members)).toBe(false);
  });

  test('a follower hands proposals only to a leader that encodes the handed commands as it does', () => {
    expect(sameHandedVersions(parseCommandTable(full))).toBe(true);
    expect(sameHandedVersions(parseCommandTable({ ...full, 'secret.put': SUPPORTED_COMMAND_VERSIONS['secret.put'] + 1 }))).toBe(false);
    expect(sameHandedVersions(parseCommandTable({ 'token.revoke': 1 }))).toBe(false);
    expect(sameHandedVersions(undefined)).toBe(false);
  });
});
