/**
 * Helpers for the adversarial suites (security-*.test.ts): requests sent exactly as written (no
 * URL normalisation, any source address on the loopback network), bodies that never end, and
 * process memory figures.
 *
 * Network rule: every request goes to a loopback address (`assertLoopback`), from a loopback
 * source address.
 */
import http from 'node:http';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { assertLoopback, type NodeHandle } from './harness';

/** What a raw request got back. */
export interface RawResult {
  status: number;
  /** Parsed JSON when the body is JSON, else the text. */
  body: any;
  text: string;
  /** The body bytes as received. */
  raw: Buffer;
  headers: http.IncomingHttpHeaders;
}

/** Options of {@link rawHttp}. */
export interface RawOptions {
  /** Source address (any of 127.0.0.0/8); default 127.0.0.1. */
  from?: string;
  headers?: Record<string, string>;
  /** Body bytes; a plain object is sent as JSON. */
  body?: Buffer | string | Record<string, unknown>;
  timeoutMs?: number;
}

/**
 * One HTTP request with the request target exactly as given (like `curl --path-as-is`): node:http
 * writes the path bytes unchanged (each char as one latin1 byte, so pass UTF-8 as its bytes), while
 * fetch/undici would resolve `..` and `%2e%2e` first.
 *
 * @param n - the node
 * @param method - HTTP method
 * @param target - path and query, sent as is
 * @param opts - source address, headers, body
 * @returns status, body, headers
 */
export function rawHttp(n: NodeHandle, method: string, target: string, opts: RawOptions = {}): Promise<RawResult> {
  const url = new URL(n.api);
  assertLoopback(url.href);
  const from = opts.from ?? '127.0.0.1';
  assertLoopback(`http://${from}/`);
  const headers: Record<string, string> = { ...opts.headers };
  let payload: Buffer | undefined;
  if (opts.body !== undefined) {
    if (Buffer.isBuffer(opts.body)) payload = opts.body;
    else if (typeof opts.body === 'string') payload = Buffer.from(opts.body, 'utf8');
    else {
      payload = Buffer.from(JSON.stringify(opts.body));
      headers['content-type'] ??= 'application/json';
    }
    headers['content-length'] = String(payload.length);
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: target, method, headers, localAddress: from, agent: false, timeout: opts.timeoutMs ?? 15_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const text = raw.toString('utf8');
          let body: unknown = text;
          try {
            body = text === '' ? undefined : JSON.parse(text);
          } catch {
            body = text;
          }
          resolve({ status: res.statusCode ?? 0, body, text, raw, headers: res.headers });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${method} ${target} to ${n.id} timed out`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Outcome of {@link partialBodyRequest}. */
export interface PartialBodyResult {
  /** Status of the answer that arrived before the body was complete, or null when none did. */
  status: number | null;
  /** Bytes of the body written before the answer (or the wait) ended. */
  sentBytes: number;
  /** ms from the end of the request head to the first byte of the answer (or to giving up). */
  ms: number;
}

/**
 * Declares a large body, sends only its first `sendBytes`, and waits up to `waitMs` for an answer:
 * a node that authenticates before reading a body answers now; one that buffers the body first
 * stays silent. The connection is destroyed afterwards (the body is never completed).
 *
 * @param n - the node
 * @param from - source address
 * @param method - HTTP method
 * @param target - path as sent
 * @param declaredBytes - the Content-Length announced
 * @param headers - extra headers
 * @param sendBytes - how much of the body to send before waiting
 * @param waitMs - how long to wait for an answer
 * @returns the status (null when none came), bytes sent, and the wait
 */
export function partialBodyRequest(n: NodeHandle, from: string, method: string, target: string, declaredBytes: number, headers: Record<string, string>, sendBytes: number = 64 * 1024, waitMs: number = 5_000): Promise<PartialBodyResult> {
  const url = new URL(n.api);
  assertLoopback(url.href);
  assertLoopback(`http://${from}/`);
  return new Promise((resolve) => {
    const sock = net.connect({ host: url.hostname, port: Number(url.port), localAddress: from });
    let got = '';
    let sent = 0;
    let started = 0;
    let done = false;
    let wait: NodeJS.Timeout | undefined;
    const finish = (status: number | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (wait !== undefined) clearTimeout(wait);
      sock.destroy();
      resolve({ status, sentBytes: sent, ms: Date.now() - started });
    };
    const timer = setTimeout(() => finish(null), waitMs + 2_000);
    sock.on('data', (d: Buffer) => {
      got += d.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(got);
      if (m !== null) finish(Number(m[1]));
    });
    sock.on('error', () => finish(null));
    sock.on('close', () => finish(null));
    sock.on('connect', () => {
      const head = [`${method} ${target} HTTP/1.1`, `Host: ${url.host}`, `Content-Length: ${declaredBytes}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), '', ''].join('\r\n');
      sock.write(head);
      started = Date.now();
      const chunk = Buffer.alloc(Math.min(sendBytes, declaredBytes), 0x41);
      sock.write(chunk, () => {
        sent = chunk.length;
      });
      clearTimeout(timer);
      wait = setTimeout(() => finish(null), waitMs);
    });
  });
}

/**
 * Sends a whole body of `bytes` and returns the status, tolerating a node that answers and closes
 * before the upload ends (EPIPE/ECONNRESET after the answer).
 *
 * @returns the status, or null when the connection ended without any answer
 */
export function bigBodyRequest(n: NodeHandle, from: string, method: string, target: string, bytes: number, headers: Record<string, string>): Promise<number | null> {
  const url = new URL(n.api);
  assertLoopback(url.href);
  assertLoopback(`http://${from}/`);
  return new Promise((resolve) => {
    let status: number | null = null;
    let settled = false;
    const settle = (): void => {
      if (!settled) {
        settled = true;
        resolve(status);
      }
    };
    const req = http.request(
      { host: url.hostname, port: url.port, path: target, method, headers: { ...headers, 'content-length': String(bytes) }, localAddress: from, agent: false, timeout: 30_000 },
      (res) => {
        status = res.statusCode ?? null;
        res.resume();
        res.on('end', settle);
        res.on('error', settle);
      },
    );
    req.on('error', settle);
    req.on('timeout', () => req.destroy());
    req.on('close', () => setTimeout(settle, 50));
    const chunk = Buffer.alloc(1024 * 1024, 0x41);
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** A /proc figure of a process in KiB (VmRSS, VmHWM, …). */
export function procStatusKb(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (m === null) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]);
}

/** Resets a process's peak RSS (VmHWM) to its current RSS (Linux `clear_refs` 5). */
export function resetPeakRss(pid: number): void {
  writeFileSync(`/proc/${pid}/clear_refs`, '5');
}

/**
 * Runs `fn` over `items` with at most `limit` in flight.
 *
 * @returns the results, in order
 */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
