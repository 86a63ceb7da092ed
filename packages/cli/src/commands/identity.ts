/** `coffer identity …` and `coffer access-requests …`: Ed25519 identities and access requests. */
import { open, unlink } from 'node:fs/promises';
import { generateEd25519KeyPair, type IdentityType, type MembershipRole } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, withClient, type CliContext } from '../context.js';
import { CliError, usage } from '../errors.js';
import { table, time } from '../format.js';

const TYPES: readonly IdentityType[] = ['agent', 'human', 'service'];
const ROLES: readonly MembershipRole[] = ['admin', 'member', 'readonly'];
const NAME = /^[A-Za-z0-9._-]{1,64}$/;

function checkName(v: string, what: string): string {
  if (!NAME.test(v) || v === '.' || v === '..' || v === 'self') throw usage(`${what}: 1-64 characters of A-Z a-z 0-9 . _ - (not ".", ".." or "self")`);
  return v;
}

/**
 * Writes a new private key file: created exclusively (never overwrites), mode 0600 from the start.
 *
 * @param path - the file
 * @param pem - the PKCS#8 PEM text
 * @throws {CLI_FAILED} the file exists or cannot be written
 */
async function writeKeyFile(path: string, pem: string): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError('CLI_FAILED', code === 'EEXIST' ? `--key-out: ${path} already exists; it is never overwritten (choose another file)` : `--key-out: cannot create ${path}: ${code ?? 'error'}`);
  }
  try {
    await fh.writeFile(pem, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Register `coffer identity` and `coffer access-requests`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerIdentity(program: Command, ctx: CliContext): void {
  const g = group(program, 'identity', 'Ed25519 identities for agents, humans and services (needs identity.manage)', [
    'coffer identity create build-agent --type agent',
    'coffer login ed25519 --identity build-agent --key build-agent.key',
  ]);

  leaf(g, 'create <name>', 'make an Ed25519 key pair here and register its public key (the private key is never sent)', [
    'coffer identity create build-agent --type agent                  # writes ./build-agent.key (mode 0600)',
    'coffer identity create alice --type human --key-out ~/.coffer/alice.key',
  ])
    .requiredOption('--type <type>', 'agent, human or service')
    .option('--key-out <file>', 'where to write the private key (PKCS#8 PEM, mode 0600, never overwritten; default ./<name>.key)')
    .action(async (name: string, o: { type: string; keyOut?: string }, cmd: Command) => {
      checkName(name, 'name');
      if (!(TYPES as readonly string[]).includes(o.type)) throw usage('--type: agent, human or service');
      const file = o.keyOut ?? `${name}.key`;
      const kp = generateEd25519KeyPair();
      // The key file first: a registered identity whose key was never saved would be unusable.
      await writeKeyFile(file, kp.privateKeyPem);
      await withClient(ctx, cmd, async (c) => {
        let created;
        try {
          created = await c.identities.create(name, o.type as IdentityType, kp.publicKey);
        } catch (err) {
          await unlink(file).catch(() => undefined);
          throw err;
        }
        print(ctx, cmd, { ...created, keyFile: file }, () => `registered identity ${created.name} (${created.type}), fingerprint ${created.fingerprint}\nprivate key written to ${file} (mode 0600); keep it secret, it cannot be recovered`);
      });
    });

  leaf(g, 'list', 'list identities', ['coffer identity list', 'coffer identity list --json'])
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const ids = await c.identities.list();
        print(ctx, cmd, ids, () => table(['NAME', 'TYPE', 'FINGERPRINT', 'CREATED', 'DISABLED'], ids.map((i) => [i.name, i.type, i.fingerprint, time(i.createdAt), time(i.disabledAt)])));
      });
    });

  leaf(g, 'disable <name>', 'disable an identity: its sessions stop working at once, on every node', ['coffer identity disable build-agent'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      checkName(name, 'name');
      await withClient(ctx, cmd, async (c) => {
        const i = await c.identities.disable(name);
        print(ctx, cmd, i, () => `disabled identity ${name}`);
      });
    });

  leaf(g, 'delete <name>', 'delete an identity with its memberships and sessions', ['coffer identity delete build-agent'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      checkName(name, 'name');
      await withClient(ctx, cmd, async (c) => {
        await c.identities.delete(name);
        print(ctx, cmd, { name, deleted: true }, () => `deleted identity ${name}`);
      });
    });

  leaf(g, 'show <name>', 'show an identity and its memberships', ['coffer identity show build-agent --json'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      checkName(name, 'name');
      await withClient(ctx, cmd, async (c) => {
        const i = await c.identities.get(name);
        const ms = i.memberships ?? [];
        print(ctx, cmd, i, () =>
          `name:        ${i.name}\ntype:        ${i.type}\nfingerprint: ${i.fingerprint}\ncreated:     ${time(i.createdAt)}\ndisabled:    ${time(i.disabledAt)}\n` +
          (ms.length === 0 ? 'memberships: none' : table(['ORG', 'PROJECT', 'ROLE', 'GRANTED BY'], ms.map((m) => [m.org, m.project ?? '*', m.role, m.grantedBy ?? '']))),
        );
      });
    });

  leaf(g, 'grant <name>', 'grant (or change) a membership: admin of an org, or member/readonly of a project', [
    'coffer identity grant build-agent --org acme --project web --role member',
    'coffer identity grant alice --org acme --role admin',
  ])
    .requiredOption('--org <org>', 'the org')
    .option('--project <project>', 'the project (member and readonly; not admin)')
    .requiredOption('--role <role>', 'admin, member or readonly')
    .action(async (name: string, o: { org: string; project?: string; role: string }, cmd: Command) => {
      checkName(name, 'name');
      checkName(o.org, '--org');
      if (!(ROLES as readonly string[]).includes(o.role)) throw usage('--role: admin, member or readonly');
      if (o.role === 'admin' && o.project !== undefined) throw usage('--project: an admin membership is org-wide');
      if (o.role !== 'admin' && o.project === undefined) throw usage(`--project: required for a ${o.role} membership`);
      if (o.project !== undefined) checkName(o.project, '--project');
      await withClient(ctx, cmd, async (c) => {
        const m = await c.identities.grant(name, { org: o.org, role: o.role as MembershipRole, ...(o.project === undefined ? {} : { project: o.project }) });
        print(ctx, cmd, m, () => `${name} is ${m.role} of ${m.project === null ? `org ${m.org}` : `${m.org}/${m.project}`}`);
      });
    });

  leaf(g, 'revoke <name>', 'remove a membership', ['coffer identity revoke build-agent --org acme --project web'])
    .requiredOption('--org <org>', 'the org')
    .option('--project <project>', 'the project (omit for the org-wide admin membership)')
    .action(async (name: string, o: { org: string; project?: string }, cmd: Command) => {
      checkName(name, 'name');
      checkName(o.org, '--org');
      if (o.project !== undefined) checkName(o.project, '--project');
      await withClient(ctx, cmd, async (c) => {
        await c.identities.revoke(name, { org: o.org, ...(o.project === undefined ? {} : { project: o.project }) });
        print(ctx, cmd, { identity: name, org: o.org, project: o.project ?? null, deleted: true }, () => `removed ${name}'s membership of ${o.project === undefined ? `org ${o.org}` : `${o.org}/${o.project}`}`);
      });
    });

  const a = group(program, 'access-requests', 'ask for, list and decide access to an org project (deciding needs access.approve or org admin)', [
    'coffer access-requests create --org acme --project web --role readonly --why "deploy the web app"',
    'coffer access-requests list --pending',
  ]);

  leaf(a, 'create', 'file a request for a membership (prints its id)', ['coffer access-requests create --org acme --project web --role member --why "ci deploys"'])
    .requiredOption('--org <org>', 'the org')
    .requiredOption('--project <project>', 'the project')
    .requiredOption('--role <role>', 'admin, member or readonly')
    .requiredOption('--why <text>', 'justification shown to the approver')
    .action(async (o: { org: string; project: string; role: string; why: string }, cmd: Command) => {
      checkName(o.org, '--org');
      checkName(o.project, '--project');
      if (!(ROLES as readonly string[]).includes(o.role)) throw usage('--role: admin, member or readonly');
      await withClient(ctx, cmd, async (c) => {
        const r = await c.accessRequests.create({ org: o.org, project: o.project, role: o.role as MembershipRole, justification: o.why });
        print(ctx, cmd, r, () => r.id);
      });
    });

  leaf(a, 'list', 'list requests (all with access.approve; an org admin also its orgs\' ones; everyone its own)', ['coffer access-requests list --pending'])
    .option('--pending', 'only pending requests')
    .action(async (o: { pending?: boolean }, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const rs = await c.accessRequests.list({ pending: o.pending === true });
        print(ctx, cmd, rs, () =>
          table(['ID', 'STATUS', 'REQUESTER', 'ORG/PROJECT', 'ROLE', 'CREATED', 'DECIDED BY'], rs.map((r) => [r.id, r.status, r.requester ?? '', `${r.org ?? ''}/${r.project ?? ''}`, r.role ?? '', time(r.createdAt), r.decidedBy ?? ''])),
        );
      });
    });

  for (const verb of ['approve', 'deny'] as const) {
    leaf(a, `${verb} <id>`, verb === 'approve' ? 'approve a request (creates the membership; never your own)' : 'deny a request', [`coffer access-requests ${verb} 3f2504e0-4f89-41d3-9a0c-0305e82c3301`])
      .action(async (id: string, _o: unknown, cmd: Command) => {
        checkName(id, 'id');
        await withClient(ctx, cmd, async (c) => {
          const r = verb === 'approve' ? await c.accessRequests.approve(id) : await c.accessRequests.deny(id);
          print(ctx, cmd, r, () => `${r.status} request ${id}`);
        });
      });
  }
}
