import fc from 'fast-check';
import { MemoryStorage, type Entry } from '../src/index';
import { RaftLog } from '../src/log';
import { msg, newNode, persist } from './helpers';

// The log (storage + unstable tail) must behave like a plain array under appends that truncate,
// persistence at random points, and compaction.
describe('RaftLog against an array model', () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant('append' as const), back: fc.nat({ max: 6 }), n: fc.integer({ min: 1, max: 4 }), bump: fc.nat({ max: 2 }) }),
    fc.record({ kind: fc.constant('persist' as const) }),
    fc.record({ kind: fc.constant('compact' as const), keep: fc.nat({ max: 4 }) }),
  );

  test('terms, last index and slices match the model; findConflictByTerm gives a correct hint', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.nat({ max: 10 }), (ops, probeTerm) => {
        const storage = new MemoryStorage();
        const log = new RaftLog(storage);
        let model: Entry[] = []; // model[i - 1] is entry i
        let term = 1;
        for (const o of ops) {
          if (o.kind === 'append') {
            // Never rewrite compacted entries (a leader never sends below a follower's snapshot).
            const from = Math.max(storage.firstIndex(), model.length + 1 - o.back, 1);
            term += o.bump;
            const ents = Array.from({ length: o.n }, (_, i) => ({ term, index: from + i, type: 'normal' as const, data: new Uint8Array([from + i]) }));
            log.append(ents);
            model = model.slice(0, from - 1).concat(ents);
          } else if (o.kind === 'persist') {
            const u = log.unstableEntries;
            storage.append(u);
            if (u.length > 0) log.stableTo(u[u.length - 1]!.index, u[u.length - 1]!.term);
          } else {
            const stable = log.stableLastIndex();
            const upTo = stable - o.keep;
            if (upTo >= storage.firstIndex()) {
              storage.createSnapshot(upTo, { voters: [], learners: [] }, new Uint8Array());
              storage.compact(upTo);
            }
          }
        }
        expect(log.lastIndex()).toBe(model.length);
        const first = log.firstIndex();
        for (let i = first; i <= model.length; i++) expect(log.term(i)).toBe(model[i - 1]!.term);
        if (first <= model.length) {
          expect(log.slice(first, model.length + 1, 1e9).map((e) => e.index)).toEqual(model.slice(first - 1).map((e) => e.index));
        }
        const [hint, hintTerm] = log.findConflictByTerm(model.length, probeTerm);
        if (hint >= first && hint > 0) {
          expect(hintTerm).toBe(model[hint - 1]!.term);
          expect(hintTerm).toBeLessThanOrEqual(probeTerm);
        }
        for (let i = Math.max(hint + 1, first); i <= model.length; i++) expect(model[i - 1]!.term).toBeGreaterThan(probeTerm);
      }),
    );
  });
});

describe('commit rule (quorum property)', () => {
  test('the leader commits exactly the highest index a majority of voters holds', () => {
    const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 14 }), { minLength: 4, maxLength: 4 }), (acks) => {
        const s = MemoryStorage.bootstrap(ids);
        const n1 = newNode('n1', s, { preVote: false });
        n1.campaign();
        persist(n1, s);
        for (const id of ['n2', 'n3']) n1.step(msg({ type: 'MsgVoteResp', from: id, to: 'n1', term: 2 }));
        for (let i = 0; i < 8; i++) n1.propose(new Uint8Array([i]));
        persist(n1, s);
        const last = n1.status().lastIndex; // 5 bootstrap + 1 empty + 8 = 14
        const before = n1.status().commit;
        acks.forEach((a, k) => n1.step(msg({ type: 'MsgAppResp', from: ids[k + 1]!, to: 'n1', term: 2, index: Math.min(a, last) })));
        const matches = [last, ...acks.map((a) => Math.min(a, last))].sort((x, y) => y - x);
        const majority = matches[2]!;
        // Entries 1..5 are the bootstrap (term 1, already committed); 6.. are this term's.
        expect(n1.status().commit).toBe(majority >= 6 ? majority : before);
      }),
    );
  });
});
