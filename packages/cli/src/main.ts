#!/usr/bin/env node
/**
 * The `coffer` command. `./bin/coffer` execs `node packages/cli/dist/main.js`.
 *
 * Commands that need server internals (`coffer server`, `coffer dev`, `coffer snapshot restore FILE
 * --data-dir DIR`, `coffer audit verify FILE`) are wired by the server's author: a file under
 * `src/commands/` that imports from @coffer/node, plus one line each in {@link SERVER_COMMANDS}
 * below (or pass `extra` to {@link buildProgram}). A registration receives
 * the root command and the {@link CliContext}; `group(program, 'snapshot', …)` returns the existing
 * `snapshot` group so `restore` joins `save` there.
 *
 * Exit codes: 0 success, 1 refused by the server or network failure, 2 bad usage (commander's own
 * usage errors included).
 */
import { CofferError } from '@coffer/client';
import { Command, CommanderError } from 'commander';
import { registerAllowlist } from './commands/allowlist.js';
import { registerApprole } from './commands/approle.js';
import { registerAudit } from './commands/audit.js';
import { registerRun } from './commands/run.js';
import { registerCluster } from './commands/cluster.js';
import { registerIdentity } from './commands/identity.js';
import { registerKms } from './commands/kms.js';
import { registerLogin } from './commands/login.js';
import { registerOperator } from './commands/operator.js';
import { registerRoles } from './commands/roles.js';
import { registerSecrets } from './commands/secrets.js';
import { registerServerCommands } from './commands/server.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerTokens } from './commands/tokens.js';
import { registerTransit } from './commands/transit.js';
import type { CliContext } from './context.js';
import { CliError } from './errors.js';
import { processIo, type CliIo } from './io.js';

/** A function that adds commands to the program. */
export type RegisterCommands = (program: Command, ctx: CliContext) => void;

/** Server-side commands, one line each, wired by @coffer/node (see the module comment). */
const SERVER_COMMANDS: readonly RegisterCommands[] = [
  registerServerCommands, // coffer server / dev / snapshot restore --data-dir / audit verify
];

/** The CLI's version, printed by `coffer --version`. */
export const VERSION: string = '0.1.0';

/** Exit codes (CONTRACT.md). */
export const EXIT: { readonly OK: 0; readonly REFUSED: 1; readonly USAGE: 2 } = { OK: 0, REFUSED: 1, USAGE: 2 } as const;

/** Options of {@link buildProgram} and {@link main}. */
export interface CliOptions {
  /** Streams and environment (default: the process's). */
  io?: Partial<CliIo>;
  /** More registrations, after the built-in ones and {@link SERVER_COMMANDS}. */
  extra?: RegisterCommands | readonly RegisterCommands[];
  /** Sleep used by polling commands (tests). */
  sleep?: (ms: number) => Promise<void>;
  /** Extra client options (tests: e.g. `retry`). */
  clientOptions?: CliContext['clientOptions'];
}

/**
 * Build the commander program with every command registered.
 *
 * @param options - streams, extra registrations
 * @returns the program (not yet parsed); it throws `CommanderError` instead of exiting
 * @example
 * ```ts
 * const program = buildProgram({ extra: (p, ctx) => p.command('server').action(() => startServer()) });
 * await program.parseAsync(process.argv);
 * ```
 */
export function buildProgram(options: CliOptions = {}, ctxOut?: { ctx?: CliContext }): Command {
  const io: CliIo = { ...processIo(), ...options.io };
  const ctx: CliContext = {
    io,
    sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    clientOptions: options.clientOptions ?? {},
  };
  if (ctxOut !== undefined) ctxOut.ctx = ctx;
  const program = new Command('coffer')
    .description('Coffer: a Raft-replicated secrets service')
    // NB: no commander .version(): its global --version would swallow `secrets get --version N`.
    // main() answers a lone `--version` / `-V` itself.
    // Settings here are copied to every sub-command created afterwards.
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .showHelpAfterError('(add --help for usage)')
    // NB: no defaults shown in --help for these: the token must never be printed.
    .option('--addr <urls>', 'node URLs, comma-separated (default: $COFFER_ADDR or http://127.0.0.1:8200)')
    .option('--token <token>', 'bearer token (default: $COFFER_TOKEN)')
    .addHelpText(
      'after',
      `
Environment:
  COFFER_ADDR   node URLs, comma-separated; the next one is tried when a node is down
  COFFER_TOKEN  bearer token

  coffer --version prints the version.

Exit codes: 0 ok, 1 refused by the server or network failure, 2 bad usage.

Examples:
  $ export COFFER_ADDR=http://127.0.0.1:8200,http://127.0.0.1:8210,http://127.0.0.1:8220
  $ coffer secrets put payments/stripe -      # value from stdin
  $ coffer secrets get payments/stripe
  $ coffer tokens create ci --role deployer --ttl 90d
  $ coffer cluster status
`,
    );

  for (const register of [registerSecrets, registerTokens, registerRoles, registerAllowlist, registerCluster, registerSnapshot, registerKms, registerAudit, registerRun, registerLogin, registerIdentity, registerApprole, registerOperator, registerTransit]) {
    register(program, ctx);
  }
  for (const register of SERVER_COMMANDS) register(program, ctx);
  const extra = options.extra === undefined ? [] : typeof options.extra === 'function' ? [options.extra] : options.extra;
  for (const register of extra) register(program, ctx);
  return program;
}

function describeError(err: unknown): { code: string; message: string; status?: number; requestId?: string } {
  if (err instanceof CofferError) {
    return {
      code: err.code,
      message: err.message,
      ...(err.status === undefined ? {} : { status: err.status }),
      ...(err.requestId === undefined ? {} : { requestId: err.requestId }),
    };
  }
  if (err instanceof CliError) return { code: err.code, message: err.message };
  return { code: 'CLI_FAILED', message: err instanceof Error ? err.message : String(err) };
}

/**
 * Run the CLI.
 *
 * @param argv - arguments after the program name
 * @param options - streams, extra registrations
 * @returns the exit code (0, 1 or 2; `coffer run` returns its command's)
 * @example
 * ```ts
 * process.exitCode = await main(process.argv.slice(2));
 * ```
 */
export async function main(argv: readonly string[], options: CliOptions = {}): Promise<number> {
  if (argv.length === 1 && (argv[0] === '--version' || argv[0] === '-V')) {
    (options.io?.stdout ?? process.stdout).write(`${VERSION}\n`);
    return EXIT.OK;
  }
  const built: { ctx?: CliContext } = {};
  const program = buildProgram(options, built);
  const stderr = options.io?.stderr ?? process.stderr;
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return built.ctx?.exitCode ?? EXIT.OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version requested explicitly are successes; everything else commander reports
      // (unknown option, missing argument, a group without sub-command) is bad usage.
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? EXIT.OK : EXIT.USAGE;
    }
    const d = describeError(err);
    const usageError = err instanceof CliError && err.code === 'CLI_USAGE';
    if (argv.includes('--json')) stderr.write(`${JSON.stringify({ error: d })}\n`);
    else {
      const extra = [d.status === undefined ? '' : `HTTP ${d.status}`, d.requestId === undefined ? '' : `request ${d.requestId}`].filter((s) => s !== '');
      stderr.write(`error: ${d.message} (${d.code}${extra.length > 0 ? `; ${extra.join(', ')}` : ''})\n`);
      if (usageError) stderr.write('(add --help for usage)\n');
    }
    return usageError ? EXIT.USAGE : EXIT.REFUSED;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = EXIT.REFUSED;
    },
  );
}
