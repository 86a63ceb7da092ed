// Record tags are computed without createHmac (hmac.ts), but must stay exactly HMAC-SHA256: a data
// dir written by any earlier build has to check alike, and a tag that differed from the standard
// function would refuse every record of it. Each check compares with node:crypto's createHmac.
import { createHmac } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import * as fc from 'fast-check';
import { Integrity, RECORD_TAG_BYTES } from '../src/index.js';
import { FastHmac } from '../src/hmac.js';
import { CHECK_CHUNK_RECORDS, RecordChecker } from '../src/record-checker.js';
import { bytes } from './helpers.js';

const reference = (key: Uint8Array, ...parts: Uint8Array[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The record tag as integrity.ts defines it: HMAC(key, u32 BE len(utf8 name) || utf8 name || value). */
const referenceRecordTag = (key: Uint8Array, name: string, value: Uint8Array): Buffer => {
  const kb = Buffer.from(name, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(kb.length, 0);
  return reference(key, len, kb, value);
};

describe('FastHmac', () => {
  test('equals createHmac for any key length (short, block-sized, longer than a block) and any message', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.tuple(fc.string({ maxLength: 40 }), fc.uint8Array({ maxLength: 3000 })), { minLength: 1, maxLength: 4 }), (key, messages) => {
        const mac = new FastHmac(key);
        // Several messages through one instance: the scratch space (1 KiB at first) grows and is reused.
        for (const [name, value] of messages) expect(Buffer.from(mac.keyedDigest(name, value), 'latin1')).toEqual(referenceRecordTag(key, name, value));
      }),
      { numRuns: 300 },
    );
  });

  test('keyedDigest is the record tag: length-prefixed UTF-8 name, then the value (non-ASCII names included)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.string({ maxLength: 80, unit: 'grapheme' }), fc.uint8Array({ maxLength: 2500 }), (key, name, value) => {
        expect(Buffer.from(new FastHmac(key).keyedDigest(name, value), 'latin1')).toEqual(referenceRecordTag(key, name, value));
      }),
      { numRuns: 300 },
    );
  });

  test('destroy() zeroes what it holds of the key: later tags are no longer the key\'s', () => {
    const key = bytes(32, 9);
    const mac = new FastHmac(key);
    const before = mac.keyedDigest('ra', bytes(10, 1));
    mac.destroy();
    expect(mac.keyedDigest('ra', bytes(10, 1))).not.toEqual(before);
  });
});

describe('record tags stay HMAC-SHA256', () => {
  const key = bytes(32, 101);
  const records: [string, Uint8Array][] = [
    ['msapp/db', bytes(150, 1)],
    ['b/app/db:1', bytes(2000, 2)],
    ['mtdéploiement-ü', bytes(40, 3)],
    ['ra', new Uint8Array(0)],
  ];

  test('sealRecord appends exactly the reference tag; openRecord accepts a record tagged by the reference', () => {
    const integrity = new Integrity({ record: key, snapshot: bytes(32, 102) });
    for (const [name, value] of records) {
      const sealed = integrity.sealRecord(name, value);
      expect(Buffer.from(sealed.subarray(value.length))).toEqual(referenceRecordTag(key, name, value));
      const stored = Buffer.concat([value, referenceRecordTag(key, name, value)]);
      expect(integrity.openRecord(name, stored)).toEqual(value);
      stored[0] = (stored[0] ?? 0) ^ 1;
      expect(integrity.openRecord(name, stored)).toBeNull();
    }
  });

  test('the boot-time worker accepts reference tags and refuses a flipped byte', async () => {
    const checker = new RecordChecker(Uint8Array.from(key), RECORD_TAG_BYTES);
    try {
      const n = CHECK_CHUNK_RECORDS + 3;
      const batch: [string, Uint8Array][] = [];
      for (let i = 0; i < n; i++) {
        const [name, value] = records[i % records.length] as [string, Uint8Array];
        const stored = Buffer.concat([value, referenceRecordTag(key, `${name}/${i}`, value)]);
        if (i === 5) stored[stored.length - 1] = (stored[stored.length - 1] ?? 0) ^ 1;
        batch.push([`${name}/${i}`, stored]);
      }
      const ok = await checker.check(batch);
      expect(Array.from(ok).filter((x) => x === 0)).toHaveLength(1);
      expect(ok[5]).toBe(0);
    } finally {
      await checker.close();
    }
  });

  test('close() has the worker wipe its key-derived pads and exit by itself (not terminated); checks after it are refused', async () => {
    const terminate = jest.spyOn(Worker.prototype, 'terminate');
    try {
      const checker = new RecordChecker(Uint8Array.from(key), RECORD_TAG_BYTES);
      const [name, value] = records[0] as [string, Uint8Array];
      const ok = await checker.check([[name, Buffer.concat([value, referenceRecordTag(key, name, value)])]]);
      expect(Array.from(ok)).toEqual([1]);
      await checker.close();
      expect(terminate).not.toHaveBeenCalled();
      await expect(checker.check([[name, value]])).rejects.toThrow(/closed/);
    } finally {
      terminate.mockRestore();
    }
  });
});
