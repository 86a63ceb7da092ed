/** `coffer snapshot save` (the offline `snapshot restore --data-dir` is registered by the server). */
import type { Command } from 'commander';
import { group, leaf, print, progress, withClient, type CliContext } from '../context.js';
import { bytes } from '../format.js';

/**
 * Register `coffer snapshot save`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerSnapshot(program: Command, ctx: CliContext): void {
  const g = group(program, 'snapshot', 'consistent backups (sealed: ciphertext only)', ['coffer snapshot save backup.snap']);

  leaf(g, 'save <file>', 'stream a consistent backup of the whole cluster to FILE', ['coffer snapshot save backup-$(date +%F).snap'])
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const p = progress(ctx, cmd);
      await withClient(ctx, cmd, async (c) => {
        const r = await c.cluster.snapshot(file, {
          onProgress: (x) => p.update(`received ${bytes(x.bytes)}${x.totalBytes === undefined ? '' : ` of ${bytes(x.totalBytes)}`}`),
        });
        p.done(`saved ${bytes(r.bytes)} to ${file}`);
        print(ctx, cmd, r, () => '');
      });
    });
}
