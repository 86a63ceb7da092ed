// Single-node test harness for the HTTP API: a real StateMachine (keepBlobs) whose `propose`
// encodes, decodes and applies each command (the single-node path: this node is leader and the
// whole quorum), real Envelopes over the local key provider, a real audit file, real metrics, and
// the app from createApi served by node:http on a loopback port. Requests go over real HTTP.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { createLocalProvider, Envelopes, hashToken } from '@coffer/crypto';
import { decodeCommand, encodeCommand, Integrity, StateMachine, type Command, type CommandResult } from '@coffer/state';
import { AuditLog, type AuditRecord } from '../../src/audit/audit-log.js';
import { loadConfig } from '../../src/config.js';
import type { NodeContext } from '../../src/context.js';
import { createApi } from '../../src/http/api.js';
import { ServiceError } from '../../src/service/errors.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { Lockout } from '../../src/auth/lockout.js';
import { Allowlist, clientIp } from '../../src/net/allowlist.js';

export const ADMIN_TOKEN = 'test-bootstrap-admin-token-0123456789';
const MASTER_KEY = Buffer.alloc(32, 7).toString('base64');

export interface HarnessOptions {
  env?: Record<string, string>;
  cidrs?: string[];
  /** Delay (ms) before each propose applies: lets writes overlap. */
  proposeDelayMs?: number;
  /** Seals finish in reverse order: the k-th seal waits `sealReverseMs - k` ms (at least 0). */
  sealReverseMs?: number;
}

export interface Harness {
  ctx: NodeContext;
  sm: () => StateMachine;
  base: string;
  port: number;
  clock: { now: number };
  /** `takesProposals`: this node follows a leader that takes proposals handed to it (MsgProp). */
  leader: { is: boolean; removed: boolean; closing: boolean; leaderId: string | null; takesProposals: boolean };
  proposed: Command[];
  /** Commands proposed here with `viaLeader` (as a follower hands them to the leader). */
  handed: Command[];
  /** Commands the leader committed that this node has not applied yet: the next read barrier applies them. */
  lagging: Command[];
  /** Read barriers waited for. */
  barriers: number;
  forwarded: { method: string; url: string; body: string | undefined }[];
  rewrapRequests: number;
  /** Fails audit appends while true. */
  auditBroken: { on: boolean };
  auditFile: string;
  auditLines(): AuditRecord[];
  /** Sends the path byte for byte (like `curl --path-as-is`; fetch would resolve `..` first). */
  raw(method: string, p: string, body?: string, headers?: Record<string, string>): Promise<{ status: number; text: string }>;
  req(method: string, p: string, opts?: { token?: string | null; body?: unknown; rawBody?: string | Uint8Array; headers?: Record<string, string>; host?: string }): Promise<{ status: number; body: any; headers: Headers; text: string }>;
  /** Creates a role and a token with it; returns the raw token. */
  tokenWith(name: string, rules: { paths?: string[]; actions: string[] }[], rateLimit?: string): Promise<string>;
  close(): Promise<void>;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'coffer-api-'));
  let cfg: ReturnType<typeof loadConfig>;
  try {
    cfg = loadConfig({ COFFER_NODE_ID: 'n1', COFFER_DATA_DIR: dir, COFFER_LOCAL_MASTER_KEY: MASTER_KEY, ...opts.env }, {});
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  // Snapshots are tagged with the cluster's integrity keys; this single node's are random.
  let sm = new StateMachine({ keepBlobs: true, integrity: new Integrity({ record: randomBytes(32), snapshot: randomBytes(32) }) });
  const clock = { now: Date.UTC(2030, 0, 1) };
  const leader = { is: true, removed: false, closing: false, leaderId: 'n1' as string | null, takesProposals: false };
  const proposed: Command[] = [];
  const handed: Command[] = [];
  const lagging: Command[] = [];
  const counters = { barriers: 0 };
  const forwarded: Harness['forwarded'] = [];
  const auditBroken = { on: false };
  const audit = await AuditLog.open({ path: cfg.auditFile, nodeId: 'n1', now: () => clock.now });
  const realAppend = audit.append.bind(audit);
  audit.append = (e) => (auditBroken.on ? Promise.reject(new Error('disk full')) : realAppend(e));
  const envelopes = new Envelopes({ provider: createLocalProvider({ masterKeyBase64: MASTER_KEY }) });
  if (opts.sealReverseMs !== undefined) {
    const realSeal = envelopes.seal.bind(envelopes);
    const total = opts.sealReverseMs;
    let k = 0;
    envelopes.seal = async (...args) => {
      const wait = Math.max(0, total - k++);
      const sealed = await realSeal(...args);
      await new Promise((r) => setTimeout(r, wait));
      return sealed;
    };
  }
  let rewrapRequests = 0;

  const apply = (cmd: Command): CommandResult => sm.applyCommand(decodeCommand(encodeCommand(cmd))).result;
  apply({ type: 'bootstrap', requestId: 'boot', at: clock.now, tokenHash: hashToken(ADMIN_TOKEN), cidrs: opts.cidrs ?? ['127.0.0.1/32', '::1/128'] });

  const ctx: NodeContext = {
    config: cfg,
    logger: createLogger({ level: 'silent', nodeId: 'n1' }),
    metrics: createMetrics(),
    audit,
    envelopes,
    kms: createLocalProvider({ masterKeyBase64: MASTER_KEY }),
    get state() {
      return sm;
    },
    readSealed: async (name, version) => sm.readSealedSync(name, version),
    now: () => clock.now,
    isLeader: () => leader.is,
    leaderId: () => leader.leaderId,
    leaderApiAddr: () => (leader.leaderId === null ? undefined : 'http://127.0.0.1:1'),
    async propose(cmd, popts) {
      if (!leader.is && !(popts?.viaLeader === true && leader.takesProposals)) throw new ServiceError('no_leader', 'this node is not the leader; retry', { retryAfterSecs: 1 });
      if (!leader.is) handed.push(cmd);
      proposed.push(cmd);
      if (opts.proposeDelayMs !== undefined) await new Promise((r) => setTimeout(r, opts.proposeDelayMs));
      return apply(cmd);
    },
    canProposeViaLeader: () => !leader.is && leader.takesProposals && leader.leaderId !== null,
    async readBarrier(consistency) {
      if (leader.leaderId === null) throw new ServiceError('no_leader', 'no leader', { retryAfterSecs: 1 });
      if (consistency === 'stale') return;
      counters.barriers++;
      for (const cmd of lagging.splice(0)) apply(cmd);
    },
    async forwardToLeader(req: IncomingMessage, res: ServerResponse, target: { path: string; body: Uint8Array | undefined }) {
      forwarded.push({ method: req.method ?? '', url: target.path, body: target.body === undefined ? undefined : Buffer.from(target.body).toString('utf8') });
      res.statusCode = 200;
      res.setHeader('x-test-forwarded', 'yes');
      res.end('{"forwarded":true}');
    },
    clientIp: (req) => clientIp(req, { trustDirectPeer: cfg.trustProxy, proxies: Allowlist.from(cfg.trustedProxies) }),
    checkForwardedBody: () => undefined,
    lockout: new Lockout({
      policy: { enabled: cfg.authLockoutEnabled, maxFailures: cfg.authMaxFailures, windowMs: cfg.authWindowSecs * 1000, lockoutMs: cfg.authLockoutSecs * 1000 },
      now: () => clock.now,
      state: () => sm,
      isLeader: () => leader.is,
      propose: async (key, at) => {
        const cmd: Command = { type: 'auth.failure', requestId: `f-${Math.random()}`, at, ip: key, retainMs: Math.max(cfg.authWindowSecs, cfg.authLockoutSecs) * 1000 };
        proposed.push(cmd);
        apply(cmd);
      },
      report: async () => undefined,
      warn: () => undefined,
    }),
    requestRewrapPass: () => {
      rewrapRequests++;
      return cfg.kmsRewrapEnabled;
    },
    snapshotSchedule: () => ({
      enabled: false, intervalSecs: 0, dir: cfg.snapshotDir, retain: cfg.snapshotRetain, lastSuccessAt: null, lastIndex: null,
      lastSizeBytes: null, lastNode: null, lastFile: null, lastError: null, failures: 0, nextAt: null,
    }),
    raftStatus: () => ({
      id: 'n1', term: 4, vote: 'n1', lead: leader.leaderId, commit: sm.applied, applied: sm.applied, lastIndex: sm.applied,
      raftState: leader.is ? 'leader' : 'follower', confState: { voters: ['n1'], learners: [] }, leadTransferee: null,
    }) as ReturnType<NodeContext['raftStatus']>,
    confState: () => ({ voters: ['n1'], learners: [] }),
    members: () => [{ id: 'n1', raftAddr: 'http://127.0.0.1:8201', apiAddr: 'http://127.0.0.1:8200', suffrage: 'voter', matchIndex: null, healthy: true }],
    addMember: async () => undefined,
    removeMember: async () => undefined,
    transferLeadership: async (to) => to ?? 'n1',
    isClosing: () => leader.closing,
    isReady: () => leader.leaderId !== null && !leader.removed,
    isRemoved: () => leader.removed,
    snapshot: async () => ({ index: 7, term: 4, data: sm.createSnapshot() }),
  };

  const app = createApi(ctx);
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '::', resolve));
  const port = (server.address() as AddressInfo).port;
  const base = `http://127.0.0.1:${port}`;

  const h: Harness = {
    ctx,
    sm: () => sm,
    base,
    port,
    clock,
    leader,
    proposed,
    handed,
    lagging,
    get barriers() {
      return counters.barriers;
    },
    forwarded,
    get rewrapRequests() {
      return rewrapRequests;
    },
    auditBroken,
    auditFile: cfg.auditFile,
    auditLines: () =>
      readFileSync(cfg.auditFile, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as AuditRecord),
    async req(method, p, o = {}) {
      const headers: Record<string, string> = { ...o.headers };
      const token = o.token === undefined ? ADMIN_TOKEN : o.token;
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      let body: string | Uint8Array | undefined;
      if (o.rawBody !== undefined) body = o.rawBody;
      else if (o.body !== undefined) {
        body = JSON.stringify(o.body);
        headers['content-type'] = 'application/json';
      }
      const res = await fetch(`${o.host ?? base}${p}`, body === undefined ? { method, headers } : { method, headers, body });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
      return { status: res.status, body: parsed, headers: res.headers, text };
    },
    raw(method, p, body, headers = {}) {
      return new Promise((resolve, reject) => {
        const r = httpRequest({ host: '127.0.0.1', port, method, path: p, headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        });
        r.on('error', reject);
        r.end(body);
      });
    },
    async tokenWith(name, rules, rateLimit) {
      const role = `role-${name}`;
      const r1 = await h.req('PUT', `/v1/roles/${role}`, { body: rateLimit === undefined ? { rules } : { rules, rateLimit } });
      if (r1.status !== 200) throw new Error(`role: ${r1.text}`);
      const r2 = await h.req('POST', '/v1/tokens', { body: { name, role } });
      if (r2.status !== 200) throw new Error(`token: ${r2.text}`);
      return r2.body.token as string;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      await audit.close().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  // Snapshot installs replace the state object; tests may swap it.
  Object.defineProperty(h, 'setState', { value: (next: StateMachine) => (sm = next) });
  return h;
}
