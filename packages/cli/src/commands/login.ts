/**
 * `coffer login …`: one group, one sub-command per login method. Each prints the session token
 * alone on stdout (for `$(…)`), or `{token, expiresAt}` with `--json`.
 *
 * Adding a method: one `leaf(g, '<method>', …)` in {@link registerLogin}.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { group, leaf, print, withClient, type CliContext } from '../context.js';
import { CliError } from '../errors.js';

/**
 * Reads a key or secret file the user named.
 *
 * @param path - the file
 * @param what - the option, for messages
 * @returns its text
 * @throws {CLI_FAILED} unreadable
 */
export async function readSecretFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError('CLI_FAILED', `${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

/** Prints a session: the token alone on stdout, or `{token, expiresAt}` with --json. */
export function printSession(ctx: CliContext, cmd: Command, s: { token: string; expiresAt: string | null }): void {
  print(ctx, cmd, s, () => {
    ctx.io.stderr.write(`logged in; the session expires at ${s.expiresAt ?? 'never'}\n`);
    return s.token;
  });
}

/**
 * Register `coffer login`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerLogin(program: Command, ctx: CliContext): void {
  const g = group(program, 'login', 'log in and print a session token (use it as COFFER_TOKEN)', [
    'export COFFER_TOKEN=$(coffer login ed25519 --identity build-agent --key build-agent.key)',
  ]);

  leaf(g, 'ed25519', 'log in as an Ed25519 identity: sign a server challenge with the private key (never sent)', [
    'coffer login ed25519 --identity build-agent --key build-agent.key',
    'coffer login ed25519 --identity build-agent --key build-agent.key --json   # {"token","expiresAt"}',
  ])
    .requiredOption('--identity <name>', 'the registered identity')
    .requiredOption('--key <file>', 'its private key file (PKCS#8 PEM, as `coffer identity create` writes it)')
    .action(async (o: { identity: string; key: string }, cmd: Command) => {
      const pem = await readSecretFile(o.key, '--key');
      await withClient(ctx, cmd, async (c) => {
        let session;
        try {
          session = await c.loginWithEd25519({ identity: o.identity, privateKey: pem });
        } catch (err) {
          if (err instanceof TypeError) throw new CliError('CLI_FAILED', `--key: ${o.key} does not hold an Ed25519 private key`);
          throw err;
        }
        printSession(ctx, cmd, session);
      });
    });
}
