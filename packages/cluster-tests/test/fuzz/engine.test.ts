// The fuzz engine catches what it promises to catch: a crash, a slow input, a hang, an allocation
// sized by a length prefix, a broken round trip; and lets typed refusals through.
import fc from 'fast-check';
import { fail, fuzzTarget, replay, type FuzzTarget } from './engine.js';

class DecodeError extends Error {}

const base: Omit<FuzzTarget, 'run'> = {
  name: 'test.engine',
  pkg: 'state',
  what: 'engine self-test',
  seeds: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  refusal: (err) => (err instanceof DecodeError ? 'refused' : undefined),
};

const opts = { runs: 200, seed: 42 };

test('typed refusals and clean decodes pass', async () => {
  const r = await fuzzTarget({ ...base, run: (b) => { if (b.length % 2 === 1) throw new DecodeError('odd'); return b.length; } }, opts);
  expect(r.failures).toEqual([]);
  expect(r.inputs).toBe(200);
  expect([...r.outcomes.keys()].sort()).toEqual(['ok', 'refused']);
});

test('an untyped exception is a crash', async () => {
  const r = await fuzzTarget({ ...base, run: (b) => { if (b.length > 3) throw new TypeError('boom'); return 0; } }, opts);
  expect(r.failures.length).toBeGreaterThan(0);
  expect(r.failures[0]?.reason).toMatch(/crash: TypeError: boom/);
  // Shrunk to the smallest failing input.
  expect(r.failures[0]?.input.length).toBe(4);
});

test('an allocation sized by a length prefix fails the input', async () => {
  const run = (b: Uint8Array): number => {
    if (b.length < 4) throw new DecodeError('short');
    const n = new DataView(b.buffer, b.byteOffset, b.length).getUint32(0);
    // Untouched memory: cheap for the machine, but V8 accounts it when it is created.
    return new Uint8Array(Math.min(n, 64 * 1024 * 1024)).length;
  };
  const r = await fuzzTarget({ ...base, seeds: fc.constant(Uint8Array.of(0x7f, 0xff, 0xff, 0xff)), run }, { runs: 3, seed: 42 });
  expect(r.failures.some((f) => /allocated \d+ bytes/.test(f.reason))).toBe(true);
});

test('a slow input fails, an endless loop is cut by the watchdog', async () => {
  const slow = await fuzzTarget({ ...base, timeoutMs: 20, seeds: fc.constant(Uint8Array.of(0x42)), run: (b) => { const until = Date.now() + (b[0] === 0x42 ? 50 : 0); while (Date.now() < until); return 0; } }, { runs: 50, seed: 1 });
  expect(slow.failures.some((f) => /took \d+ ms/.test(f.reason))).toBe(true);
  const endless = await fuzzTarget({ ...base, seeds: fc.constant(Uint8Array.of(0x42)), run: (b) => { while (b[0] === 0x42); return 0; } }, { runs: 50, seed: 1, watchdogMs: 500 });
  expect(endless.failures[0]?.reason).toMatch(/^hang:/);
  expect(endless.failures[0]?.input[0]).toBe(0x42);
});

test('a failed check fails the input, async targets too', async () => {
  const r = await fuzzTarget({ ...base, async: true, run: async (b) => b.length, check: (_b, n) => { if ((n as number) > 8) fail('too long'); } }, opts);
  expect(r.failures[0]?.reason).toMatch(/too long/);
  expect(await replay({ ...base, run: () => 1, check: () => fail('no') }, Uint8Array.of(1))).toMatch(/no/);
});
