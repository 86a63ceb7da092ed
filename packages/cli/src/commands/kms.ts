/** `coffer kms rewrap` */
import type { RewrapStatus } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, progress, withClient, type CliContext } from '../context.js';
import { time } from '../format.js';
import { parseCount } from '../validate.js';

function describe(s: RewrapStatus): string {
  return (
    `enabled:   ${s.enabled ? 'yes' : 'no'}\n` +
    `running:   ${s.running ? 'yes' : 'no'}\n` +
    `done:      ${s.done}\n` +
    `pending:   ${s.pending}\n` +
    `last pass: ${time(s.lastPassAt)}`
  );
}

/**
 * Register `coffer kms`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerKms(program: Command, ctx: CliContext): void {
  const g = group(program, 'kms', 'KMS key rotation: re-wrap data keys', ['coffer kms rewrap --wait']);

  leaf(g, 'rewrap', 'start a re-wrap pass now (or show its status with --status)', [
    'coffer kms rewrap --status',
    'coffer kms rewrap --wait          # start a pass and show progress until it finishes',
  ])
    .option('--status', 'only show progress')
    .option('--wait', 'after starting, poll until the pass is done, showing progress')
    .option('--interval <seconds>', 'poll period for --wait', '2')
    .action(async (o: { status?: boolean; wait?: boolean; interval: string }, cmd: Command) => {
      const intervalMs = parseCount(o.interval, '--interval') * 1000;
      await withClient(ctx, cmd, async (c) => {
        if (o.status === true) {
          const s = await c.kms.status();
          print(ctx, cmd, s, () => describe(s));
          return;
        }
        const before = o.wait === true ? await c.kms.status() : undefined;
        await c.kms.rewrap();
        if (o.wait !== true) {
          print(ctx, cmd, { started: true }, () => 're-wrap pass started (see: coffer kms rewrap --status)');
          return;
        }
        const p = progress(ctx, cmd);
        // The server answers 202 before the pass may have begun: "not running" only means
        // finished once the pass was seen running or lastPassAt moved (or after a few polls, for a
        // pass too short to catch).
        let seenRunning = false;
        for (let polls = 1; ; polls++) {
          const s = await c.kms.status();
          const total = s.done + s.pending;
          p.update(`re-wrapped ${s.done} of ${total}`);
          if (s.running) seenRunning = true;
          else if (seenRunning || s.lastPassAt !== before?.lastPassAt || polls >= 5) {
            p.done(`re-wrap pass finished: ${s.done} of ${total} done, ${s.pending} pending`);
            print(ctx, cmd, s, () => '');
            return;
          }
          await ctx.sleep(intervalMs);
        }
      });
    });
}
