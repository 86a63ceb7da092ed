// The extension point for command families: a family's own record table is loaded, encoded,
// listed (so digested and snapshotted) and refused exactly like the built-in tables.
import { Reader, Writer } from '../src/bytes.js';
import { COMMAND_SPECS } from '../src/commands.js';
import { COMMAND_TYPE_IDS, COMMAND_TYPES, StateError } from '../src/index.js';
import { StateTables, type RecordTable } from '../src/state-tables.js';

type Thing = { name: string; n: number };
const things: RecordTable<Thing> = {
  prefix: 'mx',
  encode: (t) => new Writer().u8(1).str(t.name).u53(t.n).finish(),
  decode: (b) => {
    const r = new Reader(b, 'SM_CORRUPT_STORAGE');
    if (r.u8() !== 1) r.fail('unknown record version');
    const t = { name: r.str(), n: r.u53() };
    r.end();
    return t;
  },
};

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof StateError ? e.code : `not a StateError: ${String(e)}`;
  }
  return undefined;
}

describe('family record tables', () => {
  test('rows are listed in key order with the built-in records, encoded per key and loaded back', () => {
    const a = new StateTables([things]);
    a.table(things).set('b', { name: 'b', n: 2 });
    a.table(things).set('a', { name: 'a', n: 1 });
    const recs = a.metaRecords();
    const keys = recs.map(([k]) => k);
    expect(keys).toEqual([...keys].sort());
    expect(keys).toEqual(expect.arrayContaining(['mxa', 'mxb']));
    expect(a.encodeKey('mxa')).toEqual(things.encode({ name: 'a', n: 1 }));
    expect(a.encodeKey('mxz')).toBeNull(); // a deleted row is a delete in the next batch

    const b = new StateTables([things]);
    b.load(recs, null);
    expect([...b.table(things).entries()].sort()).toEqual([
      ['a', { name: 'a', n: 1 }],
      ['b', { name: 'b', n: 2 }],
    ]);
    expect(b.metaRecords()).toEqual(recs);
  });

  test('a record of a table this build does not have, or a corrupt one, is refused', () => {
    const recs = (() => {
      const t = new StateTables([things]);
      t.table(things).set('a', { name: 'a', n: 1 });
      return t.metaRecords();
    })();
    expect(codeOf(() => new StateTables([]).load(recs, null))).toBe('SM_CORRUPT_STORAGE');
    expect(codeOf(() => new StateTables([things]).load([['mxa', Uint8Array.of(2)]], null))).toBe('SM_CORRUPT_STORAGE');
    expect(codeOf(() => new StateTables([]).table(things))).toBe('SM_INVARIANT');
    expect(codeOf(() => new StateTables([]).encodeKey('mxa'))).toBe('SM_INVARIANT');
  });

  test('the registry: one spec per type, its wire number and version are the advertised ones', () => {
    for (const t of COMMAND_TYPES) expect(COMMAND_SPECS[t].id).toBe(COMMAND_TYPE_IDS[t]);
    expect(Object.keys(COMMAND_SPECS).sort()).toEqual([...COMMAND_TYPES].sort());
    // Wire numbers are unique, fit the type byte, and COMMAND_TYPES lists them in ascending order.
    const ids = COMMAND_TYPES.map((t) => COMMAND_TYPE_IDS[t]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    for (const id of ids) expect(id >= 1 && id <= 255).toBe(true);
  });
});
