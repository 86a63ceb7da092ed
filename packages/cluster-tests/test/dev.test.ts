/**
 * `coffer dev`, the README's main command: three real nodes on loopback, keys generated once and
 * kept (mode 0600), the bootstrap token and example commands printed, Ctrl-C (SIGINT) stops all
 * three cleanly, and the next start reuses keys and data.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { canBind, COFFER_BIN, runCli, sleep } from '../src/harness';

jest.setTimeout(120_000);

/** A base port whose six ports (API base/+10/+20, Raft +1 each) are all free. */
async function freeBase(): Promise<number> {
  for (;;) {
    const base = 20_000 + 10 * randomInt(1_100);
    const ports = [0, 1, 10, 11, 20, 21].map((d) => base + d);
    if ((await Promise.all(ports.map(canBind))).every(Boolean)) return base;
  }
}

interface Dev {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

function startDev(dir: string, base: number): Dev {
  let out = '';
  const proc = spawn(COFFER_BIN, ['dev', '--data-dir', dir, '--base-port', String(base)], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, out: () => out, exited };
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await sleep(200);
  }
}

describe('coffer dev', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'coffer-dev-'));
  let dev: Dev | undefined;
  let base = 0;

  afterAll(async () => {
    if (dev !== undefined && dev.proc.exitCode === null) {
      dev.proc.kill('SIGINT');
      await dev.exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('starts three nodes, prints the token and examples, and Ctrl-C stops them all', async () => {
    base = await freeBase();
    dev = startDev(dir, base);
    const d = dev;
    const token = await waitFor('token printed', async () => /Bootstrap admin token: (\S+)/.exec(d.out())?.[1]);
    expect(d.out()).toContain(`export COFFER_ADDR=http://127.0.0.1:${base},http://127.0.0.1:${base + 10},http://127.0.0.1:${base + 20}`);
    expect(d.out().match(/^ {2}\.\/bin\/coffer /gm)?.length).toBeGreaterThanOrEqual(3);
    expect(statSync(path.join(dir, 'keys.json')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'keys.json'), 'utf8')).toContain(token);

    const env = { COFFER_ADDR: `http://127.0.0.1:${base},http://127.0.0.1:${base + 10},http://127.0.0.1:${base + 20}`, COFFER_TOKEN: token };
    await waitFor('a write succeeds', async () => ((await runCli(['secrets', 'put', 'dev/probe', 'hello-dev'], env)).code === 0 ? true : undefined));
    for (const port of [base, base + 10, base + 20]) {
      const r = await runCli(['secrets', 'get', 'dev/probe'], { ...env, COFFER_ADDR: `http://127.0.0.1:${port}` });
      expect({ port, code: r.code, value: r.stdout.trim() }).toEqual({ port, code: 0, value: 'hello-dev' });
    }
    const status = await runCli(['cluster', 'status', '--json'], env);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout).members.map((m: { id: string }) => m.id).sort()).toEqual(['n1', 'n2', 'n3']);

    d.proc.kill('SIGINT');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([d.exited, new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), 20_000)))]);
    clearTimeout(timer);
    expect(code).toBe(0);
    // Every node is gone: all six ports can be bound again.
    await waitFor('ports released', async () => ((await Promise.all([0, 1, 10, 11, 20, 21].map((x) => canBind(base + x)))).every(Boolean) ? true : undefined), 10_000);
  });

  test('the next start reuses the keys and the data', async () => {
    const before = readFileSync(path.join(dir, 'keys.json'), 'utf8');
    dev = startDev(dir, base);
    const d = dev;
    const token = await waitFor('token printed', async () => /Bootstrap admin token: (\S+)/.exec(d.out())?.[1]);
    expect(readFileSync(path.join(dir, 'keys.json'), 'utf8')).toBe(before);
    const env = { COFFER_ADDR: `http://127.0.0.1:${base},http://127.0.0.1:${base + 10},http://127.0.0.1:${base + 20}`, COFFER_TOKEN: token };
    const got = await waitFor('the old secret is readable', async () => {
      const r = await runCli(['secrets', 'get', 'dev/probe'], env);
      return r.code === 0 ? r.stdout.trim() : undefined;
    });
    expect(got).toBe('hello-dev');
    d.proc.kill('SIGINT');
    expect(await d.exited).toBe(0);
  });
});
