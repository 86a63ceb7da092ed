// `coffer server` flags: generated from @coffer/node's config table through commander. In-process
// for --help and usage errors; a real node process (the built entry point) for flags reaching the
// server.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CONFIG_VARIABLES } from '@coffer/node';
import { run } from './helpers';

describe('coffer server --help', () => {
  test('lists every variable as a flag, with its name, default and description', async () => {
    const r = await run(['server', '--help']);
    expect(r.code).toBe(0);
    // commander wraps long lines; compare with the whitespace folded.
    const text = r.stdout.replace(/\s+/g, ' ');
    expect(CONFIG_VARIABLES.length).toBeGreaterThanOrEqual(40);
    for (const s of CONFIG_VARIABLES) {
      expect(text).toContain(`${s.flag} ${s.boolean ? '[bool]' : '<value>'} ${s.description} (${s.name}; default: ${s.defaultText})`.replace(/\s+/g, ' '));
    }
    for (const heading of new Set(CONFIG_VARIABLES.map((s) => s.sectionTitle))) expect(r.stdout).toContain(`\n${heading}:\n`);
  });
});

describe('coffer server usage errors', () => {
  test('an unknown flag is a usage error (exit 2)', async () => {
    const r = await run(['server', '--node-idd', 'n1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--node-idd'");
  });

  test('a positional argument is a usage error (exit 2)', async () => {
    expect((await run(['server', 'n1'])).code).toBe(2);
  });

  test.each<[string[], Record<string, string>, string]>([
    [['--api-addr', 'abc'], { COFFER_NODE_ID: 'n1' }, 'coffer server: COFFER_API_ADDR: "abc" is not host:port\n'],
    [['--api-addr=127.0.0.1:0'], { COFFER_NODE_ID: 'n1' }, 'coffer server: COFFER_API_ADDR: "127.0.0.1:0": port must be 1-65535\n'],
    [['--node-id', 'n 1'], {}, 'coffer server: COFFER_NODE_ID: node name "n 1" may contain only A-Z a-z 0-9 . _ -\n'],
    [[], {}, 'coffer server: COFFER_NODE_ID: is required (e.g. n1)\n'],
    [['--trust-proxy', 'maybe'], { COFFER_NODE_ID: 'n1' }, 'coffer server: COFFER_TRUST_PROXY: "maybe" is not true or false\n'],
    [['--heartbeat-ms', '500'], { COFFER_NODE_ID: 'n1', COFFER_ELECTION_MS: '800' }, 'coffer server: COFFER_ELECTION_MS: 800 must be greater than 2 x COFFER_HEARTBEAT_MS (1000)\n'],
    [['--cluster-key', 'SECRET-not-base64!'], { COFFER_NODE_ID: 'n1' }, 'coffer server: COFFER_CLUSTER_KEY: is not valid base64\n'],
  ])('%j with %j: one line naming the variable, exit 2', async (args, env, line) => {
    const r = await run(['server', ...args], { env });
    expect(r).toMatchObject({ code: 2, stderr: line, stdout: '' });
  });

  test('a flag wins over the variable', async () => {
    // The variable alone is valid; the flag's bad value is what is reported.
    const r = await run(['server', '--log-level', 'loud'], { env: { COFFER_NODE_ID: 'n1', COFFER_LOG_LEVEL: 'warn' } });
    expect(r.stderr).toBe('coffer server: COFFER_LOG_LEVEL: "loud" is not one of fatal, error, warn, info, debug, trace, silent\n');
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe('a real node configured by flags only', () => {
  const entry = path.join(__dirname, '..', 'dist', 'main.js');
  let dir: string;
  let child: ChildProcess | undefined;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'coffer-server-flags-'));
  });
  afterEach(async () => {
    if (child !== undefined && child.exitCode === null) {
      const c = child;
      await new Promise<void>((resolve) => {
        c.once('exit', () => resolve());
        c.kill('SIGTERM');
      });
    }
    child = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  test('starts with --flags (no COFFER_* in the environment), serves health, stops on SIGTERM', async () => {
    const api = await freePort();
    const raft = await freePort();
    const args = ['server', '--node-id', 'f1', `--data-dir=${path.join(dir, 'f1')}`, '--api-addr', `127.0.0.1:${api}`, '--raft-addr', `127.0.0.1:${raft}`,
      '--local-master-key', Buffer.alloc(32, 5).toString('base64'), '--read-allowlist', '127.0.0.1', '--trust-proxy', '--heartbeat-ms', '50', '--election-ms', '500', '--log-level', 'warn'];
    const c = spawn(process.execPath, [entry, ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    let output = '';
    c.stdout?.on('data', (b: Buffer) => (output += b.toString()));
    c.stderr?.on('data', (b: Buffer) => (output += b.toString()));
    const deadline = Date.now() + 20_000;
    let health: { leader?: unknown } | undefined;
    while (Date.now() < deadline && c.exitCode === null) {
      try {
        const res = await fetch(`http://127.0.0.1:${api}/v1/sys/health`);
        if (res.status === 200) {
          health = (await res.json()) as { leader?: unknown };
          break;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (health === undefined) throw new Error(`no healthy leader within 20 s; node output:\n${output}`);
    expect(health.leader).toBe('f1');
    // The warn-level log shows the flag reached the logger: no info lines.
    expect(output).not.toContain('"level":"info"');
    const code = await new Promise<number | null>((resolve) => {
      c.once('exit', (x) => resolve(x));
      c.kill('SIGTERM');
    });
    expect(code).toBe(0);
  }, 30_000);
});
