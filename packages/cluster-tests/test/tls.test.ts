/**
 * The API over TLS (COFFER_TLS_CERT_FILE / COFFER_TLS_KEY_FILE): a real node serves HTTPS with the
 * configured certificate, refuses plain HTTP on that port, and the CLI talks to it. The certificate
 * is a throw-away self-signed one made with openssl for 127.0.0.1.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { COFFER_BIN, freePort, sleep } from '../src/harness';

jest.setTimeout(60_000);

function httpsGet(url: string, ca: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; cert: { subject: string; fingerprint256: string } }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, headers, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      const peer = res.socket as import('node:tls').TLSSocket;
      const c = peer.getPeerCertificate();
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), cert: { subject: String(c.subject?.CN ?? ''), fingerprint256: c.fingerprint256 } }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('API over TLS', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'coffer-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const token = `cof_test_${randomBytes(24).toString('base64url')}`;
  let proc: ChildProcess | undefined;
  let port = 0;
  let ca = '';

  beforeAll(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=coffer-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    ca = readFileSync(cert, 'utf8');
    port = await freePort();
    const raftPort = await freePort();
    proc = spawn(COFFER_BIN, ['server'], {
      stdio: 'ignore',
      env: {
        PATH: process.env['PATH'] ?? '',
        COFFER_NODE_ID: 'n1',
        COFFER_DATA_DIR: path.join(dir, 'n1'),
        COFFER_API_ADDR: `127.0.0.1:${port}`,
        COFFER_RAFT_ADDR: `127.0.0.1:${raftPort}`,
        COFFER_LOCAL_MASTER_KEY: randomBytes(32).toString('base64'),
        COFFER_BOOTSTRAP_TOKEN: token,
        COFFER_READ_ALLOWLIST: '127.0.0.0/8',
        COFFER_TLS_CERT_FILE: cert,
        COFFER_TLS_KEY_FILE: key,
      },
    });
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        const r = await httpsGet(`https://127.0.0.1:${port}/v1/tokens/self`, ca, { authorization: `Bearer ${token}` });
        if (r.status === 200) break;
      } catch {
        // not up yet
      }
      if (Date.now() > deadline) throw new Error('TLS node did not come up');
      await sleep(100);
    }
  });

  afterAll(async () => {
    if (proc !== undefined && proc.exitCode === null) {
      const gone = new Promise((r) => proc?.once('exit', r));
      proc.kill('SIGTERM');
      await gone;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('serves HTTPS with the configured certificate', async () => {
    const r = await httpsGet(`https://127.0.0.1:${port}/v1/sys/health`, ca);
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ initialized: true, standby: false });
    expect(r.cert.subject).toBe('coffer-test');
  });

  test('a client that does not trust the certificate is refused by its own TLS check', async () => {
    await expect(httpsGet(`https://127.0.0.1:${port}/v1/sys/health`, '')).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
  });

  test('plain HTTP on the TLS port gets no API answer', async () => {
    let status = 0;
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v1/sys/health`, { signal: AbortSignal.timeout(5_000) });
      status = r.status;
      await r.arrayBuffer();
    } catch {
      status = -1; // connection reset: the expected outcome
    }
    expect(status === -1 || status === 400).toBe(true);
  });

  test('the CLI talks to it when told to trust the certificate (NODE_EXTRA_CA_CERTS)', () => {
    const out = execFileSync(COFFER_BIN, ['secrets', 'put', 'tls/probe', 'over-tls'], {
      env: { PATH: process.env['PATH'] ?? '', COFFER_ADDR: `https://127.0.0.1:${port}`, COFFER_TOKEN: token, NODE_EXTRA_CA_CERTS: cert },
      encoding: 'utf8',
    });
    expect(out).toMatch(/version 1|"version":1|tls\/probe/);
    const got = execFileSync(COFFER_BIN, ['secrets', 'get', 'tls/probe'], {
      env: { PATH: process.env['PATH'] ?? '', COFFER_ADDR: `https://127.0.0.1:${port}`, COFFER_TOKEN: token, NODE_EXTRA_CA_CERTS: cert },
      encoding: 'utf8',
    });
    expect(got.trim()).toBe('over-tls');
  });
});
