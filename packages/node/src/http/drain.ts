/**
 * Opening and closing the node's listeners: listen, and close without dropping requests clients
 * already sent.
 */
import type { Server, ServerResponse } from 'node:http';
import { type AddressInfo, Server as NetServer } from 'node:net';

/** Quiet time after the last request before idle keep-alive connections are closed. */
const DRAIN_QUIET_MS = 300;
/** Longest wait for that quiet time. */
const DRAIN_MAX_WAIT_MS = 3_000;
/** Longest wait for answers in flight before every connection is cut. */
const DRAIN_HARD_MS = 5_000;

/**
 * @param server - an HTTP(S) server
 * @param host - address to bind
 * @param port - port (0: any)
 * @returns the bound address
 */
export function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** How the API listener is doing, for a graceful close. */
export class ApiActivity {
  /** Requests received and not yet answered. */
  active = 0;
  /** When the last request arrived (ms since the epoch). */
  lastAt = 0;

  /** Counts a request until its response closes. */
  track(res: ServerResponse): void {
    this.active++;
    this.lastAt = Date.now();
    res.once('close', () => this.active--);
  }
}

/**
 * Closes the API listener without dropping requests clients already sent. node's `server.close()`
 * destroys every idle keep-alive connection at once, and a connection whose request bytes sit
 * unread in the socket buffer counts as idle; closing the listener also resets connections still
 * in the accept backlog. Either way a client would see a reset for a request it had sent. So:
 * keep answering (with `Connection: close`, set by the handler while closing; writes on the leader
 * get 503 `shutting_down`) until no request came for a moment (at most a few seconds); then stop
 * accepting, close idle connections, and cut the rest only after a hard deadline.
 *
 * @param server - the API server
 * @param activity - its request counts
 */
export async function drainAndCloseApi(server: Server, activity: ApiActivity): Promise<void> {
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

/**
 * Closes a listener that needs no drain (the peer listener): idle connections at once, the rest
 * after 2 s.
 *
 * @param server - the server
 */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 2_000).unref();
  });
}
