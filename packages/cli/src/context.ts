/** What every sub-command needs: the streams, a client built from the global flags, output helpers. */
import { CofferClient, DEFAULT_ADDRESS } from '@coffer/client';
import type { Command } from 'commander';
import { usage } from './errors.js';
import type { CliIo } from './io.js';

/** Shared state handed to every command group's `register` function. */
export interface CliContext {
  readonly io: CliIo;
  /** Wait (injectable so polling commands test quickly). */
  sleep(ms: number): Promise<void>;
  /** Extra client options (tests). */
  readonly clientOptions: Partial<ConstructorParameters<typeof CofferClient>[0]>;
  /** Set by a command whose exit code is another program's (`coffer run`); main() returns it. */
  exitCode?: number;
}

/** Options every leaf command accepts (its own plus the program's). */
export interface GlobalOptions {
  addr?: string;
  token?: string;
  json?: boolean;
}

/**
 * Run `fn` with a client built from `--addr`/`--token` (or `COFFER_ADDR`/`COFFER_TOKEN`), closing
 * it afterwards so the process can exit.
 *
 * @param ctx - CLI context
 * @param cmd - the command being run
 * @param fn - the work
 * @returns what `fn` returns
 * @throws {CLI_USAGE} a malformed address
 */
export async function withClient<T>(ctx: CliContext, cmd: Command, fn: (client: CofferClient) => Promise<T>): Promise<T> {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const addr = g.addr ?? ctx.io.env.COFFER_ADDR ?? DEFAULT_ADDRESS;
  const token = g.token ?? ctx.io.env.COFFER_TOKEN;
  let client: CofferClient;
  try {
    client = new CofferClient({ ...ctx.clientOptions, addresses: addr, ...(token === undefined || token === '' ? {} : { token }) });
  } catch (err) {
    throw usage(`--addr: ${(err as Error).message}`);
  }
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/**
 * @param cmd - the command being run
 * @returns whether `--json` was given
 */
export function wantsJson(cmd: Command): boolean {
  return cmd.optsWithGlobals<GlobalOptions>().json === true;
}

/**
 * Print a result: JSON with `--json`, else the text form.
 *
 * @param ctx - CLI context
 * @param cmd - the command being run
 * @param data - what `--json` prints
 * @param text - the human form (a trailing newline is added when missing)
 */
export function print(ctx: CliContext, cmd: Command, data: unknown, text: () => string): void {
  if (wantsJson(cmd)) {
    ctx.io.stdout.write(`${JSON.stringify(data ?? null, null, 2)}\n`);
    return;
  }
  const t = text();
  if (t !== '') ctx.io.stdout.write(t.endsWith('\n') ? t : `${t}\n`);
}

/**
 * Progress on stderr: rewritten in place on a terminal, otherwise only the final line (logs and
 * CI output stay readable). Silent with `--json`.
 *
 * @param ctx - CLI context
 * @param cmd - the command being run
 * @returns `update` (throttled to 10/s on a terminal) and `done`
 */
export function progress(ctx: CliContext, cmd: Command): { update(text: string): void; done(text: string): void } {
  const err = ctx.io.stderr;
  const quiet = wantsJson(cmd);
  const tty = err.isTTY === true;
  let last = 0;
  return {
    update(text: string): void {
      if (quiet || !tty) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      err.write(`\r\x1b[K${text}`);
    },
    done(text: string): void {
      if (quiet) return;
      err.write(tty ? `\r\x1b[K${text}\n` : `${text}\n`);
    },
  };
}

/**
 * Add a leaf command with `--json` and an examples section in `--help`.
 *
 * @param parent - the group
 * @param spec - name and arguments, commander syntax
 * @param description - one line
 * @param examples - shell lines shown under "Examples:"
 * @returns the new command, to add options and an action to
 */
export function leaf(parent: Command, spec: string, description: string, examples: readonly string[]): Command {
  return parent
    .command(spec)
    .description(description)
    .option('--json', 'print the result as JSON (for scripts)')
    .addHelpText('after', `\nExamples:\n${examples.map((e) => `  $ ${e}`).join('\n')}\n`);
}

/**
 * Get a sub-command group, creating it if needed. Lets later registrations (e.g. the server's
 * `snapshot restore`) join an existing group.
 *
 * @param program - the root command
 * @param name - group name
 * @param description - used when the group is created
 * @param examples - shell lines for its `--help`, used when the group is created
 * @returns the group
 */
export function group(program: Command, name: string, description: string, examples: readonly string[] = []): Command {
  const existing = program.commands.find((c) => c.name() === name);
  if (existing !== undefined) return existing;
  const lines = [...examples, `coffer ${name} <command> --help`];
  return program
    .command(name)
    .description(description)
    .addHelpText('after', `\nExamples:\n${lines.map((e) => `  $ ${e}`).join('\n')}\n`);
}
