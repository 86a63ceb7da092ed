// Proposals a follower hands to its leader (MsgProp), as etcd-io/raft forwards them: the follower
// sends the entry's data to the leader it knows; the leader appends it in its own term. Nothing
// comes back: the proposer recognises the entry when it applies it (by an id inside the data)
// and must time out, since a MsgProp lost on the way or dropped by the leader is never answered.
// The message is handed to the caller to send at once rather than queued for the next Ready: it
// promises nothing about this node's disk, so it need not wait behind a Ready's fsync.
import { RaftError } from './errors.js';
import type { Raft } from './raft.js';
import type { Message } from './types.js';

/**
 * The MsgProp that hands `data` to the leader this follower knows (for the caller to send).
 *
 * @throws {RAFT_PROPOSAL_DROPPED} when this node is not a follower that knows a leader
 */
export function proposeViaLeader(r: Raft, data: Uint8Array): Message {
  const lead = r.lead;
  if (r.role !== 'follower' || lead === null || lead === r.id) {
    throw new RaftError('RAFT_PROPOSAL_DROPPED', `${r.id} knows no leader to hand a proposal to`);
  }
  const entries = [{ term: 0, index: 0, type: 'normal' as const, data }];
  return { type: 'MsgProp', to: lead, from: r.id, term: 0, logTerm: 0, index: 0, commit: 0, entries, reject: false, rejectHint: 0, context: new Uint8Array(0) };
}

/**
 * The leader's side: the normal entries of a voter's MsgProp join the log in the leader's term.
 * Dropped: from a non-voter (a learner does not serve writes) or itself, during a leadership
 * transfer (as the leader's own proposals are), and any message holding a membership change
 * (those are the leader's own, with the checks `propose` makes).
 */
export function acceptProposals(r: Raft, m: Message): void {
  if (m.from === r.id || !r.voters.has(m.from)) {
    r.cfg.logger.info(`${r.id} ignored a proposal from ${m.from}, which is not a voter`);
    return;
  }
  if (r.leadTransferee !== null) {
    r.cfg.logger.info(`${r.id} dropped a proposal from ${m.from} while transferring leadership to ${r.leadTransferee}`);
    return;
  }
  if (m.entries.some((e) => e.type !== 'normal')) return;
  r.appendProposed(m.entries.map((e) => e.data));
}
