/** `coffer allowlist …` */
import type { Command } from 'commander';
import { group, leaf, print, withClient, type CliContext } from '../context.js';
import { checkCidr } from '../validate.js';

/**
 * Register `coffer allowlist`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerAllowlist(program: Command, ctx: CliContext): void {
  const g = group(program, 'allowlist', 'the replicated IP allowlist for secret reads', ['coffer allowlist set 10.8.0.0/24', 'coffer allowlist get']);

  leaf(g, 'get', 'show the CIDRs allowed to read secrets', ['coffer allowlist get'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const a = await c.allowlist.get();
        print(ctx, cmd, a, () => (a.cidrs.length === 0 ? '(empty: every read is denied)' : a.cidrs.join('\n')));
      });
    });

  leaf(g, 'set <cidr...>', 'replace the allowlist (CIDRs, or single addresses taken as /32 or /128)', ['coffer allowlist set 10.8.0.0/24 127.0.0.1/32 ::1/128', 'coffer allowlist set 10.8.0.5 ::1'])
    .action(async (cidrs: string[], _o: unknown, cmd: Command) => {
      for (const c of cidrs) checkCidr(c);
      await withClient(ctx, cmd, async (c) => {
        const a = await c.allowlist.set(cidrs);
        print(ctx, cmd, a, () => `allowlist: ${a.cidrs.join(', ')}`);
      });
    });
}
