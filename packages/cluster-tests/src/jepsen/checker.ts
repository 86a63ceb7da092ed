/**
 * Linearizability checker for histories of secret operations.
 *
 * The model is one register per secret name holding `absent` or `(version, value)`, with Coffer's
 * semantics (packages/state/src/state-machine.ts):
 *   - write (no cas): creates version current + 1 (1 when absent) and answers with that version;
 *   - cas n: applies only when the current version is n (0 = absent), creating version n + 1;
 *     a refused cas (409) did not happen;
 *   - delete (`DELETE /v1/secrets/{name}`, secret.destroyAll): erases every version and the
 *     metadata — the name is absent again and the next write creates version 1; on an absent name
 *     it answers 404 (applied through the log, so it is an observation of `absent`);
 *   - read: the current `(version, value)`, or not found.
 *
 * Operations on different names commute, so the history is split per name and each part is checked
 * on its own (P-compositionality). Each part is searched with the Wing–Gong algorithm with Lowe's
 * memoisation, as in Porcupine: walk the time-ordered call/return entries, linearize a pending
 * call whenever the model allows, backtrack when a return is reached whose call could not be
 * placed, and never revisit a (set of linearized operations, model state) pair.
 *
 * Operations with an unknown outcome may or may not have happened, at any time after their
 * invocation: they have no return entry and are optional. Unknown reads say nothing and are
 * dropped, as are failed operations. Unknown operations that no read can tell apart are
 * interchangeable once invoked — plain writes whose value no read returned, check-and-sets with the
 * same expected version whose value no read returned, and deletes — so the memo counts them per
 * group instead of naming them (otherwise a burst of timeouts makes the search exponential); every
 * other operation is tracked by identity.
 *
 * A failing name is narrowed to the smallest failing sub-history found: the shortest failing
 * prefix in time (binary search; a prefix of a linearizable history is linearizable), then greedy
 * removal of single operations while the rest still fails.
 */
import type { Op } from './history.js';
import { describeOps } from './history.js';

/** Verdict for one secret name. */
export interface KeyVerdict {
  key: string;
  /** `ok` linearizable; `violation` no linearization exists; `unknown` the search budget ran out. */
  result: 'ok' | 'violation' | 'unknown';
  /** Operations of this name that the search considered (ok + unknown). */
  ops: number;
  /** Search steps taken. */
  steps: number;
}

/** A non-linearizable name with the smallest failing sub-history found. */
export interface Violation {
  key: string;
  /** Operations of the smallest failing sub-history found (as recorded). */
  ops: Op[];
  /** The same, one line per op, for reading. */
  text: string;
}

/** Result of {@link checkHistory}. */
export interface Verdict {
  /** True only when every name is linearizable (no violation and no exhausted budget). */
  valid: boolean;
  keys: KeyVerdict[];
  violations: Violation[];
  /** Names whose search ran out of budget (neither proven nor refuted). */
  undecided: string[];
}

/** Limits of the search. */
export interface CheckOptions {
  /** Steps per name before giving up with `unknown` (default 2,000,000). */
  maxSteps?: number;
  /** Time budget for narrowing one violation, in ms (default 5,000). */
  minimizeMs?: number;
}

type State = { version: number; value: string } | null;
const INVALID = Symbol('invalid');
/** Value of a write no read ever returned: such values are never compared, only counted. */
const HIDDEN = '\u0000hidden';

interface Prepared {
  op: Op;
  /** false: optional (unknown outcome). */
  required: boolean;
  /** Index into the identity bitset, or -1 for interchangeable unknown ops (see `group`). */
  bit: number;
  /** Group of interchangeable unknown ops (index into the count array), or -1. */
  group: number;
  /** Value as the model stores it (HIDDEN for values no read returned). */
  value: string | null;
}

interface Entry {
  prep: number;
  call: boolean;
  time: number;
  prev: Entry | null;
  next: Entry | null;
  match: Entry | null;
}

function step(state: State, p: Prepared): State | typeof INVALID {
  const o = p.op;
  const cur = state === null ? 0 : state.version;
  switch (o.kind) {
    case 'read': {
      const r = o.result;
      if (r === undefined) return INVALID;
      if (r.version === null) return state === null ? state : INVALID;
      return state !== null && state.version === r.version && state.value === r.value ? state : INVALID;
    }
    case 'write': {
      if (p.required && o.result?.version !== undefined && o.result.version !== null && o.result.version !== cur + 1) return INVALID;
      return { version: cur + 1, value: p.value ?? '' };
    }
    case 'cas': {
      if (o.expectVersion === undefined || o.expectVersion !== cur) return INVALID;
      if (p.required && o.result?.version !== undefined && o.result.version !== null && o.result.version !== cur + 1) return INVALID;
      return { version: cur + 1, value: p.value ?? '' };
    }
    case 'delete': {
      if (p.required && o.result?.existed === true && state === null) return INVALID;
      if (p.required && o.result?.existed === false && state !== null) return INVALID;
      return null;
    }
  }
}

function stateKey(s: State): string {
  return s === null ? '-' : `${s.version}:${s.value}`;
}

/** Prepares one name's ops: drops failed ops and unknown reads; marks optional and hidden ones. */
function prepare(ops: readonly Op[]): Prepared[] {
  const observed = new Set<string>();
  for (const o of ops) if (o.kind === 'read' && o.outcome === 'ok' && o.result?.value != null) observed.add(o.result.value);
  const out: Prepared[] = [];
  const groups = new Map<string, number>();
  let bits = 0;
  for (const op of ops) {
    if (op.outcome === 'fail') continue;
    if (op.outcome === 'unknown' && op.kind === 'read') continue;
    const required = op.outcome === 'ok';
    const writes = op.kind === 'write' || op.kind === 'cas';
    const value = writes ? (op.value !== undefined && observed.has(op.value) ? op.value : HIDDEN) : null;
    let sig: string | null = null;
    if (!required && op.kind === 'delete') sig = 'd';
    else if (!required && value === HIDDEN) sig = op.kind === 'write' ? 'w' : `c${op.expectVersion ?? '?'}`;
    let group = -1;
    if (sig !== null) {
      group = groups.get(sig) ?? groups.size;
      groups.set(sig, group);
    }
    out.push({ op, required, bit: group >= 0 ? -1 : bits++, group, value });
  }
  return out;
}

/** Search result of one name. */
interface SearchResult {
  result: 'ok' | 'violation' | 'unknown';
  steps: number;
}

function search(preps: readonly Prepared[], maxSteps: number): SearchResult {
  const entries: Entry[] = [];
  for (let i = 0; i < preps.length; i++) {
    const p = preps[i] as Prepared;
    const call: Entry = { prep: i, call: true, time: p.op.invokeMs, prev: null, next: null, match: null };
    entries.push(call);
    if (p.required) {
      const ret: Entry = { prep: i, call: false, time: p.op.completeMs ?? Number.POSITIVE_INFINITY, prev: null, next: null, match: null };
      call.match = ret;
      entries.push(ret);
    }
  }
  // Calls before returns at equal times: touching intervals count as concurrent (never a false alarm).
  entries.sort((a, b) => a.time - b.time || (a.call === b.call ? 0 : a.call ? -1 : 1));
  const head: Entry = { prep: -1, call: true, time: Number.NEGATIVE_INFINITY, prev: null, next: null, match: null };
  let prev = head;
  for (const e of entries) {
    prev.next = e;
    e.prev = prev;
    prev = e;
  }
  let remaining = preps.filter((p) => p.required).length;
  const nBits = preps.reduce((m, p) => Math.max(m, p.bit + 1), 0);
  const bitset = new Uint32Array(Math.max(1, Math.ceil(nBits / 32)));
  const nGroups = preps.reduce((m, p) => Math.max(m, p.group + 1), 0);
  const counts = new Int32Array(nGroups);
  const memo = new Set<string>();
  const stack: { entry: Entry; state: State }[] = [];
  let state: State = null;
  let entry: Entry | null = head.next;
  let steps = 0;

  const lift = (e: Entry): void => {
    (e.prev as Entry).next = e.next;
    if (e.next !== null) e.next.prev = e.prev;
    const m = e.match;
    if (m !== null) {
      (m.prev as Entry).next = m.next;
      if (m.next !== null) m.next.prev = m.prev;
    }
  };
  const unlift = (e: Entry): void => {
    const m = e.match;
    if (m !== null) {
      (m.prev as Entry).next = m;
      if (m.next !== null) m.next.prev = m;
    }
    (e.prev as Entry).next = e;
    if (e.next !== null) e.next.prev = e;
  };
  const mark = (p: Prepared, on: boolean): void => {
    if (p.group >= 0) {
      counts[p.group] = (counts[p.group] as number) + (on ? 1 : -1);
      return;
    }
    const w = p.bit >>> 5;
    bitset[w] = (bitset[w] as number) ^ (1 << (p.bit & 31));
  };
  const memoKey = (s: State): string => {
    let k = '';
    for (let i = 0; i < bitset.length; i++) k += (bitset[i] as number).toString(36) + ',';
    k += '|';
    for (let i = 0; i < counts.length; i++) k += `${counts[i] as number},`;
    return `${k}|${stateKey(s)}`;
  };

  while (remaining > 0) {
    if (++steps > maxSteps) return { result: 'unknown', steps };
    if (entry === null) return { result: 'violation', steps }; // unreachable: a required return is always ahead
    if (entry.call) {
      const p = preps[entry.prep] as Prepared;
      const next = step(state, p);
      if (next !== INVALID) {
        mark(p, true);
        const k = memoKey(next);
        if (!memo.has(k)) {
          memo.add(k);
          stack.push({ entry, state });
          state = next;
          lift(entry);
          if (p.required) remaining--;
          entry = head.next;
          continue;
        }
        mark(p, false);
      }
      entry = entry.next;
    } else {
      // A return whose call could not be placed before it: undo the last choice.
      const top = stack.pop();
      if (top === undefined) return { result: 'violation', steps };
      const p = preps[top.entry.prep] as Prepared;
      state = top.state;
      mark(p, false);
      unlift(top.entry);
      if (p.required) remaining++;
      entry = top.entry.next;
    }
  }
  return { result: 'ok', steps };
}

function checkOps(ops: readonly Op[], maxSteps: number): SearchResult {
  return search(prepare(ops), maxSteps);
}

/** The ops as a client would have seen them at time `t`: later completions become unknown. */
function prefixAt(ops: readonly Op[], t: number): Op[] {
  const out: Op[] = [];
  for (const o of ops) {
    if (o.invokeMs > t) continue;
    if (o.completeMs !== null && o.completeMs <= t) out.push(o);
    else if (o.outcome !== 'fail') {
      const { result: _r, ...rest } = o;
      out.push({ ...rest, outcome: 'unknown', completeMs: null });
    }
  }
  return out;
}

function minimize(ops: readonly Op[], maxSteps: number, budgetMs: number): Op[] {
  const deadline = Date.now() + budgetMs;
  const fails = (h: readonly Op[]): boolean => checkOps(h, maxSteps).result === 'violation';
  // 1. The earliest completion time at which the history already fails.
  const times = [...new Set(ops.filter((o) => o.completeMs !== null).map((o) => o.completeMs as number))].sort((a, b) => a - b);
  let lo = 0;
  let hi = times.length - 1;
  let cur: Op[] = [...ops];
  while (lo < hi && Date.now() < deadline) {
    const mid = (lo + hi) >>> 1;
    if (fails(prefixAt(ops, times[mid] as number))) hi = mid;
    else lo = mid + 1;
  }
  if (times.length > 0) {
    const p = prefixAt(ops, times[hi] as number);
    if (fails(p)) cur = p;
  }
  // 2. Greedy removal of single operations, newest first.
  for (let i = cur.length - 1; i >= 0 && Date.now() < deadline; i--) {
    const without = cur.slice(0, i).concat(cur.slice(i + 1));
    if (fails(without)) cur = without;
  }
  // Ops still in flight at the cut-off appear as `unknown`: that is how the prefix saw them.
  return cur;
}

/**
 * Checks a whole history, name by name.
 *
 * @param ops - every operation of a run (any order)
 * @param opts - search limits
 * @returns per-name results and, for each failing name, the smallest failing sub-history found
 */
export function checkHistory(ops: readonly Op[], opts: CheckOptions = {}): Verdict {
  const maxSteps = opts.maxSteps ?? 2_000_000;
  const byKey = new Map<string, Op[]>();
  for (const o of ops) {
    let l = byKey.get(o.key);
    if (l === undefined) byKey.set(o.key, (l = []));
    l.push(o);
  }
  const keys: KeyVerdict[] = [];
  const violations: Violation[] = [];
  const undecided: string[] = [];
  for (const key of [...byKey.keys()].sort()) {
    const kops = byKey.get(key) as Op[];
    const preps = prepare(kops);
    const r = search(preps, maxSteps);
    keys.push({ key, result: r.result, ops: preps.length, steps: r.steps });
    if (r.result === 'unknown') undecided.push(key);
    if (r.result === 'violation') {
      const small = minimize(kops, maxSteps, opts.minimizeMs ?? 5_000);
      violations.push({ key, ops: small, text: describeOps(small) });
    }
  }
  return { valid: violations.length === 0 && undecided.length === 0, keys, violations, undecided };
}

/**
 * A one-paragraph account of a verdict.
 *
 * @param v - the verdict
 * @returns human-readable text
 */
export function describeVerdict(v: Verdict): string {
  const lines = [`${v.valid ? 'linearizable' : 'NOT linearizable'}: ${v.keys.length} names, ${v.violations.length} violations, ${v.undecided.length} undecided`];
  for (const x of v.violations) lines.push(`violation on ${x.key} (smallest failing sub-history, ${x.ops.length} ops):\n${x.text}`);
  for (const k of v.undecided) lines.push(`undecided (search budget exhausted): ${k}`);
  return lines.join('\n');
}
