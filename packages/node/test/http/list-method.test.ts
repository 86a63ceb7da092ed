// The LIST method over real sockets: plain HTTP (fresh and keep-alive connections, a request
// pipelined in front of it) and HTTPS, with node's own servers and a handler that echoes what it saw.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, Agent, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, request as httpsRequest, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { acceptListMethod } from '../../src/http/list-method.js';

function echo(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/slow') {
    setTimeout(() => res.end(JSON.stringify({ url: '/slow' })), 300);
    return;
  }
  const body = JSON.stringify({ method: req.method, url: req.url, ip: req.socket.remoteAddress });
  res.setHeader('content-type', 'application/json');
  res.end(body);
}

function listen(server: Server | HttpsServer): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)));
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

type Answer = { status: number; body: string; connection: string | undefined };

function call(port: number, method: string, p: string, agent: Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path: p, agent, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, connection: res.headers.connection }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('acceptListMethod over plain HTTP', () => {
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer(echo);
    acceptListMethod(server);
    port = await listen(server);
  });
  afterAll(() => close(server));

  test('LIST becomes GET …list=true with the real client address, and closes the connection', async () => {
    const r = await call(port, 'LIST', '/v1/secret/metadata/app?x=1', false);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ method: 'GET', url: '/v1/secret/metadata/app?x=1&list=true', ip: '127.0.0.1' });
    expect(r.connection).toBe('close');
  });

  test('on a keep-alive connection, between other requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect((await call(port, 'GET', '/a', agent)).status).toBe(200);
      expect(JSON.parse((await call(port, 'LIST', '/b', agent)).body)).toMatchObject({ method: 'GET', url: '/b?list=true' });
      expect(JSON.parse((await call(port, 'GET', '/c', agent)).body)).toMatchObject({ method: 'GET', url: '/c' });
      expect(JSON.parse((await call(port, 'LIST', '/d', agent)).body)).toMatchObject({ url: '/d?list=true' });
    } finally {
      agent.destroy();
    }
  });

  test('pipelined behind a GET in the same packet; other unknown methods still get 400', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.end('GET /first HTTP/1.1\r\nHost: x\r\n\r\nLIST /second HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      s.on('data', (c: Buffer) => (out += c.toString('latin1')));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    expect(text).toContain('"url":"/first"');
    expect(text).toContain('"url":"/second?list=true"');
    expect((await call(port, 'FROB', '/x', false)).status).toBe(400);
  });

  test('pipelined behind a response still being written: answered after it, never interleaved', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\nLIST /after HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      s.on('data', (c: Buffer) => (out += c.toString('latin1')));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    const slow = text.indexOf('{"url":"/slow"}');
    const after = text.indexOf('"url":"/after?list=true"');
    expect(slow).toBeGreaterThan(0);
    expect(after).toBeGreaterThan(slow);
    expect(text.match(/HTTP\/1\.1 200 OK/g)).toHaveLength(2);
  });

  test('a LIST with a body is refused with 400 in the Vault error shape', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write('LIST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'));
      let out = '';
      s.on('data', (c: Buffer) => (out += c.toString('latin1')));
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(text).toContain('{"errors":["LIST requests take no body"]}');
  });
});

test('acceptListMethod over HTTPS', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'coffer-list-tls-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=coffer-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const server = createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, echo);
    acceptListMethod(server);
    const port = await listen(server);
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, method: 'LIST', path: '/v1/secret/metadata/', ca: readFileSync(cert), agent: false, timeout: 10_000 }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve(body));
        });
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end();
      });
      expect(JSON.parse(answer)).toEqual({ method: 'GET', url: '/v1/secret/metadata/?list=true', ip: '127.0.0.1' });
    } finally {
      await close(server);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
