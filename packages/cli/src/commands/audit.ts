/** `coffer audit tail`: a node's audit log over the API (`GET /v1/audit`, action `audit.read`). */
import type { AuditLine } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, withClient, wantsJson, type CliContext } from '../context.js';
import { parseCount } from '../validate.js';

function line(r: AuditLine): string {
  return `${r.seq}\t${r.time}\t${r.outcome}\t${r.status}\t${r.action}\t${r.actor ?? '-'}\t${r.clientIp ?? '-'}\t${r.resource ?? ''}`;
}

/**
 * Register `coffer audit tail` (joins the `audit` group that `audit verify` also uses).
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerAudit(program: Command, ctx: CliContext): void {
  const g = group(program, 'audit', 'inspect audit logs', ['coffer audit tail --follow']);
  leaf(g, 'tail', "print the audit log of the node that answers (each node keeps its own): the last lines, or from --since on; --follow keeps printing new lines until interrupted", [
    'coffer audit tail                     # the last 20 lines',
    'coffer audit tail --since 1 --json    # everything, one JSON record per line (chain fields included)',
    'coffer audit tail --follow            # like tail -f; Ctrl-C stops',
  ])
    .option('--since <seq>', 'first line (seq) to print; default: the last --lines lines')
    .option('--lines <n>', 'how many of the last lines to print when --since is not given', '20')
    .option('--follow', 'keep polling for new lines')
    .option('--interval <seconds>', 'poll period for --follow', '1')
    .action(async (o: { since?: string; lines: string; follow?: boolean; interval: string }, cmd: Command) => {
      const lines = parseCount(o.lines, '--lines');
      const intervalMs = parseCount(o.interval, '--interval') * 1000;
      const json = wantsJson(cmd);
      await withClient(ctx, cmd, async (c) => {
        let since: number;
        if (o.since !== undefined) since = Math.max(1, parseCount(o.since, '--since'));
        else {
          const probe = await c.audit.read({ since: 1, limit: 1 });
          since = Math.max(1, probe.head - lines + 1);
        }
        // Without --since and --follow, exactly the last --lines lines (reading the log is itself
        // audited, so the log grows by one line per call).
        let left = o.since === undefined && o.follow !== true ? lines : Infinity;
        for (;;) {
          const page = await c.audit.read({ since, limit: Math.min(1000, left) });
          for (const r of page.records) ctx.io.stdout.write(json ? `${JSON.stringify(r)}\n` : `${line(r)}\n`);
          left -= page.records.length;
          since = page.next;
          if (left <= 0) return;
          if (page.records.length === 1000) continue;
          if (o.follow !== true) return;
          await ctx.sleep(intervalMs);
        }
      });
    });
}
