/** `coffer cluster …` */
import type { ClusterStatus } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, progress, withClient, type CliContext } from '../context.js';
import { bytes, table } from '../format.js';
import { checkUrl } from '../validate.js';

/**
 * The `cluster status` table: one line per member with role (leader / follower / learner),
 * match index and health, under a header with the leader and term.
 *
 * @param s - `GET /v1/cluster`
 * @returns text
 */
export function renderClusterStatus(s: ClusterStatus): string {
  const head =
    `cluster ${s.id}\n` +
    `leader  ${s.leader ?? '(none)'}\n` +
    `term    ${s.term}\n` +
    `commit  ${s.commitIndex}   applied ${s.appliedIndex}\n\n`;
  const rows = s.members.map((m) => {
    const role = m.id === s.leader ? 'leader' : m.suffrage === 'voter' ? 'follower' : m.suffrage;
    return [m.id, role, String(m.matchIndex), m.healthy ? 'healthy' : 'UNHEALTHY', m.apiAddr, m.raftAddr];
  });
  return head + table(['MEMBER', 'ROLE', 'MATCH', 'HEALTH', 'API', 'RAFT'], rows);
}

/**
 * Register `coffer cluster`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerCluster(program: Command, ctx: CliContext): void {
  const g = group(program, 'cluster', 'membership, leadership and online restore', ['coffer cluster status', 'coffer cluster transfer n2']);

  leaf(g, 'status', "show the leader, term and each member's role, match index and health", ['coffer cluster status', 'coffer cluster status --json'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const s = await c.cluster.status();
        print(ctx, cmd, s, () => renderClusterStatus(s));
      });
    });

  leaf(g, 'add <id>', 'add a member (joins as a learner, promoted once caught up)', [
    'coffer cluster add n4 --raft http://10.8.0.4:8201 --api http://10.8.0.4:8200',
  ])
    .requiredOption('--raft <url>', "the new member's Raft URL")
    .requiredOption('--api <url>', "the new member's API URL")
    .action(async (id: string, o: { raft: string; api: string }, cmd: Command) => {
      const raftAddr = checkUrl(o.raft, '--raft');
      const apiAddr = checkUrl(o.api, '--api');
      await withClient(ctx, cmd, async (c) => {
        const r = await c.cluster.add({ id, raftAddr, apiAddr });
        print(ctx, cmd, r ?? { id, added: true }, () => `added member ${id} (learner until caught up)`);
      });
    });

  leaf(g, 'remove <id>', 'remove a member', ['coffer cluster remove n3'])
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const r = await c.cluster.remove(id);
        print(ctx, cmd, r ?? { id, removed: true }, () => `removed member ${id}`);
      });
    });

  leaf(g, 'transfer [id]', 'hand leadership to a member (default: the most up-to-date voter)', ['coffer cluster transfer', 'coffer cluster transfer n2'])
    .action(async (id: string | undefined, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const r = await c.cluster.transfer(id);
        print(ctx, cmd, r ?? { to: id ?? null }, () => `leadership transfer ${id === undefined ? 'started' : `to ${id} started`}`);
      });
    });

  leaf(g, 'restore <file>', 'replace the whole state with a snapshot, through consensus on every node (online)', [
    'coffer cluster restore backup.snap',
  ])
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const p = progress(ctx, cmd);
      await withClient(ctx, cmd, async (c) => {
        let sent = 0;
        const r = await c.cluster.restore(file, {
          onProgress: (x) => {
            sent = x.bytes;
            p.update(`uploading ${bytes(x.bytes)}${x.totalBytes === undefined ? '' : ` of ${bytes(x.totalBytes)}`}`);
          },
        });
        p.done(`uploaded ${bytes(sent)}; restore applied`);
        print(ctx, cmd, r ?? { restored: true }, () => `restored from ${file}`);
      });
    });
}
