/** `coffer tokens …` */
import type { CreatedToken } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, withClient, wantsJson, type CliContext } from '../context.js';
import { table, time } from '../format.js';
import { checkDuration } from '../validate.js';

/**
 * The one place a raw token is printed: the token that was just created or rotated. Text mode puts
 * it alone on stdout (for `$(…)`) and the details on stderr.
 */
function printCreated(ctx: CliContext, cmd: Command, t: CreatedToken, verb: string): void {
  if (wantsJson(cmd)) {
    print(ctx, cmd, t, () => '');
    return;
  }
  ctx.io.stderr.write(`${verb} token ${t.name} (role ${t.role}, expires ${time(t.expiresAt)}); it is shown only once:\n`);
  ctx.io.stdout.write(`${t.token}\n`);
}

/**
 * Register `coffer tokens`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerTokens(program: Command, ctx: CliContext): void {
  const g = group(program, 'tokens', 'mint, list, revoke and rotate bearer tokens', ['coffer tokens create ci --role deployer --ttl 90d', 'coffer tokens whoami']);

  leaf(g, 'create <name>', 'mint a token bound to a role (printed once)', [
    'coffer tokens create ci-deployer --role deployer --ttl 90d',
    'TOKEN=$(coffer tokens create svc --role reader --ttl 6m)   # 6m = six months',
  ])
    .requiredOption('--role <role>', 'role to bind')
    .option('--ttl <duration>', 'lifetime: <n><unit>, unit s, min, h, d, w, m (months) or y')
    .action(async (name: string, o: { role: string; ttl?: string }, cmd: Command) => {
      const ttl = o.ttl === undefined ? undefined : checkDuration(o.ttl);
      await withClient(ctx, cmd, async (c) => {
        printCreated(ctx, cmd, await c.tokens.create(name, o.role, ttl === undefined ? {} : { ttl }), 'created');
      });
    });

  leaf(g, 'list', 'list tokens (names, roles, times; never the tokens)', ['coffer tokens list', 'coffer tokens list --json'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const ts = await c.tokens.list();
        print(ctx, cmd, ts, () =>
          table(
            ['NAME', 'ROLE', 'CREATED', 'EXPIRES', 'REVOKED'],
            ts.map((t) => [t.name, t.role, time(t.createdAt), time(t.expiresAt), time(t.revokedAt)]),
          ),
        );
      });
    });

  leaf(g, 'revoke <name>', 'revoke a token now', ['coffer tokens revoke ci-deployer'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        await c.tokens.revoke(name);
        print(ctx, cmd, { name, revoked: true }, () => `revoked token ${name}`);
      });
    });

  leaf(g, 'rotate <name>', 'replace a token (the old one stops working; the new one is printed once)', [
    'coffer tokens rotate bootstrap-admin',
  ])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        printCreated(ctx, cmd, await c.tokens.rotate(name), 'rotated');
      });
    });

  leaf(g, 'whoami', 'show the calling token (name, role, expiry)', ['coffer tokens whoami'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const me = await c.tokens.self();
        print(ctx, cmd, me, () => `name:    ${me.name}\nrole:    ${me.role}\ncreated: ${time(me.createdAt)}\nexpires: ${time(me.expiresAt)}`);
      });
    });
}
