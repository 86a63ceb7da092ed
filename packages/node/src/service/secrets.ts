/**
 * Secrets: versioned writes sealed on the proposing node, reads opened on the reading node,
 * verification, rotation, listing and version management. The native routes and the Vault KV v2
 * routes (http/routes/vault-kv2.ts) both use it (a KV v2 data map is a `kv`-format value).
 *
 * Write path (on the leader): reserve version v = latest + 1, counting writes to the same name
 * that are still in flight → seal with AAD `name:v` → propose `secret.put` (in reservation order
 * per name) → on
 * `version_conflict` (another write got v first) re-seal with the next version, a bounded number of
 * times. The plaintext buffer is zeroized once sealed (best effort: JS gives no guarantee that no
 * copy exists elsewhere).
 */
import { constantTimeEqual, randomBytes, sha256, zeroize } from '@coffer/crypto';
import { rotationStateOf, type RotationPolicy, type RotationRecord, type SecretFormat, type SecretRecord, type VersionMeta } from '@coffer/state';
import type { NodeContext, ReadConsistency } from '../context.js';
import { policyTarget, rotateWithTarget } from '../rotation/flow.js';
import { ServiceError } from './errors.js';
import { commandId, cryptoFailure } from './common.js';
import { RESULT_ERRORS, expectOk } from './results.js';
import { comparableBytes, userpassUsername, userpassValue, type PlainValue } from './values.js';

/** How many times a write re-seals after losing its reserved version to a concurrent write. */
export const MAX_WRITE_ATTEMPTS: number = 8;
/** Most names in one batch read. */
export const MAX_BATCH_NAMES: number = 256;

/** A write. `plaintext` is zeroized by {@link SecretService.write}. */
export interface SecretWriteInput extends PlainValue {
  readonly name: string;
  /** Expected current version (0: must not exist); null: no check. */
  readonly cas: number | null;
  readonly description: string | null;
  readonly rotation: RotationPolicy | null;
  /** Token name of the writer (recorded as `createdBy`). */
  readonly actor: string;
  /**
   * On a follower, hand the command to the leader through Raft (`ProposeOptions.viaLeader`): only
   * for a route the pipeline ran here after a read barrier (`proposeHere`).
   */
  readonly viaLeader?: boolean;
}

/** Outcome of a write. */
export interface SecretWritten {
  readonly name: string;
  readonly version: number;
  readonly createdAt: number;
}

/** An opened version. The caller zeroizes `plaintext` once it has answered. */
export interface OpenedSecret {
  readonly name: string;
  readonly version: number;
  readonly format: SecretFormat;
  readonly createdAt: number;
  readonly plaintext: Uint8Array;
}

/** Result of {@link SecretService.verify}. */
export interface VerifyOutcome {
  readonly valid: boolean;
  /** The matching version, or null. */
  readonly version: number | null;
}

/** Which version operation. */
export type VersionOp = 'delete' | 'undelete' | 'destroy';

/** Secret operations of one node. Build one per NodeContext and share it. */
export class SecretService {
  private readonly ctx: NodeContext;
  /** Versions reserved by writes still in flight, per name (leader only). */
  private readonly inflight = new Map<string, Set<number>>();
  /**
   * Per name, settles once the most recently reserved write has handed its proposal to raft (or
   * given up). Seals run in parallel, but proposals for one name enter the log in reservation
   * order, so concurrent plain writes apply as v, v+1, … instead of racing each other into
   * `version_conflict` when a later seal finishes first.
   */
  private readonly issued = new Map<string, Promise<void>>();

  /** @param ctx - the running node */
  constructor(ctx: NodeContext) {
    this.ctx = ctx;
  }

  private reserve(name: string, exact?: number): number {
    let set = this.inflight.get(name);
    let v = exact;
    if (v === undefined) {
      v = this.ctx.state.latestVersion(name);
      if (set !== undefined) for (const r of set) if (r > v) v = r;
      v += 1;
    }
    if (set === undefined) {
      set = new Set();
      this.inflight.set(name, set);
    }
    set.add(v);
    return v;
  }

  private release(name: string, v: number): void {
    const set = this.inflight.get(name);
    if (set === undefined) return;
    set.delete(v);
    if (set.size === 0) this.inflight.delete(name);
  }

  /**
   * Writes a new version (on the leader, or on a follower with `viaLeader`: `ctx.propose` refuses
   * elsewhere).
   *
   * @param input - name, plaintext, format, cas, metadata, actor; `plaintext` is zeroized here
   * @returns the new version and its creation time
   * @throws {ServiceError} `cas_conflict` (409), `invalid_request` (cas required),
   *   `kms_unavailable` (503), and whatever `propose` throws (`no_leader`, `no_quorum`, `outcome_unknown`, …)
   */
  async write(input: SecretWriteInput): Promise<SecretWritten> {
    const { name, cas } = input;
    try {
      // Cheap early refusal: a CAS against an older version can never succeed.
      if (cas !== null && cas < this.ctx.state.latestVersion(name)) {
        throw new ServiceError('cas_conflict', `check-and-set expected version ${cas}, current is ${this.ctx.state.latestVersion(name)}`);
      }
      for (let attempt = 1; ; attempt++) {
        // Invariant: a CAS write can only ever succeed as version cas + 1.
        const version = this.reserve(name, cas === null ? undefined : cas + 1);
        const before = this.issued.get(name);
        let markIssued = (): void => {};
        const mine = new Promise<void>((resolve) => (markIssued = resolve));
        this.issued.set(name, mine);
        try {
          let sealed;
          try {
            sealed = await this.ctx.envelopes.seal(input.plaintext, { name, version });
          } catch (err) {
            throw cryptoFailure(err);
          }
          if (before !== undefined) await before;
          // propose() appends to the log synchronously before its first await: once called, the
          // next reservation may go.
          const proposing = this.ctx.propose({
            type: 'secret.put',
            requestId: commandId(),
            at: this.ctx.now(),
            name,
            version,
            cas,
            sealed,
            format: input.format,
            description: input.description,
            rotation: input.rotation,
            actor: input.actor,
          }, { viaLeader: input.viaLeader === true });
          markIssued();
          const result = await proposing;
          if (result.status === 'ok') return { name, version, createdAt: result.createdAt ?? this.ctx.now() };
          if (result.status === 'version_conflict' && attempt < MAX_WRITE_ATTEMPTS) continue;
          if (result.status === 'cas_conflict') {
            throw new ServiceError('cas_conflict', `check-and-set expected version ${cas ?? 0}, current is ${result.currentVersion ?? 'unknown'}`);
          }
          const [code, message] = result.status === 'noop' ? RESULT_ERRORS.stale : RESULT_ERRORS[result.status as keyof typeof RESULT_ERRORS];
          throw new ServiceError(code, message);
        } finally {
          markIssued();
          if (this.issued.get(name) === mine) this.issued.delete(name);
          this.release(name, version);
        }
      }
    } finally {
      zeroize(input.plaintext);
    }
  }

  /**
   * Opens one version.
   *
   * @param name - secret name (validated by the caller)
   * @param opts - a specific version; consistency (`linearizable` waits for ReadIndex)
   * @returns the opened version (zeroize `plaintext` after use)
   * @throws {ServiceError} `not_found`, `no_quorum`/`no_leader` (linearizable), `kms_unavailable`
   */
  async read(name: string, opts: { version?: number | undefined; consistency: ReadConsistency }): Promise<OpenedSecret> {
    await this.ctx.readBarrier(opts.consistency);
    const found = await this.openLocal(name, opts.version);
    if (found === undefined) {
      throw new ServiceError('not_found', opts.version === undefined ? `secret "${name}" not found` : `secret "${name}" has no readable version ${opts.version}`);
    }
    return found;
  }

  /** Opens a version from local state, or undefined when it is not readable. */
  private async openLocal(name: string, version?: number): Promise<OpenedSecret | undefined> {
    const meta = this.ctx.state.readableVersion(name, this.ctx.now(), version);
    if (meta === undefined) return undefined;
    let sealed;
    try {
      sealed = await this.ctx.readSealed(name, meta.version);
    } catch (err) {
      throw this.integrityFailure(err, name, meta.version);
    }
    if (sealed === undefined) return undefined;
    let plaintext: Uint8Array;
    try {
      plaintext = await this.ctx.envelopes.open(sealed as Parameters<NodeContext['envelopes']['open']>[0], { name, version: meta.version });
    } catch (err) {
      throw this.integrityFailure(err, name, meta.version);
    }
    return { name, version: meta.version, format: meta.format, createdAt: meta.createdAt, plaintext };
  }

  /**
   * Maps a failure to read or open a stored version. Stored bytes that fail their tag or digest
   * (edited on disk, or a sealed value moved under another name or version, which the AEAD's AAD
   * refuses) are an `integrity_error`: logged (name and version, never bytes) and counted; the
   * request's audit line records the refusal. KMS outages stay retryable 503s.
   */
  private integrityFailure(err: unknown, name: string, version: number): unknown {
    const code = (err as { code?: unknown } | null)?.code;
    if (code === 'SM_INTEGRITY' || code === 'SM_CORRUPT_STORAGE' || code === 'CRYPTO_INTEGRITY' || code === 'CRYPTO_KMS_INVALID_CIPHERTEXT') {
      this.ctx.metrics.integrityFailures.inc({ kind: 'value' });
      this.ctx.logger.error({ secret: name, version, code }, 'a stored secret version failed its integrity check');
      return new ServiceError('integrity_error', `the stored value of "${name}" version ${version} failed its integrity check (edited or moved on disk); it is not served`, { cause: err });
    }
    return cryptoFailure(err);
  }

  /**
   * Opens the latest readable version of each name after one read barrier; missing names are
   * left out.
   *
   * @param names - at most {@link MAX_BATCH_NAMES} validated names
   * @param consistency - read consistency
   * @returns opened versions, in the order asked (zeroize every `plaintext`)
   * @throws {ServiceError} `invalid_request` (too many), barrier and KMS errors
   */
  async readMany(names: readonly string[], consistency: ReadConsistency): Promise<OpenedSecret[]> {
    if (names.length > MAX_BATCH_NAMES) throw new ServiceError('invalid_request', `a batch may name at most ${MAX_BATCH_NAMES} secrets`);
    await this.ctx.readBarrier(consistency);
    const out: OpenedSecret[] = [];
    try {
      for (const name of new Set(names)) {
        const s = await this.openLocal(name);
        if (s !== undefined) out.push(s);
      }
    } catch (err) {
      for (const s of out) zeroize(s.plaintext);
      throw err;
    }
    return out;
  }

  /**
   * Compares a candidate value with the current version and with older versions still inside
   * their grace window. Every candidate is compared (no early exit), through sha256 digests in
   * constant time so neither the position of the first differing byte nor the stored length leaks.
   *
   * @param name - secret name
   * @param candidate - presented bytes (zeroized here)
   * @param consistency - read consistency
   * @returns whether it matched, and which version
   * @throws {ServiceError} `not_found` when the secret has no verifiable version
   */
  async verify(name: string, candidate: Uint8Array, consistency: ReadConsistency): Promise<VerifyOutcome> {
    try {
      await this.ctx.readBarrier(consistency);
      const versions = this.ctx.state.verifiableVersions(name, this.ctx.now());
      if (versions.length === 0) throw new ServiceError('not_found', `secret "${name}" not found`);
      const want = sha256(candidate);
      let match: number | null = null;
      for (const v of versions) {
        const s = await this.openLocal(name, v);
        if (s === undefined) continue;
        const cmp = comparableBytes(s.format, s.plaintext);
        const digest = sha256(cmp);
        if (constantTimeEqual(digest, want) && match === null) match = v;
        if (cmp !== s.plaintext) zeroize(cmp);
        zeroize(s.plaintext);
      }
      return { valid: match !== null, version: match };
    } finally {
      zeroize(candidate);
    }
  }

  /**
   * Manual rotation: a new random value (32 bytes, base64url text), or for `userpass` secrets the
   * same username with a new random password. Also what the automatic rotation worker calls.
   * A secret whose policy names a rotation target (rotation/README.md) rotates in two replicated
   * phases around the target (`rotation/flow.ts`); a pending rotation is resumed, not doubled.
   * Secrets without one are one ordinary write.
   *
   * @param name - secret name
   * @param actor - token name
   * @returns the new version
   * @throws {ServiceError} `not_found` when the secret does not exist; with a target also
   *   `rotation_target_refused`, `rotation_target_unavailable`, `rotation_target_invalid`
   */
  async rotate(name: string, actor: string): Promise<SecretWritten> {
    // The policy and any pending rotation are read from state as of now, also on a new leader.
    await this.ctx.readBarrier('linearizable');
    const rec = this.ctx.state.getSecret(name);
    if (rec === undefined) throw new ServiceError('not_found', `secret "${name}" not found`);
    if (policyTarget(rec.rotation?.target) !== null || rotationStateOf(this.ctx.state, name)?.pending != null) {
      return rotateWithTarget({ ctx: this.ctx, name, actor, newValue: () => this.freshValue(name), readText: (n) => this.readText(n) });
    }
    return this.write({ name, ...(await this.freshValue(name)), cas: null, description: null, rotation: null, actor });
  }

  /**
   * A secret's rotation-target state (pending rotation, last target error) as this node has
   * applied it; call after {@link metadata}'s read barrier.
   *
   * @param name - secret name
   * @returns the row, or undefined when nothing is pending and no error is recorded
   */
  rotationState(name: string): Readonly<RotationRecord> | undefined {
    return rotationStateOf(this.ctx.state, name);
  }

  /** A new random value for the next version of `name` (userpass keeps its username). */
  private async freshValue(name: string): Promise<PlainValue> {
    const rec = this.ctx.state.getSecret(name);
    if (rec === undefined) throw new ServiceError('not_found', `secret "${name}" not found`);
    const latest = rec.versions.find((v) => v.version === rec.currentVersion);
    const random = randomBytes(32);
    const fresh = Buffer.from(random).toString('base64url');
    zeroize(random);
    if (latest?.format === 'userpass' && !latest.destroyed) {
      const current = await this.openLocal(name, latest.version);
      if (current === undefined) throw new ServiceError('not_found', `secret "${name}" has no readable current version to rotate`);
      const username = userpassUsername(current.plaintext);
      zeroize(current.plaintext);
      return userpassValue(username, fresh);
    }
    const buf = Buffer.from(fresh, 'utf8');
    return { plaintext: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), format: 'raw' };
  }

  /**
   * A secret's current value as text, from this node's state (a rotation target's connection
   * secret; never through the API). NB: the returned JS string cannot be wiped.
   */
  private async readText(name: string): Promise<string | undefined> {
    const s = await this.openLocal(name);
    if (s === undefined) return undefined;
    try {
      return Buffer.from(s.plaintext.buffer, s.plaintext.byteOffset, s.plaintext.length).toString('utf8');
    } finally {
      zeroize(s.plaintext);
    }
  }

  /**
   * Names under a prefix with their latest version, after a read barrier.
   *
   * @param prefix - name prefix ('' = all)
   * @param opts - page size, resume point, consistency, and a per-name filter (RBAC)
   * @returns secrets (metadata only) and the name to resume after, if truncated
   */
  async list(
    prefix: string,
    opts: { limit: number; after?: string | undefined; consistency: ReadConsistency; allow: (name: string) => boolean },
  ): Promise<{ secrets: Readonly<SecretRecord>[]; next: string | null }> {
    await this.ctx.readBarrier(opts.consistency);
    const state = this.ctx.state;
    const out: Readonly<SecretRecord>[] = [];
    let after = opts.after;
    // Page through names so a filter that hides most of them still fills the page.
    for (;;) {
      const names = state.listNames(prefix, 1024, after);
      for (const n of names) {
        if (!opts.allow(n)) continue;
        const rec = state.getSecret(n);
        if (rec === undefined) continue;
        out.push(rec);
        if (out.length >= opts.limit) return { secrets: out, next: n };
      }
      if (names.length < 1024) return { secrets: out, next: null };
      after = names[names.length - 1];
    }
  }

  /**
   * A secret's metadata and version list (never values).
   *
   * @param name - secret name
   * @param consistency - read consistency
   * @returns the record
   * @throws {ServiceError} `not_found`
   */
  async metadata(name: string, consistency: ReadConsistency): Promise<Readonly<SecretRecord>> {
    await this.ctx.readBarrier(consistency);
    const rec = this.ctx.state.getSecret(name);
    if (rec === undefined) throw new ServiceError('not_found', `secret "${name}" not found`);
    return rec;
  }

  /**
   * Soft-deletes, undeletes or destroys versions (an empty list means the latest version).
   *
   * @param op - which operation
   * @param name - secret name
   * @param versions - version numbers (≥ 1)
   * @param actor - token name
   * @returns how many versions changed
   * @throws {ServiceError} `not_found`
   */
  async changeVersions(op: VersionOp, name: string, versions: readonly number[], actor: string): Promise<number> {
    const res = expectOk(
      await this.ctx.propose({ type: `secret.${op}`, requestId: commandId(), at: this.ctx.now(), name, versions: [...versions], actor }),
      { not_found: `secret "${name}" not found` },
    );
    return res.count ?? 0;
  }

  /**
   * Erases every version and the metadata of a secret.
   *
   * @param name - secret name
   * @param actor - token name
   * @returns how many versions were erased
   * @throws {ServiceError} `not_found`
   */
  async destroyAll(name: string, actor: string): Promise<number> {
    const res = expectOk(await this.ctx.propose({ type: 'secret.destroyAll', requestId: commandId(), at: this.ctx.now(), name, actor }), {
      not_found: `secret "${name}" not found`,
    });
    return res.count ?? 0;
  }
}

/**
 * The API view of one version's metadata.
 *
 * @param v - version metadata
 * @returns JSON-ready fields (no value, no key material)
 */
export function versionView(v: Readonly<VersionMeta>): Record<string, unknown> {
  return {
    version: v.version,
    createdAt: new Date(v.createdAt).toISOString(),
    createdBy: v.createdBy,
    format: v.format,
    deletedAt: v.deletedAt === null ? null : new Date(v.deletedAt).toISOString(),
    destroyed: v.destroyed,
    sizeBytes: v.sizeBytes,
    kmsKeyId: v.kmsKeyId,
  };
}
