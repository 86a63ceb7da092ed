import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { encodeSegment, type ApiCore } from '../internal/core.js';
import type { AddMemberInput, ClusterStatus, SnapshotResult, TransferOptions } from '../types.js';

/** Counts bytes going through and reports them. */
function counter(totalBytes: number | undefined, onProgress: TransferOptions['onProgress']): Transform {
  let bytes = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
      bytes += chunk.length;
      onProgress?.({ bytes, totalBytes });
      cb(null, chunk);
    },
  });
}

/** Cluster administration (`client.cluster`). */
export class ClusterApi {
  readonly #core: ApiCore;

  /** @param core - the client's internals */
  constructor(core: ApiCore) {
    this.#core = core;
  }

  /**
   * @returns leader, term, indexes and every member's suffrage, match index and health
   * @throws {CofferError} `permission_denied`, `unavailable`
   */
  async status(): Promise<ClusterStatus> {
    return this.#core.json<ClusterStatus>({ method: 'GET', path: '/v1/cluster', idempotent: true });
  }

  /**
   * Add a member (joins as a learner, promoted to voter once caught up). Not retried.
   *
   * @param member - id, Raft URL and API URL
   * @returns the server's answer
   * @throws {CofferError} `permission_denied`, `already_exists`, `outcome_unknown`
   */
  async add(member: AddMemberInput): Promise<unknown> {
    return this.#core.json<unknown>({ method: 'POST', path: '/v1/cluster/members', json: member, idempotent: false });
  }

  /**
   * Remove a member. Not retried.
   *
   * @param id - member id
   * @returns the server's answer
   * @throws {CofferError} `permission_denied`, `not_found`, `outcome_unknown`
   */
  async remove(id: string): Promise<unknown> {
    return this.#core.json<unknown>({ method: 'DELETE', path: `/v1/cluster/members/${encodeSegment(id)}`, idempotent: false });
  }

  /**
   * Hand leadership to `to` (or to the most up-to-date voter). Not retried.
   *
   * @param to - member id, optional
   * @returns the server's answer
   * @throws {CofferError} `permission_denied`, `outcome_unknown`
   */
  async transfer(to?: string): Promise<unknown> {
    return this.#core.json<unknown>({
      method: 'POST',
      path: '/v1/cluster/leader/transfer',
      json: to === undefined ? {} : { to },
      idempotent: false,
    });
  }

  /**
   * Stream a consistent backup to `file` (still sealed: ciphertext only). Written to a temporary
   * file beside it and renamed into place when complete, so `file` is never a partial snapshot.
   * Retried (as a read) only until the first byte arrives; a broken stream fails.
   *
   * @param file - destination path
   * @param opts - `onProgress`
   * @returns path and byte count
   * @throws {CofferError} `permission_denied`, `unavailable`; file-system errors as they come
   * @example
   * ```ts
   * await client.cluster.snapshot('backup.snap', { onProgress: (p) => console.error(p.bytes) });
   * ```
   */
  async snapshot(file: string, opts: TransferOptions = {}): Promise<SnapshotResult> {
    const res = await this.#core.send({
      method: 'GET',
      path: '/v1/cluster/snapshot',
      headers: { accept: 'application/octet-stream' },
      idempotent: true,
    });
    const len = Number(res.headers['content-length']);
    const totalBytes = Number.isFinite(len) && len >= 0 ? len : undefined;
    const tmp = `${file}.partial-${randomBytes(6).toString('hex')}`;
    let bytes = 0;
    const count = counter(totalBytes, (p) => {
      bytes = p.bytes;
      opts.onProgress?.(p);
    });
    try {
      await pipeline(res.body, count, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      await rename(tmp, file);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    return { file, bytes };
  }

  /**
   * Replace the whole state with a snapshot, through consensus, on every node. Streams `file`.
   * Not retried once the upload may have started.
   *
   * @param file - a snapshot made by {@link ClusterApi.snapshot}
   * @param opts - `onProgress`
   * @returns the server's answer
   * @throws {CofferError} `permission_denied`, `invalid_request`, `outcome_unknown`
   */
  async restore(file: string, opts: TransferOptions = {}): Promise<unknown> {
    const { size } = await stat(file);
    return this.#core.json<unknown>({
      method: 'POST',
      path: '/v1/cluster/restore',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      body: () => {
        const source = createReadStream(file);
        const count = counter(size, opts.onProgress);
        source.on('error', (err) => count.destroy(err));
        return source.pipe(count);
      },
      idempotent: false,
      // A large restore goes through consensus on every node; don't time it out like a read.
      timeoutMs: 0,
    });
  }
}
