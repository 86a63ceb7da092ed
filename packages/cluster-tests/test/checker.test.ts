/**
 * Self-test of the linearizability checker: hand-made histories with known answers, and large
 * generated histories that are linearizable by construction; and the availability bound.
 */
import { checkHistory, describeVerdict } from '../src/jepsen/checker';
import { fromJsonl, toJsonl, type Op } from '../src/jepsen/history';
import { prng } from '../src/prng';
import { recoveryLimit } from '../src/jepsen/run';

let nextId = 1;
function op(p: Partial<Op> & Pick<Op, 'kind' | 'invokeMs'>): Op {
  return { id: nextId++, process: 0, key: 'k', completeMs: p.invokeMs + 1, outcome: 'ok', ...p };
}
const w = (process: number, t0: number, t1: number | null, value: string, version: number | null, outcome: Op['outcome'] = 'ok'): Op =>
  op({ process, kind: 'write', value, invokeMs: t0, completeMs: t1, outcome, ...(outcome === 'ok' ? { result: { version, value: null } } : {}) });
const cas = (process: number, t0: number, t1: number | null, expect: number, value: string, outcome: Op['outcome'] = 'ok'): Op =>
  op({ process, kind: 'cas', value, expectVersion: expect, invokeMs: t0, completeMs: t1, outcome, ...(outcome === 'ok' ? { result: { version: expect + 1, value: null } } : {}) });
const r = (process: number, t0: number, t1: number, version: number | null, value: string | null): Op =>
  op({ process, kind: 'read', invokeMs: t0, completeMs: t1, result: { version, value } });
const del = (process: number, t0: number, t1: number | null, existed: boolean, outcome: Op['outcome'] = 'ok'): Op =>
  op({ process, kind: 'delete', invokeMs: t0, completeMs: t1, outcome, ...(outcome === 'ok' ? { result: { version: null, value: null, existed } } : {}) });

function valid(ops: Op[]): boolean {
  const v = checkHistory(ops);
  expect(v.undecided).toEqual([]);
  return v.valid;
}

describe('checker: hand-made histories', () => {
  test('a known-good history with concurrency, deletes and a cas is accepted', () => {
    const ops = [
      w(1, 0, 10, 'a', 1),
      r(2, 5, 15, 1, 'a'), // concurrent with the write, sees it
      r(3, 6, 8, null, null), // concurrent with the write, does not see it
      cas(1, 20, 30, 1, 'b'),
      r(2, 25, 35, 2, 'b'),
      del(3, 40, 50, true),
      r(1, 51, 52, null, null),
      del(2, 53, 54, false),
      w(1, 60, 70, 'c', 1), // after a delete the next write creates version 1 again
      cas(2, 71, 72, 0, 'x', 'fail'), // 409: did not happen
      r(3, 73, 74, 1, 'c'),
    ];
    expect(valid(ops)).toBe(true);
  });

  test('a stale read is rejected', () => {
    const ops = [w(1, 0, 10, 'a', 1), w(1, 20, 30, 'b', 2), r(2, 40, 50, 1, 'a')];
    const v = checkHistory(ops);
    expect(v.valid).toBe(false);
    expect(v.violations).toHaveLength(1);
    expect(describeVerdict(v)).toContain('violation on k');
  });

  test('a lost acknowledged write is rejected', () => {
    const ops = [w(1, 0, 10, 'a', 1), r(2, 20, 30, 1, 'a'), w(1, 40, 50, 'b', 2), r(2, 60, 70, 1, 'a')];
    expect(valid(ops)).toBe(false);
    // … also when the name reads as not found afterwards.
    expect(valid([w(1, 0, 10, 'a', 1), r(2, 20, 30, null, null)])).toBe(false);
  });

  test('version numbers must follow the product: +1 per write, 1 after a delete', () => {
    expect(valid([w(1, 0, 10, 'a', 1), w(1, 20, 30, 'b', 3)])).toBe(false);
    expect(valid([w(1, 0, 10, 'a', 1), del(1, 20, 30, true), w(1, 40, 50, 'b', 2)])).toBe(false);
    expect(valid([w(1, 0, 10, 'a', 1), del(1, 20, 30, true), w(1, 40, 50, 'b', 1)])).toBe(true);
    // Two concurrent writes can each take either version, but not the same one.
    expect(valid([w(1, 0, 10, 'a', 2), w(2, 0, 10, 'b', 1)])).toBe(true);
    expect(valid([w(1, 0, 10, 'a', 1), w(2, 0, 10, 'b', 1)])).toBe(false);
  });

  test('check-and-set: an acknowledged cas against the wrong version is rejected', () => {
    expect(valid([w(1, 0, 10, 'a', 1), cas(2, 20, 30, 0, 'b')])).toBe(false);
    expect(valid([w(1, 0, 10, 'a', 1), cas(2, 20, 30, 1, 'b'), cas(3, 40, 50, 1, 'c')])).toBe(false);
    expect(valid([cas(1, 0, 10, 0, 'a'), cas(2, 0, 10, 1, 'b'), r(3, 20, 30, 2, 'b')])).toBe(true);
  });

  test('a delete that says "not found" while the name exists is rejected', () => {
    expect(valid([w(1, 0, 10, 'a', 1), del(2, 20, 30, false)])).toBe(false);
    expect(valid([del(2, 20, 30, true)])).toBe(false);
  });

  test('an unknown write may or may not have happened, but not both', () => {
    const base = [w(1, 0, 10, 'a', 1), w(2, 20, null, 'b', null, 'unknown')];
    expect(valid([...base, r(3, 30, 40, 1, 'a')])).toBe(true);
    expect(valid([...base, r(3, 30, 40, 2, 'b')])).toBe(true);
    // It can take effect long after its invocation…
    expect(valid([...base, r(3, 30, 40, 1, 'a'), r(3, 500, 510, 2, 'b')])).toBe(true);
    // … but not be undone.
    expect(valid([...base, r(3, 30, 40, 2, 'b'), r(3, 50, 60, 1, 'a')])).toBe(false);
    // Nor take effect before it was invoked.
    expect(valid([...base, r(3, 11, 15, 2, 'b')])).toBe(false);
    // An unknown write nobody read still moves the version: the next write may be version 2 or 3.
    expect(valid([...base, w(3, 30, 40, 'c', 3)])).toBe(true);
    expect(valid([...base, w(3, 30, 40, 'c', 2)])).toBe(true);
    expect(valid([...base, w(3, 30, 40, 'c', 4)])).toBe(false);
    // Failed operations never happened.
    expect(valid([w(1, 0, 10, 'a', 1), w(2, 20, 30, 'b', null, 'fail'), r(3, 40, 50, 2, 'b')])).toBe(false);
  });

  test('names are checked independently', () => {
    const ops = [w(1, 0, 10, 'a', 1), { ...r(2, 20, 30, null, null), key: 'other' }];
    expect(valid(ops)).toBe(true);
  });

  test('the verdict names a small failing sub-history inside a long history', () => {
    const ops: Op[] = [];
    let t = 0;
    let version = 0;
    for (let i = 0; i < 300; i++) {
      ops.push(w(i % 4, t, t + 5, `v${i}`, ++version));
      ops.push(r((i + 1) % 4, t + 2, t + 8, version, `v${i}`)); // concurrent with the write: fine
      t += 10;
    }
    const stale = r(9, t + 100, t + 110, 150, 'v149');
    ops.push(stale);
    for (let i = 300; i < 320; i++) {
      ops.push(w(i % 4, t + 200 + i, t + 201 + i, `v${i}`, ++version));
    }
    const v = checkHistory(ops);
    expect(v.valid).toBe(false);
    const small = v.violations[0]?.ops ?? [];
    expect(small.length).toBeLessThanOrEqual(4);
    expect(small.map((o) => o.id)).toContain(stale.id);
  });

  test('histories survive a JSON-lines round trip', () => {
    const ops = [w(1, 0, 10, 'a', 1), w(2, 20, null, 'b', null, 'unknown'), del(1, 30, 40, true)];
    expect(fromJsonl(toJsonl(ops))).toEqual(ops);
  });
});

/**
 * A history that is linearizable by construction: each op takes effect at a random point inside
 * its interval, applied to a real model in point order; some ops lose their answer (unknown) and
 * some of those never take effect.
 */
function generated(seed: number, n: number, procs: number): Op[] {
  const rnd = prng(seed);
  type Planned = { op: Op; at: number; happens: boolean };
  const planned: Planned[] = [];
  const busyUntil = new Array<number>(procs).fill(0);
  for (let i = 0; i < n; i++) {
    const p = Math.floor(rnd() * procs);
    const t0 = (busyUntil[p] as number) + rnd() * 5;
    const t1 = t0 + 1 + rnd() * 30;
    busyUntil[p] = t1;
    const x = rnd();
    const kind: Op['kind'] = x < 0.4 ? 'read' : x < 0.7 ? 'write' : x < 0.92 ? 'cas' : 'delete';
    const unknown = kind !== 'read' && rnd() < 0.08;
    const at = unknown && rnd() < 0.5 ? t0 + rnd() * 200 : t0 + rnd() * (t1 - t0);
    const o: Op = { id: i + 1, process: p, key: `k${Math.floor(rnd() * 2)}`, kind, invokeMs: t0, completeMs: unknown ? null : t1, outcome: unknown ? 'unknown' : 'ok' };
    if (kind === 'write' || kind === 'cas') o.value = `v${i}`;
    planned.push({ op: o, at, happens: !unknown || rnd() < 0.5 });
  }
  const state = new Map<string, { version: number; value: string } | null>();
  const lastVersion = new Map<string, number>();
  for (const pl of [...planned].sort((a, b) => a.at - b.at)) {
    const o = pl.op;
    const cur = state.get(o.key) ?? null;
    const curV = cur?.version ?? 0;
    if (o.kind === 'cas') o.expectVersion = rnd() < 0.6 ? curV : (lastVersion.get(o.key) ?? 0);
    if (!pl.happens) continue;
    switch (o.kind) {
      case 'read':
        o.result = { version: cur?.version ?? null, value: cur?.value ?? null };
        break;
      case 'write':
        state.set(o.key, { version: curV + 1, value: o.value as string });
        if (o.outcome === 'ok') o.result = { version: curV + 1, value: null };
        break;
      case 'cas':
        if (o.expectVersion === curV) {
          state.set(o.key, { version: curV + 1, value: o.value as string });
          if (o.outcome === 'ok') o.result = { version: curV + 1, value: null };
        } else if (o.outcome === 'ok') {
          o.outcome = 'fail';
        }
        break;
      case 'delete':
        state.set(o.key, null);
        if (o.outcome === 'ok') o.result = { version: null, value: null, existed: cur !== null };
        break;
    }
    lastVersion.set(o.key, Math.max(lastVersion.get(o.key) ?? 0, curV));
  }
  return planned.map((p) => p.op);
}

describe('checker: generated histories', () => {
  test('linearizable-by-construction histories are accepted, quickly', () => {
    const started = Date.now();
    let ops = 0;
    for (let seed = 1; seed <= 30; seed++) {
      const h = generated(seed, 600, 8);
      ops += h.length;
      const v = checkHistory(h);
      if (!v.valid) throw new Error(`seed ${seed}: ${describeVerdict(v)}`);
    }
    expect(ops).toBe(30 * 600);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  test('a generated history with one read made stale is rejected', () => {
    let rejected = 0;
    for (let seed = 100; seed < 120; seed++) {
      const h = generated(seed, 300, 4).filter((o) => o.outcome !== 'unknown');
      // Make the last read of k0 return the first value ever written to k0 with a version it no longer has.
      const reads = h.filter((o) => o.key === 'k0' && o.kind === 'read' && o.result?.version !== null);
      const last = reads[reads.length - 1];
      if (last === undefined || last.result === undefined || last.result.version === null) continue;
      const earlier = h.filter((o) => o.key === 'k0' && o.kind === 'read' && o.completeMs !== null && last.invokeMs - o.completeMs > 100 && o.result?.value !== last.result?.value && o.result?.value !== null);
      const src = earlier[0];
      if (src === undefined || src.result === undefined) continue;
      last.result = { ...src.result };
      if (!checkHistory(h).valid) rejected++;
    }
    expect(rejected).toBeGreaterThan(10);
  });
});

describe('availability bound after losing the leader', () => {
  test('1.5 election timeouts per round plus a second for the election; a split vote adds a round', () => {
    expect(recoveryLimit(1_000, undefined)).toBe(2_500);
    expect(recoveryLimit(1_000, 1)).toBe(2_500);
    expect(recoveryLimit(1_000, 2)).toBe(4_000);
    expect(recoveryLimit(1_000, 3)).toBe(5_500);
    // A fault that needed no election (a follower lost) keeps the one-round bound.
    expect(recoveryLimit(500, 0)).toBe(1_750);
  });
});
