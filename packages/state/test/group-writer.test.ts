/**
 * The group writer (src/group-writer.ts) over a real LevelDB: when a batch starts, what joins it,
 * and that order and sync survive batching.
 *
 * - a synced write on an idle writer starts before `write` returns (a Raft leader sends its
 *   appends next; the fsync must already be running);
 * - unsynced writes of one tick share one batch (a commit index and the applied state it lets
 *   through);
 * - writes queued while a batch is in flight go in the next one, in call order, synced when any
 *   of them asked for it, and each resolves only once its batch is written.
 */
import { ClassicLevel, type ChainedBatchWriteOptions } from 'classic-level';
import { GroupWriter } from '../src/group-writer.js';
import { tempDir } from './helpers.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b);

interface Recorded {
  readonly ops: number;
  readonly sync: boolean;
}

let db: ClassicLevel<string, Uint8Array>;
let cleanup: () => void;
/** Every batch the writer wrote, in order, as it was started. */
let batches: Recorded[];
/** Batches started but not yet finished. */
let inFlight: number;

beforeEach(async () => {
  const t = tempDir('coffer-gw-');
  cleanup = t.cleanup;
  db = new ClassicLevel<string, Uint8Array>(t.dir, { valueEncoding: 'view' });
  await db.open();
  batches = [];
  inFlight = 0;
  const realBatch = db.batch.bind(db);
  jest.spyOn(db, 'batch').mockImplementation(() => {
    const b = realBatch();
    const write = b.write.bind(b);
    jest.spyOn(b, 'write').mockImplementation(async (opts: ChainedBatchWriteOptions) => {
      batches.push({ ops: b.length, sync: opts.sync === true });
      inFlight++;
      try {
        await write(opts);
      } finally {
        inFlight--;
      }
    });
    return b;
  });
});

afterEach(async () => {
  jest.restoreAllMocks();
  await db.close();
  cleanup();
});

test('a synced write on an idle writer is already being written when write() returns', async () => {
  const w = new GroupWriter(db, 0);
  const done = w.write([{ type: 'put', key: 'a', value: enc('1') }], true);
  expect(batches).toEqual([{ ops: 1, sync: true }]);
  await done;
  expect(dec(await db.get('a'))).toBe('1');
  expect(w.stats.syncedWrites).toBe(1);
});

test('unsynced writes of one tick share one batch, in call order', async () => {
  const w = new GroupWriter(db, 0);
  const first = w.write([{ type: 'put', key: 'c', value: enc('commit') }], false);
  // Not started yet: the rest of the tick (and its microtasks) may still join.
  expect(batches).toEqual([]);
  await Promise.resolve();
  const second = w.write([{ type: 'put', key: 'c', value: enc('state') }], false, 7);
  await Promise.all([first, second]);
  expect(batches).toEqual([{ ops: 2, sync: false }]);
  // The later write of the same key wins: call order is kept inside the batch.
  expect(dec(await db.get('c'))).toBe('state');
  expect(w.persistedApplied).toBe(7);
});

test('writes queued behind a batch in flight go in the next one, in order, synced if any asked; none resolves before its batch is written', async () => {
  const w = new GroupWriter(db, 0);
  const resolvedWhileInFlight: string[] = [];
  const track = (name: string, p: Promise<void>): Promise<void> =>
    p.then(() => {
      if (inFlight > 0 && batches.length === 1 && name !== 'log') resolvedWhileInFlight.push(name);
    });
  const log = track('log', w.write([{ type: 'put', key: 'e1', value: enc('entry') }], true));
  const apply = track('apply', w.write([{ type: 'put', key: 'st', value: enc('v1') }, { type: 'del', key: 'e1' }], false, 1));
  const next = track('next', w.write([{ type: 'put', key: 'st', value: enc('v2') }], true));
  await Promise.all([log, apply, next]);
  expect(batches).toEqual([
    { ops: 1, sync: true },
    { ops: 3, sync: true },
  ]);
  expect(dec(await db.get('st'))).toBe('v2');
  expect(await db.get('e1')).toBeUndefined();
  // The writes behind the first batch waited for their own.
  expect(resolvedWhileInFlight).toEqual([]);
  expect(w.persistedApplied).toBe(1);
  expect(w.syncedApplied).toBe(1);
});
