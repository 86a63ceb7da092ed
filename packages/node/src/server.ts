/**
 * `coffer server`: the composition root. It builds one node's parts and wires them; what each
 * part does lives in its own module (packages/node/README.md lists them).
 *
 *   config ─► storage (LevelDB: Raft log + state) ─► Raft driver ◄─► peer link (transport + listener)
 *                                                        │
 *   keyring (KMS + DEK cache) ─► NodeContext (read path, proposer, cluster, forwarding …) ─► HTTP API
 *
 * Start-up order matters: the store is opened (and a half-installed snapshot finished) before Raft
 * sees it; every reaction to Raft events is subscribed before the peer listener can deliver the
 * first message; the peer listener starts before the driver ticks, so the first votes can arrive;
 * the API listens last. Shutdown runs the other way (closers run newest first) and waits for
 * in-flight writes to LevelDB.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { versionFloorOf } from '@coffer/state';
import { createApiListener } from './api-listener.js';
import { AuditLog } from './audit/audit-log.js';
import { Lockout } from './auth/lockout.js';
import { AddressBook } from './cluster/addresses.js';
import { ClusterControl } from './cluster/admin.js';
import { CommandVersions } from './cluster/command-versions.js';
import { Joins } from './cluster/join.js';
import { LeaderDuties } from './cluster/leader-duties.js';
import { MembershipDuties } from './cluster/membership.js';
import { Removal } from './cluster/removal.js';
import type { ServerConfig } from './config.js';
import type { NodeContext } from './context.js';
import { createApi } from './http/api.js';
import { drainAndCloseApi, listen } from './http/drain.js';
import { Forwarder } from './http/forward.js';
import { createKeyring } from './kms-setup.js';
import { NodeLifecycle } from './lifecycle.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type CofferMetrics } from './metrics.js';
import { createNodeContext } from './node-context.js';
import { createPeerKeys } from './peer/keys.js';
import { createPeerRpc, PeerCalls } from './peer/rpc.js';
import { createApplier } from './raft/apply.js';
import { bootRaftLog, driverOptions } from './raft/boot.js';
import { RaftDriver } from './raft/driver.js';
import { RaftEvents } from './raft/events.js';
import { openPeerLink, Outbox } from './raft/peer-link.js';
import { RaftProposer } from './raft/proposer.js';
import { Readiness } from './readiness.js';
import { startNodeSeal } from './seal/node-seal.js';
import { type OpenedStorage, openStorage } from './storage.js';
import { Workers } from './workers/workers.js';

/** Version reported by health and metrics. */
export const COFFER_VERSION = '0.1.0';

/** A running node. */
export interface RunningServer {
  readonly ctx: NodeContext;
  /** The bound API address (port 0 in the config resolves here). */
  readonly apiAddress: AddressInfo;
  readonly raftAddress: AddressInfo;
  /** Stops accepting, fails what is waiting, flushes storage and the audit log. */
  close(): Promise<void>;
  /** Resolves when the node stops on its own because of a fatal error (with that error). */
  readonly fatal: Promise<unknown>;
}

/** Test and embedding hooks. */
export interface StartOptions {
  /** Where JSON logs go (default stdout). */
  readonly logDestination?: NodeJS.WritableStream;
}

/**
 * Starts one Coffer node.
 *
 * @param config - from `loadConfig`
 * @param opts - see {@link StartOptions}
 * @returns the running node
 * @throws on a storage, audit or listen failure at start-up (nothing is left running)
 */
export async function startServer(config: Readonly<ServerConfig>, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = createLogger({ level: config.logLevel, nodeId: config.nodeId, ...(opts.logDestination === undefined ? {} : { destination: opts.logDestination }) });
  for (const w of config.warnings) logger.warn(w);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const metrics = createMetrics({ collectDefault: true });
  const storage = await openStorage(config, logger, metrics);
  const life = new NodeLifecycle();
  life.onClose(() => storage.close());
  try {
    return await assemble(config, logger, metrics, storage, life);
  } catch (err) {
    await life.close();
    throw err;
  }
}

async function assemble(config: Readonly<ServerConfig>, logger: Logger, metrics: CofferMetrics, storage: OpenedStorage, life: NodeLifecycle): Promise<RunningServer> {
  const { store } = storage;
  const nodeId = config.nodeId;
  const closing = (): boolean => life.closing;

  // --- Audit, keys -----------------------------------------------------------------------------
  const audit = await AuditLog.open({ path: config.auditFile, nodeId, onWriteError: () => metrics.auditWriteFailures.inc() });
  storage.trail.attach(audit);
  life.onClose(() => audit.close());
  const keyring = createKeyring(config, logger, metrics, () => store.state);
  life.onClose(() => keyring.close());
  const keys = createPeerKeys(config);
  life.onClose(() => keys.destroy());

  // --- Raft member -----------------------------------------------------------------------------
  const addresses = new AddressBook(config, () => store.state);
  const calls = new PeerCalls({ nodeId, peerKey: keys.peerKey, raftAddrOf: (id) => addresses.raftAddrOf(id) });
  const removal = new Removal({ nodeId, dataDir: config.dataDir, logger, callPeer: (to, base, method, body) => calls.callPeer(to, base, method, body), closing });
  const events = new RaftEvents({ nodeId, logger, metrics, closing, fatal: (err) => life.failed(err) });
  const outbox = new Outbox();
  const { storage: raftStorage, durableLog } = await bootRaftLog(store, config);
  const applier = createApplier(store, (change) => removal.onMembershipApplied(change));
  const driver = new RaftDriver(driverOptions(config, logger), raftStorage, durableLog, applier, (msgs) => outbox.send(msgs), events);
  const isMember = (): boolean => driver.members().voters.includes(nodeId) || driver.members().learners.includes(nodeId);
  removal.noteMember(isMember());
  events.onApply(() => removal.noteMember(store.state.listMembers().some((m) => m.id === nodeId) || isMember()));

  // --- The parts the node context is made of ----------------------------------------------------
  const versions = new CommandVersions(nodeId, () => versionFloorOf(store.state));
  const proposer = new RaftProposer({ driver, versions, metrics, leaders: events, closing, firstLeaderWaitMs: config.electionMs * 2 });
  const cluster = new ClusterControl(config, driver, store, addresses);
  // Health means ready (readiness.ts): 200/429 only once this node can serve the next request.
  const readiness = new Readiness({
    leader: () => driver.leader(),
    leaderApiAddr: () => cluster.leaderApiAddr(),
    readBarrier: () => driver.readBarrier(),
    seeded: () => (config.bootstrapToken === undefined || store.state.bootstrapped) && (config.readAllowlist.length === 0 || store.state.hasAllowlist),
    isVoter: () => driver.members().voters.includes(nodeId),
    retryMs: 100,
    attemptMs: Math.max(200, config.heartbeatMs * 3),
  });
  life.onClose(() => readiness.stop());
  const lockoutRetainMs = Math.max(config.authWindowSecs, config.authLockoutSecs) * 1000;
  const lockout = new Lockout({
    policy: { enabled: config.authLockoutEnabled, maxFailures: config.authMaxFailures, windowMs: config.authWindowSecs * 1000, lockoutMs: config.authLockoutSecs * 1000 },
    now: () => Date.now(),
    state: () => store.state,
    isLeader: () => driver.isLeader(),
    propose: (key, at) => proposer.propose({ type: 'auth.failure', requestId: '', at, ip: key, retainMs: lockoutRetainMs }).then(() => undefined),
    report: (key, count) => calls.callLeader(driver.leader(), 'auth-failure', { ip: key, count }).then(() => undefined),
    warn: (msg, err) => logger.warn({ err: String(err) }, msg),
    onLocked: () => metrics.authLockouts.inc(),
  });
  const rpc = createPeerRpc({
    nodeId,
    versions,
    members: () => driver.members(),
    isLeader: () => driver.isLeader(),
    leader: () => driver.leader(),
    appliedIndex: () => store.applied,
    markSelfRemoved: (by) => removal.markSelfRemoved(by),
    propose: (cmd) => proposer.propose(cmd),
    reportedFailures: (key, count) => lockout.reported(key, count),
    addMember: (id, raftAddr, apiAddr) => cluster.addMember(id, raftAddr, apiAddr),
    sealed: () => keyring.seal?.isSealed() === true,
  });
  calls.answerLocally(rpc);
  const membership = new MembershipDuties({ config, driver, store, logger, metrics, calls, transferLeadership: (to) => cluster.transferLeadership(to), isRemoved: () => removal.isRemoved(driver.members()), closing, sealed: () => keyring.seal?.isSealed() === true, leaderTakesProposals: (lead) => proposer.leaderTakesProposals(lead) });
  const leaderDuties = new LeaderDuties({ config, driver, store, logger, propose: (cmd) => proposer.propose(cmd), closing });
  const forwarder = new Forwarder({ config, metrics, peerKey: keys.peerKey, verifier: keys.verifier, leader: () => driver.leader(), leaderApiAddr: () => cluster.leaderApiAddr(), firstLeader: (ready, ms) => events.firstLeader(ready, ms) });
  const workers = new Workers();
  // COFFER_SEAL=shamir: sealed at start (also after a restart), following the replicated seal config.
  const seal = await startNodeSeal({
    manager: keyring.seal, nodeId, logger, state: () => store.state, propose: (cmd) => proposer.propose(cmd), now: () => Date.now(),
    onUnsealed: () => driver.isLeader() && workers.onLeadership(), onApply: (fn) => events.onApply(fn), failed: (err) => life.failed(err),
  });

  // Reactions to a leader change, in this order (subscribed before any peer can be heard).
  events.onLeader((lead) => {
    forwarder.onLeaderChange(lead);
    readiness.onLeader(lead);
    if (lead === nodeId) void leaderDuties.run();
    if (lead === nodeId) workers.onLeadership();
    if (lead !== null && lead !== nodeId) void membership.sayHello(lead);
  });

  const link = await openPeerLink({
    config, metrics, logger, peerKey: keys.peerKey, verifier: keys.verifier, driver, outbox, raftAddrOf: (id) => addresses.raftAddrOf(id), removal, rpc,
    admitsHanded: (data) => versions.admitsHanded(data, driver.members()),
  });
  life.onClose(() => link.close());
  life.onClose(() => calls.close());
  life.onClose(() => lockout.close());
  membership.start();
  life.onClose(() => membership.stop());
  life.onClose(() => forwarder.close());

  const ctx = createNodeContext({
    env: { config, logger, metrics, audit },
    keyring,
    store,
    proposer,
    cluster,
    forwarding: forwarder,
    guards: { lockout },
    workers,
    lifecycle: {
      isClosing: closing,
      isReady: () => readiness.isReady() && !life.closing && seal?.isSealed() !== true,
      isRemoved: () => removal.isRemoved(driver.members()),
    },
    seal,
  });
  // Background workers (leader only; idle on followers).
  workers.start(ctx);
  life.onClose(() => workers.stop());

  // --- HTTP API --------------------------------------------------------------------------------
  const joins = new Joins({
    config,
    logger,
    metrics,
    peerKey: keys.peerKey,
    verifier: keys.verifier,
    dispatcher: calls.dispatcher,
    isLeader: () => driver.isLeader(),
    leaderApiAddr: () => cluster.leaderApiAddr(),
    members: () => driver.members(),
    raftAddrOf: (id) => addresses.raftAddrOf(id),
    hint: (id, raftAddr) => addresses.hint(id, raftAddr),
    addMember: (id, raftAddr, apiAddr) => cluster.addMember(id, raftAddr, apiAddr),
    closing,
  });
  const api = createApiListener(config, createApi(ctx), joins, closing);

  driver.start();
  life.onClose(() => driver.stop());
  const apiAddress = await listen(api.server, config.apiAddr.host, config.apiAddr.port);
  life.onClose(() => drainAndCloseApi(api.server, api.activity));
  logger.info({ api: apiAddress, raft: link.address, members: driver.members() }, `${nodeId} started`);

  if (config.join !== undefined && !removal.everMember && driver.members().voters.length === 0) void joins.join(config.join);

  let closed: Promise<void> | undefined;
  return {
    ctx,
    apiAddress,
    raftAddress: link.address,
    fatal: life.fatal,
    close(): Promise<void> {
      closed ??= (async () => {
        await membership.handOffLeadership();
        await life.close();
      })();
      return closed;
    },
  };
}
