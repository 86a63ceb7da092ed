/**
 * Vault's `LIST` HTTP method. Node's HTTP parser (llhttp) only knows a fixed set of methods and
 * refuses `LIST` with `HPE_INVALID_METHOD` before any handler runs; Vault clients send it for
 * listings by default (node-vault's `list()`, the `vault kv list` CLI).
 *
 * {@link acceptListMethod} installs a `clientError` listener that catches exactly that refusal
 * when the refused bytes are a complete `LIST` request head without a body, rewrites the request
 * line to `GET <target>?list=true` (Vault's documented equivalent) with `Connection: close`, and
 * hands it to the same server as a new connection over the original socket, so the rewritten
 * request runs through the whole normal pipeline (client IP from the real socket, auth, audit).
 * The connection closes after that answer; the client's next request opens a new one. Every other
 * parse error gets the answer node would give without a listener (400/408/431, then close).
 */
import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';

/** The API's listener: plain HTTP or HTTPS (COFFER_TLS_*). */
type Server = HttpServer | HttpsServer;
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** Longest LIST request head handled (a larger one gets 431). */
const MAX_HEAD_BYTES = 16 * 1024;
const TAKEN = Symbol('coffer.listTaken');

type ParseError = Error & { code?: string; rawPacket?: Buffer; bytesParsed?: number };

/** A response still being written on this socket (node's own bookkeeping). */
type InFlight = NodeJS.WritableStream & { _headerSent?: boolean; writableFinished?: boolean };

function inFlight(socket: Socket): InFlight | undefined {
  // NB: `_httpMessage` is node's own (undocumented) link from a socket to its current response.
  const msg: unknown = Reflect.get(socket, '_httpMessage');
  if (typeof msg !== 'object' || msg === null || typeof (msg as { once?: unknown }).once !== 'function') return undefined;
  const out = msg as InFlight;
  return out.writableFinished === true ? undefined : out;
}

/** What node answers a parse error with when nobody listens: a bare status (unless a response is under way), then close. */
function nodeDefault(err: ParseError, socket: Socket): void {
  const msg = inFlight(socket);
  if (socket.writable && (msg === undefined || msg._headerSent !== true)) {
    const [status, reason] =
      err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout'] : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large'] : [400, 'Bad Request'];
    socket.write(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\n\r\n`);
  }
  socket.destroy(err);
}

/** A refused LIST: a Vault-shaped error body, then close once it is flushed. */
function refuseList(socket: Socket, status: number, message: string): void {
  const text = JSON.stringify({ errors: [message] });
  const reason = status === 431 ? 'Request Header Fields Too Large' : 'Bad Request';
  if (socket.writable) {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
  }
  socket.destroySoon();
}

/**
 * Rewrites a complete LIST request head.
 *
 * @param raw - bytes starting at `LIST `
 * @returns the rewritten head (`GET …list=true`, `Connection: close`), or an error status
 */
export function rewriteListHead(raw: Buffer): { head: Buffer } | { status: number; message: string } {
  const end = raw.indexOf('\r\n\r\n', 0, 'latin1');
  if (end === -1) return raw.length > MAX_HEAD_BYTES ? { status: 431, message: 'request header fields too large' } : { status: 400, message: 'incomplete LIST request' };
  if (end > MAX_HEAD_BYTES) return { status: 431, message: 'request header fields too large' };
  if (raw.length > end + 4) return { status: 400, message: 'LIST requests take no body' };
  const lines = raw.subarray(0, end).toString('latin1').split('\r\n');
  const m = /^LIST (\/[^ ]*) (HTTP\/1\.[01])$/.exec(lines[0] ?? '');
  if (m === null) return { status: 400, message: 'malformed LIST request line' };
  const target = m[1] as string;
  const out = [`GET ${target}${target.includes('?') ? '&' : '?'}list=true ${m[2] as string}`];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = (colon === -1 ? line : line.slice(0, colon)).trim().toLowerCase();
    if (name === 'connection' || name === 'keep-alive') continue;
    if (name === 'transfer-encoding' || (name === 'content-length' && line.slice(colon + 1).trim() !== '0')) {
      return { status: 400, message: 'LIST requests take no body' };
    }
    out.push(line);
  }
  out.push('Connection: close', '', '');
  return { head: Buffer.from(out.join('\r\n'), 'latin1') };
}

/**
 * Lets `server` answer Vault's LIST method (see the module comment).
 *
 * @param server - an http or https server
 */
export function acceptListMethod(server: Server): void {
  server.on('clientError', (err: ParseError, socket: Socket) => {
    const s = socket as Socket & { [TAKEN]?: boolean };
    if (s[TAKEN] === true) return; // bytes after a handed-over LIST: the connection is closing anyway
    const raw = err.rawPacket;
    // llhttp stops at the 'S' of "LIST", two bytes into the request.
    const start = (err.bytesParsed ?? 0) - 2;
    if (err.code !== 'HPE_INVALID_METHOD' || raw === undefined || start < 0 || raw.toString('latin1', start, start + 5) !== 'LIST ') {
      nodeDefault(err, socket);
      return;
    }
    s[TAKEN] = true;
    const rewritten = rewriteListHead(raw.subarray(start));
    // A pipelined LIST behind a response still being written waits for it, so answers never interleave.
    const previous = inFlight(socket);
    if (previous !== undefined) previous.once('finish', () => handOver(server, socket, rewritten));
    else handOver(server, socket, rewritten);
  });
}

/** Answers the rewritten LIST through `server` on `socket` (or refuses it). */
function handOver(server: Server, socket: Socket, rewritten: ReturnType<typeof rewriteListHead>): void {
  if (socket.destroyed) return;
  if ('status' in rewritten) {
    refuseList(socket, rewritten.status, rewritten.message);
    return;
  }
  const inner = new Duplex({
    read() {},
    write(chunk: Buffer, _enc, cb) {
      if (socket.destroyed) cb(new Error('socket closed'));
      else socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(e, cb) {
      socket.destroy();
      cb(e);
    },
  });
  // What the HTTP server and the API read from a socket.
  for (const k of ['remoteAddress', 'remotePort', 'remoteFamily', 'localAddress', 'localPort', 'encrypted'] as const) {
    Object.defineProperty(inner, k, { value: Reflect.get(socket, k), enumerable: true });
  }
  Object.assign(inner, { setTimeout: () => inner, setNoDelay: () => inner, setKeepAlive: () => inner, destroySoon: () => inner.end() });
  socket.once('close', () => inner.destroy());
  socket.on('error', () => inner.destroy());
  // An https server serves 'secureConnection'; a plain one 'connection'.
  server.emit((socket as { encrypted?: boolean }).encrypted === true ? 'secureConnection' : 'connection', inner);
  inner.push(rewritten.head);
}
