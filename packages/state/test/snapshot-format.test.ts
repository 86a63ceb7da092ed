// Snapshot container formats, pinned by fixtures (test/fixtures/snapshots/v<N>.bin, only ever added
// to). v1 was written by the build before snapshot tags (unkeyed sha256): it is never accepted by
// decodeSnapshotBlob, and read only to adopt a data dir's own saved snapshot. v2 ends with an
// HMAC-SHA256 under the snapshot key (here the test cluster's keys).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Integrity, SNAPSHOT_FORMAT_VERSION, decodeSnapshotBlob, encodeSnapshotBlob } from '../src/index.js';
import { decodeLegacySnapshotBlob, encodeSnapshotBlobAsync } from '../src/snapshot-format.js';
import { TEST_INTEGRITY, bytes } from './helpers.js';

const DIR = path.join(__dirname, 'fixtures', 'snapshots');
const fixture = (v: number): Buffer => readFileSync(path.join(DIR, `v${v}.bin`));

test('v1 (written by the previous build) is refused as a snapshot, read only as a legacy one', () => {
  const v1 = fixture(1);
  expect(v1[4]).toBe(1);
  expect(() => decodeSnapshotBlob(v1, TEST_INTEGRITY)).toThrow(expect.objectContaining({ code: 'SM_UNSUPPORTED_SNAPSHOT' }));
  const legacy = decodeLegacySnapshotBlob(v1);
  expect(legacy.index).toBe(4);
  expect(legacy.records.map(([k]) => k)).toEqual(expect.arrayContaining(['bcapp/db\u00001', 'msapp/db', 'mtci', 'mrreader', 'mgallowlist']));
  // its checksum is still checked
  const flipped = Buffer.from(v1);
  flipped[20] = (flipped[20] as number) ^ 1;
  expect(() => decodeLegacySnapshotBlob(flipped)).toThrow(expect.objectContaining({ code: 'SM_CORRUPT_SNAPSHOT' }));
});

test('v2 carries the same records under a keyed tag; encoding is stable', () => {
  const legacy = decodeLegacySnapshotBlob(fixture(1));
  const encoded = Buffer.from(encodeSnapshotBlob(legacy.index, legacy.term, legacy.records, TEST_INTEGRITY));
  const file = path.join(DIR, `v${SNAPSHOT_FORMAT_VERSION}.bin`);
  if (!existsSync(file) && process.env['UPDATE_FIXTURES'] === '1') writeFileSync(file, encoded);
  const v2 = fixture(SNAPSHOT_FORMAT_VERSION);
  expect(encoded.equals(v2)).toBe(true);
  expect(v2[4]).toBe(2);
  const decoded = decodeSnapshotBlob(v2, TEST_INTEGRITY);
  expect(decoded).toEqual({ index: legacy.index, term: legacy.term, records: legacy.records });
  // under any other snapshot key it is not authentic
  const other = new Integrity({ record: bytes(32, 101), snapshot: bytes(32, 103) });
  expect(() => decodeSnapshotBlob(v2, other)).toThrow(expect.objectContaining({ code: 'SM_SNAPSHOT_NOT_AUTHENTIC' }));
});

test('the yielding encoder writes the same bytes as the one-go encoder, and lets the event loop through while it works', async () => {
  // About 12 MiB: several yields while copying and while hashing.
  const records: [string, Uint8Array][] = [];
  for (let i = 0; i < 3_000; i++) records.push([`bc/k${String(i).padStart(5, '0')}\u00001`, new Uint8Array(4_096).fill(i & 0xff)]);
  records.push(['mtci', Uint8Array.of(1, 2, 3)]);
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 0);
  const asyncBlob = await encodeSnapshotBlobAsync(7, 3, records, TEST_INTEGRITY);
  clearInterval(ticker);
  expect(Buffer.from(asyncBlob).equals(Buffer.from(encodeSnapshotBlob(7, 3, records, TEST_INTEGRITY)))).toBe(true);
  expect(decodeSnapshotBlob(asyncBlob, TEST_INTEGRITY).records).toHaveLength(records.length);
  expect(ticks).toBeGreaterThan(0);
});
