// The fuzz engine shared by the jest run (fuzz.test.ts) and `pnpm soak:security`
// (scripts/soak-security.mjs): fast-check over random and mutated-valid bytes, one verdict per input.
//
// A target is a decoder that reads outside bytes. For every input it must either return a value
// (which then passes the target's own checks, e.g. a byte-exact round trip through the real
// encoder) or throw the package's typed refusal (StateError, RaftError, ServiceError 4xx, ...).
// Anything else fails the input:
// - any other exception (TypeError, RangeError, a stack overflow, an unhandled rejection);
// - more than `timeoutMs` for one input (slow paths); a real hang is cut by a watchdog: sync
//   targets run their batches inside `vm` with a timeout (V8 TerminateExecution), async inputs
//   race a timer; the input running at that moment is the one reported;
// - heap or ArrayBuffer growth during one input beyond `ALLOC_BASE + ALLOC_PER_BYTE × input
//   length`: a length prefix claiming 4 GiB must be refused before anything that size is
//   allocated (V8 accounts an ArrayBuffer when it is created, touched or not).
//
// jazzer.js does not run on our machines (ENVIRONMENT.md), so there is no coverage feedback.
// Instead, mutations start from valid encodings produced by the real encoders, and targets guarded
// by a checksum or MAC get a `fixup` that re-seals a mutated body, so mutations reach the parser
// behind the check. Inputs whose outcome is new (an error code and message shape not seen before)
// are kept as corpus entries when the soak asks for it; failing inputs always are.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import * as vm from 'node:vm';
import fc from 'fast-check';

/** Which package's decoder a target drives (its corpus lives in that package). */
export type FuzzPackage = 'raft' | 'state' | 'node';

/** One decoder under fuzz. Inputs are always bytes, so every corpus entry is a plain `.bin` file. */
export interface FuzzTarget {
  /** `<package>.<decoder>`, e.g. `raft.messages`; also the corpus directory name. */
  readonly name: string;
  readonly pkg: FuzzPackage;
  /** One line: what is decoded, from whom. */
  readonly what: string;
  /** Valid encodings from the real encoders; mutations start from these. */
  readonly seeds: fc.Arbitrary<Uint8Array>;
  /** Extra generators (e.g. deep JSON nesting); mixed in with random and mutated inputs. */
  readonly extra?: fc.Arbitrary<Uint8Array>;
  /** Re-seals a mutated input so that it passes an integrity check (checksum, MAC). */
  readonly fixup?: (input: Uint8Array) => Uint8Array;
  /** Runs the decoder on one input. May return a promise (then `async` must be true). */
  readonly run: (input: Uint8Array) => unknown;
  readonly async?: boolean;
  /**
   * Whether `err` is the documented refusal. Returns a short outcome label (e.g. the error code)
   * or undefined when the error is a crash.
   */
  readonly refusal: (err: unknown) => string | undefined;
  /** Checks a returned value (round trip, invariants); throws on violation. Returns an outcome label. */
  readonly check?: (input: Uint8Array, out: unknown) => string | void | Promise<string | void>;
  /** Per-input time bound (default 500 ms). */
  readonly timeoutMs?: number;
  /** Largest random input (default 512 bytes). */
  readonly maxRandomBytes?: number;
  /** Inputs in the CI (jest) run when lower than the default (targets that go over HTTP). */
  readonly ciRuns?: number;
  /** Started once before the first input, stopped after the last (servers, temp dirs). */
  readonly setup?: () => Promise<void>;
  readonly teardown?: () => Promise<void>;
}

/** A failing input, ready to be saved as a corpus entry. */
export interface FuzzFailure {
  readonly target: string;
  readonly input: Uint8Array;
  readonly reason: string;
}

/** Result of {@link fuzzTarget}. */
export interface FuzzReport {
  readonly target: string;
  readonly inputs: number;
  readonly seconds: number;
  readonly failures: FuzzFailure[];
  /** Smallest input seen per distinct outcome (for corpus updates). */
  readonly outcomes: Map<string, Uint8Array>;
}

const ALLOC_BASE = 32 * 1024 * 1024;
const ALLOC_PER_BYTE = 64;
const DEFAULT_TIMEOUT_MS = 500;
/** A sync batch that makes no progress for this long is a hang. */
const BATCH_WATCHDOG_MS = 120_000;

class InputFailure extends Error {
  override readonly name = 'InputFailure';
}

/**
 * Fails the current input from a target's check (a broken round trip, a violated invariant).
 *
 * @param msg - what is wrong
 * @throws {InputFailure} always
 */
export function fail(msg: string): never {
  throw new InputFailure(msg);
}

// ---- mutations -----------------------------------------------------------------------------------

const INTERESTING_U8 = [0x00, 0x01, 0x02, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x20, 0x0a, 0x22, 0x5c];
const INTERESTING_U32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
/** LEB128 byte strings: big, overlong, unterminated, 2^53 and beyond (the raft codec's varints). */
const INTERESTING_VARINTS: readonly (readonly number[])[] = [
  [0x80, 0x00],
  [0xff, 0xff, 0xff, 0xff, 0x0f],
  [0x80, 0x80, 0x80, 0x80, 0x10],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
  [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
];
const INTERESTING_U53: readonly (readonly number[])[] = [
  [0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
  [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  [0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
];

/** One mutation, as fast-check generates (and shrinks) it. */
interface Mutation {
  readonly kind: number;
  readonly at: number;
  readonly len: number;
  readonly val: number;
  readonly data: Uint8Array;
}

const MUTATION_KINDS = 13;

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.nat({ max: MUTATION_KINDS - 1 }),
  at: fc.nat(),
  len: fc.nat({ max: 64 }),
  val: fc.nat(),
  data: fc.uint8Array({ maxLength: 24 }),
});

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function overwrite(b: Uint8Array, at: number, bytes: readonly number[] | Uint8Array): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < bytes.length && at + i < out.length; i++) out[at + i] = bytes[i] as number;
  return out;
}

function u32be(v: number): number[] {
  return [(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff];
}

/**
 * Applies one mutation: bit flips, interesting bytes, inserts, deletes, truncation, length
 * fields set to huge/off-by-one values (u32 BE, u53, LEB128), duplicated or repeated ranges, and
 * splices with another valid encoding.
 */
function mutateOnce(b: Uint8Array, m: Mutation, other: Uint8Array): Uint8Array {
  const n = b.length;
  const at = n === 0 ? 0 : m.at % n;
  switch (m.kind) {
    case 0: // flip one bit
      return n === 0 ? b : overwrite(b, at, [(b[at] as number) ^ (1 << (m.val % 8))]);
    case 1: // interesting byte
      return n === 0 ? Uint8Array.of(INTERESTING_U8[m.val % INTERESTING_U8.length] as number) : overwrite(b, at, [INTERESTING_U8[m.val % INTERESTING_U8.length] as number]);
    case 2: // insert bytes
      return concat(b.subarray(0, at), m.data, b.subarray(at));
    case 3: // delete a range
      return concat(b.subarray(0, at), b.subarray(Math.min(n, at + 1 + m.len)));
    case 4: // truncate
      return b.slice(0, at);
    case 5: { // a u32 BE length/count set to something interesting (or to the input size ± k)
      const choices = [...INTERESTING_U32, n, n + 1, n - at, n - at - 4, n - at - 3, m.val];
      const v = (choices[m.val % choices.length] as number) >>> 0;
      return overwrite(b, at, u32be(v));
    }
    case 6: { // a LEB128 varint: big, overlong or unterminated
      const v = INTERESTING_VARINTS[m.val % INTERESTING_VARINTS.length] as readonly number[];
      return m.len % 2 === 0 ? overwrite(b, at, v) : concat(b.subarray(0, at), Uint8Array.from(v), b.subarray(at));
    }
    case 7: { // duplicate a range somewhere else
      const start = n === 0 ? 0 : m.val % n;
      const chunk = b.slice(start, start + 1 + m.len);
      return concat(b.subarray(0, at), chunk, b.subarray(at));
    }
    case 8: { // splice with another valid encoding
      const cut = other.length === 0 ? 0 : m.val % other.length;
      return concat(b.subarray(0, at), other.subarray(cut));
    }
    case 9: // off-by-one on a byte (length fields, tags, version bytes)
      return n === 0 ? b : overwrite(b, at, [((b[at] as number) + (m.val % 2 === 0 ? 1 : 255)) & 0xff]);
    case 10: // a u53 field set to 2^53-1, 2^53, all ones
      return overwrite(b, at, INTERESTING_U53[m.val % INTERESTING_U53.length] as readonly number[]);
    case 11: { // repeat a small chunk many times (growth, deep nesting)
      const chunk = m.data.length > 0 ? m.data.subarray(0, 1 + (m.val % 4)) : b.slice(at, at + 1 + (m.val % 4));
      const times = 8 + (m.len * 64);
      const rep = new Uint8Array(chunk.length * times);
      for (let i = 0; i < times; i++) rep.set(chunk, i * chunk.length);
      return concat(b.subarray(0, at), rep, b.subarray(at));
    }
    default: // overwrite with random bytes
      return overwrite(b, at, m.data);
  }
}

/**
 * Mutated versions of valid encodings: 1–5 stacked mutations, some splicing a second seed in.
 *
 * @param seeds - valid encodings
 * @returns an arbitrary of mutated byte strings
 */
export function mutated(seeds: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(seeds, fc.array(mutationArb, { minLength: 1, maxLength: 5 }), seeds).map(([seed, ms, other]) => {
    let b = seed;
    for (const m of ms) b = mutateOnce(b, m, other);
    return b;
  });
}

/** Random bytes, biased towards the shapes parsers meet (text, JSON punctuation, high bytes). */
function randomBytes(max: number): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.uint8Array({ maxLength: max }) },
    { weight: 1, arbitrary: fc.string({ maxLength: max, unit: 'binary' }).map((s) => new Uint8Array(Buffer.from(s, 'utf8'))) },
    { weight: 1, arbitrary: fc.array(fc.constantFrom(...'{}[]":,0123456789.eE-+ ntrufals\\/%'.split('')), { maxLength: max }).map((a) => new Uint8Array(Buffer.from(a.join(''), 'utf8'))) },
  );
}

/**
 * Every input a target sees: random bytes, valid encodings, mutated valid encodings, and (for
 * sealed formats) mutated encodings re-sealed so that they reach the parser.
 *
 * @param t - the target
 * @returns the input arbitrary
 */
export function inputsOf(t: FuzzTarget): fc.Arbitrary<Uint8Array> {
  const parts: { weight: number; arbitrary: fc.Arbitrary<Uint8Array> }[] = [
    { weight: 2, arbitrary: randomBytes(t.maxRandomBytes ?? 512) },
    { weight: 1, arbitrary: t.seeds },
    { weight: 6, arbitrary: mutated(t.seeds) },
  ];
  if (t.fixup !== undefined) {
    const fix = t.fixup;
    parts.push({ weight: 6, arbitrary: mutated(t.seeds).map((b) => fix(b)) });
  }
  if (t.extra !== undefined) parts.push({ weight: 1, arbitrary: t.extra });
  return fc.oneof(...parts);
}

// ---- one input ---------------------------------------------------------------------------------------

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message.slice(0, 300)}`;
  return `non-error thrown: ${String(err).slice(0, 300)}`;
}

/** Normalises a refusal message into an outcome class (numbers and quoted text do not count). */
export function outcomeClass(label: string): string {
  return label
    .replace(/"[^"]*"/g, '"…"')
    .replace(/\d+/g, '#')
    .slice(0, 120);
}

function heap(): { ext: number; used: number } {
  const h = getHeapStatistics();
  return { ext: h.external_memory, used: h.used_heap_size };
}

function checkAlloc(input: Uint8Array, before: { ext: number; used: number }): void {
  const after = heap();
  const grew = Math.max(0, after.ext - before.ext) + Math.max(0, after.used - before.used);
  const budget = ALLOC_BASE + ALLOC_PER_BYTE * input.length;
  if (grew > budget) throw new InputFailure(`allocated ${grew} bytes for a ${input.length}-byte input (budget ${budget})`);
}

/**
 * Fails a slow input. A run over the limit is timed twice more and the fastest run counts: on a
 * shared machine a niced process can be descheduled for hundreds of ms (a soak run once reported
 * 608 ms for an input that takes 0.06 ms), while a genuinely slow input is slow every time.
 */
async function checkTime(t: FuzzTarget, input: Uint8Array, ms: number): Promise<void> {
  const limit = t.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let best = ms;
  for (let i = 0; i < 2 && best > limit; i++) {
    const t0 = performance.now();
    try {
      await t.run(input);
    } catch {
      // the outcome was judged already; only the time matters here
    }
    best = Math.min(best, performance.now() - t0);
  }
  if (best > limit) throw new InputFailure(`took ${best.toFixed(0)} ms (fastest of 3 runs) for a ${input.length}-byte input (limit ${limit} ms)`);
}

function checkTimeSync(t: FuzzTarget, input: Uint8Array, ms: number): void {
  const limit = t.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let best = ms;
  for (let i = 0; i < 2 && best > limit; i++) {
    const t0 = performance.now();
    try {
      t.run(input);
    } catch {
      // the outcome was judged already; only the time matters here
    }
    best = Math.min(best, performance.now() - t0);
  }
  if (best > limit) throw new InputFailure(`took ${best.toFixed(0)} ms (fastest of 3 runs) for a ${input.length}-byte input (limit ${limit} ms)`);
}

function classify(t: FuzzTarget, err: unknown): string {
  if (err instanceof InputFailure) throw err;
  const label = t.refusal(err);
  if (label === undefined) throw new InputFailure(`crash: ${describe(err)}`);
  return label;
}

/**
 * Runs one input through a synchronous target.
 *
 * @returns the outcome label
 * @throws {InputFailure} on a crash, a failed check, or excessive time or allocation
 */
function runSync(t: FuzzTarget, input: Uint8Array): string {
  const before = heap();
  const t0 = performance.now();
  let label: string;
  let out: unknown;
  let threw = false;
  try {
    out = t.run(input);
  } catch (err) {
    threw = true;
    label = classify(t, err);
  }
  if (!threw) label = checked(t, input, out);
  const ms = performance.now() - t0;
  checkAlloc(input, before);
  checkTimeSync(t, input, ms);
  return label!;
}

/** Runs the target's check on a returned value; anything it throws fails the input. */
function checked(t: FuzzTarget, input: Uint8Array, out: unknown): string {
  try {
    if (t.check === undefined) return typeof out === 'string' ? out : 'ok';
    return (t.check(input, out) as string | void) ?? 'ok';
  } catch (err) {
    if (err instanceof InputFailure) throw err;
    throw new InputFailure(`decoded, but the check failed: ${describe(err)}`);
  }
}

async function runAsync(t: FuzzTarget, input: Uint8Array): Promise<string> {
  const before = heap();
  const t0 = performance.now();
  const limit = t.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new InputFailure(`no answer within ${limit * 4} ms (hang)`)), limit * 4);
  });
  let label: string;
  try {
    let out: unknown;
    let threw = false;
    try {
      out = await Promise.race([Promise.resolve().then(() => t.run(input)), hang]);
    } catch (err) {
      threw = true;
      label = classify(t, err);
    }
    if (!threw) {
      try {
        label = ((await Promise.race([Promise.resolve().then(() => t.check?.(input, out)), hang])) as string | void) ?? 'ok';
      } catch (err) {
        if (err instanceof InputFailure) throw err;
        throw new InputFailure(`decoded, but the check failed: ${describe(err)}`);
      }
    }
  } finally {
    clearTimeout(timer);
  }
  const ms = performance.now() - t0;
  checkAlloc(input, before);
  await checkTime(t, input, ms);
  return label!;
}

/**
 * Replays one input (a corpus entry) and says whether it passes.
 *
 * @param t - the target
 * @param input - the bytes
 * @returns undefined when it passes, otherwise why not
 */
export async function replay(t: FuzzTarget, input: Uint8Array): Promise<string | undefined> {
  try {
    if (t.async === true) await runAsync(t, input);
    else runSync(t, input);
    return undefined;
  } catch (err) {
    return describe(err);
  }
}

// ---- a run ---------------------------------------------------------------------------------------------

/** Options of {@link fuzzTarget}. */
export interface FuzzOptions {
  readonly runs: number;
  readonly seed: number;
  /** Inputs per fast-check run (each run stops at its first failure, then the next one starts). */
  readonly batch?: number;
  /** Called after each batch with the inputs done so far. */
  readonly progress?: (done: number) => void;
  /** Stop starting new batches after this many seconds (the report says how many inputs ran). */
  readonly maxSeconds?: number;
  /** A sync batch making no progress for this long is cut as a hang (default 120 s). */
  readonly watchdogMs?: number;
}

const hangContext = vm.createContext({ job: undefined as (() => unknown) | undefined, result: undefined as unknown });
const hangScript = new vm.Script('result = job()');

/**
 * Runs `runs` inputs through a target and reports every failing input (after shrinking).
 *
 * @param t - the target
 * @param opts - runs, seed, batch size
 * @returns inputs, seconds, failures and one smallest input per outcome class
 */
export async function fuzzTarget(t: FuzzTarget, opts: FuzzOptions): Promise<FuzzReport> {
  const batch = opts.batch ?? 10_000;
  const arb = inputsOf(t);
  const failures: FuzzFailure[] = [];
  const outcomes = new Map<string, Uint8Array>();
  let current: Uint8Array = new Uint8Array(0);
  const note = (label: string, input: Uint8Array): void => {
    const k = outcomeClass(label);
    const prev = outcomes.get(k);
    if (prev === undefined || input.length < prev.length) outcomes.set(k, input);
  };
  const t0 = performance.now();
  let done = 0;
  await t.setup?.();
  try {
    for (let b = 0; done < opts.runs && (opts.maxSeconds === undefined || performance.now() - t0 < opts.maxSeconds * 1000); b++) {
      const numRuns = Math.min(batch, opts.runs - done);
      const seed = (opts.seed + b * 7919) | 0;
      let details: fc.RunDetails<[Uint8Array]>;
      if (t.async === true) {
        details = await fc.check(
          fc.asyncProperty(arb, async (input) => {
            current = input;
            note(await runAsync(t, input), input);
          }),
          { numRuns, seed, endOnFailure: false },
        );
      } else {
        const prop = fc.property(arb, (input) => {
          current = input;
          note(runSync(t, input), input);
        });
        hangContext['job'] = () => fc.check(prop, { numRuns, seed, endOnFailure: false });
        try {
          hangScript.runInContext(hangContext, { timeout: opts.watchdogMs ?? BATCH_WATCHDOG_MS });
        } catch (err) {
          // The watchdog cut a hang: the input running at that moment is the culprit.
          failures.push({ target: t.name, input: current, reason: `hang: no progress for ${opts.watchdogMs ?? BATCH_WATCHDOG_MS} ms (${describe(err)})` });
          done += numRuns;
          continue;
        }
        details = hangContext['result'] as fc.RunDetails<[Uint8Array]>;
      }
      if (details.failed && details.counterexample !== null) {
        const input = details.counterexample[0];
        failures.push({ target: t.name, input, reason: describe(details.errorInstance) });
        // A failing batch stops at its failure; count what it ran (shrinking runs excluded).
        done += Math.min(numRuns, details.numRuns);
      } else if (details.failed) {
        failures.push({ target: t.name, input: current, reason: describe(details.errorInstance) });
        done += numRuns;
      } else {
        done += numRuns;
      }
      opts.progress?.(done);
    }
  } finally {
    await t.teardown?.();
  }
  return { target: t.name, inputs: done, seconds: (performance.now() - t0) / 1000, failures, outcomes };
}

// ---- corpora -------------------------------------------------------------------------------------------

/** Largest corpus entry kept (bytes): corpora stay small. */
export const MAX_CORPUS_ENTRY_BYTES = 4096;
/** Most outcome-class entries kept per target (failures are always kept). */
export const MAX_OUTCOME_ENTRIES = 12;

/**
 * @param root - the repository root
 * @param t - the target
 * @returns `packages/<pkg>/test/fuzz/corpus/<target>`
 */
export function corpusDir(root: string, t: FuzzTarget): string {
  return path.join(root, 'packages', t.pkg, 'test', 'fuzz', 'corpus', t.name);
}

/**
 * @param root - the repository root
 * @param t - the target
 * @returns the corpus entries, sorted by file name
 */
export function readCorpus(root: string, t: FuzzTarget): { file: string; input: Uint8Array }[] {
  const dir = corpusDir(root, t);
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => ({ file: path.join(dir, f), input: new Uint8Array(fs.readFileSync(path.join(dir, f))) }));
}

/**
 * Saves one input under its content hash (idempotent).
 *
 * @returns the file written, or undefined when it already existed
 */
export function saveCorpusEntry(root: string, t: FuzzTarget, input: Uint8Array): string | undefined {
  const dir = corpusDir(root, t);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${createHash('sha256').update(input).digest('hex').slice(0, 16)}.bin`);
  if (fs.existsSync(file)) return undefined;
  fs.writeFileSync(file, input);
  return file;
}
