// Upgrade gating that survives a leader change: the command versions every member of the
// configuration has said it can apply, replicated.
//
// A leader proposes a command version only when every member can apply it (a member that cannot
// would stop). Members say so in a `hello` to each new leader; one that has not said is assumed at
// the baseline. Without this record, a member that is down (never says hello to a new leader) would
// hold every command type newer than the baseline back — every second-wave write — until it came
// back. So once every member of the configuration has advertised, the leader records the
// versions all of them support (`cluster.versions`); a later leader falls back to that record for
// a listed member it has not heard from. A member that joins later is not listed: it says hello.
import { Reader, Writer } from '../bytes.js';
import type { RecordTable } from '../state-tables.js';
import { bad, checkInt, checkName, checkStrs, type CommandBase, type CommandSpec, type FamilySpecs } from './spec.js';

/** Most command types in a table (as `hello` allows). */
export const MAX_VERSION_ENTRIES = 256;
/** Most members a floor covers. */
export const MAX_FLOOR_MEMBERS = 64;

/** The versions every listed member could apply when it was recorded (`mvfloor`). */
export type VersionFloorRecord = {
  /** Command type → version, sorted by type. */
  versions: [string, number][];
  /** The members that had advertised them (the configuration then), sorted. */
  members: string[];
  at: number;
};

/** Record the versions every member of the configuration supports. */
export type ClusterVersionsCommand = CommandBase & { type: 'cluster.versions'; versions: [string, number][]; members: string[] };

/** The commands of this family. */
export type VersionsCommand = ClusterVersionsCommand;

const REC_V1 = 1;
const FLOOR_ID = 'floor';

function checkVersions(v: unknown): void {
  if (!Array.isArray(v) || v.length > MAX_VERSION_ENTRIES) bad(`versions must be an array of at most ${MAX_VERSION_ENTRIES} [type, version] pairs`);
  let prev = '';
  for (const e of v as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2) bad('versions entries must be [type, version] pairs');
    const [t, n] = e as [unknown, unknown];
    checkName(t, 'versions type', 64);
    checkInt(n, 'versions version', 1);
    if ((n as number) > 255) bad('versions version must be at most 255');
    if ((t as string) <= prev) bad('versions must be sorted by type without repeats');
    prev = t as string;
  }
}

function checkMembers(m: unknown): void {
  checkStrs(m, 'members');
  const list = m as string[];
  if (list.length === 0 || list.length > MAX_FLOOR_MEMBERS) bad(`members must list 1 to ${MAX_FLOOR_MEMBERS} ids`);
  let prev = '';
  for (const id of list) {
    checkName(id, 'member id', 64);
    if (id <= prev) bad('members must be sorted without repeats');
    prev = id;
  }
}

function writeFloor(w: Writer, versions: readonly [string, number][], members: readonly string[]): Writer {
  w.u53(versions.length);
  for (const [t, n] of versions) w.str(t).u8(n);
  w.u53(members.length);
  for (const id of members) w.str(id);
  return w;
}

function readFloor(r: Reader): { versions: [string, number][]; members: string[] } {
  const nv = r.u53();
  if (nv > MAX_VERSION_ENTRIES) r.fail('too many versions');
  const versions: [string, number][] = [];
  for (let i = 0; i < nv; i++) versions.push([r.str(), r.u8()]);
  const nm = r.u53();
  if (nm > MAX_FLOOR_MEMBERS) r.fail('too many members');
  const members: string[] = [];
  for (let i = 0; i < nm; i++) members.push(r.str());
  return { versions, members };
}

/** The floor table (`mv`; one row). */
export const versionFloors: RecordTable<VersionFloorRecord> = {
  prefix: 'mv',
  encode: (f) => writeFloor(new Writer(256).u8(REC_V1), f.versions, f.members).u53(f.at).finish(),
  decode: (b) => {
    const r = new Reader(b, 'SM_CORRUPT_STORAGE');
    if (r.u8() !== REC_V1) r.fail('unknown record version');
    const f: VersionFloorRecord = { ...readFloor(r), at: r.u53() };
    r.end();
    return f;
  },
};

const record: CommandSpec<ClusterVersionsCommand> = {
  id: 70,
  version: 1,
  validate(c) {
    checkVersions(c.versions);
    checkMembers(c.members);
  },
  write(w, c) {
    writeFloor(w, c.versions, c.members);
  },
  read(r, base, type) {
    return { type, ...base, ...readFloor(r) };
  },
  apply(ctx, c) {
    ctx.tables.table(versionFloors).set(FLOOR_ID, { versions: c.versions.map(([t, n]) => [t, n]), members: [...c.members], at: c.at });
    ctx.changes.mark(versionFloors.prefix + FLOOR_ID);
    return { status: 'ok' };
  },
};

/** Specs of the versions family (wire numbers 70–74 are reserved for it). */
export const versionsCommands: FamilySpecs<VersionsCommand> = {
  'cluster.versions': record,
};

/** What the family's query reads: `StateMachine.table`. */
export interface VersionFloorTables {
  table<R>(def: RecordTable<R>): ReadonlyMap<string, Readonly<R>>;
}

/**
 * The replicated version floor.
 *
 * @param sm - the state machine
 * @returns the floor, or undefined before any leader recorded one
 */
export function versionFloorOf(sm: VersionFloorTables): Readonly<VersionFloorRecord> | undefined {
  return sm.table(versionFloors).get(FLOOR_ID);
}
