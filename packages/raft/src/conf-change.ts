import { RaftError } from './errors.js';
import type { ConfChange, ConfState, NodeId } from './types.js';

/**
 * Applies one single-server change to a configuration, purely. Used both by the core (the
 * configuration in force is the latest one in the log) and by `RawNode.applyConfChange` (the
 * configuration as of the applied index, for snapshots).
 *
 * A change that does not fit (adding a learner that is already a voter) leaves the set unchanged;
 * the leader refuses such proposals, so it only happens with hand-written entries.
 *
 * @param cs - the configuration before
 * @param cc - the change
 * @returns a new configuration; `cs` is not modified
 * @example
 * ```ts
 * applyConfChangeTo({ voters: ['n1'], learners: [] }, { type: 'addLearner', nodeId: 'n2', context: new Uint8Array() });
 * ```
 */
export function applyConfChangeTo(cs: ConfState, cc: ConfChange): ConfState {
  if (cc.type === 'addLearner' && cs.voters.includes(cc.nodeId)) return { voters: [...cs.voters], learners: [...cs.learners] };
  const voters = cs.voters.filter((v) => v !== cc.nodeId);
  const learners = cs.learners.filter((v) => v !== cc.nodeId);
  if (cc.type === 'addVoter') voters.push(cc.nodeId);
  else if (cc.type === 'addLearner') learners.push(cc.nodeId);
  return { voters, learners };
}

/**
 * Whether a change fits the configuration (the leader's check before proposing it).
 *
 * @param cc - the change
 * @param voters - voters in force
 * @param learners - learners in force
 * @throws {RAFT_INVALID_CONF_CHANGE} already a member, not a member, or the last voter
 */
export function checkMembershipChange(cc: ConfChange, voters: ReadonlySet<NodeId>, learners: ReadonlySet<NodeId>): void {
  const isVoter = voters.has(cc.nodeId);
  const isLearner = learners.has(cc.nodeId);
  if (cc.type === 'addLearner' && (isVoter || isLearner)) {
    throw new RaftError('RAFT_INVALID_CONF_CHANGE', `${cc.nodeId} is already a ${isVoter ? 'voter' : 'learner'}`);
  }
  if (cc.type === 'addVoter' && isVoter) throw new RaftError('RAFT_INVALID_CONF_CHANGE', `${cc.nodeId} is already a voter`);
  if (cc.type === 'remove') {
    if (!isVoter && !isLearner) throw new RaftError('RAFT_INVALID_CONF_CHANGE', `${cc.nodeId} is not a member`);
    if (isVoter && voters.size === 1) throw new RaftError('RAFT_INVALID_CONF_CHANGE', 'cannot remove the last voter');
  }
}
