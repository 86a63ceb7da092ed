// A stand-in node (real node:http on loopback) and an in-process runner for the CLI.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { main } from '../src/main';

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

export async function standIn(handler: (hit: Hit, res: ServerResponse) => void): Promise<StandIn> {
  const hits: Hit[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const hit = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      hits.push(hit);
      handler(hit, res);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  stdoutBytes: Buffer;
}

export interface RunOptions {
  stdin?: string | Buffer;
  stdinIsTTY?: boolean;
  env?: NodeJS.ProcessEnv;
  sleeps?: number[];
}

/** Run `coffer ARGS` in-process with captured streams. */
export async function run(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdin = Readable.from(opts.stdin === undefined ? [] : [Buffer.from(opts.stdin)]) as Readable & { isTTY?: boolean };
  stdin.isTTY = opts.stdinIsTTY ?? false;
  const code = await main(args, {
    io: {
      stdout: { write: (c: string | Uint8Array) => out.push(Buffer.from(c)) },
      stderr: { write: (c: string | Uint8Array) => err.push(Buffer.from(c)) },
      stdin,
      env: opts.env ?? {},
    },
    sleep: async (ms) => {
      opts.sleeps?.push(ms);
    },
    clientOptions: { retry: { maxAttempts: 1 } },
  });
  const stdoutBytes = Buffer.concat(out);
  return { code, stdout: stdoutBytes.toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), stdoutBytes };
}
