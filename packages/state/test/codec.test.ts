import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as fc from 'fast-check';
import {
  BASELINE_COMMAND_VERSIONS,
  COMMAND_TYPE_IDS,
  COMMAND_TYPES,
  SUPPORTED_COMMAND_VERSIONS,
  StateError,
  allVotersSupport,
  decodeCommand,
  decodeCommandVersioned,
  encodeCommand,
  upcast,
  type Command,
} from '../src/index.js';
import { SAMPLES, stepArb } from './helpers.js';
import { Reader, Writer, type LastString } from '../src/bytes.js';

const FIXTURES = path.join(__dirname, 'fixtures', 'commands');

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof StateError ? e.code : `not a StateError: ${String(e)}`;
  }
  return undefined;
}

describe('command codec', () => {
  test.each(COMMAND_TYPES)('%s: sample round-trips exactly', (type) => {
    const cmd = SAMPLES[type];
    const bytes = encodeCommand(cmd);
    expect(bytes[0]).toBe(SUPPORTED_COMMAND_VERSIONS[type]);
    expect(bytes[1]).toBe(COMMAND_TYPE_IDS[type]);
    expect(decodeCommand(bytes)).toEqual(cmd);
    // Deterministic: encoding the decoded command gives the same bytes.
    expect(encodeCommand(decodeCommand(bytes))).toEqual(bytes);
  });

  test('random commands round-trip (property)', () => {
    fc.assert(
      fc.property(stepArb, fc.integer({ min: 1_000_000_000_000, max: 2_000_000_000_000 }), (s, at) => {
        const cmd = s.make(at, () => 2);
        const bytes = encodeCommand(cmd);
        expect(decodeCommand(bytes)).toEqual(cmd);
        expect(encodeCommand(decodeCommand(bytes))).toEqual(bytes);
      }),
      { numRuns: 400 },
    );
  });

  test('type numbers are unique and every type has a supported version', () => {
    const ids = Object.values(COMMAND_TYPE_IDS);
    expect(new Set(ids).size).toBe(ids.length);
    for (const t of COMMAND_TYPES) expect(SUPPORTED_COMMAND_VERSIONS[t]).toBeGreaterThanOrEqual(1);
  });

  test('unknown type, unknown version and corrupt payloads are typed errors', () => {
    const good = encodeCommand(SAMPLES['secret.put']);
    expect(codeOf(() => decodeCommand(Uint8Array.from([1, 250, 0])))).toBe('SM_UNKNOWN_COMMAND');
    expect(codeOf(() => decodeCommand(Uint8Array.from([9, good[1] as number, ...good.subarray(2)])))).toBe('SM_UNSUPPORTED_VERSION');
    expect(codeOf(() => decodeCommand(Uint8Array.from([0, good[1] as number, ...good.subarray(2)])))).toBe('SM_UNSUPPORTED_VERSION');
    expect(codeOf(() => decodeCommand(new Uint8Array([1])))).toBe('SM_CORRUPT_COMMAND');
    expect(codeOf(() => decodeCommand(Uint8Array.from([...good, 0])))).toBe('SM_CORRUPT_COMMAND');
    // Every truncation of every sample fails with a typed error, never a bogus command.
    for (const t of COMMAND_TYPES) {
      const b = encodeCommand(SAMPLES[t]);
      for (let n = 0; n < b.length; n++) expect(codeOf(() => decodeCommand(b.subarray(0, n)))).toMatch(/^SM_(CORRUPT|UNKNOWN)_COMMAND$/);
    }
  });

  test('byte flips decode to an error or to a command that re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom(...COMMAND_TYPES), fc.nat(), fc.integer({ min: 1, max: 255 }), (t, pos, x) => {
        const b = encodeCommand(SAMPLES[t]).slice();
        const i = pos % b.length;
        b[i] = (b[i] as number) ^ x;
        let cmd: Command;
        try {
          cmd = decodeCommand(b);
        } catch (e) {
          expect(e).toBeInstanceOf(StateError);
          return;
        }
        // A flip inside a string or byte field is still a well-formed command: canonical then.
        expect(encodeCommand(cmd)).toEqual(b);
      }),
      { numRuns: 1000 },
    );
  });

  test('the encoder refuses malformed commands before they can be proposed', () => {
    const put = SAMPLES['secret.put'] as Extract<Command, { type: 'secret.put' }>;
    expect(codeOf(() => encodeCommand({ ...put, version: 0 }))).toBe('SM_INVALID_COMMAND');
    expect(codeOf(() => encodeCommand({ ...put, name: 'a\0b' }))).toBe('SM_INVALID_COMMAND');
    expect(codeOf(() => encodeCommand({ ...put, at: -1 }))).toBe('SM_INVALID_COMMAND');
    const tc = SAMPLES['token.create'] as Extract<Command, { type: 'token.create' }>;
    expect(codeOf(() => encodeCommand({ ...tc, tokenHash: new Uint8Array(31) }))).toBe('SM_INVALID_COMMAND');
    expect(codeOf(() => encodeCommand({ type: 'nope', requestId: '', at: 0 } as unknown as Command))).toBe('SM_INVALID_COMMAND');
  });

  test('upgrade gating: a voter without the current version blocks the type', () => {
    const all = { ...SUPPORTED_COMMAND_VERSIONS };
    expect(allVotersSupport('secret.put', [all, all])).toBe(true);
    expect(allVotersSupport('secret.put', [all, { ...all, 'secret.put': 0 }])).toBe(false);
    expect(allVotersSupport('kms.rewrap', [all, {}])).toBe(false);
  });
});

describe('golden fixtures (test/fixtures/commands/<type>.v<N>.bin, only ever added to)', () => {
  // UPDATE_FIXTURES=1 writes fixtures that do not exist yet; it never overwrites one.
  if (process.env['UPDATE_FIXTURES'] === '1') {
    for (const t of COMMAND_TYPES) {
      const file = path.join(FIXTURES, `${t}.v${SUPPORTED_COMMAND_VERSIONS[t]}.bin`);
      if (!existsSync(file)) writeFileSync(file, encodeCommand(SAMPLES[t]));
    }
  }

  test.each(COMMAND_TYPES)('%s: the current version has a fixture that decodes to the sample', (t) => {
    const file = path.join(FIXTURES, `${t}.v${SUPPORTED_COMMAND_VERSIONS[t]}.bin`);
    expect(existsSync(file)).toBe(true);
    const bytes = new Uint8Array(readFileSync(file));
    expect(decodeCommand(bytes)).toEqual(SAMPLES[t]);
    expect(encodeCommand(SAMPLES[t])).toEqual(bytes);
  });

  test('every fixture of every version (old ones included) still decodes and upcasts', () => {
    const files = readdirSync(FIXTURES).filter((f) => f.endsWith('.bin'));
    expect(files.length).toBeGreaterThanOrEqual(COMMAND_TYPES.length);
    for (const f of files) {
      const m = /^(.+)\.v(\d+)\.bin$/.exec(f);
      expect(m).not.toBeNull();
      const [, type, v] = m as RegExpExecArray;
      const decoded = decodeCommandVersioned(new Uint8Array(readFileSync(path.join(FIXTURES, f))));
      expect(decoded.command.type).toBe(type);
      expect(decoded.version).toBe(Number(v));
      expect(upcast(decoded).type).toBe(type);
    }
  });
});

describe('upgrade gating tables', () => {
  test('the baseline is the first release: known types at version 1, never above what this build applies', () => {
    for (const [type, v] of Object.entries(BASELINE_COMMAND_VERSIONS)) {
      expect(COMMAND_TYPES).toContain(type);
      expect(v).toBe(1);
    }
    // A first-release type still at its first version is gated by nothing; a type added since (not in
    // the baseline) waits until every voter advertises it.
    for (const t of COMMAND_TYPES) {
      const inBaseline = Object.hasOwn(BASELINE_COMMAND_VERSIONS, t);
      if (SUPPORTED_COMMAND_VERSIONS[t] === 1 && inBaseline) expect(allVotersSupport(t, [BASELINE_COMMAND_VERSIONS])).toBe(true);
      if (!inBaseline) expect(allVotersSupport(t, [BASELINE_COMMAND_VERSIONS])).toBe(false);
    }
  });

  test('a version newer than a voter advertises is not proposable; an unknown voter table means the baseline', () => {
    const newer = { ...SUPPORTED_COMMAND_VERSIONS, 'secret.put': 2 };
    expect(allVotersSupport('secret.put', [newer, SUPPORTED_COMMAND_VERSIONS])).toBe(true);
    const missing: Partial<Record<string, number>> = { ...SUPPORTED_COMMAND_VERSIONS };
    delete missing['secret.put'];
    expect(allVotersSupport('secret.put', [SUPPORTED_COMMAND_VERSIONS, missing])).toBe(false);
  });
});

describe('Reader', () => {
  test('a string recognised by its bytes is the one those bytes decode to, whatever happens to the buffer it came from', () => {
    const last: LastString = { bytes: null, str: '' };
    const first = Buffer.from(new Writer().str('abc').finish());
    expect(new Reader(first, 'SM_CORRUPT_STORAGE').strLikeLast(last)).toBe('abc');
    first.fill(0); // LevelDB's buffer reused or changed after the record was decoded
    const zeros = Buffer.from(new Writer().str('\0\0\0').finish());
    expect(new Reader(zeros, 'SM_CORRUPT_STORAGE').strLikeLast(last)).toBe('\0\0\0');
    expect(new Reader(Buffer.from(new Writer().str('abd').finish()), 'SM_CORRUPT_STORAGE').strLikeLast(last)).toBe('abd');
    expect(new Reader(Buffer.from(new Writer().str('éé').finish()), 'SM_CORRUPT_STORAGE').strLikeLast(last)).toBe('éé');
    expect(new Reader(Buffer.from(new Writer().str('éé').finish()), 'SM_CORRUPT_STORAGE').strLikeLast(last)).toBe('éé');
  });
});
