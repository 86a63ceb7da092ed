/**
 * `coffer server`: assembles one node from its parts and runs it.
 *
 *   config ─► LevelDB store (Raft log + state) ─► Raft driver ◄─► peer transport / peer listener
 *                                                    │
 *   KMS provider + DEK cache ─► Envelopes ─► NodeContext ─► HTTP API (express)
 *
 * Start-up order matters: the store is opened (and a half-installed snapshot finished) before Raft
 * sees it; the peer listener starts before the driver ticks, so the first votes can arrive; the API
 * listens last. Shutdown runs the other way and waits for in-flight writes to LevelDB.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Server as NetServer, type AddressInfo } from 'node:net';
import { randomBytes as nodeRandomBytes } from 'node:crypto';
import { Agent, request } from 'undici';
import { createAwsProvider, createLocalProvider, DekCache, Envelopes, hashToken, type KeyProvider, type KmsHooks } from '@coffer/crypto';
import { type ConfChange, type Entry, type Message, type NodeId, type Status } from '@coffer/raft';
import { allVotersSupport, BASELINE_COMMAND_VERSIONS, type Command, type CommandResult, encodeCommand, type Integrity, type NodeStore, openNodeStore, readSavedSnapshot, type StateMachine, SUPPORTED_COMMAND_VERSIONS } from '@coffer/state';
import { AuditLog } from './audit/audit-log.js';
import { Lockout } from './auth/lockout.js';
import { Readiness } from './readiness.js';
import type { ServerConfig } from './config.js';
import type { MemberView, NodeContext, ReadConsistency } from './context.js';
import { ServiceError } from './http/errors.js';
import { createLogger, type Logger } from './logger.js';
import { createMetrics, type CofferMetrics } from './metrics.js';
import { IntegrityAuditTrail, loadStorageIntegrity, previousIntegrity } from './storage-integrity.js';
import { Allowlist, clientIp as clientAddress, normaliseIp, type ProxyTrust } from './net/allowlist.js';
import { bodyMatches, derivePeerKey, PeerVerifier, signPeerRequest } from './peer/auth.js';
import { type Applier, type ApplyOutcome, type DurableLog, DriverError, loadStorage, RaftDriver } from './raft/driver.js';
import { decodeMemberContext, encodeMemberContext, foundingLog } from './raft/members.js';
import { createPeerServer, type PeerRpc } from './raft/peer-server.js';
import { PeerTransport, RAFT_MESSAGES_PATH, RETURN_SIGNED_METHOD } from './raft/transport.js';
import { createApi } from './http/api.js';
import { acceptListMethod } from './http/list-method.js';
import { RewrapWorker } from './workers/rewrap.js';
import { RotationWorker } from './workers/rotation.js';
import { SnapshotWorker } from './workers/snapshots.js';
import { SecretService } from './service/secrets.js';

/** Version reported by health and metrics. */
export const COFFER_VERSION = '0.1.0';

/** API path a new node calls to be added (signed with the cluster key). */
const JOIN_PATH = '/v1/cluster/join';

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}

function readLimited(req: IncomingMessage, limit: number): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= limit) chunks.push(c);
    });
    req.on('end', () => resolve(size > limit ? null : new Uint8Array(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

/** Header with the original client IP of a request a follower forwarded to the leader. */
const FORWARDED_IP_HEADER = 'x-coffer-forwarded-ip';
/** Open API connections one node accepts (clients, balancers, forwarding members). */
const API_MAX_CONNECTIONS = 8192;

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

function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** How the API listener is doing, for a graceful close. */
interface ApiActivity {
  /** Requests received and not yet answered. */
  active: number;
  /** When the last request arrived (ms since the epoch). */
  lastAt: number;
}

/** Quiet time after the last request before idle keep-alive connections are closed. */
const DRAIN_QUIET_MS = 300;
/** Longest wait for that quiet time. */
const DRAIN_MAX_WAIT_MS = 3_000;
/** Longest wait for answers in flight before every connection is cut. */
const DRAIN_HARD_MS = 5_000;

/**
 * Closes the API listener without dropping requests clients already sent. node's `server.close()`
 * destroys every idle keep-alive connection at once, and a connection whose request bytes sit
 * unread in the socket buffer counts as idle; closing the listener also resets connections still
 * in the accept backlog. Either way a client would see a reset for a request it had sent. So:
 * keep answering (with `Connection: close`, set by the handler while closing; writes on the leader
 * get 503 `shutting_down`) until no request came for a moment (at most a few seconds); then stop
 * accepting, close idle connections, and cut the rest only after a hard deadline.
 */
async function drainAndCloseApi(server: Server, activity: ApiActivity): Promise<void> {
  const started = Date.now();
  while (Date.now() - started < DRAIN_MAX_WAIT_MS && (activity.active > 0 || Date.now() - activity.lastAt < DRAIN_QUIET_MS)) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const closed = new Promise<void>((resolve) => {
    NetServer.prototype.close.call(server, () => resolve());
  });
  server.closeIdleConnections();
  // Connections that finish their last answer become idle: close them as they do.
  const sweep = setInterval(() => server.closeIdleConnections(), 100);
  const hard = setTimeout(() => server.closeAllConnections(), DRAIN_HARD_MS);
  try {
    await closed;
  } finally {
    clearInterval(sweep);
    clearTimeout(hard);
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  });
}

function toServiceError(err: unknown, leader: string | null): Error {
  if (!(err instanceof DriverError)) return err as Error;
  switch (err.code) {
    case 'not_leader':
      return new ServiceError('no_leader', leader === null ? 'no leader is known; retry shortly' : 'this node is not the leader; retry', { retryAfterSecs: 1 });
    case 'dropped':
      return new ServiceError('no_leader', 'leadership changed before the write committed; it was not applied; retry', { retryAfterSecs: 1 });
    case 'outcome_unknown':
      return new ServiceError('outcome_unknown', err.message, { retryAfterSecs: 1 });
    case 'no_quorum':
      return new ServiceError('no_quorum', 'no quorum: the cluster cannot confirm the read right now', { retryAfterSecs: 1 });
    case 'stopped':
      return new ServiceError('shutting_down', 'the node is shutting down', { retryAfterSecs: 1 });
    case 'conf_change_pending':
      return new ServiceError('no_quorum', 'another membership change is in progress; retry when it completes', { retryAfterSecs: 1 });
    case 'invalid_conf_change':
      return new ServiceError('invalid_request', err.message);
  }
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
  const logger: Logger = createLogger({ level: config.logLevel, nodeId: config.nodeId, ...(opts.logDestination === undefined ? {} : { destination: opts.logDestination }) });
  for (const w of config.warnings) logger.warn(w);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const metrics: CofferMetrics = createMetrics({ collectDefault: true });

  // Storage below the barrier: every record and snapshot is tagged with keys derived from the
  // cluster key (or a KMS-wrapped root); the disk never holds them (storage-integrity.ts).
  const integrityAudit = new IntegrityAuditTrail();
  const integrity = await openStorageIntegrity(config, logger, metrics, integrityAudit);
  const previous = previousIntegrity(config);
  let store: NodeStore;
  try {
    store = await openNodeStore(path.join(config.dataDir, 'store'), integrity, { previous, adoptUntagged: config.integrityAdopt });
  } catch (err) {
    integrity.destroy();
    throw err;
  } finally {
    previous?.destroy();
  }
  if (store.adoption?.from === 'untagged') {
    logger.warn(
      { records: store.adoption.records, snapshotReencoded: store.adoption.snapshotReencoded },
      'ADOPTED a data dir written before storage integrity tags: every record it held was trusted as it was and is tagged from now on (one-time upgrade step; see docs/SECURITY.md)',
    );
  } else if (store.adoption?.from === 'rekeyed') {
    logger.warn({ records: store.adoption.records }, 're-tagged the data dir from COFFER_PREVIOUS_CLUSTER_KEY to COFFER_CLUSTER_KEY; unset COFFER_PREVIOUS_CLUSTER_KEY');
  }
  const cleanups: (() => Promise<void>)[] = [async () => integrity.destroy(), () => store.close()];
  const cleanup = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    cleanups.length = 0;
  };
  try {
    return await assemble(config, opts, logger, metrics, store, cleanups, cleanup, integrityAudit);
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** The integrity keys of this node's storage; refused records are logged (key only) and counted. */
function openStorageIntegrity(config: Readonly<ServerConfig>, logger: Logger, metrics: CofferMetrics, trail: IntegrityAuditTrail): Promise<Integrity> {
  return loadStorageIntegrity(config, {
    create: true,
    logger,
    onFailure: (f) => {
      metrics.integrityFailures.inc({ kind: f.kind });
      logger.error({ integrity: f.kind, record: f.key, action: f.action }, 'stored data failed its integrity check');
      trail.record(f);
    },
  });
}

async function assemble(
  config: Readonly<ServerConfig>,
  _opts: StartOptions,
  logger: Logger,
  metrics: CofferMetrics,
  store: NodeStore,
  cleanups: (() => Promise<void>)[],
  cleanup: () => Promise<void>,
  integrityAudit: IntegrityAuditTrail,
): Promise<RunningServer> {
  const nodeId = config.nodeId;
  let rewrapWorker: RewrapWorker | undefined;
  let snapshotWorker: SnapshotWorker | undefined;
  /** Command versions each member advertised (peer RPC `hello`); others are assumed at the baseline. */
  const peerCommands = new Map<NodeId, Readonly<Partial<Record<string, number>>>>();
  const audit = await AuditLog.open({ path: config.auditFile, nodeId, onWriteError: () => metrics.auditWriteFailures.inc() });
  integrityAudit.attach(audit);
  cleanups.push(() => audit.close());

  // --- KMS and envelopes ---------------------------------------------------------------------
  // Typed against the providers' seam: a misspelt hook name does not compile (it used to hide
  // behind a cast, and coffer_kms_* never moved).
  const kmsHooks: KmsHooks = {
    onKmsLatency: (op, seconds) => metrics.kmsDuration.observe({ op }, seconds),
    onKmsError: (op) => metrics.kmsErrors.inc({ op }),
  };
  const kms: KeyProvider =
    config.kmsMode === 'aws'
      ? createAwsProvider({ keyId: config.kmsKeyId as string, endpoint: config.kmsEndpoint, hooks: kmsHooks })
      : createLocalProvider({
          masterKeyBase64: config.localMasterKeys === undefined ? undefined : config.localMasterKeys.map((k) => Buffer.from(k).toString('base64')).join(','),
          onWarning: (m) => logger.warn(m),
          hooks: kmsHooks,
        });
  cleanups.push(async () => kms.close());
  const cache = new DekCache({
    ttlSecs: config.dekCacheTtlSecs,
    onHit: () => metrics.dekCacheHits.inc(),
    onMiss: () => metrics.dekCacheMisses.inc(),
    onEvict: () => metrics.dekCacheEvictions.inc(),
  });
  cleanups.push(async () => cache.clear());
  const envelopes = new Envelopes({ provider: kms, cache });

  // --- Raft ----------------------------------------------------------------------------------
  const clusterKey = config.clusterKey ?? new Uint8Array(nodeRandomBytes(32));
  const peerKey = derivePeerKey(clusterKey);
  const verifier = new PeerVerifier({ clusterKey, nodeId });
  cleanups.push(async () => {
    verifier.destroy();
    peerKey.fill(0);
  });

  const loaded = store.load();
  const bootLog = {
    hardState: loaded.hardState.term === 0 && loaded.hardState.commit === 0 && loaded.hardState.vote === null ? undefined : loaded.hardState,
    snapshot: loaded.snapshot === null ? undefined : { meta: loaded.snapshot, data: await readSnapshotData(store) },
    entries: loaded.entries as Entry[],
  };
  const founding = config.join === undefined ? foundingLog(config.initialCluster) : undefined;
  const { storage, fresh } = loadStorage(bootLog, founding);
  if (fresh && founding !== undefined) await store.log.append(founding.entries, founding.hardState, { sync: true });

  const durableLog: DurableLog = {
    append: (entries, hs, sync) => store.log.append(entries, hs, { sync }),
    saveSnapshot: (meta, data) => store.log.saveSnapshot(meta, data),
    compact: (index) => store.log.compact(index),
  };
  const applier: Applier = {
    appliedIndex: () => store.applied,
    apply: async (entries, confChanges) => applyEntries(store, entries, confChanges, (change) => onMembershipApplied(change)),
    snapshot: async () => (await store.createSnapshot()).data,
    restore: async (_index, data) => {
      await store.restoreSnapshot(data);
    },
  };

  // --- Removal ---------------------------------------------------------------------------------
  // A removed node stops serving (503 `removed`) and stays so across restarts (a marker file in
  // the data dir); members that see a removed node still sending Raft messages tell it again.
  const removedMarker = path.join(config.dataDir, 'REMOVED');
  let selfRemoved = existsSync(removedMarker);
  if (selfRemoved) logger.warn(`${nodeId} was removed from its cluster (${removedMarker} exists): it answers 503 to everything; wipe the data dir to reuse this machine`);
  /** Removed members by id: their Raft address and the log index of their removal. */
  const removedPeers = new Map<string, { raftAddr: string; index: number }>();
  const lastRemovedNotice = new Map<string, number>();
  function markSelfRemoved(by: string): void {
    if (selfRemoved) return;
    selfRemoved = true;
    try {
      writeFileSync(removedMarker, `removed from the cluster (told by ${by}) at ${new Date().toISOString()}\n`, { mode: 0o600 });
    } catch (err) {
      logger.error({ err: String(err) }, 'could not write the removal marker');
    }
    logger.warn(`${nodeId} was removed from the cluster (told by ${by}); it no longer serves`);
  }
  function onMembershipApplied(change: MembershipApplied): void {
    if (change.type !== 'remove') {
      // Re-added under the same id (e.g. after wiping its data dir): it is a member again.
      removedPeers.delete(change.id);
      if (change.id === nodeId && selfRemoved) {
        // This node, joining afresh under an id that was removed before, replayed that old
        // removal from the log while catching up; the later addition supersedes it.
        selfRemoved = false;
        rmSync(removedMarker, { force: true });
        logger.info(`${nodeId} was added to the cluster again`);
      }
      return;
    }
    if (change.id === nodeId) {
      markSelfRemoved('its own log');
      return;
    }
    if (change.raftAddr === '') return;
    const removed = { raftAddr: change.raftAddr, index: change.index };
    removedPeers.set(change.id, removed);
    void notifyRemoved(change.id, removed);
  }
  async function notifyRemoved(id: string, removed: { raftAddr: string; index: number }): Promise<void> {
    const now = Date.now();
    if (now - (lastRemovedNotice.get(id) ?? 0) < 1_000 || closing) return;
    lastRemovedNotice.set(id, now);
    for (let attempt = 0; attempt < 3 && !closing; attempt++) {
      try {
        if ((await callPeer(id, removed.raftAddr, 'removed', { index: removed.index })).status === 200) return;
      } catch {
        // down or unreachable: it will be told when it next sends a Raft message
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }

  const initialUrls = new Map(config.initialCluster.map((m) => [m.id, m.raftUrl]));
  const raftAddrOf = (id: NodeId): string | undefined => {
    const m = store.state.listMembers().find((x) => x.id === id);
    if (m !== undefined && m.raftAddr !== '') return m.raftAddr;
    return initialUrls.get(id) ?? joinHints.get(id);
  };
  const joinHints = new Map<NodeId, string>();

  let fatalResolve: (e: unknown) => void = () => undefined;
  const fatal = new Promise<unknown>((r) => (fatalResolve = r));
  let transport: PeerTransport | undefined;
  /** Requests being forwarded to the leader, so that a leader change can cut them short. */
  const forwards = new Set<{ leader: string; abort: AbortController; timer: NodeJS.Timeout | undefined }>();
  // A node that has just started knows no leader until the first heartbeat arrives (or its first
  // election ends): requests that need the leader wait for it, up to a bound, instead of failing
  // at once. Once a leader has been seen, a node without one answers 503 at once (no quorum, or an
  // election under way): clients retry elsewhere rather than pile up here.
  const leaderWaiters = new Set<() => void>();
  let sawLeader = false;
  // Health means ready (readiness.ts): 200/429 only once this node can serve the next request.
  const readiness = new Readiness({
    leader: () => driver.leader(),
    leaderApiAddr: () => ctx.leaderApiAddr(),
    readBarrier: () => driver.readBarrier(),
    seeded: () => (config.bootstrapToken === undefined || store.state.bootstrapped) && (config.readAllowlist.length === 0 || store.state.hasAllowlist),
    isVoter: () => driver.members().voters.includes(nodeId),
    retryMs: 100,
    attemptMs: Math.max(200, config.heartbeatMs * 3),
  });
  cleanups.push(async () => readiness.stop());
  /** Until a leader was first seen: resolves once `ready()` holds or `ms` have passed. */
  async function waitUntil(ready: () => boolean, ms: number): Promise<void> {
    if (sawLeader) return;
    const deadline = Date.now() + ms;
    while (!ready() && !closing) {
      const left = deadline - Date.now();
      if (left <= 0) return;
      await new Promise<void>((resolve) => {
        // Leader changes wake the wait; the short poll covers what arrives by apply (a member's
        // API address in the address book).
        const wake = (): void => {
          leaderWaiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, Math.min(left, 50));
        leaderWaiters.add(wake);
      });
    }
  }
  // Ticks of ~1/10 heartbeat: the randomised election timeout is drawn in ticks, and with only
  // 20 possible values two followers drew the same one 1 time in 20 and split the vote after a
  // leader failure (recovery then took a second election timeout). 100 values: 1 in 100.
  const tickMs = Math.max(5, Math.round(config.heartbeatMs / 10));
  const driver = new RaftDriver(
    {
      nodeId,
      tickMs,
      heartbeatTicks: Math.max(1, Math.round(config.heartbeatMs / tickMs)),
      electionTicks: Math.max(3, Math.round(config.electionMs / tickMs)),
      snapshotEntries: config.snapshotEntries,
      snapshotCatchUpEntries: config.snapshotCatchUpEntries,
      logger: {
        debug: (m) => logger.debug(m),
        info: (m) => logger.info(m),
        warn: (m) => logger.warn(m),
      },
    },
    storage,
    durableLog,
    applier,
    (msgs: Message[]) => transport?.send(msgs),
    {
      onLeaderChange: (lead, term) => {
        metrics.raftLeaderChanges.inc();
        metrics.raftIsLeader.set(lead === nodeId ? 1 : 0);
        metrics.raftTerm.set(term);
        logger.info({ lead, term }, `${nodeId} sees leader ${lead ?? 'none'} at term ${term}`);
        // A request forwarded to a leader this node no longer follows would otherwise wait out
        // the forwarding timeout (e.g. the old leader is paused). A live old leader answers within
        // moments (a transfer it ran, a write it committed just before stepping down), so give it
        // one election timeout, then answer 503 outcome unknown.
        for (const f of forwards) {
          if (f.leader !== lead && f.timer === undefined) {
            f.timer = setTimeout(() => f.abort.abort(), config.electionMs);
            f.timer.unref();
          }
        }
        readiness.onLeader(lead);
        if (lead === nodeId) void leaderDuties();
        if (lead === nodeId) rewrapWorker?.onLeadership();
        if (lead !== null && lead !== nodeId) void sayHello(lead);
        if (lead !== null) {
          sawLeader = true;
          for (const wake of [...leaderWaiters]) wake();
        }
      },
      onApplied: (index) => {
        metrics.raftAppliedIndex.set(index);
        if (store.state.listMembers().some((m) => m.id === nodeId) || driver.members().voters.includes(nodeId) || driver.members().learners.includes(nodeId)) wasMember = true;
      },
      onSnapshot: (index, bytes) => logger.info({ index, bytes }, 'snapshot taken, log compacted'),
      onSnapshotSent: (to, index) => {
        metrics.raftSnapshotsSent.inc();
        logger.info({ to, index }, `sending snapshot at index ${index} to ${to}`);
      },
      onSnapshotInstalled: (index) => {
        metrics.raftSnapshotsInstalled.inc();
        logger.info({ index }, `installed snapshot at index ${index} from the leader`);
      },
      onFatal: (err) => {
        logger.fatal({ err: String((err as Error)?.stack ?? err) }, 'raft driver stopped: the node cannot continue safely');
        fatalResolve(err);
      },
    },
  );
  let wasMember = driver.members().voters.includes(nodeId) || driver.members().learners.includes(nodeId);
  transport = new PeerTransport({
    nodeId,
    peerKey,
    resolve: raftAddrOf,
    onUnreachable: (id) => driver.reportUnreachable(id),
    onError: (id, kind) => metrics.peerRpcErrors.inc({ peer: id, kind }),
    verifyReturn: (peer, headers, body) => {
      const v = verifier.verify({ method: RETURN_SIGNED_METHOD, path: RAFT_MESSAGES_PATH, headers, body });
      if (!v.ok) metrics.peerRefusals.inc({ reason: v.reason });
      return v.ok && v.from === peer;
    },
    onReturned: (from, msgs) => receiveMessages(from, msgs),
    onSent: (id, messages, bytes) => {
      metrics.peerRequests.inc({ peer: id });
      metrics.peerMessages.inc({ peer: id }, messages);
      metrics.peerBytes.inc({ peer: id }, bytes);
    },
  });
  cleanups.push(async () => transport?.close());

  // Peer RPCs besides Raft messages (each authenticated by the peer server before it gets here).
  const rpc: PeerRpc = async (from, method, body) => {
    // Every RPC body is a JSON object (a member's JSON `null` or array would otherwise throw below).
    if (typeof body !== 'object' || body === null || Array.isArray(body)) return { status: 400, body: { error: 'peer rpc bodies are JSON objects' } };
    if (method === 'hello') {
      // A member advertises the command versions it can apply (upgrade gating, see `propose`).
      const table = parseCommandTable((body as { commands?: unknown }).commands);
      if (table === undefined) return { status: 400, body: { error: 'bad hello body' } };
      peerCommands.set(from, table);
      return { status: 200, body: {} };
    }
    if (method === 'removed') {
      // A voter tells this node it was removed from the configuration (it may never see the
      // committed removal itself: the leader stops replicating to it).
      if (from === nodeId || !driver.members().voters.includes(from)) return { status: 403, body: { error: 'only a voter may say so' } };
      // The removal must be news: a node that has applied entries past it was added again since
      // (a lagging member's stale word must not remove it).
      const index = (body as { index?: unknown }).index;
      if (typeof index !== 'number' || !Number.isSafeInteger(index) || index <= store.applied) return { status: 409, body: { error: 'stale removal' } };
      markSelfRemoved(from);
      return { status: 200, body: {} };
    }
    if (!driver.isLeader()) return { status: 421, body: { leader: driver.leader() } };
    switch (method) {
      case 'register': {
        const b = body as { raftAddr?: unknown; apiAddr?: unknown };
        if (typeof b.raftAddr !== 'string' || typeof b.apiAddr !== 'string') return { status: 400, body: { error: 'bad register body' } };
        await ctx.propose({ type: 'member.upsert', requestId: `register:${from}:${b.raftAddr}:${b.apiAddr}`, at: Date.now(), id: from, raftAddr: b.raftAddr, apiAddr: b.apiAddr });
        return { status: 200, body: {} };
      }
      case 'auth-failure': {
        // `ip` is a lockout key (an address or an IPv6 /64); `count` failures since the last report
        // (a member from before reports were batched sends one at a time, without a count).
        const b = body as { ip?: unknown; count?: unknown };
        const count = b.count === undefined ? 1 : b.count;
        if (typeof b.ip !== 'string' || !/^[0-9a-fA-F.:]{2,45}(\/64)?$/.test(b.ip) || typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
          return { status: 400, body: { error: 'bad auth-failure body' } };
        }
        lockout.reported(b.ip, count);
        return { status: 200, body: {} };
      }
      case 'join': {
        const b = body as { raftAddr?: unknown; apiAddr?: unknown };
        if (typeof b.raftAddr !== 'string' || typeof b.apiAddr !== 'string') return { status: 400, body: { error: 'bad join body' } };
        await ctx.addMember(from, b.raftAddr, b.apiAddr);
        return { status: 200, body: {} };
      }
      default:
        return { status: 404, body: { error: 'unknown peer rpc' } };
    }
  };

  function receiveMessages(from: NodeId, msgs: Message[]): void {
    const removed = removedPeers.get(from);
    if (removed !== undefined) {
      // A removed member still talking (it missed the news, e.g. it was down): tell it again.
      void notifyRemoved(from, removed);
      return;
    }
    driver.step(msgs);
  }

  const peerServer = createPeerServer({
    verifier,
    nodeId,
    onMessages: (from, msgs) => receiveMessages(from, msgs),
    holdReturn: (from, respond) => {
      if (transport === undefined) respond(null);
      else transport.holdReturn(from, respond);
    },
    onRefused: (reason) => metrics.peerRefusals.inc({ reason }),
    rpc,
  });
  const raftAddress = await listen(peerServer, config.raftAddr.host, config.raftAddr.port);
  cleanups.push(() => closeServer(peerServer));

  // --- Peer calls (register, auth failures, join) --------------------------------------------
  const rpcAgent = new Agent({ connections: 2, headersTimeout: 5_000, bodyTimeout: 5_000, connectTimeout: 2_000 });
  cleanups.push(() => rpcAgent.close());
  async function callPeer(to: NodeId, base: string, method: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const bytes = new TextEncoder().encode(JSON.stringify(body));
    const p = `/raft/v1/rpc/${method}`;
    const headers = signPeerRequest(peerKey, { method: 'POST', path: p, from: nodeId, to, body: bytes });
    const res = await request(new URL(p, base), { method: 'POST', body: bytes, headers: { ...headers, 'content-type': 'application/json' }, dispatcher: rpcAgent });
    const text = await res.body.text();
    let parsed: unknown = {};
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = {};
    }
    return { status: res.statusCode, body: parsed };
  }
  async function callLeader(method: string, body: unknown): Promise<boolean> {
    const lead = driver.leader();
    if (lead === null) return false;
    if (lead === nodeId) {
      const r = await rpc(nodeId, method, body);
      return r.status === 200;
    }
    const base = raftAddrOf(lead);
    if (base === undefined) return false;
    const r = await callPeer(lead, base, method, body);
    return r.status === 200;
  }

  /** Tells the leader which command versions this build applies (retried a few times). */
  async function sayHello(lead: NodeId): Promise<void> {
    for (let attempt = 0; attempt < 5 && !closing && driver.leader() === lead; attempt++) {
      try {
        if (await callLeader('hello', { commands: SUPPORTED_COMMAND_VERSIONS })) return;
      } catch (err) {
        logger.debug({ err: String(err) }, 'hello to the leader failed; retrying');
      }
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
    }
  }

  // --- Proposals -----------------------------------------------------------------------------
  const lockoutRetainMs = Math.max(config.authWindowSecs, config.authLockoutSecs) * 1000;
  const lockout = new Lockout({
    policy: { enabled: config.authLockoutEnabled, maxFailures: config.authMaxFailures, windowMs: config.authWindowSecs * 1000, lockoutMs: config.authLockoutSecs * 1000 },
    now: () => Date.now(),
    state: () => store.state,
    isLeader: () => driver.isLeader(),
    propose: async (key, at) => {
      await ctx.propose({ type: 'auth.failure', requestId: '', at, ip: key, retainMs: lockoutRetainMs });
    },
    report: async (key, count) => {
      await callLeader('auth-failure', { ip: key, count });
    },
    warn: (msg, err) => logger.warn({ err: String(err) }, msg),
    onLocked: () => metrics.authLockouts.inc(),
  });
  cleanups.push(async () => lockout.close());

  let closing = false;
  let registering = false;
  async function leaderDuties(): Promise<void> {
    // A new leader first commits an entry of its own term (raft does that); then it makes sure the
    // cluster's seeds exist. Both are idempotent through consensus, so every node may try. Retried
    // while this node leads: right after an election the followers may not have said which
    // command versions they apply yet (upgrade gating), and readiness waits for the seeds.
    const term = driver.status().term;
    for (let attempt = 1; driver.isLeader() && driver.status().term === term && !closing; attempt++) {
      try {
        await driver.readBarrier();
        if (config.bootstrapToken !== undefined && !store.state.bootstrapped) {
          await ctx.propose({ type: 'bootstrap', requestId: `bootstrap:${Buffer.from(hashToken(config.bootstrapToken)).toString('hex')}`, at: Date.now(), tokenHash: hashToken(config.bootstrapToken), cidrs: [...config.readAllowlist] });
          logger.info('bootstrap seed applied: role admin and token bootstrap-admin exist');
        }
        if (config.readAllowlist.length > 0 && !store.state.hasAllowlist) {
          // COFFER_READ_ALLOWLIST seeds a new cluster even without a bootstrap token.
          await ctx.propose({ type: 'allowlist.seed', requestId: `allowlist-seed:${config.readAllowlist.join(',')}`, at: Date.now(), cidrs: [...config.readAllowlist] });
          logger.info({ cidrs: config.readAllowlist }, 'read allowlist seeded from COFFER_READ_ALLOWLIST');
        }
        warnIfAllowlistDiffers();
        return;
      } catch (err) {
        if (attempt === 1 || attempt % 50 === 0) logger.warn({ err: String(err), attempt }, 'leader start-up duties failed; retrying while this node leads');
        await new Promise((r) => setTimeout(r, 200).unref());
      }
    }
  }

  let allowlistWarned = false;
  /** COFFER_READ_ALLOWLIST only seeds a new cluster: say loudly when it no longer matches. */
  function warnIfAllowlistDiffers(): void {
    if (allowlistWarned || config.readAllowlist.length === 0 || !store.state.hasAllowlist) return;
    const replicated = [...store.state.getAllowlist()].sort().join(',');
    if (replicated === [...config.readAllowlist].sort().join(',')) return;
    allowlistWarned = true;
    logger.warn(
      { configured: config.readAllowlist, replicated: store.state.getAllowlist() },
      'COFFER_READ_ALLOWLIST differs from the replicated read allowlist, which is what is enforced: the variable only seeds a new cluster; change the list with PUT /v1/allowlist (coffer allowlist set) and update or remove the variable',
    );
  }

  async function registerSelf(): Promise<void> {
    if (registering || closing) return;
    const me = store.state.listMembers().find((m) => m.id === nodeId);
    const isMember = driver.members().voters.includes(nodeId) || driver.members().learners.includes(nodeId);
    if (!isMember || (me !== undefined && me.apiAddr === config.advertiseApi && me.raftAddr === config.advertiseRaft)) return;
    registering = true;
    try {
      await callLeader('register', { raftAddr: config.advertiseRaft, apiAddr: config.advertiseApi });
    } catch (err) {
      logger.debug({ err: String(err) }, 'member registration will be retried');
    } finally {
      registering = false;
    }
  }

  // --- Membership ----------------------------------------------------------------------------
  async function promoteCaughtUpLearners(): Promise<void> {
    if (!driver.isLeader()) return;
    const st = driver.status();
    const cs = driver.members();
    for (const id of cs.learners) {
      const p = st.progress?.[id];
      // Only a learner that has acknowledged entries and is being replicated to (not probed, not
      // mid-snapshot) can be caught up; a brand-new one starts with matchIndex 0.
      if (p === undefined || !p.recentActive || p.state !== 'replicate' || p.matchIndex === 0) continue;
      // Caught up: within a small distance of the leader's commit index.
      if (p.matchIndex + 10 < st.commit) continue;
      const m = store.state.listMembers().find((x) => x.id === id);
      try {
        await driver.proposeConfChange({ type: 'addVoter', nodeId: id, context: encodeMemberContext({ raftAddr: m?.raftAddr ?? '', apiAddr: m?.apiAddr ?? '' }) });
        logger.info({ member: id }, `promoted learner ${id} to voter`);
      } catch (err) {
        logger.debug({ err: String(err) }, 'promotion will be retried');
      }
      return; // one change at a time
    }
  }

  const housekeeping = setInterval(() => {
    void registerSelf();
    void promoteCaughtUpLearners();
    const st = driver.status();
    metrics.raftCommitIndex.set(st.commit);
    metrics.raftTerm.set(st.term);
  }, 500);
  cleanups.push(async () => clearInterval(housekeeping));

  // --- The context the HTTP layer uses -------------------------------------------------------
  const forwardAgent = new Agent({ connections: 64, headersTimeout: 15_000, bodyTimeout: 15_000, connectTimeout: 2_000, keepAliveTimeout: 30_000 });
  cleanups.push(() => forwardAgent.close());
  /** Per request: its client IP, and for a member's forward the signed body hash (or why it was refused). */
  const forwardedIps = new WeakMap<IncomingMessage, { ip: string | undefined; bodyHash: string | undefined; error: ServiceError | undefined }>();
  const proxyTrust: ProxyTrust = { trustDirectPeer: config.trustProxy, proxies: Allowlist.from(config.trustedProxies) };

  const ctx: NodeContext = {
    config,
    logger,
    metrics,
    audit,
    envelopes,
    kms,
    get state(): StateMachine {
      return store.state;
    },
    readSealed: (name, version) => store.readSealed(name, version),
    now: () => Date.now(),
    isLeader: () => driver.isLeader(),
    leaderId: () => driver.leader(),
    leaderApiAddr: () => {
      const lead = driver.leader();
      if (lead === null) return undefined;
      if (lead === nodeId) return config.advertiseApi;
      const m = store.state.listMembers().find((x) => x.id === lead);
      return m !== undefined && m.apiAddr !== '' ? m.apiAddr : undefined;
    },
    async propose(cmd: Command): Promise<CommandResult> {
      if (closing) throw new ServiceError('shutting_down', 'the node is shutting down', { retryAfterSecs: 1 });
      // Upgrade gating: never propose a command version some voter cannot apply (it would stop).
      const cs = driver.members();
      const tables = [...cs.voters, ...cs.learners].map((id) => (id === nodeId ? SUPPORTED_COMMAND_VERSIONS : (peerCommands.get(id) ?? BASELINE_COMMAND_VERSIONS)));
      if (!allVotersSupport(cmd.type, tables)) {
        throw new ServiceError('upgrade_pending', `not every member can apply ${cmd.type} v${SUPPORTED_COMMAND_VERSIONS[cmd.type]} yet: finish upgrading every node first`, { retryAfterSecs: 5 });
      }
      const started = process.hrtime.bigint();
      let outcome = 'ok';
      try {
        const out = (await driver.propose(encodeCommand(cmd))) as { result?: CommandResult } | undefined;
        if (out === undefined || out.result === undefined) throw new ServiceError('internal', 'the write was applied without a result');
        return out.result;
      } catch (err) {
        outcome = err instanceof DriverError ? err.code : 'error';
        throw toServiceError(err, driver.leader());
      } finally {
        metrics.raftProposalDuration.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    },
    async readBarrier(consistency: ReadConsistency): Promise<void> {
      if (consistency === 'stale') return;
      await waitUntil(() => driver.leader() !== null, config.electionMs * 2);
      try {
        await driver.readBarrier();
      } catch (err) {
        throw toServiceError(err, driver.leader());
      }
    },
    async forwardToLeader(req: IncomingMessage, res: ServerResponse, target: { readonly path: string; readonly body: Uint8Array | undefined }): Promise<void> {
      await waitUntil(() => driver.leader() !== null && ctx.leaderApiAddr() !== undefined, config.electionMs * 2);
      const lead = driver.leader();
      const base = ctx.leaderApiAddr();
      if (lead === null || base === undefined || lead === nodeId) throw new ServiceError('no_leader', 'no leader is known; retry shortly', { retryAfterSecs: 1 });
      if (req.headers[FORWARDED_IP_HEADER] !== undefined) throw new ServiceError('no_leader', 'leadership is moving; retry shortly', { retryAfterSecs: 1 });
      const ip = ctx.clientIp(req) ?? '';
      const method = req.method ?? 'GET';
      const headers: Record<string, string> = {};
      for (const h of ['authorization', 'x-vault-token', 'content-type', 'x-request-id', 'accept']) {
        const v = req.headers[h];
        if (typeof v === 'string') headers[h] = v;
      }
      // Signed over exactly what is sent: method, path and query as sent, the body, the client IP.
      const signed = signPeerRequest(peerKey, { method, path: `FWD ${ip} ${target.path}`, from: nodeId, to: lead, body: target.body });
      Object.assign(headers, signed, { [FORWARDED_IP_HEADER]: ip });
      let upstream;
      const fwd: { leader: string; abort: AbortController; timer: NodeJS.Timeout | undefined } = { leader: lead, abort: new AbortController(), timer: undefined };
      forwards.add(fwd);
      try {
        // The dispatcher sends `path` byte for byte (no URL normalisation between signing and sending).
        upstream = await forwardAgent.request({
          origin: new URL(base).origin,
          path: target.path,
          method: method as 'GET',
          headers,
          ...(target.body === undefined ? {} : { body: target.body }),
          signal: fwd.abort.signal,
        });
      } catch (err) {
        if (fwd.abort.signal.aborted) {
          throw new ServiceError('outcome_unknown', 'leadership changed while the request was with the old leader; it may or may not have been applied', { retryAfterSecs: 1, cause: err });
        }
        throw new ServiceError('no_leader', 'the leader could not be reached; retry shortly', { retryAfterSecs: 1, cause: err });
      } finally {
        forwards.delete(fwd);
        if (fwd.timer !== undefined) clearTimeout(fwd.timer);
      }
      res.statusCode = upstream.statusCode;
      for (const [k, v] of Object.entries(upstream.headers)) {
        if (v === undefined || k === 'connection' || k === 'keep-alive' || k === 'transfer-encoding') continue;
        res.setHeader(k, v as string | string[]);
      }
      for await (const chunk of upstream.body) res.write(chunk);
      res.end();
    },
    clientIp(req: IncomingMessage): string | undefined {
      const known = forwardedIps.get(req);
      if (known !== undefined) {
        if (known.error !== undefined) throw known.error;
        return known.ip;
      }
      const fwd = req.headers[FORWARDED_IP_HEADER];
      if (fwd === undefined) {
        const ip = clientAddress(req, proxyTrust);
        forwardedIps.set(req, { ip, bodyHash: undefined, error: undefined });
        return ip;
      }
      // A member's forward: believed only when its signature over what was sent verifies; anything
      // else is refused, never read as the socket's address (the forwarding member's, allowlisted).
      const v = typeof fwd === 'string' ? verifier.verify({ method: req.method ?? 'GET', path: `FWD ${fwd} ${req.url ?? '/'}`, headers: req.headers }) : ({ ok: false, reason: 'malformed' } as const);
      if (!v.ok) {
        metrics.peerRefusals.inc({ reason: v.reason });
        const error = new ServiceError('invalid_forward', 'this request claims to be forwarded by a cluster member, but its signature does not verify');
        forwardedIps.set(req, { ip: undefined, bodyHash: undefined, error });
        throw error;
      }
      const ip = normaliseIp(fwd === '' ? undefined : (fwd as string));
      forwardedIps.set(req, { ip, bodyHash: v.bodyHash, error: undefined });
      return ip;
    },
    checkForwardedBody(req: IncomingMessage, body: Uint8Array): void {
      const known = forwardedIps.get(req);
      if (known?.bodyHash === undefined) return;
      if (!bodyMatches({ bodyHash: known.bodyHash }, body)) {
        metrics.peerRefusals.inc({ reason: 'bad_signature' });
        throw new ServiceError('invalid_forward', 'the body of this forwarded request is not the one its sender signed');
      }
    },
    lockout,
    requestRewrapPass: () => rewrapWorker?.requestPass() ?? false,
    snapshotSchedule: () => {
      if (snapshotWorker === undefined) throw new Error('the snapshot worker is built before the API listens');
      return snapshotWorker.status();
    },
    raftStatus: (): Status => driver.status(),
    confState: () => driver.members(),
    members(): MemberView[] {
      const st = driver.status();
      const cs = driver.members();
      const book = new Map(store.state.listMembers().map((m) => [m.id, m]));
      const view = (id: string, suffrage: 'voter' | 'learner'): MemberView => {
        const p = st.progress?.[id];
        const m = book.get(id);
        const healthy = id === nodeId ? true : p !== undefined ? p.recentActive : id === st.lead;
        return {
          id,
          raftAddr: m?.raftAddr || initialUrls.get(id) || '',
          apiAddr: m?.apiAddr || (id === nodeId ? config.advertiseApi : ''),
          suffrage,
          matchIndex: p === undefined ? (id === nodeId ? st.lastIndex : null) : p.matchIndex,
          healthy,
        };
      };
      return [...cs.voters.map((id) => view(id, 'voter')), ...cs.learners.map((id) => view(id, 'learner'))].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    },
    async addMember(id: string, raftAddr: string, apiAddr: string): Promise<void> {
      const cs = driver.members();
      if (cs.voters.includes(id) || cs.learners.includes(id)) return;
      joinHints.set(id, raftAddr);
      try {
        await driver.proposeConfChange({ type: 'addLearner', nodeId: id, context: encodeMemberContext({ raftAddr, apiAddr }) });
      } catch (err) {
        throw toServiceError(err, driver.leader());
      }
    },
    async removeMember(id: string): Promise<void> {
      const cs = driver.members();
      if (!cs.voters.includes(id) && !cs.learners.includes(id)) throw new ServiceError('not_found', `member ${id} is not in the cluster`);
      try {
        await driver.proposeConfChange({ type: 'remove', nodeId: id, context: new Uint8Array(0) });
      } catch (err) {
        throw toServiceError(err, driver.leader());
      }
    },
    async transferLeadership(to: string | undefined): Promise<string> {
      const st = driver.status();
      let target = to;
      if (target === undefined) {
        let best = -1;
        for (const id of driver.members().voters) {
          if (id === nodeId) continue;
          const m = st.progress?.[id]?.matchIndex ?? -1;
          if (m > best) {
            best = m;
            target = id;
          }
        }
      }
      if (target === undefined) throw new ServiceError('invalid_request', 'there is no other voter to hand leadership to');
      if (!driver.members().voters.includes(target)) throw new ServiceError('invalid_request', `${target} is not a voter`);
      if (target === nodeId) return nodeId;
      driver.transferLeadership(target);
      const deadline = Date.now() + config.electionMs * 3;
      while (Date.now() < deadline) {
        if (driver.leader() === target) return target;
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new ServiceError('no_quorum', `leadership did not move to ${target} in time`, { retryAfterSecs: 1 });
    },
    isClosing: () => closing,
    isReady: () => readiness.isReady() && !closing,
    isRemoved: () => selfRemoved || (wasMember && !driver.members().voters.includes(nodeId) && !driver.members().learners.includes(nodeId)),
    snapshot: () => store.createSnapshot(),
  };

  // --- background workers (leader only; idle on followers) -------------------------------------
  rewrapWorker = new RewrapWorker(ctx);
  rewrapWorker.start();
  cleanups.push(() => rewrapWorker?.stop() ?? Promise.resolve());
  const rotationWorker = new RotationWorker(ctx, new SecretService(ctx));
  rotationWorker.start();
  cleanups.push(() => rotationWorker.stop());
  snapshotWorker = new SnapshotWorker(ctx);
  snapshotWorker.start();
  cleanups.push(() => snapshotWorker?.stop() ?? Promise.resolve());

  // --- HTTP API ------------------------------------------------------------------------------
  const app = createApi(ctx);
  const apiActivity: ApiActivity = { active: 0, lastAt: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    apiActivity.active++;
    apiActivity.lastAt = Date.now();
    res.once('close', () => apiActivity.active--);
    res.setHeader('x-coffer-node-id', nodeId);
    if (closing) res.setHeader('connection', 'close');
    if (req.method === 'POST' && req.url === JOIN_PATH) {
      void handleJoin(req, res).catch((err) => {
        logger.warn({ err: String(err) }, 'join request failed');
        if (!res.headersSent) sendJson(res, 503, { error: { code: 'no_leader', message: 'the join could not be completed; retry' } });
      });
      return;
    }
    (app as unknown as (rq: IncomingMessage, rs: ServerResponse) => void)(req, res);
  };

  // The join endpoint lives on the API port (COFFER_JOIN names an API URL) but is authenticated
  // with the cluster key like every peer RPC; it accepts no client token.
  async function handleJoin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // The signed headers first (they carry the body's hash): an unauthenticated body is never read.
    const v = verifier.verify({ method: 'POST', path: JOIN_PATH, headers: req.headers });
    const refused = { error: { code: 'invalid_token', message: 'join requests must be signed with the cluster key' } };
    if (!v.ok) {
      metrics.peerRefusals.inc({ reason: v.reason });
      res.setHeader('connection', 'close');
      return sendJson(res, 401, refused);
    }
    const body = await readLimited(req, 64 * 1024);
    if (body === null) return sendJson(res, 413, { error: { code: 'body_too_large', message: 'join request too large' } });
    if (!bodyMatches(v, body)) {
      metrics.peerRefusals.inc({ reason: 'bad_signature' });
      return sendJson(res, 401, refused);
    }
    if (!driver.isLeader()) return sendJson(res, 421, { leaderApiAddr: ctx.leaderApiAddr() ?? '' });
    let parsed: { raftAddr?: unknown; apiAddr?: unknown };
    try {
      parsed = JSON.parse(new TextDecoder().decode(body)) as typeof parsed;
    } catch {
      return sendJson(res, 400, { error: { code: 'invalid_json', message: 'join body is not JSON' } });
    }
    if (typeof parsed.raftAddr !== 'string' || typeof parsed.apiAddr !== 'string') {
      return sendJson(res, 400, { error: { code: 'invalid_request', message: 'join needs raftAddr and apiAddr' } });
    }
    await ctx.addMember(v.from, parsed.raftAddr, parsed.apiAddr);
    // The new member knows no peer address until the first snapshot or entries reach it: tell it
    // where the members' Raft listeners are, or it cannot answer the leader.
    const members = driver.members();
    const peers = [...members.voters, ...members.learners]
      .filter((id) => id !== v.from)
      .map((id) => ({ id, raftAddr: id === nodeId ? config.advertiseRaft : (raftAddrOf(id) ?? '') }))
      .filter((m) => m.raftAddr !== '');
    sendJson(res, 200, { id: v.from, members: peers });
  }
  // Slow clients cannot hold the node: headers within 10 s, a whole request (a restore included)
  // within 5 min, and at most API_MAX_CONNECTIONS open connections.
  const serverOptions = { keepAliveTimeout: 65_000, headersTimeout: 10_000, requestTimeout: 300_000 };
  const apiServer: Server = config.tls === undefined
    ? createHttpServer(serverOptions, handler)
    : (createHttpsServer({ cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile), ...serverOptions }, handler) as unknown as Server);
  apiServer.maxConnections = API_MAX_CONNECTIONS;

  acceptListMethod(apiServer);

  driver.start();
  cleanups.push(async () => driver.stop());
  const apiAddress = await listen(apiServer, config.apiAddr.host, config.apiAddr.port);
  cleanups.push(() => drainAndCloseApi(apiServer, apiActivity));
  logger.info({ api: apiAddress, raft: raftAddress, members: driver.members() }, `${nodeId} started`);

  if (config.join !== undefined && !wasMember && driver.members().voters.length === 0) void joinCluster(config.join);

  async function joinCluster(joinUrl: string): Promise<void> {
    // Ask the member at COFFER_JOIN (and then whichever leader it names) to add this node as a
    // learner. Retried until it succeeds or the node stops.
    let target = joinUrl;
    for (let attempt = 0; !closing; attempt++) {
      try {
        const health = await request(new URL('/v1/sys/health?standbyok=true', target), { method: 'GET', dispatcher: rpcAgent });
        await health.body.dump();
        const peerId = health.headers['x-coffer-node-id'];
        if (typeof peerId !== 'string') throw new Error(`${target} did not name itself`);
        const bytes = new TextEncoder().encode(JSON.stringify({ raftAddr: config.advertiseRaft, apiAddr: config.advertiseApi }));
        const headers = signPeerRequest(peerKey, { method: 'POST', path: '/v1/cluster/join', from: nodeId, to: peerId, body: bytes });
        const res = await request(new URL('/v1/cluster/join', target), { method: 'POST', body: bytes, headers: { ...headers, 'content-type': 'application/json' }, dispatcher: rpcAgent });
        const answer = (await res.body.json().catch(() => ({}))) as { leaderApiAddr?: string; members?: unknown };
        if (res.statusCode === 200) {
          for (const m of Array.isArray(answer.members) ? (answer.members as unknown[]) : []) {
            const { id, raftAddr } = (m ?? {}) as { id?: unknown; raftAddr?: unknown };
            if (typeof id === 'string' && id !== nodeId && typeof raftAddr === 'string' && /^https?:\/\/[^\s/]+\/?$/.test(raftAddr)) joinHints.set(id, raftAddr);
          }
          logger.info({ via: target }, `${nodeId} was added to the cluster as a learner`);
          return;
        }
        if (res.statusCode === 421 && typeof answer.leaderApiAddr === 'string' && answer.leaderApiAddr !== '') target = answer.leaderApiAddr;
        else target = joinUrl;
      } catch (err) {
        logger.warn({ err: String(err), via: target }, 'join attempt failed; retrying');
        target = joinUrl;
      }
      await new Promise((r) => setTimeout(r, Math.min(2_000, 200 * (attempt + 1))));
    }
  }

  /**
   * A leader that is asked to stop first hands leadership to the most up-to-date voter (as etcd
   * does), so the cluster keeps taking writes within a round trip instead of waiting out an
   * election timeout. Bounded: if no voter takes over in time (others down, no quorum), the node
   * stops anyway and the rest elect a leader as after a crash.
   */
  async function handOffLeadership(): Promise<void> {
    if (!driver.isLeader() || ctx.isRemoved() || !driver.members().voters.some((id) => id !== nodeId)) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      const to = await Promise.race([
        ctx.transferLeadership(undefined),
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), config.electionMs))),
      ]);
      if (to === undefined) logger.warn(`${nodeId} is stopping as leader: no voter took over within ${config.electionMs} ms`);
      else logger.info({ to }, `${nodeId} handed leadership to ${to} before stopping`);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, `${nodeId} is stopping as leader: the hand-off failed`);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
  }

  let closed: Promise<void> | undefined;
  return {
    ctx,
    apiAddress,
    raftAddress,
    fatal,
    close(): Promise<void> {
      closed ??= (async () => {
        await handOffLeadership();
        closing = true;
        await cleanup();
      })();
      return closed;
    },
  };
}

/** A peer's advertised command table: at most 256 `type → version` pairs, versions 1–255. */
function parseCommandTable(v: unknown): Readonly<Record<string, number>> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 256) return undefined;
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [k, n] of entries) {
    if (k.length > 64 || typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 255) return undefined;
    out[k] = n;
  }
  return Object.freeze(out);
}

async function readSnapshotData(store: NodeStore): Promise<Uint8Array> {
  return (await readSavedSnapshot(store)) ?? new Uint8Array(0);
}

/** A membership change as it is applied. */
interface MembershipApplied {
  readonly type: ConfChange['type'];
  readonly id: string;
  /** The member's Raft address (for a removal: as it was before). */
  readonly raftAddr: string;
  /** Log index of the change. */
  readonly index: number;
}

/**
 * Applies a batch of committed entries. Membership changes also update the replicated address
 * book, immediately before the entry itself, so both land in the same ordered stream on every node.
 */
async function applyEntries(
  store: NodeStore,
  entries: readonly Entry[],
  confChanges: ReadonlyMap<number, ConfChange>,
  onMembership?: (change: MembershipApplied) => void,
): Promise<ApplyOutcome[]> {
  const byIndex = new Map<number, ApplyOutcome>();
  let run: Entry[] = [];
  const flush = async (): Promise<void> => {
    if (run.length === 0) return;
    const results = await store.applyEntries(run);
    for (const r of results) byIndex.set(r.index, r);
    run = [];
  };
  for (const e of entries) {
    const cc = confChanges.get(e.index);
    if (cc !== undefined && e.index > store.applied) {
      await flush();
      const addr = decodeMemberContext(cc.context);
      const sm = store.state;
      if (cc.type === 'remove') {
        const prev = sm.listMembers().find((m) => m.id === cc.nodeId);
        sm.applyCommand({ type: 'member.remove', requestId: '', at: 0, id: cc.nodeId });
        onMembership?.({ type: 'remove', id: cc.nodeId, raftAddr: prev?.raftAddr ?? '', index: e.index });
      } else {
        onMembership?.({ type: cc.type, id: cc.nodeId, raftAddr: addr.raftAddr, index: e.index });
        const prev = sm.listMembers().find((m) => m.id === cc.nodeId);
        sm.applyCommand({
          type: 'member.upsert',
          requestId: '',
          at: 0,
          id: cc.nodeId,
          raftAddr: addr.raftAddr !== '' ? addr.raftAddr : (prev?.raftAddr ?? ''),
          apiAddr: addr.apiAddr !== '' ? addr.apiAddr : (prev?.apiAddr ?? ''),
        });
      }
    }
    run.push(e);
    if (cc !== undefined) await flush();
  }
  await flush();
  return entries.map((e) => byIndex.get(e.index));
}
