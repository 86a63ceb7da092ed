/** `coffer roles …` */
import { readFile } from 'node:fs/promises';
import type { RoleDefinition } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, withClient, type CliContext } from '../context.js';
import { CliError, usage } from '../errors.js';
import { table } from '../format.js';
import { readAll } from '../io.js';

async function readRules(ctx: CliContext, file: string): Promise<RoleDefinition> {
  let text: string;
  try {
    text = file === '-' ? (await readAll(ctx.io)).toString('utf8') : await readFile(file, 'utf8');
  } catch (err) {
    throw new CliError('CLI_FAILED', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  let def: unknown;
  try {
    def = JSON.parse(text);
  } catch {
    throw usage(`${file}: not JSON; expected {"rules":[{"paths":[…],"actions":[…]}],"rateLimit"?:"100/m"}`);
  }
  const rules = (def as { rules?: unknown } | null)?.rules;
  const ok =
    Array.isArray(rules) &&
    rules.every(
      (r: unknown) =>
        typeof r === 'object' &&
        r !== null &&
        Array.isArray((r as { paths?: unknown }).paths) &&
        Array.isArray((r as { actions?: unknown }).actions),
    );
  if (!ok) throw usage(`${file}: expected {"rules":[{"paths":[…],"actions":[…]}],"rateLimit"?:"100/m"}`);
  return def as RoleDefinition;
}

/**
 * Register `coffer roles`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerRoles(program: Command, ctx: CliContext): void {
  const g = group(program, 'roles', 'manage RBAC roles', ['coffer roles put deployer --file rules.json', 'coffer roles list']);

  leaf(g, 'list', 'list roles', ['coffer roles list'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const roles = await c.roles.list();
        print(ctx, cmd, roles, () =>
          table(['NAME', 'RULES', 'RATE LIMIT'], roles.map((r) => [r.name, String(r.rules?.length ?? 0), r.rateLimit ?? '-'])),
        );
      });
    });

  leaf(g, 'get <name>', 'show a role definition (JSON)', ['coffer roles get deployer'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const r = await c.roles.get(name);
        print(ctx, cmd, r, () => JSON.stringify(r, null, 2));
      });
    });

  leaf(g, 'put <name>', 'create or replace a role from a JSON file ("-": stdin)', [
    'coffer roles put deployer --file rules.json',
    `echo '{"rules":[{"paths":["payments/*"],"actions":["secret.write"]}],"rateLimit":"100/m"}' | coffer roles put deployer --file -`,
  ])
    .requiredOption('--file <path>', 'JSON: {"rules":[{"paths":[…],"actions":[…]}],"rateLimit"?:"100/m"}')
    .action(async (name: string, o: { file: string }, cmd: Command) => {
      const def = await readRules(ctx, o.file);
      await withClient(ctx, cmd, async (c) => {
        const r = await c.roles.put(name, def);
        print(ctx, cmd, r, () => `stored role ${name}`);
      });
    });

  leaf(g, 'delete <name>', 'delete a role (refused while tokens use it)', ['coffer roles delete deployer'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        await c.roles.delete(name);
        print(ctx, cmd, { name, deleted: true }, () => `deleted role ${name}`);
      });
    });
}
