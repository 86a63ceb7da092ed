/**
 * `coffer run [--prefix P] [--map ENV=name …] -- CMD [ARGS]`: fetches secrets in one batch read
 * and runs CMD with them as environment variables. The values go from the HTTP answer into the
 * child's environment only: never to disk, never into an argument list (`ps` shows arguments, not
 * environments), never to this process's output. Signals are forwarded; the exit code is CMD's.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Secret } from '@coffer/client';
import type { Command } from 'commander';
import { leaf, withClient, type CliContext } from '../context.js';
import { CliError, usage } from '../errors.js';

/** Most names one batch read may carry (the server's limit). */
const BATCH = 256;
const ENV_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'];

/**
 * The variable a secret under `--prefix` becomes: the rest of its name, upper-cased, every run of
 * other characters turned into `_` (`app/db-password` under `app/` → `DB_PASSWORD`).
 *
 * @param rest - the name without the prefix
 * @returns the variable name
 */
export function envNameOf(rest: string): string {
  const n = rest.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_+|_+$/g, '').toUpperCase();
  return /^[0-9]/.test(n) ? `_${n}` : n;
}

function textOf(s: Secret): string {
  if (s.value !== undefined) return s.value;
  if (s.valueBase64 !== undefined) {
    const bytes = Buffer.from(s.valueBase64, 'base64');
    const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes);
    if (text.includes('\uFFFD') || bytes.includes(0)) throw new CliError('CLI_FAILED', `secret "${s.name}" is binary and cannot be an environment variable`);
    return text;
  }
  if (s.format === 'kv' && s.data !== undefined) return JSON.stringify(s.data);
  throw new CliError('CLI_FAILED', `secret "${s.name}" has no value an environment variable can hold`);
}

/** Adds one secret under `env` (userpass: `env` is the password, `env_USERNAME` the user). */
function put(out: Map<string, string>, env: string, s: Secret): void {
  if (s.format === 'userpass') {
    out.set(env, s.password ?? '');
    out.set(`${env}_USERNAME`, s.username ?? '');
    return;
  }
  const v = textOf(s);
  if (v.includes('\0')) throw new CliError('CLI_FAILED', `secret "${s.name}" contains a NUL byte and cannot be an environment variable`);
  out.set(env, v);
}

/**
 * Register `coffer run`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerRun(program: Command, ctx: CliContext): void {
  leaf(program, 'run', "run a command with secrets as its environment variables (one batch read; the values never touch disk or the process list); exits with the command's code", [
    'coffer run --map DATABASE_PASSWORD=app/db-password -- ./server',
    'coffer run --prefix app/ -- node app.js            # app/db-password becomes DB_PASSWORD',
    'coffer run --prefix app/ --map STRIPE=payments/stripe -- env',
  ])
    .argument('<command...>', 'the command and its arguments (after --)')
    .option('--prefix <prefix>', 'every secret under this name prefix, named by the rest of its name (needs secret.list to find them)')
    .option('--map <ENV=name>', 'one secret as one variable (repeatable); a missing secret is an error', (v: string, prev: string[] = []) => [...prev, v], [])
    .action(async (command: string[], o: { prefix?: string; map: string[] }, cmd: Command) => {
      const mapped = new Map<string, string>(); // env → name
      for (const m of o.map) {
        const eq = m.indexOf('=');
        const env = eq === -1 ? '' : m.slice(0, eq);
        const name = eq === -1 ? '' : m.slice(eq + 1);
        if (!ENV_RE.test(env) || name === '') throw usage(`--map ${JSON.stringify(m)}: expected ENV=secret/name with ENV a variable name`);
        mapped.set(env, name);
      }
      if (o.prefix === undefined && mapped.size === 0) throw usage('give --prefix and/or --map: which secrets should the command see?');
      const [file, ...args] = command;
      if (file === undefined) throw usage('missing the command to run (after --)');

      const env = new Map<string, string>();
      await withClient(ctx, cmd, async (c) => {
        const byPrefix = new Map<string, string>(); // name → env
        if (o.prefix !== undefined) {
          for (const s of await c.secrets.list(o.prefix)) {
            const v = envNameOf(s.name.slice(o.prefix.length));
            if (v !== '') byPrefix.set(s.name, v);
          }
        }
        const names = [...new Set([...byPrefix.keys(), ...mapped.values()])];
        const found = new Map<string, Secret>();
        for (let i = 0; i < names.length; i += BATCH) {
          for (const s of await c.secrets.batch(names.slice(i, i + BATCH))) found.set(s.name, s);
        }
        for (const [name, v] of byPrefix) {
          const s = found.get(name);
          if (s !== undefined) put(env, v, s);
        }
        // Explicit mappings win over prefix names, and must exist.
        for (const [v, name] of mapped) {
          const s = found.get(name);
          if (s === undefined) throw new CliError('CLI_FAILED', `secret "${name}" (for ${v}) does not exist or cannot be read`);
          put(env, v, s);
        }
      });

      const childEnv: NodeJS.ProcessEnv = { ...ctx.io.env };
      // The token that fetched the secrets is not the command's business.
      delete childEnv['COFFER_TOKEN'];
      for (const [k, v] of env) childEnv[k] = v;
      env.clear();
      ctx.exitCode = await new Promise<number>((resolve, reject) => {
        const child = spawn(file, args, { env: childEnv, stdio: 'inherit' });
        const forward = (sig: NodeJS.Signals): void => {
          child.kill(sig);
        };
        for (const sig of FORWARDED_SIGNALS) process.on(sig, forward);
        const done = (): void => {
          for (const sig of FORWARDED_SIGNALS) process.off(sig, forward);
        };
        child.once('error', (err) => {
          done();
          reject(new CliError('CLI_FAILED', `could not run ${JSON.stringify(file)}: ${err.message}`));
        });
        child.once('exit', (code, signal) => {
          done();
          // As a shell reports it: 128 + the signal's number when the command was killed.
          resolve(code ?? 128 + (signal === null ? 0 : (osSignal(signal) ?? 0)));
        });
      });
    });
}

function osSignal(signal: NodeJS.Signals): number | undefined {
  return constants.signals[signal];
}
