// Snapshot blob format (version 2):
//
//   "CFSN" | u8 formatVersion | u53 appliedIndex | u53 appliedTerm | u32 recordCount
//   | recordCount × ([str key][bytes value]) | HMAC-SHA256(snapshotKey, everything before) (32 bytes)
//
// The records are the state machine's records (metadata and sealed blobs) without their on-disk
// tags, so a snapshot produced from LevelDB and one produced from memory are interchangeable. The
// tag is keyed (the snapshot key is derived from the cluster's integrity root, which no disk or
// backup holds): an edited snapshot, or one from a cluster with another key, is refused before
// anything is replaced. Raft's own snapshots (InstallSnapshot, the one saved on disk) use the same
// format; every member derives the same key.
//
// Version 1 ended with an unkeyed sha256: anyone could edit it and recompute the checksum. It is
// never accepted by `decodeSnapshotBlob`; `decodeLegacySnapshotBlob` reads it only for the one-time
// adoption of a data dir written before version 2 (node-store.ts), never for a restore.
// NB: node:crypto rather than @noble/hashes: a 100k-secret snapshot is tens of MiB and OpenSSL's
// SHA-256/HMAC is several times faster than the pure-JS one (restore must take < 3 s).
import { createHash } from 'node:crypto';
import { Reader, Writer, bytesEqual } from './bytes.js';
import { StateError } from './errors.js';
import type { Integrity } from './integrity.js';

const MAGIC = new Uint8Array([0x43, 0x46, 0x53, 0x4e]); // "CFSN"

/** The snapshot blob format version this build writes (and the newest it reads). */
export const SNAPSHOT_FORMAT_VERSION = 2;

/** The unauthenticated format written before version 2 (read only to adopt an old data dir). */
export const LEGACY_SNAPSHOT_FORMAT_VERSION = 1;

/** A decoded snapshot: the applied position it captures and its records (values view the blob). */
export type SnapshotContents = { index: number; term: number; records: [string, Uint8Array][] };

/**
 * Serialises records into a versioned, authenticated snapshot blob.
 *
 * @param index - applied index the records reflect
 * @param term - term of that entry
 * @param records - state records (key, value without its on-disk tag)
 * @param integrity - the cluster's integrity keys (the snapshot key MACs the blob)
 * @returns the blob
 */
export function encodeSnapshotBlob(index: number, term: number, records: Iterable<readonly [string, Uint8Array]>, integrity: Integrity): Uint8Array {
  const list = Array.isArray(records) ? (records as readonly (readonly [string, Uint8Array])[]) : [...records];
  const blob = startBlob(index, term, list);
  for (const [k, v] of list) blob.pos = putRecord(blob.out, blob.pos, k, v);
  const { out, pos } = blob;
  out.set(integrity.snapshotTag(out.subarray(0, pos)), pos);
  return new Uint8Array(out.buffer, out.byteOffset, pos + 32);
}

/**
 * A blob buffer sized exactly for `records` (a 100k-secret snapshot is tens of MiB, and growing and
 * copying a buffer that size, then copying it once more to append the tag, dominated the time),
 * with its magic and header written.
 */
function startBlob(index: number, term: number, records: readonly (readonly [string, Uint8Array])[]): { out: Buffer; pos: number } {
  let size = 4 + 1 + 8 + 8 + 4 + 32;
  for (const [k, v] of records) size += 8 + Buffer.byteLength(k) + v.length;
  const out = Buffer.allocUnsafe(size);
  out.set(MAGIC, 0);
  const head = new Writer(32).u8(SNAPSHOT_FORMAT_VERSION).u53(index).u53(term).u32(records.length).finish();
  out.set(head, 4);
  return { out, pos: 4 + head.length };
}

/** Writes one record (`u32 len | key | u32 len | value`) at `pos`; returns the position after it. */
function putRecord(out: Buffer, pos: number, k: string, v: Uint8Array): number {
  const klen = out.write(k, pos + 4, 'utf8');
  out.writeUInt32BE(klen, pos);
  out.writeUInt32BE(v.length, pos + 4 + klen);
  out.set(v, pos + 8 + klen);
  return pos + 8 + klen + v.length;
}

/** Bytes copied or hashed between two yields of {@link encodeSnapshotBlobAsync}. */
const YIELD_BYTES = 4 * 1024 * 1024;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The same bytes as {@link encodeSnapshotBlob}, built in slices of about 4 MiB with the event loop
 * let through between them. A node builds its snapshot while it serves: a state of 100,000 1 KiB
 * secrets is a 100+ MiB blob, whose copy and HMAC in one go held a loaded leader's loop for over an
 * election timeout, and its followers elected another leader.
 *
 * @param index - applied index the records are at
 * @param term - its term
 * @param records - every state record (key, value), in key order
 * @param integrity - the cluster's integrity keys (the snapshot tag)
 * @returns the blob
 */
export async function encodeSnapshotBlobAsync(index: number, term: number, records: readonly (readonly [string, Uint8Array])[], integrity: Integrity): Promise<Uint8Array> {
  const blob = startBlob(index, term, records);
  const out = blob.out;
  let pos = blob.pos;
  let yieldAt = pos + YIELD_BYTES;
  for (const [k, v] of records) {
    pos = putRecord(out, pos, k, v);
    if (pos >= yieldAt) {
      yieldAt = pos + YIELD_BYTES;
      await yieldToLoop();
    }
  }
  const body = out.subarray(0, pos);
  const mac = integrity.snapshotHmac();
  for (let at = 0; at < body.length; at += YIELD_BYTES) {
    mac.update(body.subarray(at, Math.min(body.length, at + YIELD_BYTES)));
    if (at + YIELD_BYTES < body.length) await yieldToLoop();
  }
  out.set(mac.digest(), pos);
  return new Uint8Array(out.buffer, out.byteOffset, pos + 32);
}

/**
 * Verifies and decodes a snapshot blob: its tag must be the one this cluster's snapshot key gives.
 *
 * @param blob - bytes from `encodeSnapshotBlob` (or `createSnapshot`)
 * @param integrity - the cluster's integrity keys
 * @returns index, term and records
 * @throws {SM_CORRUPT_SNAPSHOT} bad magic, truncation, malformed records
 * @throws {SM_SNAPSHOT_NOT_AUTHENTIC} the tag does not verify: the blob was edited, or was made by
 *   a cluster with another key
 * @throws {SM_UNSUPPORTED_SNAPSHOT} a format version this build does not accept (including the
 *   unauthenticated version 1)
 */
export function decodeSnapshotBlob(blob: Uint8Array, integrity: Integrity): SnapshotContents {
  const version = checkHeader(blob);
  if (version === LEGACY_SNAPSHOT_FORMAT_VERSION) {
    throw new StateError(
      'SM_UNSUPPORTED_SNAPSHOT',
      'snapshot format v1 is not authenticated (it was written before snapshots were MACed) and cannot be restored; take a new snapshot with this version',
    );
  }
  if (version !== SNAPSHOT_FORMAT_VERSION) {
    throw new StateError('SM_UNSUPPORTED_SNAPSHOT', `snapshot format v${version} is not supported (this build reads v${SNAPSHOT_FORMAT_VERSION})`);
  }
  const body = blob.subarray(0, blob.length - 32);
  if (!integrity.verifySnapshotTag(body, blob.subarray(blob.length - 32))) {
    throw new StateError('SM_SNAPSHOT_NOT_AUTHENTIC', 'the snapshot is not authentic: it was edited or comes from a cluster with another key');
  }
  return decodeBody(body);
}

/**
 * Decodes a version-1 (unauthenticated, sha256-checksummed) snapshot blob. Only for adopting a data
 * dir written before version 2, whose own saved Raft snapshot is in that format: never use it on
 * a blob that came from outside the data dir.
 *
 * @internal
 * @param blob - a version-1 blob
 * @returns index, term and records
 * @throws {SM_CORRUPT_SNAPSHOT} bad magic, checksum mismatch, truncation
 * @throws {SM_UNSUPPORTED_SNAPSHOT} not version 1
 */
export function decodeLegacySnapshotBlob(blob: Uint8Array): SnapshotContents {
  const version = checkHeader(blob);
  if (version !== LEGACY_SNAPSHOT_FORMAT_VERSION) throw new StateError('SM_UNSUPPORTED_SNAPSHOT', `expected a v1 snapshot, found v${version}`);
  const body = blob.subarray(0, blob.length - 32);
  if (!bytesEqual(createHash('sha256').update(body).digest(), blob.subarray(blob.length - 32))) {
    throw new StateError('SM_CORRUPT_SNAPSHOT', 'snapshot checksum mismatch');
  }
  return decodeBody(body);
}

/**
 * @param blob - any bytes
 * @returns the snapshot format version byte (the blob is at least long enough for a tag)
 * @throws {SM_CORRUPT_SNAPSHOT} not a Coffer snapshot
 */
export function snapshotFormatVersion(blob: Uint8Array): number {
  return checkHeader(blob);
}

function checkHeader(blob: Uint8Array): number {
  if (blob.length < MAGIC.length + 1 + 32 || !bytesEqual(blob.subarray(0, 4), MAGIC)) {
    throw new StateError('SM_CORRUPT_SNAPSHOT', 'not a Coffer snapshot (bad magic or too short)');
  }
  return blob[4] as number;
}

function decodeBody(body: Uint8Array): SnapshotContents {
  const r = new Reader(body.subarray(5), 'SM_CORRUPT_SNAPSHOT');
  const index = r.u53();
  const term = r.u53();
  const n = r.u32();
  if (n > r.remaining / 8) r.fail('record count exceeds input');
  const records: [string, Uint8Array][] = [];
  // Values are views into the blob (no copy): the caller holds the blob while it restores.
  for (let i = 0; i < n; i++) records.push([r.str(), r.bytesView()]);
  r.end();
  return { index, term, records };
}
