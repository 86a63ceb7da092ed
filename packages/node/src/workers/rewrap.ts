/**
 * The KMS re-wrap worker: after the KMS key material rotates, moves every live version's wrapped DEK
 * onto the current material with KMS ReEncrypt (the plaintext DEK never leaves the KMS; with the
 * local ring it is unwrapped and re-wrapped in memory and wiped). Ciphertexts are not touched.
 *
 * - Runs on the leader only, and stops the moment leadership is lost (checked before every
 *   command). Another leader picks the pass up where it stopped: progress is in the replicated
 *   state (each version's `wrapMarker`), not in this object.
 * - A pass is due when the provider's newest rotation differs from the replicated watermark, or
 *   when an operator forces one (`POST /v1/admin/kms/rewrap`). The marker of a pass is the newest
 * rotation's id, or the current key id when the key never rotated (for the local ring
 *   that is the same value: a rotation's id is the new ring key's id, so dropping an old key from the
 *   ring does not start a new pass).
 * - One `kms.rewrap` command per version, paced at `COFFER_KMS_REWRAP_MAX_PER_SEC`. The command
 *   carries the key id the worker read, so a version re-wrapped concurrently (or destroyed) is left
 *   alone by the state machine: the pass is idempotent and safe to repeat.
 * - A version whose re-wrap fails (KMS refusal, tampered blob) is counted in the watermark's
 *   `failed` and skipped for the rest of the pass; transient KMS errors end the pass early, and
 *   the next poll (or a forced pass) resumes it.
 * - Transit key versions are sealed like secret versions (their envelopes live in the transit
 *   key records): after the secret versions, the same pass moves each of them with one
 *   `transit.rewrap` command, with the same pacing, markers and idempotence.
 */
import type { Envelope } from '@coffer/crypto';
import { isTransientCryptoError, transitKeyContext } from '@coffer/crypto';
import { transitKeyByName, transitRewrapPending, type TransitRewrapItem } from '@coffer/state';
import type { NodeContext } from '../context.js';
import { commandId } from '../service/common.js';

/** What the worker needs of the node (a subset of the context, so tests can run it directly). */
export type RewrapWorkerContext = Pick<NodeContext, 'config' | 'logger' | 'state' | 'readSealed' | 'now' | 'isLeader' | 'propose' | 'envelopes' | 'kms'>;

/** Versions fetched from the state per scan. */
const SCAN_BATCH = 256;

/** Result of one pass, for logs and tests. */
export interface RewrapPassResult {
  marker: string;
  rewrapped: number;
  failed: number;
  /** Why the pass ended: `done`, `not_leader`, `stopped`, `kms_unavailable`, or `nothing_due`. */
  ended: 'done' | 'not_leader' | 'stopped' | 'kms_unavailable' | 'nothing_due';
}

/** The leader's re-wrap worker. One per node; idle on followers. */
export class RewrapWorker {
  readonly #ctx: RewrapWorkerContext;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<RewrapPassResult> | undefined;
  #forceNext = false;
  #stopped = false;

  constructor(ctx: RewrapWorkerContext) {
    this.#ctx = ctx;
  }

  /** Whether the worker is enabled by configuration. */
  get enabled(): boolean {
    return this.#ctx.config.kmsRewrapEnabled;
  }

  /** Starts polling (a no-op when disabled). The first poll runs shortly after start-up. */
  start(): void {
    if (!this.enabled || this.#timer !== undefined) return;
    const pollMs = this.#ctx.config.kmsRewrapPollSecs * 1000;
    // First look soon after start (a new leader should resume an interrupted pass), then every poll.
    const first = setTimeout(() => {
      this.#tick();
      this.#timer = setInterval(() => this.#tick(), pollMs);
      this.#timer.unref();
    }, Math.min(pollMs, 5_000));
    first.unref();
    this.#timer = first;
  }

  /**
   * Asks for a pass now (even when no new rotation is known).
   *
   * @returns false when the worker is disabled
   */
  requestPass(): boolean {
    if (!this.enabled) return false;
    this.#forceNext = true;
    this.#tick();
    return true;
  }

  /** Leadership gained: resume an interrupted pass (or start a due one) shortly. */
  onLeadership(): void {
    if (!this.enabled || this.#stopped) return;
    const t = setTimeout(() => this.#tick(), Math.min(this.#ctx.config.electionMs, 2_000));
    t.unref();
  }

  /** Stops the worker; a running pass ends before its next command. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
  }

  /** Waits for the pass in progress, if any (tests). */
  async idle(): Promise<void> {
    while (this.#running !== undefined) await this.#running.catch(() => undefined);
  }

  #tick(): void {
    if (this.#stopped || this.#running !== undefined || !this.#ctx.isLeader()) return;
    const force = this.#forceNext;
    this.#forceNext = false;
    this.#running = this.runPass(force)
      .then((r) => {
        if (r.ended !== 'nothing_due') this.#ctx.logger.info({ ...r }, 'kms re-wrap pass ended');
        return r;
      })
      .catch((err: unknown) => {
        this.#ctx.logger.warn({ err: String(err) }, 'kms re-wrap pass failed');
        throw err;
      })
      .finally(() => {
        this.#running = undefined;
        // A pass forced while another was running starts now.
        if (this.#forceNext) this.#tick();
      });
    this.#running.catch(() => undefined);
  }

  /**
   * One pass (leader only). Exposed for tests; normal use goes through {@link start} and
   * {@link requestPass}.
   *
   * @param force - run even when the watermark already matches the newest rotation
   * @returns what the pass did
   */
  async runPass(force: boolean): Promise<RewrapPassResult> {
    const ctx = this.#ctx;
    let marker: string;
    try {
      const rotations = await ctx.kms.listKeyRotations();
      const newest = rotations[rotations.length - 1];
      marker = newest !== undefined ? newest.rotationId : ctx.kms.currentKeyId();
    } catch (err) {
      if (isTransientCryptoError(err)) return { marker: '', rewrapped: 0, failed: 0, ended: 'kms_unavailable' };
      throw err;
    }
    const wm = ctx.state.getWatermark();
    const finished = wm !== null && wm.marker === marker && wm.passFinishedAt !== null && (wm.passStartedAt === null || wm.passFinishedAt >= wm.passStartedAt);
    const pending = ctx.state.rewrapPending(marker, 1).length + transitRewrapPending(ctx.state, marker, 1).length;
    if (!force && finished && pending === 0) return { marker, rewrapped: 0, failed: 0, ended: 'nothing_due' };
    if (!ctx.isLeader()) return { marker, rewrapped: 0, failed: 0, ended: 'not_leader' };

    const startedAt = ctx.now();
    await ctx.propose({ type: 'kms.watermark', requestId: commandId(), at: startedAt, marker, passStartedAt: startedAt, passFinishedAt: null, rewrapped: 0, failed: 0 });

    const minGapMs = 1000 / ctx.config.kmsRewrapMaxPerSec;
    let nextAt = Date.now();
    const pace = async (): Promise<void> => {
      const wait = nextAt - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      nextAt = Math.max(nextAt + minGapMs, Date.now());
    };
    let rewrapped = 0;
    let failed = 0;
    const skip = new Set<string>();
    let ended: RewrapPassResult['ended'] = 'done';
    outer: for (;;) {
      const batch = ctx.state.rewrapPending(marker, SCAN_BATCH + skip.size).filter((p) => !skip.has(`${p.version}:${p.name}`));
      if (batch.length === 0) break;
      for (const item of batch.slice(0, SCAN_BATCH)) {
        if (this.#stopped) {
          ended = 'stopped';
          break outer;
        }
        if (!ctx.isLeader()) {
          ended = 'not_leader';
          break outer;
        }
        await pace();
        const sealed = await ctx.readSealed(item.name, item.version);
        if (sealed === undefined) {
          skip.add(`${item.version}:${item.name}`); // destroyed meanwhile
          continue;
        }
        let next: Envelope;
        try {
          next = await ctx.envelopes.rewrap(sealed as Envelope, { name: item.name, version: item.version });
        } catch (err) {
          if (isTransientCryptoError(err)) {
            ended = 'kms_unavailable';
            break outer;
          }
          failed++;
          skip.add(`${item.version}:${item.name}`);
          ctx.logger.warn({ name: item.name, version: item.version, err: String(err) }, 'kms re-wrap of one version failed');
          continue;
        }
        const res = await ctx.propose({
          type: 'kms.rewrap',
          requestId: commandId(),
          at: ctx.now(),
          name: item.name,
          version: item.version,
          wrappedDek: next.wrappedDek,
          kmsKeyId: next.kmsKeyId,
          expectedKmsKeyId: item.kmsKeyId,
          marker,
        });
        if (res.status === 'ok') rewrapped++;
        else skip.add(`${item.version}:${item.name}`); // stale or gone: someone else moved it
      }
    }
    if (ended === 'done') {
      const t = await this.#rewrapTransit(marker, pace);
      rewrapped += t.rewrapped;
      failed += t.failed;
      ended = t.ended;
    }
    if (ended === 'done' && ctx.isLeader()) {
      await ctx.propose({ type: 'kms.watermark', requestId: commandId(), at: ctx.now(), marker, passStartedAt: startedAt, passFinishedAt: ctx.now(), rewrapped, failed });
    }
    return { marker, rewrapped, failed, ended };
  }

  /** The transit key versions of a pass (see the module comment). */
  async #rewrapTransit(marker: string, pace: () => Promise<void>): Promise<Pick<RewrapPassResult, 'rewrapped' | 'failed' | 'ended'>> {
    const ctx = this.#ctx;
    let rewrapped = 0;
    let failed = 0;
    const skip = new Set<string>();
    const id = (p: TransitRewrapItem): string => `${p.version}:${p.name}`;
    for (;;) {
      const batch = transitRewrapPending(ctx.state, marker, SCAN_BATCH + skip.size).filter((p) => !skip.has(id(p)));
      if (batch.length === 0) return { rewrapped, failed, ended: 'done' };
      for (const item of batch.slice(0, SCAN_BATCH)) {
        if (this.#stopped) return { rewrapped, failed, ended: 'stopped' };
        if (!ctx.isLeader()) return { rewrapped, failed, ended: 'not_leader' };
        await pace();
        const key = transitKeyByName(ctx.state, item.name);
        const sealed = key?.versions.get(item.version)?.sealed;
        if (key === undefined || sealed === undefined) {
          skip.add(id(item)); // deleted meanwhile
          continue;
        }
        let next: Envelope;
        try {
          next = await ctx.envelopes.rewrap(sealed as Envelope, transitKeyContext({ name: key.name, type: key.type, version: item.version }));
        } catch (err) {
          if (isTransientCryptoError(err)) return { rewrapped, failed, ended: 'kms_unavailable' };
          failed++;
          skip.add(id(item));
          ctx.logger.warn({ transitKey: item.name, version: item.version, err: String(err) }, 'kms re-wrap of one transit key version failed');
          continue;
        }
        const res = await ctx.propose({
          type: 'transit.rewrap',
          requestId: commandId(),
          at: ctx.now(),
          name: item.name,
          version: item.version,
          versionCreatedAt: item.versionCreatedAt,
          wrappedDek: next.wrappedDek,
          kmsKeyId: next.kmsKeyId,
          expectedKmsKeyId: item.kmsKeyId,
          marker,
        });
        if (res.status === 'ok') rewrapped++;
        else skip.add(id(item)); // stale or gone: someone else moved it
      }
    }
  }
}
