/**
 * The node context, assembled from the parts that implement each concern (context.ts). Every
 * member delegates at call time — `state` in particular is read each time, because a snapshot
 * install replaces the state machine.
 */
import type { NodeStore } from '@coffer/state';
import type { ClusterAdmin, ClusterView, Forwarding, Lifecycle, NodeContext, NodeEnvironment, Proposer, ReadPath, RequestGuards, WorkerControls } from './context.js';
import type { Keyring } from './kms-setup.js';
import type { NodeSeal } from './seal/node-seal.js';

/** The parts, one per concern. */
export interface NodeParts {
  readonly env: Omit<NodeEnvironment, 'now'>;
  readonly keyring: Keyring;
  readonly store: NodeStore;
  readonly proposer: Proposer & Pick<ReadPath, 'readBarrier'>;
  readonly cluster: ClusterView & ClusterAdmin;
  readonly forwarding: Forwarding;
  readonly guards: RequestGuards;
  readonly workers: WorkerControls;
  readonly lifecycle: Lifecycle;
  /** COFFER_SEAL=shamir only. */
  readonly seal: NodeSeal | undefined;
}

/**
 * @param p - see {@link NodeParts}
 * @returns the context the HTTP layer, the services and the workers use
 */
export function createNodeContext(p: NodeParts): NodeContext {
  const { env, keyring, store, proposer, cluster, forwarding, workers, lifecycle } = p;
  return {
    config: env.config,
    logger: env.logger,
    metrics: env.metrics,
    audit: env.audit,
    now: () => Date.now(),
    envelopes: keyring.envelopes,
    kms: keyring.kms,
    get state() {
      return store.state;
    },
    readSealed: (name, version) => store.readSealed(name, version),
    readBarrier: (consistency) => proposer.readBarrier(consistency),
    propose: (cmd, opts) => proposer.propose(cmd, opts),
    // Also once the leader's API address is known, as forwarding needs: a follower then starts
    // taking secret puts at the moment it can take every other write too (not before).
    canProposeViaLeader: () => proposer.canProposeViaLeader() && cluster.leaderApiAddr() !== undefined,
    isLeader: () => cluster.isLeader(),
    leaderId: () => cluster.leaderId(),
    leaderApiAddr: () => cluster.leaderApiAddr(),
    raftStatus: () => cluster.raftStatus(),
    confState: () => cluster.confState(),
    members: () => cluster.members(),
    addMember: (id, raftAddr, apiAddr) => cluster.addMember(id, raftAddr, apiAddr),
    removeMember: (id) => cluster.removeMember(id),
    transferLeadership: (to) => cluster.transferLeadership(to),
    snapshot: () => cluster.snapshot(),
    forwardToLeader: (req, res, target) => forwarding.forwardToLeader(req, res, target),
    clientIp: (req) => forwarding.clientIp(req),
    checkForwardedBody: (req, body) => forwarding.checkForwardedBody(req, body),
    lockout: p.guards.lockout,
    requestRewrapPass: () => workers.requestRewrapPass(),
    snapshotSchedule: () => workers.snapshotSchedule(),
    isClosing: () => lifecycle.isClosing(),
    isReady: () => lifecycle.isReady(),
    isRemoved: () => lifecycle.isRemoved(),
    ...(p.seal === undefined ? {} : { seal: p.seal }),
  };
}
