/** `coffer secrets …` */
import type { Secret, SecretValueInput } from '@coffer/client';
import type { Command } from 'commander';
import { group, leaf, print, withClient, type CliContext } from '../context.js';
import { usage } from '../errors.js';
import { table, time } from '../format.js';
import { readAll } from '../io.js';
import { parseCount, parseVersions } from '../validate.js';

interface PutOptions {
  cas?: string;
  description?: string;
  username?: string;
  base64?: boolean;
  binary?: boolean;
  keepNewline?: boolean;
}

/**
 * The value comes from the argument, or from stdin for `-` or when omitted with stdin not a
 * terminal, so that secrets need not appear in shell history or `ps`.
 */
async function readValue(ctx: CliContext, arg: string | undefined, o: PutOptions): Promise<SecretValueInput> {
  let raw: Buffer;
  if (arg !== undefined && arg !== '-') {
    raw = Buffer.from(arg, 'utf8');
  } else if (arg === '-' || ctx.io.stdin.isTTY !== true) {
    raw = await readAll(ctx.io);
    // `echo secret | coffer secrets put` adds a newline nobody meant to store.
    if (o.keepNewline !== true && o.binary !== true) {
      if (raw.subarray(-2).toString() === '\r\n') raw = raw.subarray(0, -2);
      else if (raw.subarray(-1).toString() === '\n') raw = raw.subarray(0, -1);
    }
  } else {
    throw usage("missing VALUE: give it, or '-' to read it from stdin (keeps it out of shell history)");
  }
  if (o.binary === true) return { valueBase64: raw.toString('base64') };
  const text = raw.toString('utf8');
  if (o.base64 === true) {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text.trim())) throw usage('--base64: VALUE is not base64');
    return { valueBase64: text.trim() };
  }
  if (o.username !== undefined) return { format: 'userpass', username: o.username, password: text };
  return { value: text };
}

function writeValue(ctx: CliContext, s: Secret, asBase64: boolean): void {
  const out = ctx.io.stdout;
  const nl = out.isTTY === true ? '\n' : '';
  if (s.valueBase64 !== undefined) {
    out.write(asBase64 ? `${s.valueBase64}${nl}` : Buffer.from(s.valueBase64, 'base64'));
  } else if (s.format === 'userpass') {
    out.write(`username: ${s.username ?? ''}\npassword: ${s.password ?? ''}\n`);
  } else if (s.format === 'kv') {
    // A Vault KV v2 data map: one line of JSON (for `jq`).
    out.write(`${JSON.stringify(s.data ?? {})}\n`);
  } else {
    out.write(`${s.value ?? ''}${nl}`);
  }
}

/**
 * Register `coffer secrets`.
 *
 * @param program - root command
 * @param ctx - CLI context
 */
export function registerSecrets(program: Command, ctx: CliContext): void {
  const g = group(program, 'secrets', 'write, read and manage secrets', ['coffer secrets put app/db -', 'coffer secrets get app/db', 'coffer secrets list app/']);

  leaf(g, 'put <name> [value]', 'write a new version of a secret (VALUE "-" or omitted: read stdin)', [
    'coffer secrets put payments/stripe -            # value from stdin',
    'printf %s "$PW" | coffer secrets put db/main --cas 3',
    'coffer secrets put db/admin --username admin -  # userpass secret, password from stdin',
    'coffer secrets put tls/key --binary - < key.der',
  ])
    .option('--cas <version>', 'check-and-set: only write if the current version is this (0: must not exist)')
    .option('--description <text>', 'description stored with the secret')
    .option('--username <name>', 'store a userpass secret; VALUE is the password')
    .option('--base64', 'VALUE is base64 (stored as bytes)')
    .option('--binary', 'store stdin bytes as they are (base64 on the wire)')
    .option('--keep-newline', 'keep a trailing newline read from stdin')
    .action(async (name: string, value: string | undefined, o: PutOptions, cmd: Command) => {
      const cas = o.cas === undefined ? undefined : parseCount(o.cas, '--cas');
      const input = await readValue(ctx, value, o);
      await withClient(ctx, cmd, async (c) => {
        const r = await c.secrets.put(name, input, {
          ...(cas === undefined ? {} : { cas }),
          ...(o.description === undefined ? {} : { description: o.description }),
        });
        print(ctx, cmd, r, () => `${r.name}: version ${r.version}`);
      });
    });

  leaf(g, 'get <name>', 'read a secret (the value alone on stdout)', [
    'coffer secrets get payments/stripe',
    'coffer secrets get payments/stripe --version 2 --json',
    'DB_PW=$(coffer secrets get db/main)',
  ])
    .option('--version <n>', 'a specific version (default: latest)')
    .option('--stale', 'let any node answer from local state (faster, possibly behind)')
    .option('--base64', 'print binary values as base64 instead of raw bytes')
    .action(async (name: string, o: { version?: string; stale?: boolean; base64?: boolean }, cmd: Command) => {
      const version = o.version === undefined ? undefined : parseCount(o.version, '--version');
      await withClient(ctx, cmd, async (c) => {
        const s = await c.secrets.get(name, {
          ...(version === undefined ? {} : { version }),
          ...(o.stale === true ? { consistency: 'stale' as const } : {}),
        });
        if (cmd.optsWithGlobals<{ json?: boolean }>().json === true) print(ctx, cmd, s, () => '');
        else writeValue(ctx, s, o.base64 === true);
      });
    });

  leaf(g, 'list [prefix]', 'list secret names (with latest version and time)', ['coffer secrets list', 'coffer secrets list payments/ --json'])
    .action(async (prefix: string | undefined, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const items = await c.secrets.list(prefix ?? '');
        print(ctx, cmd, items, () =>
          table(
            ['NAME', 'VERSION', 'UPDATED'],
            items.map((s) => [s.name, s.version === undefined ? '-' : String(s.version), time(s.updatedAt ?? s.createdAt)]),
          ),
        );
      });
    });

  leaf(g, 'versions <name>', "show every version's metadata (never values)", ['coffer secrets versions db/main'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const vs = await c.secrets.versions(name);
        print(ctx, cmd, vs, () =>
          table(
            ['VERSION', 'CREATED', 'DELETED', 'DESTROYED'],
            vs.map((v) => [String(v.version), time(v.createdAt), time(v.deletedAt), v.destroyed === true ? 'yes' : 'no']),
          ),
        );
      });
    });

  const versionOps = [
    ['delete', 'soft-delete a version (default: the latest live one); undelete restores it'],
    ['undelete', 'restore a soft-deleted version (default: the latest deleted one)'],
    ['destroy', 'erase a version for good (default: latest); --all erases every version and the metadata'],
  ] as const;
  for (const [op, description] of versionOps) {
    const cmd0 = leaf(g, `${op} <name>`, description, [`coffer secrets ${op} db/main`, `coffer secrets ${op} db/main --version 1,2`]).option(
      '--version <n[,n…]>',
      'version(s) to act on',
    );
    if (op === 'destroy') cmd0.option('--all', 'erase every version and the metadata');
    cmd0.action(async (name: string, o: { version?: string; all?: boolean }, cmd: Command) => {
      if (o.all === true && o.version !== undefined) throw usage('--all and --version exclude each other');
      let versions = o.version === undefined ? undefined : parseVersions(o.version);
      await withClient(ctx, cmd, async (c) => {
        if (o.all === true) {
          await c.secrets.destroyAll(name);
          print(ctx, cmd, { name, destroyed: 'all' }, () => `${name}: every version destroyed`);
          return;
        }
        if (versions === undefined) {
          const all = await c.secrets.versions(name);
          const pick = (xs: typeof all): number | undefined => xs.reduce<number | undefined>((m, v) => (m === undefined || v.version > m ? v.version : m), undefined);
          const live = all.filter((v) => v.destroyed !== true);
          const latest =
            op === 'undelete' ? pick(live.filter((v) => v.deletedAt !== undefined && v.deletedAt !== null)) : pick(op === 'delete' ? live.filter((v) => v.deletedAt === undefined || v.deletedAt === null) : live);
          if (latest === undefined) throw usage(`${name}: no version to ${op}; pass --version`);
          versions = [latest];
        }
        await c.secrets[op](name, versions);
        const past = { delete: 'deleted', undelete: 'undeleted', destroy: 'destroyed' }[op];
        const vs = versions;
        print(ctx, cmd, { name, versions: vs, [past]: true }, () => `${name}: ${past} version${vs.length > 1 ? 's' : ''} ${vs.join(', ')}`);
      });
    });
  }

  leaf(g, 'rotate <name>', 'generate a new random value now (runs the rotation target, if any)', ['coffer secrets rotate db/main'])
    .action(async (name: string, _o: unknown, cmd: Command) => {
      await withClient(ctx, cmd, async (c) => {
        const r = await c.secrets.rotate(name);
        print(ctx, cmd, r, () => `${r.name}: rotated to version ${r.version}`);
      });
    });
}
