// Fuzz targets for what a peer sends over the Raft port: the message batch codec (the body of
// POST /raft/v1/messages and of a returned batch, decoded by peer-server.ts and transport.ts), the
// membership change carried in confChange entries, and the member addresses in its context.
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { RaftError, decodeConfChange, decodeMessages, encodeConfChange, encodeMessages, type ConfChange, type Entry, type Message, type MessageType } from '@coffer/raft';
import { decodeMemberContext, encodeMemberContext } from '../../../node/src/raft/members.js';
import { fail, type FuzzTarget } from './engine.js';

const MSG_TYPES: MessageType[] = [
  'MsgHup', 'MsgBeat', 'MsgApp', 'MsgAppResp', 'MsgVote', 'MsgVoteResp', 'MsgPreVote', 'MsgPreVoteResp',
  'MsgSnap', 'MsgSnapResp', 'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgTransferLeader', 'MsgTimeoutNow',
  'MsgReadIndex', 'MsgReadIndexResp', 'MsgUnreachable',
];

const id = fc.oneof(fc.constantFrom('n1', 'n2', 'n3', ''), fc.string({ maxLength: 8 }));
const num = fc.oneof(fc.nat({ max: 1000 }), fc.constantFrom(0, 127, 128, 16_383, 16_384, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER));
const data = fc.uint8Array({ maxLength: 48 });

const entryArb: fc.Arbitrary<Entry> = fc.record({ term: num, index: num, type: fc.constantFrom('normal' as const, 'confChange' as const), data });

export const messageArb: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...MSG_TYPES),
    to: id,
    from: id,
    term: num,
    logTerm: num,
    index: num,
    commit: num,
    entries: fc.array(entryArb, { maxLength: 3 }),
    reject: fc.boolean(),
    rejectHint: num,
    context: data,
    snap: fc.option(
      fc.record({
        meta: fc.record({ index: num, term: num, confState: fc.record({ voters: fc.array(id, { maxLength: 3 }), learners: fc.array(id, { maxLength: 2 }) }) }),
        data,
        extra: fc.nat({ max: 100 }),
        offset: fc.nat({ max: 100 }),
      }),
      { nil: undefined },
    ),
  })
  .map(({ snap, ...m }) => {
    const msg: Message = { ...m };
    if (snap !== undefined) msg.snapshot = { meta: snap.meta, offset: snap.offset, totalBytes: snap.offset + snap.data.length + snap.extra, data: snap.data };
    return msg;
  });

const raftRefusal = (err: unknown): string | undefined => (err instanceof RaftError && err.code === 'RAFT_DECODE' ? `RAFT_DECODE ${err.message}` : undefined);

/** `POST /raft/v1/messages` bodies (and batches returned in responses). */
export const raftMessages: FuzzTarget = {
  name: 'raft.messages',
  pkg: 'raft',
  what: 'a batch of Raft messages from a peer (peer-server.ts, transport.ts return path)',
  seeds: fc.array(messageArb, { maxLength: 4 }).map((ms) => encodeMessages(ms)),
  run: (b) => decodeMessages(b),
  refusal: raftRefusal,
  check: (_b, out) => {
    // Whatever decodes must be a batch the node can use and send on: re-encodable, same meaning.
    const msgs = out as Message[];
    const again = decodeMessages(encodeMessages(msgs));
    if (!isDeepStrictEqual(again, msgs)) fail('decode(encode(decoded)) differs from decoded');
    for (const m of msgs) {
      if (m.snapshot !== undefined && m.snapshot.offset + m.snapshot.data.length > m.snapshot.totalBytes) fail('snapshot chunk beyond its total');
    }
    return `ok ${msgs.length === 0 ? 'empty' : 'messages'}`;
  },
};

const ccArb: fc.Arbitrary<ConfChange> = fc.record({
  type: fc.constantFrom('addLearner' as const, 'addVoter' as const, 'remove' as const),
  nodeId: fc.oneof(fc.constantFrom('n1', 'n4'), fc.string({ minLength: 1, maxLength: 12 })),
  context: fc.oneof(
    data,
    fc.record({ raftAddr: fc.string({ maxLength: 24 }), apiAddr: fc.string({ maxLength: 24 }) }).map((a) => encodeMemberContext(a)),
  ),
});

/** The data of a committed confChange entry (from the leader's log). */
export const raftConfChange: FuzzTarget = {
  name: 'raft.conf-change',
  pkg: 'raft',
  what: 'a membership change in a confChange log entry (driver.ts)',
  seeds: ccArb.map((cc) => encodeConfChange(cc)),
  run: (b) => decodeConfChange(b),
  refusal: raftRefusal,
  check: (b, out) => {
    const cc = out as ConfChange;
    const again = encodeConfChange(cc);
    if (Buffer.compare(Buffer.from(again), Buffer.from(b)) !== 0 && !isDeepStrictEqual(decodeConfChange(again), cc)) fail('conf change does not round-trip');
    if (cc.nodeId === '') fail('empty node id accepted');
  },
};

/** The member addresses in a confChange context (server.ts reads them when a change applies). */
export const memberContext: FuzzTarget = {
  name: 'node.member-context',
  pkg: 'node',
  what: 'member addresses in a confChange context (raft/members.ts)',
  seeds: fc.record({ raftAddr: fc.string({ maxLength: 32 }), apiAddr: fc.string({ maxLength: 32 }) }).map((a) => encodeMemberContext(a)),
  run: (b) => decodeMemberContext(b),
  // Documented never to throw: any exception is a crash.
  refusal: () => undefined,
  check: (_b, out) => {
    const a = out as { raftAddr: unknown; apiAddr: unknown };
    if (typeof a.raftAddr !== 'string' || typeof a.apiAddr !== 'string') fail('addresses are not strings');
    return a.raftAddr === '' && a.apiAddr === '' ? 'empty' : 'addresses';
  },
};

export const RAFT_TARGETS: readonly FuzzTarget[] = [raftMessages, raftConfChange, memberContext];
