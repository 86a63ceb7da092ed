import fc from 'fast-check';
import { RaftError, decodeConfChange, decodeMessages, encodeConfChange, encodeMessages, type Message } from '../src/index';

const u8 = fc.uint8Array({ maxLength: 40 });
const nat = fc.nat({ max: Number.MAX_SAFE_INTEGER });
const types = ['MsgApp', 'MsgAppResp', 'MsgVote', 'MsgVoteResp', 'MsgPreVote', 'MsgPreVoteResp', 'MsgSnap', 'MsgSnapResp', 'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgTransferLeader', 'MsgTimeoutNow', 'MsgReadIndex', 'MsgReadIndexResp', 'MsgProp'] as const;

const entry = fc.record({ term: nat, index: nat, type: fc.constantFrom('normal' as const, 'confChange' as const), data: u8 });
const message: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...types),
    to: fc.string({ minLength: 1, maxLength: 8 }),
    from: fc.string({ minLength: 1, maxLength: 8 }),
    term: nat,
    logTerm: nat,
    index: nat,
    commit: nat,
    entries: fc.array(entry, { maxLength: 4 }),
    reject: fc.boolean(),
    rejectHint: nat,
    context: u8,
    snap: fc.option(
      fc.record({
        index: nat,
        term: nat,
        voters: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
        learners: fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
        data: u8,
        offset: fc.nat({ max: 1000 }),
        extra: fc.nat({ max: 1000 }),
      }),
      { nil: undefined },
    ),
  })
  .map(({ snap, ...m }) => {
    const out: Message = m;
    if (snap !== undefined) {
      out.snapshot = {
        meta: { index: snap.index, term: snap.term, confState: { voters: snap.voters, learners: snap.learners } },
        offset: snap.offset,
        totalBytes: snap.offset + snap.data.length + snap.extra,
        data: snap.data,
      };
    }
    return out;
  });

describe('message codec', () => {
  test('round-trips any batch of messages', () => {
    fc.assert(fc.property(fc.array(message, { maxLength: 5 }), (msgs) => {
      expect(decodeMessages(encodeMessages(msgs))).toEqual(msgs);
    }));
  });

  test('the first byte is the format version; an unknown version is refused', () => {
    const buf = encodeMessages([]);
    expect(buf[0]).toBe(1);
    buf[0] = 2;
    expect(() => decodeMessages(buf)).toThrow(expect.objectContaining({ code: 'RAFT_DECODE' }));
  });

  test('garbage, truncations and bit flips only ever throw RAFT_DECODE', () => {
    const onlyDecodeErrors = (buf: Uint8Array): void => {
      try {
        decodeMessages(buf);
      } catch (e) {
        expect(e).toBeInstanceOf(RaftError);
        expect((e as RaftError).code).toBe('RAFT_DECODE');
      }
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (b) => onlyDecodeErrors(new Uint8Array([1, ...b]))));
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), onlyDecodeErrors));
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 3 }), fc.nat(), fc.nat({ max: 7 }), (msgs, at, bit) => {
        const buf = encodeMessages(msgs);
        onlyDecodeErrors(buf.subarray(0, at % buf.length));
        const flipped = buf.slice();
        flipped[at % buf.length]! ^= 1 << bit;
        onlyDecodeErrors(flipped);
      }),
    );
  });

  test('a huge declared count is refused without allocating it', () => {
    expect(() => decodeMessages(new Uint8Array([1, 0xff, 0xff, 0xff, 0xff, 0x0f]))).toThrow(expect.objectContaining({ code: 'RAFT_DECODE' }));
  });
});

describe('conf change codec', () => {
  test('round-trips and keeps the context bytes', () => {
    fc.assert(
      fc.property(fc.constantFrom('addLearner' as const, 'addVoter' as const, 'remove' as const), fc.string({ minLength: 1, maxLength: 10 }), u8, (type, nodeId, context) => {
        expect(decodeConfChange(encodeConfChange({ type, nodeId, context }))).toEqual({ type, nodeId, context });
      }),
    );
  });

  test('garbage throws RAFT_DECODE', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 30 }), (b) => {
        try {
          decodeConfChange(b);
        } catch (e) {
          expect((e as RaftError).code).toBe('RAFT_DECODE');
        }
      }),
    );
  });
});
