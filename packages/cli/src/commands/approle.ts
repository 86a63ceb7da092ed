/**
 * `coffer approle …` (put, get, list, secret-id, delete) and `coffer login approle` (registered
 * into the `login` group, which `registerLogin` creates, by {@link registerApproleLogin}). A secret id is printed once by
 * `secret-id` and read back only from a file or stdin, never from argv (the process list).
 */
import type { AppRoleSettings } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, withClient, type CliContext } from '../context.js';
import { CliError, usage } from '../errors.js';
import { table } from '../format.js';
import { readAll } from '../io.js';
import { printSession, readSecretFile } from './login.js';

const collect = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), v];

function uses(v: string): number {
  if (!/^\d{1,9}$/.test(v)) throw usage(`--secret-id-uses must be a whole number >= 0 (0: unlimited), got "${v}"`);
  return Number(v);
}

/**
 * Register `coffer approle`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerApprole(program: Command, ctx: CliContext): void {
  // `coffer login approle`: the `login` group exists already (registered before this), group() returns it.
  registerApproleLogin(group(program, 'login', 'log in and print a session token (use it as COFFER_TOKEN)'), ctx);
  const g = group(program, 'approle', 'machine logins: approles (role id + secret ids) that log in as a role', [
    'coffer approle put ci --role deployer --token-ttl 1h --secret-id-ttl 30d --bound-cidr 10.8.0.0/24',
    'coffer approle secret-id ci > secret-id.txt   # shown once',
    'coffer login approle --role-id ROLE_ID --secret-id-file secret-id.txt',
  ]);

  leaf(g, 'put <name>', 'create or replace an approle (an update keeps its role id and secret ids); prints the role id', [
    'coffer approle put ci --role deployer',
    'coffer approle put ci --role deployer --token-ttl 15min --secret-id-uses 10 --bound-cidr 10.8.0.0/24 --bound-cidr fd00::/8',
  ])
    .requiredOption('--role <role>', 'the role its logins get (yours must cover it)')
    .option('--token-ttl <duration>', 'lifetime of a login\'s token (default 1h; units s, min, h, d, w)')
    .option('--secret-id-ttl <duration>', 'lifetime of each new secret id (default: no expiry)')
    .option('--secret-id-uses <n>', 'logins each new secret id allows (default 0: unlimited)', uses)
    .option('--bound-cidr <cidr>', 'only log in from this CIDR (repeatable; default: anywhere)', collect)
    .action(async (name: string, o: { role: string; tokenTtl?: string; secretIdTtl?: string; secretIdUses?: number; boundCidr?: string[] }, cmd: Command) => {
      const settings: AppRoleSettings = { role: o.role };
      if (o.tokenTtl !== undefined) settings.tokenTtl = o.tokenTtl;
      if (o.secretIdTtl !== undefined) settings.secretIdTtl = o.secretIdTtl;
      if (o.secretIdUses !== undefined) settings.secretIdUses = o.secretIdUses;
      if (o.boundCidr !== undefined) settings.boundCidrs = o.boundCidr;
      await withClient(ctx, cmd, async (c) => {
        const r = await c.approles.put(name, settings);
        print(ctx, cmd, r, () => r.roleId);
      });
    });

  leaf(g, 'get <name>', 'show an approle (never its secret ids)', ['coffer approle get ci'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const a = await c.approles.get(name);
        print(ctx, cmd, a, () => JSON.stringify(a, null, 2));
      });
    });

  leaf(g, 'list', 'list approles', ['coffer approle list'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const all = await c.approles.list();
        print(ctx, cmd, all, () =>
          table(['NAME', 'ROLE', 'ROLE ID', 'TOKEN TTL', 'LIVE SECRET IDS'], all.map((a) => [a.name, a.role, a.roleId, a.tokenTtl, String(a.liveSecretIds)])),
        );
      });
    });

  leaf(g, 'secret-id <name>', 'mint a secret id (printed once; older ones stay valid, so rotation needs no downtime)', [
    'coffer approle secret-id ci > secret-id.txt',
    'coffer approle secret-id ci --json   # {"name","secretId","expiresAt","usesLeft"}',
  ])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const s = await c.approles.secretId(name);
        print(ctx, cmd, s, () => {
          ctx.io.stderr.write(`secret id for approle ${name}: shown once; expires ${s.expiresAt ?? 'never'}, uses ${s.usesLeft ?? 'unlimited'}\n`);
          return s.secretId;
        });
      });
    });

  leaf(g, 'delete <name>', 'delete an approle, its secret ids and the sessions its logins created', ['coffer approle delete ci'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        await c.approles.delete(name);
        print(ctx, cmd, { name, deleted: true }, () => `deleted approle ${name}`);
      });
    });
}

/**
 * Adds `coffer login approle` to the `login` group.
 *
 * @param login - the `login` group command
 * @param ctx - CLI context
 */
export function registerApproleLogin(login: Command, ctx: CliContext): void {
  leaf(login, 'approle', 'log in with an approle: role id and a secret id read from a file or stdin (never from argv)', [
    'coffer login approle --role-id 3f2a… --secret-id-file /run/secrets/secret-id',
    'vault-agent-style: cat secret-id | coffer login approle --role-id 3f2a… --secret-id-file - --json',
  ])
    .requiredOption('--role-id <id>', 'the approle\'s public role id')
    .requiredOption('--secret-id-file <file>', 'file holding the secret id, or - for stdin')
    .action(async (o: { roleId: string; secretIdFile: string }, cmd: Command) => {
      const text = o.secretIdFile === '-' ? (await readAll(ctx.io)).toString('utf8') : await readSecretFile(o.secretIdFile, '--secret-id-file');
      const secretId = text.trim();
      if (secretId === '' || /\s/.test(secretId)) throw new CliError('CLI_FAILED', `--secret-id-file: ${o.secretIdFile === '-' ? 'stdin' : o.secretIdFile} does not hold one secret id`);
      await withClient(ctx, cmd, async (c) => {
        printSession(ctx, cmd, await c.loginWithAppRole({ roleId: o.roleId, secretId }));
      });
    });
}
