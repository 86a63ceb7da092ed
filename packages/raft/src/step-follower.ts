// The candidate's and the follower's step functions (etcd-io/raft `stepCandidate`,
// `stepFollower`) and the follower's handling of MsgApp, MsgHeartbeat and MsgSnap.
import type { Raft } from './raft.js';
import type { Message, MessageType } from './types.js';

export function stepCandidate(r: Raft, m: Message): void {
  const myVoteResp: MessageType = r.role === 'preCandidate' ? 'MsgPreVoteResp' : 'MsgVoteResp';
  switch (m.type) {
    case 'MsgApp':
      r.becomeFollower(m.term, m.from);
      handleAppend(r, m);
      return;
    case 'MsgHeartbeat':
      r.becomeFollower(m.term, m.from);
      handleHeartbeat(r, m);
      return;
    case 'MsgSnap':
      r.becomeFollower(m.term, m.from);
      handleSnapshot(r, m);
      return;
    default:
      break;
  }
  if (m.type !== myVoteResp) return;
  const res = r.poll(m.from, !m.reject);
  if (res === 'won') {
    if (r.role === 'preCandidate') {
      r.campaign('election', false);
    } else {
      r.becomeLeader();
      r.bcastAppend();
    }
  } else if (res === 'lost') {
    r.becomeFollower(r.term, null);
  }
}

export function stepFollower(r: Raft, m: Message): void {
  switch (m.type) {
    case 'MsgApp':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleAppend(r, m);
      return;
    case 'MsgHeartbeat':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleHeartbeat(r, m);
      return;
    case 'MsgSnap':
      r.electionElapsed = 0;
      r.lead = m.from;
      handleSnapshot(r, m);
      return;
    case 'MsgTransferLeader':
    case 'MsgReadIndex':
      if (r.lead === null) {
        r.cfg.logger.info(`${r.id} no leader at term ${r.term}; dropping ${m.type}`);
        return;
      }
      r.msgs.push({ ...m, to: r.lead, term: 0 });
      return;
    case 'MsgTimeoutNow':
      // Leadership transfer: campaign at once, skipping the pre-vote and the leader lease.
      r.hup(true);
      return;
    case 'MsgReadIndexResp':
      r.readStates.push({ index: m.index, context: m.context });
      return;
    default:
      return;
  }
}

export function handleAppend(r: Raft, m: Message): void {
  if (m.index < r.log.committed) {
    r.send({ type: 'MsgAppResp', to: m.from, index: r.log.committed });
    return;
  }
  const lastNew = r.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
  if (lastNew !== null) {
    r.send({ type: 'MsgAppResp', to: m.from, index: lastNew });
    return;
  }
  // Fast back-off (Raft thesis §5.3 optimisation): point the leader at the last index whose
  // term is <= the term it probed with, skipping every conflicting entry of a later term.
  const [hintIndex, hintTerm] = r.log.findConflictByTerm(Math.min(m.index, r.log.lastIndex()), m.logTerm);
  r.send({ type: 'MsgAppResp', to: m.from, index: m.index, reject: true, rejectHint: hintIndex, logTerm: hintTerm });
}

export function handleHeartbeat(r: Raft, m: Message): void {
  r.log.commitTo(Math.min(m.commit, r.log.lastIndex()));
  r.send({ type: 'MsgHeartbeatResp', to: m.from, context: m.context });
}

export function handleSnapshot(r: Raft, m: Message): void {
  const c = m.snapshot;
  if (c === undefined) return;
  const { index, term } = c.meta;
  if (index <= r.log.committed) {
    // Already covered (a duplicate, or the leader missed our acknowledgement).
    r.snapRecv.dropCovered(index);
    r.send({ type: 'MsgAppResp', to: m.from, index: r.log.committed });
    return;
  }
  const got = r.snapRecv.receive(m.from, c);
  if (got.kind === 'resend') {
    r.send({ type: 'MsgSnapResp', to: m.from, index, logTerm: term, reject: true, rejectHint: got.from });
    return;
  }
  if (got.kind === 'progress') {
    r.send({ type: 'MsgSnapResp', to: m.from, index, logTerm: term, rejectHint: got.received });
    return;
  }
  if (r.restore(got.snapshot)) {
    r.cfg.logger.info(`${r.id} [commit: ${r.log.committed}] restored snapshot [index: ${index}, term: ${term}]`);
    r.send({ type: 'MsgAppResp', to: m.from, index: r.log.lastIndex() });
  } else {
    r.send({ type: 'MsgAppResp', to: m.from, index: r.log.committed });
  }
}
