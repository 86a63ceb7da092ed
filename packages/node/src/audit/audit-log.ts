/**
 * The node's audit log: append-only JSON lines, hash-chained, fail-closed, group-committed.
 *
 * Line format (keys in this order, one JSON object per line, `\n`-terminated):
 * `{time, node, requestId, actor, clientIp, action, resource, outcome, status, seq, prev, hash}`
 *
 * - `seq` counts lines from 1; `prev` is the previous line's `hash` ({@link AUDIT_GENESIS_HASH}
 *   for the first line); `hash = sha256_hex(prev + "\n" + canonical)` where `canonical` is the
 *   JSON of the record's first eleven fields in the order above (everything but `hash`). Editing,
 *   removing, reordering or inserting a line breaks the chain at that line. What a bare chain
 *   cannot show: an attacker who rewrites EVERY line after the edit, or who truncates the end of
 *   the file. Ship lines off the machine, or record `lastHash`/`lastSeq` elsewhere, to cover that.
 * - Field allowlist: records are built only from the typed fields of {@link AuditEntry}, each
 *   type-checked and length-bounded; anything else on the object passed in (a request body, a
 *   token, a value) is never read, so secret values and raw tokens cannot reach the file.
 * - Durability: {@link AuditLog.append} resolves only after the line is written AND on stable
 *   storage (an O_DSYNC descriptor on Linux; write + fdatasync where there is none). Appends made
 *   while a write is in flight share the next write (group commit).
 * - Fail-closed: if a write fails the append rejects (`NODE_AUDIT_WRITE_FAILED`) and the caller
 *   refuses the request (503). A write that failed for lack of space is rolled back (the file is
 *   truncated to its last durable length) and later appends may succeed; any other failure of a
 *   synced write (or of `fsync`) poisons the log until restart, because after a sync error the
 *   kernel may have dropped pages it still reports as written.
 * - On open, the last line is checked (parses, has the record format, its hash matches its
 *   content) and the chain continues from it; a corrupt last line refuses to open
 *   (`NODE_AUDIT_CORRUPT`) rather than chaining onto a forged or damaged hash: the operator runs
 *   `coffer audit verify` and decides. An unterminated fragment at the very end is the one
 *   exception: it is a write that a crash interrupted and that was therefore never acknowledged,
 *   so it is cut off (reported in `truncatedBytes`) and the chain continues from the line before.
 */
import { hash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { NodeError } from '../errors.js';

/** `prev` of the first line. */
export const AUDIT_GENESIS_HASH: string = '0'.repeat(64);

/** How a request ended, as far as the audit trail cares. */
export type AuditOutcome = 'ok' | 'denied' | 'error';

/**
 * What the server records about one request. Only these fields are read.
 * `denied`: refused by authentication, authorization, the allowlist, lockout or rate limit;
 * `error`: allowed, then failed; `ok`: succeeded.
 */
export interface AuditEntry {
  readonly requestId: string;
  /** Token name of the caller, or `null` when unauthenticated. Never the raw token. */
  readonly actor: string | null;
  readonly clientIp: string | null;
  /** What was attempted, e.g. `secret.write`, `secret.read`, `token.create`. */
  readonly action: string;
  /** Secret, token, role name or member id acted on; never a value. */
  readonly resource: string | null;
  readonly outcome: AuditOutcome;
  /** HTTP status answered. */
  readonly status: number;
}

/** One line of the file. */
export interface AuditRecord extends AuditEntry {
  readonly time: string;
  readonly node: string;
  readonly seq: number;
  readonly prev: string;
  readonly hash: string;
}

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /** File path (`COFFER_AUDIT_FILE`); created with mode 0600, parent with 0700. */
  readonly path: string;
  /** This node's id, written into every line. */
  readonly nodeId: string;
  /** Clock in ms (default `Date.now`). */
  readonly now?: () => number;
  /** Called once per failed write or fsync (e.g. to count `coffer_audit_write_failures_total`). */
  readonly onWriteError?: (err: Error) => void;
}

/** Counters for diagnostics and tests. */
export interface AuditLogStats {
  readonly lines: number;
  readonly writes: number;
  readonly syncs: number;
  readonly failures: number;
}

/** What {@link AuditLog.open} found. */
export interface AuditOpenInfo {
  /** Lines already in the file. */
  readonly existingLines: number;
  /** Bytes of an unterminated final fragment that were cut off (0 normally). */
  readonly truncatedBytes: number;
}

const LIMITS = { requestId: 128, actor: 128, clientIp: 64, action: 64, resource: 1024 } as const;
const OUTCOMES: ReadonlySet<string> = new Set<AuditOutcome>(['ok', 'denied', 'error']);
const KEYS = ['time', 'node', 'requestId', 'actor', 'clientIp', 'action', 'resource', 'outcome', 'status', 'seq', 'prev', 'hash'] as const;
const HASH_RE = /^[0-9a-f]{64}$/;
const MAX_LINE_BYTES = 64 * 1024;
/**
 * Lines go through an O_DSYNC descriptor where the platform has one: each write returns once its
 * data is on stable storage, which is what write + fdatasync did, in one system call and one trip
 * through libuv's thread pool instead of two. Elsewhere (0): `a+` and an explicit fdatasync.
 */
const O_DSYNC: number = Object.hasOwn(fsConstants, 'O_DSYNC') ? fsConstants.O_DSYNC : 0;
const OPEN_FLAGS: string | number = O_DSYNC === 0 ? 'a+' : fsConstants.O_RDWR | fsConstants.O_APPEND | fsConstants.O_CREAT | O_DSYNC;
/** Write errors after which nothing of the failed call is in the file (the batch is cut off, not fatal). */
const NO_SPACE: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);
/** Spacing of the sparse seq → offset index that {@link AuditLog.read} keeps. */
const READ_INDEX_EVERY = 1024;

type Unhashed = Omit<AuditRecord, 'hash'>;

/** JSON of the record without `hash`, keys in the fixed order: the hashed bytes. */
function canonical(r: Unhashed): string {
  return JSON.stringify({
    time: r.time,
    node: r.node,
    requestId: r.requestId,
    actor: r.actor,
    clientIp: r.clientIp,
    action: r.action,
    resource: r.resource,
    outcome: r.outcome,
    status: r.status,
    seq: r.seq,
    prev: r.prev,
  });
}

/**
 * The chain hash of a record.
 *
 * @param r - the record without its hash
 * @returns lowercase hex sha256 of `prev + "\n" + canonical(r)`
 */
export function auditRecordHash(r: Unhashed): string {
  return chainHash(r.prev, canonical(r));
}

/** `sha256_hex(prev + "\n" + canonicalText)`: one-shot, no Hash object. */
function chainHash(prev: string, canonicalText: string): string {
  return hash('sha256', `${prev}\n${canonicalText}`, 'hex');
}

function str(field: keyof typeof LIMITS, v: unknown, nullable: boolean): string | null {
  if (v === null && nullable) return null;
  if (typeof v !== 'string' || v.length > LIMITS[field]) {
    throw new TypeError(`audit field ${field} must be a string of at most ${LIMITS[field]} characters${nullable ? ' or null' : ''}`);
  }
  return v;
}

/** Copies exactly the allowlisted fields, type-checked. Nothing else of `e` is read. */
function pickEntry(e: AuditEntry): AuditEntry {
  if (typeof e !== 'object' || e === null) throw new TypeError('audit entry must be an object');
  const outcome = e.outcome;
  if (!OUTCOMES.has(outcome)) throw new TypeError('audit field outcome must be ok, denied or error');
  const status = e.status;
  if (!Number.isInteger(status) || status < 100 || status > 599) throw new TypeError('audit field status must be an HTTP status');
  return {
    requestId: str('requestId', e.requestId, false) as string,
    actor: str('actor', e.actor, true),
    clientIp: str('clientIp', e.clientIp, true),
    action: str('action', e.action, false) as string,
    resource: str('resource', e.resource, true),
    outcome,
    status,
  };
}

/**
 * Parses one line and checks its format and self-hash (not its link to the previous line).
 *
 * @returns the record, or a reason
 */
function parseLine(line: string): AuditRecord | string {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return 'not valid JSON';
  }
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return 'not a JSON object';
  const o = obj as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length !== KEYS.length || !KEYS.every((k) => Object.hasOwn(o, k))) return 'fields differ from the audit record format';
  const sOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';
  const isOutcome = (v: unknown): v is AuditOutcome => typeof v === 'string' && OUTCOMES.has(v);
  const { time, node, requestId, actor, clientIp, action, resource, outcome, status, seq, prev, hash } = o;
  if (
    typeof time !== 'string' || typeof node !== 'string' || typeof requestId !== 'string' ||
    !sOrNull(actor) || !sOrNull(clientIp) || typeof action !== 'string' || !sOrNull(resource) ||
    !isOutcome(outcome) || typeof status !== 'number' || !Number.isInteger(status) ||
    typeof seq !== 'number' || !Number.isSafeInteger(seq) || typeof prev !== 'string' || !HASH_RE.test(prev) ||
    typeof hash !== 'string' || !HASH_RE.test(hash)
  ) {
    return 'a field has the wrong type';
  }
  const rec: AuditRecord = { time, node, requestId, actor, clientIp, action, resource, outcome, status, seq, prev, hash };
  if (auditRecordHash(rec) !== rec.hash) return 'hash does not match the line content (line edited)';
  return rec;
}

interface Pending {
  readonly entry: AuditEntry;
  readonly timeMs: number;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

/**
 * The append-only, hash-chained audit file of one node.
 *
 * @example
 * ```ts
 * const audit = await AuditLog.open({ path: cfg.auditFile, nodeId: cfg.nodeId });
 * await audit.append({ requestId, actor: 'ci', clientIp: '10.0.0.7', action: 'secret.write',
 *   resource: 'apps/db', outcome: 'ok', status: 200 }); // resolves once fsynced; on reject → 503
 * await audit.close();
 * ```
 */
export class AuditLog {
  /** What open found. */
  readonly openInfo: AuditOpenInfo;
  private readonly fh: fsp.FileHandle;
  private readonly nodeId: string;
  private readonly now: () => number;
  private readonly onWriteError: ((err: Error) => void) | undefined;
  private lastHash: string;
  private lastSeq: number;
  private durableSize: number;
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private poisoned: Error | undefined;
  private closed = false;
  private statsLines = 0;
  private statsWrites = 0;
  private statsSyncs = 0;
  private statsFailures = 0;
  /** seq → byte offset of its line, for every READ_INDEX_EVERY-th record seen by {@link read}. */
  private readonly readIndex = new Map<number, number>([[1, 0]]);

  private constructor(fh: fsp.FileHandle, opts: AuditLogOptions, tail: { hash: string; seq: number; size: number }, info: AuditOpenInfo) {
    this.fh = fh;
    this.nodeId = opts.nodeId;
    this.now = opts.now ?? Date.now;
    this.onWriteError = opts.onWriteError;
    this.lastHash = tail.hash;
    this.lastSeq = tail.seq;
    this.durableSize = tail.size;
    this.openInfo = info;
  }

  /**
   * Opens (or creates) the file and continues its chain.
   *
   * @param opts - see {@link AuditLogOptions}
   * @returns the open log
   * @throws {NODE_AUDIT_CORRUPT} the last complete line is not a valid, self-consistent record
   * @throws {Error} file-system errors (permissions, missing directory that cannot be created)
   */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    const dir = path.dirname(opts.path);
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const existed = await fsp.stat(opts.path).then(() => true, () => false);
    const fh = await fsp.open(opts.path, OPEN_FLAGS, 0o600);
    try {
      if (!existed) await syncDir(dir);
      const { tail, info } = await readTail(fh, opts.path);
      return new AuditLog(fh, opts, tail, info);
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Appends one record. Resolves after it is written and fsynced, together with any other
   * records appended meanwhile.
   *
   * @param entry - the typed fields; nothing else of the object is read
   * @returns a promise that resolves when the line is durable
   * @throws {NODE_AUDIT_WRITE_FAILED} (rejection) the line could not be written or synced
   * @throws {NODE_AUDIT_CLOSED} (rejection) the log is closed
   * @throws {TypeError} (rejection) a field has the wrong type or is too long
   */
  append(entry: AuditEntry): Promise<void> {
    if (this.closed) return Promise.reject(new NodeError('NODE_AUDIT_CLOSED', 'audit log is closed'));
    if (this.poisoned !== undefined) {
      return Promise.reject(new NodeError('NODE_AUDIT_WRITE_FAILED', 'audit log is unusable after an fsync failure; restart the node', { cause: this.poisoned }));
    }
    let picked: AuditEntry;
    try {
      picked = pickEntry(entry);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ entry: picked, timeMs: this.now(), resolve, reject });
      // Start on a microtask so that every append made in the same tick shares one write+fsync.
      this.flushing ??= Promise.resolve().then(() => this.flushLoop());
    });
  }

  /** @returns the hash and seq of the last durable line (for anchoring elsewhere) */
  head(): { readonly hash: string; readonly seq: number } {
    return { hash: this.lastHash, seq: this.lastSeq };
  }

  /**
   * Reads this node's durable records from `since` on (`GET /v1/audit`), in order. Lines are read
   * from the file as written (chain fields included), so a reader can verify the chain itself.
   * A sparse index of line offsets (every {@link READ_INDEX_EVERY} records) keeps a read near the
   * end of a long file from scanning it whole.
   *
   * @param since - the first seq wanted (records start at 1)
   * @param limit - most records returned
   * @returns the records, and the seq to ask for next
   * @throws {NODE_AUDIT_CORRUPT} a line in the range does not parse (the file was edited)
   */
  async read(since: number, limit: number): Promise<{ records: AuditRecord[]; next: number }> {
    const end = this.durableSize;
    // Start at the last indexed line at or before `since`.
    let seq = 1;
    let pos = 0;
    for (const [s, off] of this.readIndex) {
      if (s <= since && s > seq) {
        seq = s;
        pos = off;
      }
    }
    const records: AuditRecord[] = [];
    const chunk = Buffer.alloc(256 * 1024);
    let carry = Buffer.alloc(0);
    while (pos < end && records.length < limit) {
      const { bytesRead } = await this.fh.read(chunk, 0, Math.min(chunk.length, end - pos), pos);
      if (bytesRead === 0) break;
      let buf = carry.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([carry, chunk.subarray(0, bytesRead)]);
      const bufStart = pos - carry.length;
      pos += bytesRead;
      let lineStartAt = 0;
      for (let nl = buf.indexOf(0x0a); nl !== -1 && records.length < limit; nl = buf.indexOf(0x0a, lineStartAt)) {
        const lineOffset = bufStart + lineStartAt;
        if (seq % READ_INDEX_EVERY === 1 && !this.readIndex.has(seq)) this.readIndex.set(seq, lineOffset);
        if (seq >= since) {
          const rec = parseLine(buf.toString('utf8', lineStartAt, nl));
          if (typeof rec === 'string') throw new NodeError('NODE_AUDIT_CORRUPT', `audit line ${seq} is not valid: ${rec}`);
          // Invariant: line n holds seq n (the chain starts at 1 and never skips).
          if (rec.seq !== seq) throw new NodeError('NODE_AUDIT_CORRUPT', `audit line ${seq} holds seq ${rec.seq}: lines were removed or inserted`);
          records.push(rec);
        }
        seq++;
        lineStartAt = nl + 1;
      }
      carry = Buffer.from(buf.subarray(lineStartAt));
      buf = carry;
    }
    return { records, next: records.length > 0 ? (records[records.length - 1] as AuditRecord).seq + 1 : Math.max(since, 1) };
  }

  /** @returns write/sync/line counters since open */
  stats(): AuditLogStats {
    return { lines: this.statsLines, writes: this.statsWrites, syncs: this.statsSyncs, failures: this.statsFailures };
  }

  /**
   * Waits for in-flight appends, then closes the file. Later appends reject.
   *
   * @returns a promise that resolves once the file is closed
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    while (this.flushing !== undefined) await this.flushing;
    await this.fh.close();
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        await this.writeBatch(batch);
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async writeBatch(batch: readonly Pending[]): Promise<void> {
    if (this.poisoned !== undefined) {
      const err = new NodeError('NODE_AUDIT_WRITE_FAILED', 'audit log is unusable after an fsync failure; restart the node', { cause: this.poisoned });
      for (const p of batch) p.reject(err);
      return;
    }
    // Chain state advances only after the batch is durable, so a failed batch leaves no gap.
    let prev = this.lastHash;
    let seq = this.lastSeq;
    const lines: string[] = [];
    for (const p of batch) {
      seq += 1;
      const unhashed: Unhashed = { time: new Date(p.timeMs).toISOString(), node: this.nodeId, ...p.entry, seq, prev };
      // The canonical text is both what is hashed and the line itself (minus the hash): built once.
      const text = canonical(unhashed);
      const lineHash = chainHash(prev, text);
      lines.push(`${text.slice(0, -1)},"hash":"${lineHash}"}\n`);
      prev = lineHash;
    }
    const buf = Buffer.from(lines.join(''), 'utf8');
    let stage: 'write' | 'fsync' = 'write';
    try {
      await writeAll(this.fh, buf);
      this.statsWrites += 1;
      stage = 'fsync';
      // Through an O_DSYNC descriptor the write returned only once the lines were durable.
      if (O_DSYNC === 0) await this.fh.datasync();
      this.statsSyncs += 1;
    } catch (cause) {
      this.statsFailures += 1;
      // With O_DSYNC a failed write may be a failed sync: only "no space" is surely a plain write
      // failure (nothing of that call reached the file); anything else poisons like fsync.
      if (O_DSYNC !== 0 && !NO_SPACE.has((cause as NodeJS.ErrnoException).code ?? '')) stage = 'fsync';
      const err = new NodeError('NODE_AUDIT_WRITE_FAILED', `audit ${stage} failed: ${(cause as Error).message}`, { cause });
      if (stage === 'fsync') this.poisoned = cause as Error;
      else {
        // Cut any partial line so the file still ends on a durable, chained line.
        try {
          await this.fh.truncate(this.durableSize);
        } catch {
          this.poisoned = cause as Error;
        }
      }
      this.onWriteError?.(err);
      for (const p of batch) p.reject(err);
      return;
    }
    this.lastHash = prev;
    this.lastSeq = seq;
    this.durableSize += buf.length;
    this.statsLines += batch.length;
    for (const p of batch) p.resolve();
  }
}

async function writeAll(fh: fsp.FileHandle, buf: Buffer): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off);
    off += bytesWritten;
  }
}

async function syncDir(dir: string): Promise<void> {
  const dh = await fsp.open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** Reads backwards from `end` to the byte after the previous `\n` (or 0). */
async function lineStart(fh: fsp.FileHandle, end: number): Promise<number> {
  const chunk = Buffer.allocUnsafe(8192);
  let pos = end;
  while (pos > 0) {
    const len = Math.min(chunk.length, pos);
    const { bytesRead } = await fh.read(chunk, 0, len, pos - len);
    const nl = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
    if (nl !== -1) return pos - len + nl + 1;
    pos -= len;
    if (end - pos > MAX_LINE_BYTES) return -1;
  }
  return 0;
}

async function readTail(fh: fsp.FileHandle, file: string): Promise<{ tail: { hash: string; seq: number; size: number }; info: AuditOpenInfo }> {
  let size = (await fh.stat()).size;
  let truncatedBytes = 0;
  if (size === 0) return { tail: { hash: AUDIT_GENESIS_HASH, seq: 0, size: 0 }, info: { existingLines: 0, truncatedBytes } };
  const last = Buffer.alloc(1);
  await fh.read(last, 0, 1, size - 1);
  if (last[0] !== 0x0a) {
    // Torn tail from a crash mid-write: never acknowledged (append resolves only after fsync).
    const start = await lineStart(fh, size);
    if (start < 0) throw new NodeError('NODE_AUDIT_CORRUPT', `${file}: final line is longer than ${MAX_LINE_BYTES} bytes`);
    truncatedBytes = size - start;
    await fh.truncate(start);
    await fh.datasync();
    size = start;
    if (size === 0) return { tail: { hash: AUDIT_GENESIS_HASH, seq: 0, size: 0 }, info: { existingLines: 0, truncatedBytes } };
  }
  const start = await lineStart(fh, size - 1);
  if (start < 0) throw new NodeError('NODE_AUDIT_CORRUPT', `${file}: last line is longer than ${MAX_LINE_BYTES} bytes`);
  const buf = Buffer.alloc(size - 1 - start);
  await fh.read(buf, 0, buf.length, start);
  const rec = parseLine(buf.toString('utf8'));
  if (typeof rec === 'string') {
    throw new NodeError('NODE_AUDIT_CORRUPT', `${file}: last line is corrupt (${rec}); run "coffer audit verify" and move the file aside to start a new chain`);
  }
  if (rec.seq < 1) throw new NodeError('NODE_AUDIT_CORRUPT', `${file}: last line has seq ${rec.seq}`);
  return { tail: { hash: rec.hash, seq: rec.seq, size }, info: { existingLines: rec.seq, truncatedBytes } };
}

/** Result of {@link verifyAuditFile}. */
export interface AuditVerifyResult {
  /** True when every line is intact and chained. */
  readonly ok: boolean;
  /** Lines that verified (all of them when `ok`; those before the first bad one otherwise). */
  readonly lines: number;
  /** 1-based number of the first bad line. */
  readonly firstBadLine?: number;
  /** Why that line is bad. */
  readonly reason?: string;
  /** Hash of the last good line (genesis for an empty file), for anchoring. */
  readonly lastHash: string;
}

/**
 * Checks a whole audit file: format, each line's hash, `prev` links and `seq` continuity.
 * Streams the file, so size is not a concern. Backs `coffer audit verify FILE`.
 *
 * @param file - path of the audit file
 * @returns `{ok, lines, firstBadLine?, reason?, lastHash}`
 * @throws {Error} if the file cannot be read
 * @example
 * ```ts
 * const r = await verifyAuditFile('data/n1/audit.jsonl');
 * if (!r.ok) console.error(`line ${r.firstBadLine}: ${r.reason}`);
 * ```
 */
export async function verifyAuditFile(file: string): Promise<AuditVerifyResult> {
  let prev = AUDIT_GENESIS_HASH;
  let lineNo = 0;
  let rest: Buffer = Buffer.alloc(0);
  const bad = (reason: string): AuditVerifyResult => ({ ok: false, lines: lineNo - 1, firstBadLine: lineNo, reason, lastHash: prev });
  const check = (raw: Buffer): AuditVerifyResult | undefined => {
    lineNo += 1;
    if (raw.length === 0) return bad('empty line');
    const rec = parseLine(raw.toString('utf8'));
    if (typeof rec === 'string') return bad(rec);
    if (rec.prev !== prev) {
      return bad(lineNo === 1 ? 'first line does not start the chain (lines removed before it?)' : `prev does not match the hash of line ${lineNo - 1} (a line was removed, inserted or reordered)`);
    }
    if (rec.seq !== lineNo) return bad(`seq is ${rec.seq}, expected ${lineNo}`);
    prev = rec.hash;
    return undefined;
  };
  const stream = createReadStream(file);
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      let data: Buffer = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      let nl: number;
      while ((nl = data.indexOf(0x0a)) !== -1) {
        const r = check(data.subarray(0, nl));
        if (r !== undefined) return r;
        data = data.subarray(nl + 1);
      }
      if (data.length > MAX_LINE_BYTES) {
        lineNo += 1;
        return bad(`line is longer than ${MAX_LINE_BYTES} bytes`);
      }
      rest = Buffer.from(data);
    }
  } finally {
    stream.destroy();
  }
  if (rest.length > 0) {
    lineNo += 1;
    return bad('last line is incomplete (no newline): an interrupted write');
  }
  return { ok: true, lines: lineNo, lastHash: prev };
}
