// The leader's step function (etcd-io/raft `stepLeader`): heartbeats, ReadIndex, append and
// snapshot responses, unreachable peers and leadership transfer.
import { acceptProposals } from './proposals.js';
import type { Raft } from './raft.js';
import { handleReadAck, sendReadIndexResponse } from './read-only.js';
import { checkStalled, handleSnapResp } from './snapshot-transfer.js';
import type { Message } from './types.js';

export function stepLeader(r: Raft, m: Message): void {
  switch (m.type) {
    case 'MsgBeat':
      r.bcastHeartbeat();
      return;
    case 'MsgProp':
      acceptProposals(r, m);
      return;
    case 'MsgReadIndex':
      if (!r.committedEntryInCurrentTerm()) {
        // Our commit index may lag the previous leader's until our own entry commits.
        r.pendingReadIndexMessages.push(m);
        return;
      }
      sendReadIndexResponse(r, m);
      return;
    default:
      break;
  }
  const pr = r.progress.get(m.from);
  if (pr === undefined) return;
  switch (m.type) {
    case 'MsgAppResp': {
      r.heard(pr);
      if (m.reject) {
        let nextProbe = m.rejectHint;
        if (m.logTerm > 0) [nextProbe] = r.log.findConflictByTerm(m.rejectHint, m.logTerm);
        if (pr.maybeDecrTo(m.index, nextProbe)) {
          if (pr.state === 'replicate') pr.becomeProbe();
          r.sendAppend(m.from);
        }
        return;
      }
      const oldPaused = pr.isPaused();
      if (!pr.maybeUpdate(m.index)) return;
      if (pr.state === 'probe') pr.becomeReplicate();
      else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
        pr.becomeProbe();
        pr.becomeReplicate();
      } else if (pr.state === 'replicate') pr.inflights.freeLE(m.index);
      if (r.maybeCommit()) r.commitAdvanced();
      else if (oldPaused) r.sendAppend(m.from);
      if (r.role !== 'leader') return;
      while (r.maybeSendAppend(m.from, false));
      if (m.from === r.leadTransferee && pr.match === r.log.lastIndex()) r.sendTimeoutNow(m.from);
      return;
    }
    case 'MsgHeartbeatResp': {
      r.heard(pr);
      pr.probeSent = false;
      if (pr.state === 'replicate' && pr.inflights.full()) pr.inflights.freeFirstOne();
      if (pr.state === 'snapshot') {
        // Chunks lost in the network stall the transfer: resend from the last acknowledged byte.
        if (pr.transfer !== null && checkStalled(pr.transfer)) r.sendSnapChunks(m.from, pr);
        if (pr.transfer !== null) pr.transfer.ackedAtLastHeartbeat = pr.transfer.acked;
      } else if (pr.match < r.log.lastIndex()) {
        r.sendAppend(m.from);
      }
      if (m.context.length > 0) handleReadAck(r, m.from, m.context);
      return;
    }
    case 'MsgSnapResp': {
      const tr = pr.transfer;
      if (pr.state !== 'snapshot' || tr === null || m.index !== tr.snapIndex || m.logTerm !== tr.snapTerm) return;
      r.heard(pr);
      handleSnapResp(tr, m);
      r.sendSnapChunks(m.from, pr);
      return;
    }
    case 'MsgUnreachable':
      if (pr.state === 'replicate') pr.becomeProbe();
      return;
    case 'MsgTransferLeader': {
      const to = m.from;
      if (!r.voters.has(to)) {
        r.cfg.logger.info(`${r.id} ignored transferring leadership to non-voter ${to}`);
        return;
      }
      if (r.leadTransferee !== null) {
        if (r.leadTransferee === to) return;
        r.abortLeaderTransfer();
      }
      if (to === r.id) return;
      // The transfer must finish within an election timeout (checked in tickHeartbeat).
      r.electionElapsed = 0;
      r.leadTransferee = to;
      if (pr.match === r.log.lastIndex()) r.sendTimeoutNow(to);
      else r.sendAppend(to);
      return;
    }
    default:
      return;
  }
}
