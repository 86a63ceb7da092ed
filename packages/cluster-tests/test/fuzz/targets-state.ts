// Fuzz targets for @coffer/state's decoders: the replicated command codec (log entries from the
// leader), snapshot blobs (InstallSnapshot, `POST /v1/cluster/restore`, the saved snapshot on disk),
// and every record read back from LevelDB (state records, Raft log records, record tags).
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import {
  COMMAND_TYPES,
  Integrity,
  StateError,
  SUPPORTED_COMMAND_VERSIONS,
  decodeCommand,
  decodeCommandVersioned,
  decodeSnapshotBlob,
  encodeCommand,
  encodeSnapshotBlob,
  upcast,
  type Command,
  type DecodedCommand,
  type SnapshotContents,
} from '@coffer/state';
import * as rec from '../../../state/src/records.js';
import { decodeEntry, decodeHardState, decodeSnapMeta, encodeEntry, encodeHardState, encodeSnapMeta } from '../../../state/src/raft-log.js';
import { SAMPLES, sealed } from '../../../state/test/helpers.js';
import { fail, type FuzzTarget } from './engine.js';

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;

function stateRefusal(...codes: string[]): (err: unknown) => string | undefined {
  return (err) => (err instanceof StateError && codes.includes(err.code) ? `${err.code} ${err.message}` : undefined);
}

// ---- commands ------------------------------------------------------------------------------------

const str = fc.oneof(fc.constantFrom('', 'a', 'app/db', '__proto__', 'constructor', 'x'.repeat(300)), fc.string({ maxLength: 16 }));

/** Each sample command with some fields varied (same shape, so the encoder accepts it). */
const commandArb: fc.Arbitrary<Command> = fc
  .tuple(fc.constantFrom(...COMMAND_TYPES), fc.string({ maxLength: 12 }), fc.nat(), fc.dictionary(str, fc.string({ maxLength: 8 }), { maxKeys: 4 }))
  .map(([type, requestId, at, meta]) => {
    const base = { ...SAMPLES[type], requestId, at } as Command;
    if (base.type === 'secret.metadata') {
      const cm: Record<string, string> = {};
      for (const [k, v] of Object.entries(meta)) if (k !== '') Object.defineProperty(cm, k, { value: v, enumerable: true, writable: true, configurable: true });
      return { ...base, customMetadata: cm };
    }
    return base;
  });

/** Log entries carrying commands: what every replica decodes before applying. */
export const stateCommand: FuzzTarget = {
  name: 'state.command',
  pkg: 'state',
  what: 'a replicated command from a log entry (state-machine.ts apply)',
  seeds: commandArb.map((c) => encodeCommand(c)),
  run: (b) => decodeCommandVersioned(b),
  refusal: stateRefusal('SM_UNKNOWN_COMMAND', 'SM_UNSUPPORTED_VERSION', 'SM_CORRUPT_COMMAND'),
  check: (b, out) => {
    const { version, command } = out as DecodedCommand;
    const cmd = upcast({ version, command });
    const again = encodeCommand(cmd);
    if (version === SUPPORTED_COMMAND_VERSIONS[cmd.type]) {
      // The codec's promise: one command, exactly one byte string. Bytes that decode must be the
      // encoding of what they decode to, or two replicas could hold different bytes for one command.
      if (!same(again, b)) fail(`decoded command ${cmd.type} re-encodes to different bytes`);
    } else if (!isDeepStrictEqual(decodeCommand(again), cmd)) {
      // An older version upcasts; its current encoding must decode to the same command.
      fail(`upcast ${cmd.type} v${version} does not survive a round trip in the current version`);
    }
    return `ok ${cmd.type} v${version}`;
  },
};

// ---- snapshots -----------------------------------------------------------------------------------

// NB: the one place that knows the snapshot API. Snapshots are MACed with a key from the cluster's
// integrity root (integrity.ts); the fixup re-tags a mutated body the way the cluster would, so
// mutations reach the record parser behind the tag. If the signature changes again, change it here.
const snapshotIntegrity = new Integrity({ record: new Uint8Array(32).fill(1), snapshot: new Uint8Array(32).fill(2) });
const snapshotCodec = {
  encode: (index: number, term: number, records: [string, Uint8Array][]): Uint8Array => encodeSnapshotBlob(index, term, records, snapshotIntegrity),
  decode: (blob: Uint8Array): SnapshotContents => decodeSnapshotBlob(blob, snapshotIntegrity),
  tag: (body: Uint8Array): Uint8Array => snapshotIntegrity.snapshotTag(body),
};

const recordsArb = fc.array(fc.tuple(str, fc.uint8Array({ maxLength: 40 })), { maxLength: 6 });

/** Snapshot blobs: InstallSnapshot data, restore uploads, the snapshot saved on disk. */
export const stateSnapshot: FuzzTarget = {
  name: 'state.snapshot',
  pkg: 'state',
  what: 'a snapshot blob (InstallSnapshot, POST /v1/cluster/restore, the saved snapshot)',
  seeds: fc.tuple(fc.nat(), fc.nat(), recordsArb).map(([i, t, r]) => snapshotCodec.encode(i, t, r)),
  fixup: (b) => {
    if (b.length < 33) return b;
    const body = b.subarray(0, b.length - 32);
    const out = new Uint8Array(b.length);
    out.set(body);
    out.set(snapshotCodec.tag(body), body.length);
    return out;
  },
  run: (b) => snapshotCodec.decode(b),
  refusal: stateRefusal('SM_CORRUPT_SNAPSHOT', 'SM_UNSUPPORTED_SNAPSHOT', 'SM_SNAPSHOT_NOT_AUTHENTIC'),
  check: (b, out) => {
    const s = out as SnapshotContents;
    const again = snapshotCodec.encode(s.index, s.term, s.records);
    if (!same(again, b)) fail('decoded snapshot re-encodes to different bytes');
    return `ok ${s.records.length === 0 ? 'empty' : 'records'}`;
  },
};

// ---- LevelDB records -------------------------------------------------------------------------------

const u53 = fc.oneof(fc.nat(), fc.constantFrom(0, 2 ** 32, Number.MAX_SAFE_INTEGER));
const optU53 = fc.option(u53, { nil: null });
const optStr = fc.option(str, { nil: null });
const hash32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
/** A version digest as held in memory: 32 byte characters. */
const digest = hash32.map((b) => Buffer.from(b).toString('latin1'));
const format = fc.constantFrom('raw' as const, 'base64' as const, 'userpass' as const, 'kv' as const);
const rotation = fc.option(fc.record({ intervalSecs: u53, graceSecs: u53, target: optStr }), { nil: null });

const versionArb: fc.Arbitrary<rec.VersionMeta> = fc.record({
  version: u53, createdAt: u53, createdBy: str, format, deletedAt: optU53, destroyed: fc.boolean(), formatVersion: fc.nat({ max: 255 }),
  alg: str, kmsKeyId: str, wrapMarker: str, sizeBytes: u53, ctDigest: digest, dekDigest: digest,
});

const secretArb: fc.Arbitrary<rec.SecretRecord> = fc.record({
  name: str, createdAt: u53, updatedAt: u53, currentVersion: u53, maxVersions: u53, casRequired: fc.boolean(), deleteVersionAfterSecs: u53,
  description: optStr, rotation, customMetadata: fc.array(fc.tuple(str, str), { maxLength: 3 }), versions: fc.array(versionArb, { maxLength: 3 }),
});

const resultArb: fc.Arbitrary<rec.CommandResult> = fc
  .record({ status: fc.constantFrom('ok' as const, 'noop' as const, 'not_found' as const, 'cas_conflict' as const, 'invalid_snapshot' as const), version: optU53, createdAt: optU53, count: optU53, currentVersion: optU53 })
  .map(({ status, ...rest }) => {
    const r: rec.CommandResult = { status };
    for (const [k, v] of Object.entries(rest)) if (v !== null) (r as Record<string, unknown>)[k] = v;
    return r;
  });

interface RecordCodec<T> {
  readonly name: string;
  readonly arb: fc.Arbitrary<T>;
  readonly encode: (x: T) => Uint8Array;
  readonly decode: (b: Uint8Array) => T;
}

function codec<T>(name: string, arb: fc.Arbitrary<T>, encode: (x: T) => Uint8Array, decode: (b: Uint8Array) => T): RecordCodec<unknown> {
  return { name, arb, encode, decode } as RecordCodec<unknown>;
}

const RECORD_CODECS: readonly RecordCodec<unknown>[] = [
  codec('secret', secretArb, rec.encodeSecret, rec.decodeSecret),
  codec('token', fc.record({ name: str, role: str, tokenHash: hash32, createdAt: u53, createdBy: str, expiresAt: optU53, revokedAt: optU53, rotatedAt: optU53 }), rec.encodeToken, rec.decodeToken),
  codec('role', fc.record({ name: str, rules: fc.array(fc.record({ paths: fc.array(str, { maxLength: 3 }), actions: fc.array(str, { maxLength: 3 }) }), { maxLength: 3 }), rateLimit: optStr, updatedAt: u53, maxTtlSecs: optU53 }), rec.encodeRole, rec.decodeRole),
  codec('lockout', fc.record({ ip: str, failures: fc.array(u53, { maxLength: 5 }) }), rec.encodeLockout, rec.decodeLockout),
  codec('member', fc.record({ id: str, raftAddr: str, apiAddr: str, updatedAt: u53 }), rec.encodeMember, rec.decodeMember),
  codec('allowlist', fc.record({ cidrs: fc.array(str, { maxLength: 4 }), updatedAt: u53 }), rec.encodeAllowlist, rec.decodeAllowlist),
  codec('bootstrap', fc.record({ tokenHash: hash32, at: u53 }), rec.encodeBootstrap, rec.decodeBootstrap),
  codec('watermark', fc.record({ marker: str, passStartedAt: optU53, passFinishedAt: optU53, rewrapped: u53, failed: u53, updatedAt: u53 }), rec.encodeWatermark, rec.decodeWatermark),
  codec('number', u53, rec.encodeNumber, rec.decodeNumber),
  codec('dedup', fc.record({ requestId: str, result: resultArb }), (x) => rec.encodeDedup(x.requestId, x.result), rec.decodeDedup),
  codec('applied', fc.record({ index: u53, term: u53 }), (x) => rec.encodeApplied(x.index, x.term), rec.decodeApplied),
  codec(
    'ct',
    // The fields a ciphertext record holds (the key id lives in the version record).
    fc.nat({ max: 40 }).map((n) => {
      const { formatVersion, alg, nonce, ciphertext, wrappedDek } = sealed(n);
      return { formatVersion, alg, nonce, ciphertext, wrappedDek };
    }),
    (s) => rec.encodeCt(s.formatVersion, s.alg, s.nonce, s.ciphertext, s.wrappedDek),
    (b) => rec.decodeCt(b),
  ),
  codec('raft-entry', fc.record({ index: fc.constant(7), term: u53, type: fc.constantFrom('normal' as const, 'confChange' as const), data: fc.uint8Array({ maxLength: 40 }) }), encodeEntry, (b) => decodeEntry(7, b)),
  codec('raft-hard-state', fc.record({ term: u53, vote: optStr, commit: u53 }), encodeHardState, decodeHardState),
  codec('raft-snap-meta', fc.record({ index: u53, term: u53, confState: fc.record({ voters: fc.array(str, { maxLength: 3 }), learners: fc.array(str, { maxLength: 3 }) }) }), encodeSnapMeta, decodeSnapMeta),
  // Appended, never inserted: a corpus entry's first byte names its record type by position.
  codec(
    'snapshot-schedule',
    fc.record({
      slotAt: u53, nodeId: str, claimedAt: u53, state: fc.constantFrom('claimed' as const, 'done' as const, 'failed' as const), lastSuccessAt: optU53, lastSlotAt: optU53,
      lastIndex: u53, lastSizeBytes: u53, lastNodeId: optStr, lastError: optStr, lastErrorAt: optU53, failures: u53,
    }),
    rec.encodeSnapshotSchedule,
    rec.decodeSnapshotSchedule,
  ),
];

/**
 * Every record decoder, one target: the first input byte picks the record type, the rest is the
 * record. (One target per decoder would multiply soak time for near-identical readers.)
 */
export const stateRecords: FuzzTarget = {
  name: 'state.records',
  pkg: 'state',
  what: 'every LevelDB record decoder (records.ts decode*, raft-log.ts), picked by the first byte',
  seeds: fc.nat({ max: RECORD_CODECS.length - 1 }).chain((i) => {
    const c = RECORD_CODECS[i] as RecordCodec<unknown>;
    return c.arb.map((x) => {
      const body = c.encode(x);
      const out = new Uint8Array(body.length + 1);
      out[0] = i;
      out.set(body, 1);
      return out;
    });
  }),
  run: (b) => {
    if (b.length === 0) return undefined;
    const c = RECORD_CODECS[(b[0] as number) % RECORD_CODECS.length] as RecordCodec<unknown>;
    return { c, value: c.decode(b.subarray(1)) };
  },
  refusal: stateRefusal('SM_CORRUPT_STORAGE'),
  check: (b, out) => {
    if (out === undefined) return 'empty';
    const { c, value } = out as { c: RecordCodec<unknown>; value: unknown };
    // Records are canonical: what decodes re-encodes to the same bytes (the state digest and record
    // tags are computed over these bytes) — except a record in an older layout (e.g. a role written
    // before a field was appended), which re-encodes in the current one and must keep its meaning.
    const again = c.encode(value);
    if (!same(again, b.subarray(1)) && !isDeepStrictEqual(c.decode(again), value)) fail(`${c.name} record does not survive a round trip`);
    return `ok ${c.name}`;
  },
};

// ---- record tags -------------------------------------------------------------------------------------

const tagIntegrity = new Integrity({ record: new Uint8Array(32).fill(3), snapshot: new Uint8Array(32).fill(4) });

/** Record tags: a stored value with a tampered, truncated or missing tag is refused (null), never a crash. */
export const stateRecordTag: FuzzTarget = {
  name: 'state.record-tag',
  pkg: 'state',
  what: 'the integrity tag of every stored record (integrity.ts openRecord)',
  seeds: fc.tuple(str, fc.uint8Array({ maxLength: 64 })).map(([k, v]) => {
    const key = Buffer.from(k, 'utf8');
    const sealedValue = tagIntegrity.sealRecord(k, v);
    const out = new Uint8Array(4 + key.length + sealedValue.length);
    new DataView(out.buffer).setUint32(0, key.length);
    out.set(key, 4);
    out.set(sealedValue, 4 + key.length);
    return out;
  }),
  run: (b) => {
    if (b.length < 4) return null;
    const n = Math.min(new DataView(b.buffer, b.byteOffset, b.length).getUint32(0), b.length - 4);
    const key = Buffer.from(b.subarray(4, 4 + n)).toString('utf8');
    return tagIntegrity.openRecord(key, b.subarray(4 + n));
  },
  refusal: () => undefined,
  check: (b, out) => {
    if (out === null) return 'refused';
    if (!(out instanceof Uint8Array)) fail('openRecord returned neither null nor bytes');
    return 'authentic';
  },
};

export const STATE_TARGETS: readonly FuzzTarget[] = [stateCommand, stateSnapshot, stateRecords, stateRecordTag];
