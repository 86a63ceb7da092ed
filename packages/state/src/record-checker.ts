// Checks the integrity tags of many stored records on a worker thread, so a large boot decodes on
// the main thread while the next records' tags are checked on the other core. A million secrets
// spent ~4 s in HMAC-SHA256 with one node:crypto createHmac per record (its fixed cost dominated:
// hashing 250 bytes is a fraction of it); the worker now computes the same HMAC as hmac.ts does,
// from two one-shot hashes.
//
// The check is exactly `Integrity.openRecord`: HMAC-SHA256(recordKey, u32 BE len(key) ||
// utf8(key) || value) against the 32 bytes appended to the value, compared in constant time. The
// worker gets a copy of the record key only (never the snapshot key), turns it into HMAC's two
// pad blocks and zeroes the copy at once; `close()` has it zero the pads before it exits.
//
// The worker's source is a string, run with `eval`: the same file then serves the built package
// and the tests (which run the TypeScript sources), with no path to resolve. It needs node:crypto
// and nothing else.
import { Worker } from 'node:worker_threads';

const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { hash, timingSafeEqual } = require('node:crypto');
// HMAC-SHA256 from its definition, as hmac.ts computes it (the record key is 32 bytes: no
// pre-hashing): SHA-256((K ^ opad) || SHA-256((K ^ ipad) || m)), m copied after the inner pad.
let inner = Buffer.alloc(64 + 4096);
const outer = Buffer.alloc(96);
for (let i = 0; i < 64; i++) {
  const k = i < workerData.key.length ? workerData.key[i] : 0;
  inner[i] = k ^ 0x36;
  outer[i] = k ^ 0x5c;
}
workerData.key.fill(0);
const TAG = workerData.tagBytes;
parentPort.on('message', (msg) => {
  if (msg.close === true) {
    // Asked to end: the pad blocks are derived from the key, so wipe them before the thread goes.
    inner.fill(0);
    outer.fill(0);
    parentPort.close();
    return;
  }
  const buf = Buffer.from(msg.buf);
  const n = buf.readUInt32BE(0);
  const ok = new Uint8Array(n);
  let p = 4;
  for (let i = 0; i < n; i++) {
    const ks = p;
    p += 4 + buf.readUInt32BE(p);
    const vl = buf.readUInt32BE(p);
    const vs = p + 4;
    p = vs + vl;
    if (vl < TAG) continue;
    // The packed key (u32 BE length, then its UTF-8) is the MAC's prefix as it stands.
    const kl = vs - 4 - ks;
    const end = 64 + kl + vl - TAG;
    if (end > inner.length) {
      const grown = Buffer.alloc(Math.max(end, inner.length * 2));
      inner.copy(grown, 0, 0, 64);
      inner.fill(0);
      inner = grown;
    }
    buf.copy(inner, 64, ks, vs - 4);
    buf.copy(inner, 64 + kl, vs, p - TAG);
    hash('sha256', inner.subarray(0, end), 'buffer').copy(outer, 64);
    ok[i] = timingSafeEqual(hash('sha256', outer, 'buffer'), buf.subarray(p - TAG, p)) ? 1 : 0;
  }
  parentPort.postMessage({ id: msg.id, ok }, [ok.buffer]);
});
`;

/** How long `close()` waits for the worker to wipe its pads and end before terminating it. */
const CLOSE_WAIT_MS = 2_000;

/** Records checked per message to the worker. */
export const CHECK_CHUNK_RECORDS = 4096;

/**
 * A worker thread that checks record tags. `check` batches in any number; results come back in
 * order of submission. `close()` when done (also after a failure).
 */
export class RecordChecker {
  private readonly worker: Worker;
  private readonly waiting = new Map<number, { resolve: (ok: Uint8Array) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private failure: Error | null = null;
  private readonly exited: Promise<void>;

  /**
   * @internal use `Integrity.recordChecker()`
   * @param recordKey - the record key (copied into the worker; zero your copy)
   * @param tagBytes - bytes of the tag at the end of each stored value
   */
  constructor(recordKey: Uint8Array, tagBytes: number) {
    const key = Uint8Array.from(recordKey);
    // workerData is cloned into the worker by the constructor, before it returns.
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { key, tagBytes } });
    key.fill(0);
    this.worker.on('message', (m: { id: number; ok: Uint8Array }) => {
      const w = this.waiting.get(m.id);
      this.waiting.delete(m.id);
      w?.resolve(m.ok);
    });
    const fail = (e: Error): void => {
      this.failure ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    this.worker.on('error', fail);
    this.exited = new Promise((resolve) => {
      this.worker.on('exit', (code) => {
        fail(new Error(`the record-check worker exited (code ${code})`));
        resolve();
      });
    });
  }

  /**
   * Checks the tags of `records` (values as stored: `value || tag`).
   *
   * @param records - `[key, stored]` pairs
   * @returns one byte per record: 1 when its tag verifies
   */
  check(records: readonly (readonly [string, Uint8Array])[]): Promise<Uint8Array> {
    if (this.failure) return Promise.reject(this.failure);
    let size = 4;
    for (const [k, v] of records) size += 8 + Buffer.byteLength(k, 'utf8') + v.length;
    const buf = Buffer.allocUnsafeSlow(size);
    buf.writeUInt32BE(records.length, 0);
    let p = 4;
    for (const [k, v] of records) {
      const kl = buf.write(k, p + 4, 'utf8');
      buf.writeUInt32BE(kl, p);
      p += 4 + kl;
      buf.writeUInt32BE(v.length, p);
      buf.set(v, p + 4);
      p += 4 + v.length;
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, buf: buf.buffer }, [buf.buffer]);
    });
  }

  /**
   * Ends the worker: it zeroes its key-derived pad blocks and exits (after the chunk it is
   * checking, if any); one that does not within {@link CLOSE_WAIT_MS} is terminated.
   */
  async close(): Promise<void> {
    this.failure ??= new Error('the record checker is closed');
    this.worker.postMessage({ close: true });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CLOSE_WAIT_MS)));
    try {
      if ((await Promise.race([this.exited, late])) === 'late') await this.worker.terminate();
    } finally {
      clearTimeout(timer);
    }
  }
}
