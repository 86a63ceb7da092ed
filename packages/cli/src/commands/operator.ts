/** `coffer operator init | unseal | seal | status`: the sealed start (COFFER_SEAL=shamir). */
import { CofferError, type SealInit, type SealStatus } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, withClient, type CliContext } from '../context.js';
import { usage } from '../errors.js';
import { readAll } from '../io.js';
import { parseCount } from '../validate.js';

function describe(s: SealStatus): string {
  return (
    `initialized: ${s.initialized ? 'yes' : 'no'}\n` +
    `sealed:      ${s.sealed ? 'yes' : 'no'}\n` +
    `threshold:   ${s.t}\n` +
    `shares:      ${s.n}\n` +
    `progress:    ${s.progress}/${s.t}`
  );
}

/** The share from the argument, or from stdin for `-` (or when omitted with stdin not a terminal). */
async function readShare(ctx: CliContext, arg: string | undefined): Promise<string> {
  let text: string;
  if (arg !== undefined && arg !== '-') text = arg;
  else if (arg === '-' || ctx.io.stdin.isTTY !== true) text = (await readAll(ctx.io)).toString('utf8');
  else throw usage("missing SHARE: give '-' and pipe it on stdin (keeps it out of shell history and ps)");
  text = text.trim();
  if (text === '') throw usage('SHARE: stdin was empty');
  return text;
}

/**
 * Register `coffer operator`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerOperator(program: Command, ctx: CliContext): void {
  const g = group(program, 'operator', 'sealed start (COFFER_SEAL=shamir): init, unseal, seal, status', [
    'coffer operator init --shares 5 --threshold 3',
    'coffer operator unseal - < share-1.txt',
    'coffer operator status',
  ]);

  leaf(g, 'init', 'create the master key once per cluster and print its shares (shown this once only)', [
    'coffer operator init --shares 5 --threshold 3',
    'coffer operator init --shares 5 --threshold 3 --json > shares.json   # hand each share to one custodian',
  ])
    .requiredOption('--shares <n>', 'number of shares to make (1-255)')
    .requiredOption('--threshold <t>', 'shares needed to unseal (2..shares; 1 only with --shares 1)')
    .action(async (o: { shares: string; threshold: string }, cmd: Command) => {
      const shares = parseCount(o.shares, '--shares');
      const threshold = parseCount(o.threshold, '--threshold');
      if (shares < 1 || shares > 255) throw usage('--shares: must be from 1 to 255');
      if (threshold < 1 || threshold > shares) throw usage('--threshold: must be from 1 to --shares');
      await withClient(ctx, cmd, async (c) => {
        // Right after the nodes start there may be no leader yet, or the new command not yet
        // advertised by every voter: those refusals happen before anything is proposed, so
        // asking again is safe (unlike outcome_unknown, which is never retried: a lost answer
        // cannot be asked for again).
        let r: SealInit | undefined;
        for (let attempt = 1; r === undefined; attempt++) {
          try {
            r = await c.operator.init(shares, threshold);
          } catch (err) {
            const early = err instanceof CofferError && (err.code === 'no_leader' || err.code === 'upgrade_pending');
            if (!early || attempt >= 30) throw err;
            await ctx.sleep(1000);
          }
        }
        const out = r;
        print(ctx, cmd, out, () =>
          [
            ...out.keys.map((k, i) => `Unseal key ${i + 1}: ${k}`),
            '',
            `The cluster is initialized with ${shares} shares; any ${threshold} unseal a node.`,
            'These shares are shown ONCE and stored nowhere: give each to a different custodian now.',
            'Every node starts sealed, also after each restart: unseal it with `coffer operator unseal`.',
          ].join('\n'),
        );
      });
    });

  leaf(g, 'unseal [share]', 'give one share to ONE node (the first --addr); SHARE "-" reads it from stdin', [
    'coffer operator unseal - < share-1.txt',
    'coffer --addr http://10.0.0.2:8200 operator unseal -',
    'coffer operator unseal --reset     # forget the shares this node has accepted so far',
  ])
    .option('--reset', 'forget the shares given to this node so far')
    .action(async (share: string | undefined, o: { reset?: boolean }, cmd: Command) => {
      if (o.reset === true && share !== undefined) throw usage('--reset takes no SHARE');
      const key = o.reset === true ? undefined : await readShare(ctx, share);
      await withClient(ctx, cmd, async (c) => {
        const s = key === undefined ? await c.operator.resetUnseal() : await c.operator.unseal(key);
        print(ctx, cmd, s, () => (s.sealed ? `${describe(s)}\nstill sealed: ${s.t - s.progress} more share(s) needed` : `${describe(s)}\nunsealed`));
      });
    });

  leaf(g, 'seal', 'seal ONE node (the first --addr): it drops the master key from memory (operator.seal)', ['coffer operator seal'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const s = await c.operator.seal();
        print(ctx, cmd, s, () => `${describe(s)}\nsealed`);
      });
    });

  leaf(g, 'status', "one node's seal status (the first --addr)", ['coffer operator status --json'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const s = await c.operator.status();
        print(ctx, cmd, s, () => describe(s));
      });
    });
}
