/**
 * The container and monitoring assets under deploy/ (issue 16). No container engine runs here or in
 * CI, so the image file and the compose file are parsed and checked for what they promise; the
 * parts that can run without an engine do run: the image's entry point and health check scripts,
 * the compose environment through the entry point into the server's real configuration parser,
 * `promtool check rules` / `promtool test rules`, and one real node whose /metrics must export
 * every metric the alert rules and the dashboard name.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { CONFIG_ENV, loadConfig } from '@coffer/node';
import { assertLoopback, COFFER_BIN, freePort, REPO_ROOT, sleep } from '../src/harness';

// js-yaml 3 ships no types; this is the part of its API the test uses.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- an import would need types js-yaml 3 lacks
const yaml = require('js-yaml') as { safeLoad(text: string): unknown };

jest.setTimeout(120_000);

const CONTAINER_DIR = path.join(REPO_ROOT, 'deploy', 'container');
const MONITORING_DIR = path.join(REPO_ROOT, 'deploy', 'monitoring');
const DOCKERFILE = path.join(CONTAINER_DIR, 'Dockerfile');
const COMPOSE = path.join(CONTAINER_DIR, 'compose.yaml');
const ENTRYPOINT = path.join(CONTAINER_DIR, 'entrypoint.sh');
const HEALTHCHECK = path.join(CONTAINER_DIR, 'healthcheck.mjs');
const RULES = path.join(MONITORING_DIR, 'coffer-alerts.rules.yml');
const RULE_TESTS = path.join(MONITORING_DIR, 'coffer-alerts.test.yml');
const DASHBOARD = path.join(MONITORING_DIR, 'coffer-dashboard.json');

/** Variables that hold keys or tokens: never inline in the image or the compose file. */
const SECRET_VARIABLES = ['COFFER_CLUSTER_KEY', 'COFFER_PREVIOUS_CLUSTER_KEY', 'COFFER_LOCAL_MASTER_KEY', 'COFFER_BOOTSTRAP_TOKEN'];

/** Metrics that rules or panels name but a Coffer node does not export, and who does. */
const EXTERNAL_METRICS: Record<string, string> = {
  up: 'Prometheus itself (one series per scrape target)',
  node_filesystem_avail_bytes: 'node_exporter (Coffer does not export disk usage)',
  node_filesystem_size_bytes: 'node_exporter (Coffer does not export disk usage)',
};

/**
 * Metrics that rules or panels may name before the node exports them (a change adding them in
 * flight). Allowed to be missing from /metrics; once one is exported the test fails until it is
 * removed from here, so the list cannot go stale. Empty: the scheduled-snapshot metrics
 * (coffer_snapshot_*) the backup rules use are exported since c352aa9.
 */
const EXPECTED_LATER = new Set<string>([]);

const tempDirs: string[] = [];
function tempDir(prefix: string): string {
  const d = mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// The image file

interface Instruction {
  /** Upper-case keyword. */
  op: string;
  args: string;
}
interface Stage {
  name: string;
  from: string;
  instructions: Instruction[];
}

/** Parses a Dockerfile: comments dropped, `\` continuations joined, one stage per FROM. */
function parseDockerfile(text: string): { args: Map<string, string>; stages: Stage[] } {
  const logical: string[] = [];
  let cur = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      cur += `${line.slice(0, -1)} `;
      continue;
    }
    cur += line;
    if (cur.trim() !== '') logical.push(cur.trim());
    cur = '';
  }
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/s.exec(l);
    if (m === null) continue;
    const op = (m[1] as string).toUpperCase();
    const args = (m[2] as string).replace(/\s+/g, ' ').trim();
    if (op === 'FROM') {
      const f = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (f === null) throw new Error(`cannot parse FROM ${args}`);
      const from = (f[1] as string).replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => globalArgs.get((a ?? b) as string) ?? '');
      stages.push({ name: f[2] ?? String(stages.length), from, instructions: [] });
    } else if (stages.length === 0) {
      if (op === 'ARG') {
        const a = /^(\w+)(?:=(.*))?$/.exec(args);
        if (a !== null) globalArgs.set(a[1] as string, a[2] ?? '');
      }
    } else {
      (stages[stages.length - 1] as Stage).instructions.push({ op, args });
    }
  }
  return { args: globalArgs, stages };
}

/** `ENV A=1 B=2` (and the legacy `ENV A 1`) as pairs. */
function envPairs(args: string): [string, string][] {
  if (!args.includes('=')) {
    const [k, ...v] = args.split(' ');
    return [[k as string, v.join(' ')]];
  }
  return [...args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((m) => [m[1] as string, (m[2] as string).replace(/^"|"$/g, '')]);
}

function jsonForm(args: string, what: string): string[] {
  const v = JSON.parse(args) as unknown;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new Error(`${what} is not in exec (JSON array) form: ${args}`);
  return v as string[];
}

/** COPY instructions as [source(s), destination, flags]. */
function copies(stage: Stage): { from: string | undefined; chown: string | undefined; srcs: string[]; dest: string }[] {
  return stage.instructions
    .filter((i) => i.op === 'COPY')
    .map((i) => {
      const words = i.args.split(' ');
      const flags = words.filter((w) => w.startsWith('--'));
      const rest = words.filter((w) => !w.startsWith('--'));
      return {
        from: flags.find((f) => f.startsWith('--from='))?.slice('--from='.length),
        chown: flags.find((f) => f.startsWith('--chown='))?.slice('--chown='.length),
        srcs: rest.slice(0, -1),
        dest: rest[rest.length - 1] as string,
      };
    });
}

function workspacePackages(): string[] {
  return readdirSync(path.join(REPO_ROOT, 'packages'))
    .filter((p) => existsSync(path.join(REPO_ROOT, 'packages', p, 'package.json')))
    .sort();
}

/** Resolves a COPY destination against the stage's WORKDIR at that point. */
function destinations(stage: Stage): Map<string, { from: string | undefined; chown: string | undefined; srcs: string[] }> {
  const out = new Map<string, { from: string | undefined; chown: string | undefined; srcs: string[] }>();
  let workdir = '/';
  for (const i of stage.instructions) {
    if (i.op === 'WORKDIR') workdir = path.posix.resolve(workdir, i.args);
    if (i.op !== 'COPY') continue;
    const c = copies({ ...stage, instructions: [i] })[0] as ReturnType<typeof copies>[number];
    out.set(path.posix.resolve(workdir, c.dest), { from: c.from, chown: c.chown, srcs: c.srcs });
  }
  return out;
}

describe('deploy/container/Dockerfile', () => {
  const { stages } = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
  const runtime = stages[stages.length - 1] as Stage;
  const byName = new Map(stages.map((s) => [s.name, s]));
  const runtimeEnv = new Map(runtime.instructions.filter((i) => i.op === 'ENV').flatMap((i) => envPairs(i.args)));
  const copied = destinations(runtime);

  test('multi-stage: a build stage installs with pnpm from the lockfile and runs tsc -b', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const build = byName.get('build');
    expect(build).toBeDefined();
    const runs = (build as Stage).instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/pnpm@\$\{?PNPM_VERSION\}?|pnpm@\d/);
    expect(runs).toMatch(/pnpm install --frozen-lockfile/);
    expect(runs).toMatch(/tsc -b/);
    // The pinned pnpm is the one bootstrap.sh installs.
    const pinned = /PNPM_VERSION=(\S+)/.exec(readFileSync(path.join(REPO_ROOT, 'scripts', 'bootstrap.sh'), 'utf8'))?.[1];
    expect(readFileSync(DOCKERFILE, 'utf8')).toContain(`ARG PNPM_VERSION=${pinned}`);
  });

  test('the runtime stage is node 20 slim and carries runtime dependencies only', () => {
    expect(runtime.from).toMatch(/^node:20[-.\w]*-slim$|^node:20-slim$/);
    const prod = byName.get('prod-deps') as Stage;
    expect(prod).toBeDefined();
    expect(prod.instructions.some((i) => i.op === 'RUN' && /pnpm install --frozen-lockfile --prod\b/.test(i.args))).toBe(true);
    // pnpm checks the lockfile against every workspace manifest: a package added without its
    // line here would break the image build.
    const manifests = copies(prod).flatMap((c) => c.srcs);
    for (const p of workspacePackages()) expect(manifests).toContain(`packages/${p}/package.json`);
    expect(copied.get('/opt/coffer/node_modules')?.from).toBe('prod-deps');
    // Every package the server runs is copied built; the test-only package is not.
    for (const p of workspacePackages().filter((x) => x !== 'cluster-tests')) {
      expect(copied.get(`/opt/coffer/packages/${p}/dist`)).toEqual({ from: 'build', chown: undefined, srcs: [`/src/packages/${p}/dist`] });
    }
    expect(copied.has('/opt/coffer/packages/cluster-tests/dist')).toBe(false);
  });

  test('runs as a fixed non-root uid; code belongs to root, only the volumes to the user', () => {
    const users = runtime.instructions.filter((i) => i.op === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const last = (users[users.length - 1] as Instruction).args;
    const [uid, gid] = last.split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    expect(Number(gid ?? uid)).toBeGreaterThan(0);
    // Nothing after the last USER runs or switches back.
    const idx = runtime.instructions.lastIndexOf(users[users.length - 1] as Instruction);
    expect(runtime.instructions.slice(idx + 1).some((i) => i.op === 'RUN' || i.op === 'USER')).toBe(false);
    // No COPY hands the code to the server's user: it cannot rewrite what it runs.
    for (const [dest, c] of copied) expect([dest, c.chown]).toEqual([dest, undefined]);
    const setup = runtime.instructions.filter((i) => i.op === 'RUN').map((i) => i.args).join('\n');
    expect(setup).toContain(`useradd --system --uid ${uid}`);
    expect(setup).toContain(`chown ${uid}:${gid ?? uid} /var/lib/coffer /var/lib/coffer-backups`);
  });

  test('read-only root: the data dir (and the audit log in it) and the scheduled snapshots are declared volumes', () => {
    const volumes = runtime.instructions.filter((i) => i.op === 'VOLUME').flatMap((i) => (i.args.startsWith('[') ? jsonForm(i.args, 'VOLUME') : i.args.split(' ')));
    expect(volumes).toEqual(['/var/lib/coffer', '/var/lib/coffer-backups']);
    expect(runtimeEnv.get('COFFER_DATA_DIR')).toBe('/var/lib/coffer');
    expect(runtimeEnv.get('COFFER_SNAPSHOT_DIR')).toBe('/var/lib/coffer-backups');
    // No variable moves a write elsewhere (the audit file defaults to the data dir).
    expect(runtimeEnv.has('COFFER_AUDIT_FILE')).toBe(false);
    // Keys never baked into the image.
    for (const v of SECRET_VARIABLES) expect(runtimeEnv.has(v)).toBe(false);
    for (const s of stages) for (const i of s.instructions.filter((x) => x.op === 'ARG' || x.op === 'ENV')) for (const v of SECRET_VARIABLES) expect(i.args).not.toContain(v);
  });

  test('HEALTHCHECK runs healthcheck.mjs with node; the entry point is `coffer server` through entrypoint.sh', () => {
    const hc = runtime.instructions.filter((i) => i.op === 'HEALTHCHECK');
    expect(hc).toHaveLength(1);
    const m = /^(.*?)\s*CMD\s+(\[.*\])$/.exec((hc[0] as Instruction).args);
    expect(m).not.toBeNull();
    expect((m as RegExpExecArray)[1]).toMatch(/--interval=\d+s/);
    expect((m as RegExpExecArray)[1]).toMatch(/--timeout=\d+s/);
    const cmd = jsonForm((m as RegExpExecArray)[2] as string, 'HEALTHCHECK CMD');
    expect(cmd[0]).toBe('node');
    expect(copied.get(cmd[1] as string)?.srcs).toEqual(['deploy/container/healthcheck.mjs']);

    const entry = runtime.instructions.filter((i) => i.op === 'ENTRYPOINT');
    const cmds = runtime.instructions.filter((i) => i.op === 'CMD');
    expect(entry).toHaveLength(1);
    expect(cmds).toHaveLength(1);
    const ep = jsonForm((entry[0] as Instruction).args, 'ENTRYPOINT');
    expect(ep).toHaveLength(1);
    expect(copied.get(ep[0] as string)?.srcs).toEqual(['deploy/container/entrypoint.sh']);
    // Executable whatever mode the checkout gave the file; nobody can rewrite it.
    expect(runtime.instructions.find((i) => i.op === 'COPY' && i.args.endsWith(` ${ep[0] as string}`))?.args).toMatch(/^--chmod=0555 /);
    expect(jsonForm((cmds[0] as Instruction).args, 'CMD')).toEqual(['server']);
    // entrypoint.sh execs the CLI at /opt/coffer/bin/coffer, which is the repository's bin/ copied.
    expect(readFileSync(ENTRYPOINT, 'utf8')).toMatch(/exec "\$\{ENTRYPOINT_COFFER_BIN:-\/opt\/coffer\/bin\/coffer\}" "\$@"/);
    expect(copied.get('/opt/coffer/bin')).toEqual({ from: 'build', chown: undefined, srcs: ['/src/bin'] });
    expect(readFileSync(path.join(REPO_ROOT, 'bin', 'coffer'), 'utf8')).toContain('packages/cli/dist/main.js');
  });

  test('the build context ignores local state (node_modules, dist, data, key files)', () => {
    const ignore = readFileSync(path.join(CONTAINER_DIR, 'Dockerfile.dockerignore'), 'utf8');
    for (const p of ['**/node_modules', '**/dist', '.git', 'data', 'deploy/container/secrets']) expect(ignore.split('\n')).toContain(p);
  });
});

// ---------------------------------------------------------------------------------------------
// The entry point and health check scripts, run for real

/** A stand-in for bin/coffer that prints its arguments and COFFER_* environment as JSON. */
function stubCli(): string {
  const dir = tempDir('coffer-entry-');
  const stub = path.join(dir, 'coffer');
  writeFileSync(stub, `#!/bin/sh\nexec node -e 'const e={};for(const[k,v]of Object.entries(process.env))if(k.startsWith("COFFER_"))e[k]=v;console.log(JSON.stringify({argv:process.argv.slice(1),env:e}))' -- "$@"\n`);
  chmodSync(stub, 0o755);
  return stub;
}

function runEntrypoint(env: Record<string, string>, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('sh', [ENTRYPOINT, ...args], { env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('deploy/container/entrypoint.sh', () => {
  test('turns *_FILE secrets into the variables, drops the *_FILE ones and passes the arguments on', () => {
    const stub = stubCli();
    const dir = tempDir('coffer-secrets-');
    const key = randomBytes(32).toString('base64');
    writeFileSync(path.join(dir, 'cluster_key'), `${key}\n`);
    writeFileSync(path.join(dir, 'token'), 'tok-en\n\n');
    const r = runEntrypoint({ ENTRYPOINT_COFFER_BIN: stub, COFFER_CLUSTER_KEY_FILE: path.join(dir, 'cluster_key'), COFFER_BOOTSTRAP_TOKEN_FILE: path.join(dir, 'token'), COFFER_NODE_ID: 'n2' }, ['server', '--log-level', 'debug']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { argv: string[]; env: Record<string, string> };
    expect(out.argv).toEqual(['server', '--log-level', 'debug']);
    expect(out.env).toEqual({ COFFER_CLUSTER_KEY: key, COFFER_BOOTSTRAP_TOKEN: 'tok-en', COFFER_NODE_ID: 'n2' });
  });

  test('refuses a variable set both ways, and a secret file it cannot read', () => {
    const stub = stubCli();
    const dir = tempDir('coffer-secrets-');
    writeFileSync(path.join(dir, 'k'), 'x');
    const both = runEntrypoint({ ENTRYPOINT_COFFER_BIN: stub, COFFER_LOCAL_MASTER_KEY: 'a', COFFER_LOCAL_MASTER_KEY_FILE: path.join(dir, 'k') }, ['server']);
    expect(both.code).toBe(2);
    expect(both.stdout).toBe('');
    expect(both.stderr).toContain('COFFER_LOCAL_MASTER_KEY and COFFER_LOCAL_MASTER_KEY_FILE are both set');
    const missing = runEntrypoint({ ENTRYPOINT_COFFER_BIN: stub, COFFER_CLUSTER_KEY_FILE: path.join(dir, 'nope') }, ['server']);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toContain(`COFFER_CLUSTER_KEY_FILE: ${path.join(dir, 'nope')} does not exist or is not readable`);
  });
});

/** Runs healthcheck.mjs against `addr`; its exit code. */
function healthcheck(addr: string, extra: Record<string, string> = {}): Promise<number | null> {
  // NB: the script maps a wildcard listen address to loopback; everything else must be loopback already.
  if (!addr.startsWith('0.0.0.0:')) assertLoopback(`http://${addr}`);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [HEALTHCHECK], { env: { PATH: process.env['PATH'] ?? '', COFFER_API_ADDR: addr, ...extra }, stdio: 'ignore' });
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    p.once('error', reject);
    p.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

describe('deploy/container/healthcheck.mjs', () => {
  test('200 and 429 are healthy; 503, other statuses and a closed port are not', async () => {
    let status = 200;
    const paths: string[] = [];
    const server = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      res.statusCode = status;
      res.end('{}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const results: Record<number, number | null> = {};
      for (const s of [200, 429, 503, 500, 404]) {
        status = s;
        results[s] = await healthcheck(`127.0.0.1:${port}`);
      }
      expect(results).toEqual({ 200: 0, 429: 0, 503: 1, 500: 1, 404: 1 });
      expect(new Set(paths)).toEqual(new Set(['/v1/sys/health']));
      // A wildcard listen address (the image's 0.0.0.0:8200) is checked on loopback.
      status = 429;
      expect(await healthcheck(`0.0.0.0:${port}`)).toBe(0);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
    expect(await healthcheck(`127.0.0.1:${port}`)).toBe(1);
  });

  test('with COFFER_TLS_CERT_FILE set it speaks HTTPS to its own node (the certificate names the service, not 127.0.0.1)', async () => {
    const dir = tempDir('coffer-hc-tls-');
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=coffer.example'], { stdio: 'ignore', timeout: 30_000 });
    expect(gen.status).toBe(0);
    const tlsServer = https.createServer({ key: readFileSync(key), cert: readFileSync(cert) }, (_req, res) => {
      res.statusCode = 429;
      res.end('{}');
    });
    const plain = http.createServer((_req, res) => res.end('{}'));
    await new Promise<void>((r) => tlsServer.listen(0, '127.0.0.1', r));
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    try {
      const tlsPort = (tlsServer.address() as { port: number }).port;
      const plainPort = (plain.address() as { port: number }).port;
      expect(await healthcheck(`127.0.0.1:${tlsPort}`, { COFFER_TLS_CERT_FILE: cert })).toBe(0);
      // Without the variable it speaks plain HTTP, which a TLS listener does not answer with 200/429.
      expect(await healthcheck(`127.0.0.1:${tlsPort}`)).toBe(1);
      // And with it, a plain listener fails the handshake.
      expect(await healthcheck(`127.0.0.1:${plainPort}`, { COFFER_TLS_CERT_FILE: cert })).toBe(1);
    } finally {
      await new Promise<void>((r) => tlsServer.close(() => r()));
      await new Promise<void>((r) => plain.close(() => r()));
    }
  });
});

// ---------------------------------------------------------------------------------------------
// The compose file

interface ComposeService {
  build?: { context?: string; dockerfile?: string };
  image?: string;
  init?: boolean;
  user?: string;
  read_only?: boolean;
  tmpfs?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  networks?: Record<string, { ipv4_address?: string } | null>;
  ports?: (string | Record<string, unknown>)[];
  volumes?: (string | Record<string, unknown>)[];
  secrets?: (string | { source: string })[];
  cap_drop?: string[];
  security_opt?: string[];
}
interface ComposeFile {
  services: Record<string, ComposeService>;
  networks?: Record<string, { internal?: boolean } | null>;
  volumes?: Record<string, unknown>;
  secrets?: Record<string, { file?: string; environment?: string }>;
}

/** Compose interpolation with defaults only (`${VAR:-default}`, `${VAR-default}`); bare `${VAR}` is an error here. */
function interpolate(v: string): string {
  return v.replace(/\$\{(\w+)(:?-)([^}]*)\}|\$\{(\w+)\}/g, (_all, _name: string | undefined, _op: string | undefined, dflt: string | undefined, bare: string | undefined) => {
    if (bare !== undefined) throw new Error(`\${${bare}} has no default: the compose file would not start without it`);
    return dflt as string;
  });
}

describe('deploy/container/compose.yaml', () => {
  const compose = yaml.safeLoad(readFileSync(COMPOSE, 'utf8')) as ComposeFile;
  const services = Object.entries(compose.services);
  const { stages } = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
  const imageEnv = Object.fromEntries((stages[stages.length - 1] as Stage).instructions.filter((i) => i.op === 'ENV').flatMap((i) => envPairs(i.args)));
  const imageUser = (stages[stages.length - 1] as Stage).instructions.filter((i) => i.op === 'USER').pop()?.args;
  const env = (s: ComposeService): Record<string, string> => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(String(v))]));

  test('three nodes built from this Dockerfile, each read-only with a tmpfs /tmp, a data volume, non-root, no capabilities', () => {
    expect(services.map(([n]) => n).sort()).toEqual(['n1', 'n2', 'n3']);
    for (const [name, s] of services) {
      expect(path.resolve(CONTAINER_DIR, s.build?.context ?? '.')).toBe(REPO_ROOT);
      expect(s.build?.dockerfile).toBe('deploy/container/Dockerfile');
      expect(s.read_only).toBe(true);
      const tmpfs = Array.isArray(s.tmpfs) ? s.tmpfs : [s.tmpfs];
      expect(tmpfs.map((t) => String(t).split(':')[0])).toContain('/tmp');
      expect((s.volumes ?? []).map(String).sort()).toEqual([`${name}-backups:/var/lib/coffer-backups`, `${name}-data:/var/lib/coffer`]);
      expect(compose.volumes).toHaveProperty(`${name}-data`);
      expect(compose.volumes).toHaveProperty(`${name}-backups`);
      expect(s.user).toMatch(/^[1-9]\d*:[1-9]\d*$/);
      expect(s.user).toBe(imageUser);
      expect(s.cap_drop).toEqual(['ALL']);
      expect(s.security_opt).toContain('no-new-privileges:true');
      expect(s.init).toBe(true);
    }
    // The volumes are all distinct: no two nodes share a data dir.
    expect(new Set(services.map(([, s]) => (s.volumes ?? []).map(String).join())).size).toBe(3);
  });

  test('keys come from Docker secrets through *_FILE, never inline', () => {
    const raw = readFileSync(COMPOSE, 'utf8');
    for (const [, s] of services) {
      const e = s.environment ?? {};
      for (const v of SECRET_VARIABLES) expect(Object.keys(e)).not.toContain(v);
      const granted = new Set((s.secrets ?? []).map((x) => (typeof x === 'string' ? x : x.source)));
      for (const v of ['COFFER_CLUSTER_KEY', 'COFFER_LOCAL_MASTER_KEY']) {
        const file = e[`${v}_FILE`];
        expect(typeof file).toBe('string');
        const m = /^\/run\/secrets\/([\w.-]+)$/.exec(String(file));
        expect(m).not.toBeNull();
        const secret = (m as RegExpExecArray)[1] as string;
        expect(granted.has(secret)).toBe(true);
        const def = compose.secrets?.[secret];
        // From a file next to the compose file (git-ignored) or the environment: nothing inline.
        expect(def?.file !== undefined || def?.environment !== undefined).toBe(true);
        if (def?.file !== undefined) expect(path.resolve(CONTAINER_DIR, def.file).startsWith(path.join(CONTAINER_DIR, 'secrets') + path.sep)).toBe(true);
      }
    }
    // Nothing that looks like a base64 key sits anywhere in the file.
    expect(raw).not.toMatch(/[A-Za-z0-9+/]{40,}={0,2}/);
    expect(readFileSync(path.join(CONTAINER_DIR, 'secrets', '.gitignore'), 'utf8').split('\n')).toEqual(expect.arrayContaining(['*', '!.gitignore']));
  });

  test('Raft on an internal network at fixed addresses named by COFFER_INITIAL_CLUSTER; only the API is published, on loopback', () => {
    const initial = new Set(services.map(([, s]) => env(s)['COFFER_INITIAL_CLUSTER']));
    expect(initial.size).toBe(1);
    const members = new Map(String([...initial][0]).split(',').map((e) => e.split('=') as [string, string]));
    expect([...members.keys()].sort()).toEqual(['n1', 'n2', 'n3']);
    for (const [name, s] of services) {
      const e = env(s);
      expect(e['COFFER_NODE_ID']).toBe(name);
      const raftAddr = String(e['COFFER_RAFT_ADDR'] ?? imageEnv['COFFER_RAFT_ADDR']);
      const [host, port] = raftAddr.split(':');
      expect(members.get(name)).toBe(`http://${host}:${port}`);
      // The peer listener binds the node's address on an internal network, not a wildcard.
      const net = Object.entries(s.networks ?? {}).find(([, v]) => v?.ipv4_address === host);
      expect(net).toBeDefined();
      expect(compose.networks?.[(net as [string, unknown])[0]]?.internal).toBe(true);
      // Published: the API port only, on the host's loopback.
      const apiPort = String(e['COFFER_API_ADDR'] ?? imageEnv['COFFER_API_ADDR']).split(':').pop();
      expect(s.ports?.length).toBe(1);
      for (const p of s.ports ?? []) {
        const parts = String(p).split(':');
        expect(parts).toHaveLength(3);
        expect(parts[0]).toBe('127.0.0.1');
        expect(parts[2]).toBe(apiPort);
        expect(parts[2]).not.toBe(port);
      }
    }
  });

  test("each node's environment, through entrypoint.sh, is accepted by the server's own configuration parser", () => {
    const stub = stubCli();
    const secretsDir = tempDir('coffer-compose-secrets-');
    const files: Record<string, string> = {};
    for (const [name] of Object.entries(compose.secrets ?? {})) {
      files[name] = path.join(secretsDir, name);
      writeFileSync(files[name] as string, `${randomBytes(32).toString('base64')}\n`);
    }
    const advertised = new Set<string>();
    for (const [name, s] of services) {
      const containerEnv: Record<string, string> = { ...imageEnv, ...env(s) };
      for (const [k, v] of Object.entries(containerEnv)) {
        const m = /^\/run\/secrets\/(.+)$/.exec(v);
        if (k.endsWith('_FILE') && m !== null) containerEnv[k] = files[m[1] as string] as string;
      }
      const r = runEntrypoint({ ENTRYPOINT_COFFER_BIN: stub, ...containerEnv }, ['server']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const seen = JSON.parse(r.stdout) as { argv: string[]; env: Record<string, string> };
      expect(seen.argv).toEqual(['server']);
      const cfg = loadConfig(seen.env, {}, { readable: () => true, cwd: '/opt/coffer' });
      expect(cfg.warnings).toEqual([]);
      expect(cfg.nodeId).toBe(name);
      expect(cfg.dataDir).toBe('/var/lib/coffer');
      // Read-only root: every path the server writes lies on one of the service's volumes.
      const mounts = (s.volumes ?? []).map((v) => String(v).split(':')[1] as string);
      for (const p of [cfg.dataDir, cfg.auditFile, cfg.snapshotDir]) expect([p, mounts.some((m) => p === m || p.startsWith(`${m}/`))]).toEqual([p, true]);
      expect(cfg.snapshotDir).toBe('/var/lib/coffer-backups');
      expect(cfg.snapshotIntervalMs).toBeGreaterThan(0);
      expect(cfg.initialCluster.map((m) => m.id)).toEqual(['n1', 'n2', 'n3']);
      expect(cfg.clusterKey?.length).toBe(32);
      expect(cfg.localMasterKeys?.length).toBe(1);
      expect(cfg.bootstrapToken).toBeDefined();
      expect(cfg.kmsMode).toBe('local');
      expect(cfg.readAllowlist.length).toBeGreaterThan(0);
      advertised.add(cfg.advertiseApi);
    }
    expect(advertised.size).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------
// Monitoring

function promtool(args: string[]): { code: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', cwd: MONITORING_DIR, timeout: 150_000 });
  if (r.error !== undefined) throw new Error(`promtool could not run (${r.error.message}); scripts/system-deps.sh installs Debian's prometheus package`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'time']);

/** Metric names in a PromQL expression (label names, functions, ranges and strings removed). */
function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(\s*\()?/g)) {
    const name = m[1] as string;
    if (m[2] !== undefined) continue; // a function call
    if (PROMQL_WORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

function ruleExprs(): { alert: string; expr: string }[] {
  const doc = yaml.safeLoad(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert?: string; record?: string; expr: string }[] }[] };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ alert: r.alert ?? r.record ?? '?', expr: r.expr })));
}

function dashboardExprs(): { panel: string; expr: string }[] {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[]; templating: { list: { name: string; query?: unknown }[] } };
  const out: { panel: string; expr: string }[] = [];
  for (const p of dash.panels) for (const t of p.targets ?? []) out.push({ panel: p.title, expr: t.expr });
  for (const v of dash.templating.list) {
    const q = typeof v.query === 'object' && v.query !== null ? (v.query as { query?: string }).query : undefined;
    const m = q === undefined ? null : /^label_values\((.*),\s*\w+\)$/.exec(q);
    if (m !== null) out.push({ panel: `variable ${v.name}`, expr: m[1] as string });
  }
  return out;
}

describe('deploy/monitoring', () => {
  test('the metric-name extractor finds metrics and nothing else', () => {
    expect(metricNames('(max by (job) (coffer_raft_commit_index)) - on (job) group_right () coffer_raft_applied_index > 1000').sort()).toEqual(['coffer_raft_applied_index', 'coffer_raft_commit_index']);
    expect(metricNames('histogram_quantile(0.99, sum by (op, le) (rate(coffer_kms_request_duration_seconds_bucket{job="$job", op=~"a|b"}[$__rate_interval]))) > 1')).toEqual(['coffer_kms_request_duration_seconds_bucket']);
    expect(metricNames('time() - max by (job) (x_y) > 26 * 3600 and max(x_y offset 1d) > 0')).toEqual(['x_y']);
  });

  test('promtool check rules passes, and the promtool unit tests of the rules pass', () => {
    const check = promtool(['check', 'rules', RULES]);
    expect(check.out).toContain('SUCCESS');
    expect(check.code).toBe(0);
    const unit = promtool(['test', 'rules', RULE_TESTS]);
    expect(unit.out).toContain('SUCCESS');
    expect(unit.code).toBe(0);
  }, 320_000);

  test('the rules cover what issue 16 asks for, and say why certificate expiry has no rule', () => {
    const named = new Set(ruleExprs().flatMap((r) => metricNames(r.expr)));
    for (const m of ['coffer_raft_is_leader', 'coffer_raft_leader_changes_total', 'coffer_raft_applied_index', 'coffer_kms_errors_total', 'coffer_kms_request_duration_seconds_bucket', 'coffer_audit_write_failures_total', 'coffer_auth_lockouts_total', 'node_filesystem_avail_bytes', 'coffer_snapshot_last_success_timestamp_seconds', 'coffer_snapshot_failures_total', 'coffer_snapshot_interval_seconds', 'coffer_rotation_pending', 'coffer_rotation_target_total']) {
      expect([m, named.has(m)]).toEqual([m, true]);
    }
    expect(readFileSync(RULES, 'utf8')).toMatch(/TLS certificate expiry: Coffer exports no certificate metric/);
  });

  test('the dashboard is importable JSON with a templated Prometheus data source on every query', () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; panels: { id: number; type: string; datasource?: { uid: string }; targets?: { expr: string; datasource?: { uid: string } }[] }[] };
    expect(dash.uid).toBe('coffer-overview');
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const queries = dash.panels.filter((p) => p.type !== 'row');
    expect(queries.length).toBeGreaterThan(20);
    for (const p of queries) {
      expect(p.datasource?.uid).toBe('${datasource}');
      expect(p.targets?.length).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource?.uid).toBe('${datasource}');
    }
  });

  describe('against a running node', () => {
    let proc: ChildProcess | undefined;
    let root = '';
    let apiAddr = '';
    let exported = new Set<string>();

    beforeAll(async () => {
      root = tempDir('coffer-metrics-');
      // As in the image: an existing, empty data dir (the volume), nothing else writable that the
      // node should touch: cwd and HOME are empty directories checked after the run.
      const dataDir = path.join(root, 'data');
      const backups = path.join(root, 'backups');
      const cwd = path.join(root, 'cwd');
      const home = path.join(root, 'home');
      const tmp = path.join(root, 'tmp');
      for (const d of [dataDir, backups, cwd, home, tmp]) mkdirSync(d, { mode: 0o700 });
      const apiPort = await freePort();
      const raftPort = await freePort();
      apiAddr = `127.0.0.1:${apiPort}`;
      const env = {
        PATH: process.env['PATH'] ?? '',
        HOME: home,
        TMPDIR: tmp,
        COFFER_NODE_ID: 'n1',
        COFFER_DATA_DIR: dataDir,
        COFFER_API_ADDR: apiAddr,
        COFFER_RAFT_ADDR: `127.0.0.1:${raftPort}`,
        COFFER_CLUSTER_KEY: randomBytes(32).toString('base64'),
        COFFER_LOCAL_MASTER_KEY: randomBytes(32).toString('base64'),
        COFFER_BOOTSTRAP_TOKEN: `cof_test_${randomBytes(24).toString('base64url')}`,
        COFFER_READ_ALLOWLIST: '127.0.0.0/8',
        COFFER_LOG_LEVEL: 'warn',
        // As in the compose file, scheduled snapshots on their own volume (often, to see one written).
        COFFER_SNAPSHOT_DIR: backups,
        COFFER_SNAPSHOT_INTERVAL: '1s',
      };
      proc = spawn(COFFER_BIN, ['server'], { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (proc.exitCode !== null) throw new Error(`node exited with ${proc.exitCode}: ${stderr}`);
        if ((await healthcheck(apiAddr)) === 0) break;
        if (Date.now() > deadline) throw new Error(`node did not become healthy: ${stderr}`);
        await sleep(200);
      }
      const url = `http://${apiAddr}/metrics`;
      assertLoopback(url);
      const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      expect(r.status).toBe(200);
      const text = await r.text();
      for (const line of text.split('\n')) {
        const m = /^# TYPE (\S+) (\S+)$/.exec(line);
        if (m === null) continue;
        exported.add(m[1] as string);
        if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(`${m[1]}${s}`);
      }
    });

    afterAll(async () => {
      const p = proc;
      if (p !== undefined && p.exitCode === null && p.signalCode === null) {
        const gone = new Promise<void>((r) => p.once('exit', () => r()));
        p.kill('SIGTERM');
        const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
        await gone;
        clearTimeout(t);
      }
    });

    test('the health check passes against it (a lone node is the leader: 200)', async () => {
      expect(await healthcheck(apiAddr)).toBe(0);
    });

    test('every metric a rule or a panel names is exported (or is external, or expected later)', () => {
      const uses = [...ruleExprs().map((r) => ({ where: `rule ${r.alert}`, expr: r.expr })), ...dashboardExprs().map((d) => ({ where: `panel ${d.panel}`, expr: d.expr }))];
      const missing: string[] = [];
      let checked = 0;
      for (const u of uses) {
        for (const name of metricNames(u.expr)) {
          checked++;
          if (exported.has(name)) continue;
          if (name in EXTERNAL_METRICS && !name.startsWith('coffer_')) continue;
          if (EXPECTED_LATER.has(name)) continue;
          missing.push(`${u.where}: ${name}`);
        }
      }
      expect(checked).toBeGreaterThan(40);
      expect(missing).toEqual([]);
      // Expected-later metrics leave this list the moment the node exports them.
      expect([...EXPECTED_LATER].filter((n) => exported.has(n))).toEqual([]);
      // The external ones really are not Coffer's.
      for (const n of Object.keys(EXTERNAL_METRICS)) expect(exported.has(n)).toBe(false);
    });

    test('the node wrote nothing outside its data dir, backups dir and TMPDIR (read-only root filesystem)', async () => {
      // A scheduled snapshot lands in the backups dir, and the backup metrics say so.
      const deadline = Date.now() + 20_000;
      while (readdirSync(path.join(root, 'backups')).length === 0 && Date.now() < deadline) await sleep(200);
      expect(readdirSync(path.join(root, 'backups')).length).toBeGreaterThan(0);
      const r = await fetch(`http://${apiAddr}/metrics`, { signal: AbortSignal.timeout(10_000) });
      const last = /^coffer_snapshot_last_success_timestamp_seconds (\S+)$/m.exec(await r.text());
      expect(Number(last?.[1])).toBeGreaterThan(Date.now() / 1000 - 600);
      const p = proc as ChildProcess;
      const gone = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
      p.kill('SIGTERM');
      expect(await gone).toBe(0);
      expect(readdirSync(path.join(root, 'cwd'))).toEqual([]);
      expect(readdirSync(path.join(root, 'home'))).toEqual([]);
      expect(readdirSync(path.join(root, 'data')).length).toBeGreaterThan(0);
    });
  });
});

// ---------------------------------------------------------------------------------------------
// docs/OPERATIONS.md

describe('docs/OPERATIONS.md', () => {
  const ops = readFileSync(path.join(REPO_ROOT, 'docs', 'OPERATIONS.md'), 'utf8');

  test('the least-privilege KMS policy grants exactly the KMS operations the code calls, each explained', () => {
    // What the code sends: every SDK command the aws provider constructs.
    const provider = readFileSync(path.join(REPO_ROOT, 'packages', 'crypto', 'src', 'aws-provider.ts'), 'utf8');
    const ops_ = new Set([...provider.matchAll(/new (\w+)Command\(/g)].map((m) => m[1] as string));
    expect(ops_.size).toBeGreaterThanOrEqual(4);
    // ReEncrypt is authorised as two IAM actions, on the source and on the destination key.
    const expected = [...ops_].flatMap((o) => (o === 'ReEncrypt' ? ['kms:ReEncryptFrom', 'kms:ReEncryptTo'] : [`kms:${o}`])).sort();
    // No other package talks to the KMS SDK.
    for (const p of workspacePackages().filter((x) => x !== 'crypto' && x !== 'cluster-tests')) {
      const json = readFileSync(path.join(REPO_ROOT, 'packages', p, 'package.json'), 'utf8');
      expect([p, json.includes('@aws-sdk/client-kms')]).toEqual([p, false]);
    }
    const section = /## AWS KMS permissions[^\n]*\n([\s\S]*?)\n## /.exec(ops);
    expect(section).not.toBeNull();
    const block = /```json\n([\s\S]*?)\n```/.exec((section as RegExpExecArray)[1] as string);
    const policy = JSON.parse((block as RegExpExecArray)[1] as string) as { Statement: { Action: string[]; Condition?: unknown }[] };
    const granted = policy.Statement.flatMap((st) => st.Action).sort();
    expect(granted).toEqual(expected);
    // The context condition names the keys the code binds every DEK to.
    const context = readFileSync(path.join(REPO_ROOT, 'packages', 'crypto', 'src', 'context.ts'), 'utf8');
    const keys = [...context.matchAll(/export const KMS_CONTEXT_\w+_KEY = '([^']+)'/g)].map((m) => m[1] as string).sort();
    expect(keys).toHaveLength(2);
    const dataKeys = policy.Statement.find((st) => st.Action.includes('kms:Decrypt'));
    expect(JSON.stringify(dataKeys?.Condition)).toContain(JSON.stringify(keys));
    // Calls that take no encryption context must not sit under that condition (KMS would refuse them).
    for (const a of ['kms:DescribeKey', 'kms:ListKeyRotations']) expect(policy.Statement.find((st) => st.Action.includes(a))?.Condition).toBeUndefined();
    // One table row explains each action.
    for (const a of expected) expect([a, new RegExp(`^\\| [^|]*\`${a}\``, 'm').test((section as RegExpExecArray)[1] as string)]).toEqual([a, true]);
  });

  test('the hyperion-vault table maps the variables the brief names, and says where there is no equivalent', () => {
    const section = /## Migrating from hyperion-vault\n([\s\S]*?)\n## /.exec(ops);
    expect(section).not.toBeNull();
    const rows = new Map(
      ((section as RegExpExecArray)[1] as string)
        .split('\n')
        .filter((l) => l.startsWith('| `VAULT_'))
        .map((l) => l.split('|').map((c) => c.trim()))
        .map((c) => [c[1] as string, c[2] as string]),
    );
    const row = (v: string): string | undefined => [...rows].find(([k]) => k.includes(`\`${v}\``))?.[1];
    expect(row('VAULT_ADDR')).toBe('`COFFER_ADDR`');
    expect(row('VAULT_TOKEN')).toBe('`COFFER_TOKEN`');
    for (const v of ['VAULT_CACERT', 'VAULT_SKIP_VERIFY', 'VAULT_NAMESPACE']) expect([v, row(v) !== undefined]).toEqual([v, true]);
    // Every COFFER_ variable the table names exists (server config or the client's two).
    // The server's variables: one row each in the config table.
    const known = new Set<string>(Object.values(CONFIG_ENV));
    expect(known.size).toBeGreaterThan(30);
    known.add('COFFER_ADDR');
    known.add('COFFER_TOKEN');
    for (const target of rows.values()) for (const m of target.matchAll(/COFFER_[A-Z_]+/g)) expect([m[0], known.has(m[0])]).toEqual([m[0], true]);
  });
});
