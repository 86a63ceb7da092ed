// Stand-in nodes for the client's own behaviour: real node:http servers on loopback, answering as
// CONTRACT.md says. They record every request so tests can count what reached a "node".
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { CofferError } from '@coffer/client';

export interface Hit {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface StandIn {
  url: string;
  hits: Hit[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer, hit: Hit) => void;

export async function standIn(handler: Handler): Promise<StandIn> {
  const hits: Hit[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const hit = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: body.toString('utf8') };
      hits.push(hit);
      handler(req, res, body, hit);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A loopback address nobody listens on (bound, then released): connections are refused. */
export async function deadAddress(): Promise<string> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

export function apiError(res: ServerResponse, status: number, code: string, headers: Record<string, string> = {}): void {
  json(res, status, { error: { code, message: `stand-in says ${code}`, requestId: `srv-${code}` } }, headers);
}

/** Recorded sleeps that return at once, and a settable clock. */
export function fakeTime(start = 1_700_000_000_000): {
  now: () => number;
  advance: (ms: number) => void;
  sleeps: number[];
  sleep: (ms: number) => Promise<void>;
} {
  let t = start;
  const sleeps: number[] = [];
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    sleeps,
    sleep: async (ms) => {
      sleeps.push(ms);
      t += ms;
    },
  };
}

/** Awaits a call that must fail with a CofferError, and returns that error. */
export async function caught(p: Promise<unknown>): Promise<CofferError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CofferError) return e;
    throw e;
  }
  throw new Error('expected a CofferError');
}
