/**
 * Operation histories: what the workload's clients asked, when, and what came back.
 *
 * A history is a list of {@link Op}s, saved as JSON lines (one op per line, `.jsonl`). Times are
 * milliseconds on one clock (`performance.timeOrigin + performance.now()` of the recording
 * process): `invokeMs` is taken before the request is sent and `completeMs` after the answer is
 * read, so the real interval in which the server acted lies inside [invokeMs, completeMs].
 */
import { readFileSync, writeFileSync } from 'node:fs';

/** What a client asked for. */
export type OpKind = 'write' | 'cas' | 'read' | 'delete';

/**
 * - `ok`: the server confirmed the operation (for a read or a delete of a missing name too: those
 *   are observations).
 * - `fail`: the server said it did not happen (409 check-and-set conflict, 503 "not applied", …).
 * - `unknown`: no definite answer (timeout, connection reset, 503 `outcome_unknown`): the
 *   operation may or may not have taken effect, at any time after `invokeMs`.
 */
export type OpOutcome = 'ok' | 'fail' | 'unknown';

/** What an `ok` operation returned. */
export interface OpResult {
  /** Read: the version read, `null` = not found. Write/cas: the version created. Delete: `null`. */
  version: number | null;
  /** Read: the value read (`null` = not found). Others: `null`. */
  value: string | null;
  /** Delete only: `true` when the name existed (200), `false` when it did not (404). */
  existed?: boolean;
}

/** One client operation on one secret name. */
export interface Op {
  /** Unique within the history. */
  id: number;
  /** The worker that issued it (a worker has at most one operation in flight). */
  process: number;
  /** Secret name. */
  key: string;
  kind: OpKind;
  /** Write/cas: the value written (unique per history). */
  value?: string;
  /** Cas: the `cas` sent (0 = only if the name does not exist). */
  expectVersion?: number;
  invokeMs: number;
  /** `null` while in flight or when the outcome is unknown. */
  completeMs: number | null;
  outcome: OpOutcome;
  result?: OpResult;
  /** Node the request was sent to (its API URL), for reading a failing history. */
  node?: string;
  /** HTTP status, or a short transport error, for reading a failing history. */
  detail?: string;
}

/**
 * Serialises a history as JSON lines.
 *
 * @param ops - the history
 * @returns one JSON object per line, newline-terminated
 */
export function toJsonl(ops: readonly Op[]): string {
  return ops.map((o) => JSON.stringify(o)).join('\n') + (ops.length > 0 ? '\n' : '');
}

/**
 * Parses JSON lines written by {@link toJsonl}.
 *
 * @param text - file contents
 * @returns the history
 * @throws {Error} on a line that is not an op
 */
export function fromJsonl(text: string): Op[] {
  const out: Op[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const o = JSON.parse(line) as Op;
    if (typeof o.id !== 'number' || typeof o.key !== 'string' || typeof o.invokeMs !== 'number' || !['write', 'cas', 'read', 'delete'].includes(o.kind)) {
      throw new Error(`line ${i + 1} is not an operation`);
    }
    out.push(o);
  }
  return out;
}

/**
 * @param file - path to write
 * @param ops - the history
 */
export function saveHistory(file: string, ops: readonly Op[]): void {
  writeFileSync(file, toJsonl(ops));
}

/**
 * @param file - a `.jsonl` history
 * @returns the history
 */
export function loadHistory(file: string): Op[] {
  return fromJsonl(readFileSync(file, 'utf8'));
}

/** Milliseconds on the history clock (shared by every op of one recording process). */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * One line per op, for a human reading a (small) failing history.
 *
 * @param ops - ops, any order
 * @returns lines sorted by invocation time, times relative to the first op
 */
export function describeOps(ops: readonly Op[]): string {
  const sorted = [...ops].sort((a, b) => a.invokeMs - b.invokeMs);
  const t0 = sorted[0]?.invokeMs ?? 0;
  const f = (t: number | null): string => (t === null ? '∞' : (t - t0).toFixed(1));
  return sorted
    .map((o) => {
      const what =
        o.kind === 'read'
          ? 'read'
          : o.kind === 'delete'
            ? 'delete'
            : o.kind === 'cas'
              ? `cas(${o.expectVersion ?? '?'}→${JSON.stringify(o.value)})`
              : `write(${JSON.stringify(o.value)})`;
      let res = '';
      if (o.outcome === 'ok' && o.result !== undefined) {
        if (o.kind === 'read') res = o.result.version === null ? ' → not found' : ` → v${o.result.version} ${JSON.stringify(o.result.value)}`;
        else if (o.kind === 'delete') res = o.result.existed === false ? ' → not found' : ' → deleted';
        else res = ` → v${o.result.version ?? '?'}`;
      }
      return `#${o.id} p${o.process} [${f(o.invokeMs)}, ${f(o.completeMs)}] ${o.key} ${what} ${o.outcome}${res}`;
    })
    .join('\n');
}
