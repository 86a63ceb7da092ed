/**
 * Server-side commands: `coffer server`, `coffer dev`, `coffer audit verify`, and the offline
 * `coffer snapshot restore FILE --data-dir DIR` and `coffer recover --data-dir DIR`. They import @coffer/node; everything else in the
 * CLI speaks HTTP through @coffer/client.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { checkNodeId, CONFIG_ENV, CONFIG_VARIABLES, ConfigError, loadConfig, loadStorageIntegrity, readEnv, startServer, verifyAuditFile, restoreDataDir, recoverDataDir } from '@coffer/node';
import { group, leaf, type CliContext } from '../context.js';
import { CliError } from '../errors.js';

/**
 * Registers `server`, `dev`, `audit verify`, `snapshot restore` and `recover`.
 *
 * @param program - the root command
 * @param ctx - CLI context
 */
export function registerServerCommands(program: Command, ctx: CliContext): void {
  registerServer(program, ctx);

  program
    .command('dev')
    .description('start three local nodes on loopback (API :8200/:8210/:8220) with data under ./data/dev; Ctrl-C stops all')
    .option('--data-dir <dir>', 'where the three nodes keep their data and the generated keys', './data/dev')
    .option('--base-port <port>', 'API port of the first node (the others add 10 and 20; Raft ports are API + 1)', '8200')
    .addHelpText('after', '\nExamples:\n  $ coffer dev\n  $ coffer dev --data-dir /tmp/coffer-dev --base-port 9200\n')
    .action(async (opts: { dataDir: string; basePort: string }) => {
      const base = Number(opts.basePort);
      if (!Number.isInteger(base) || base < 1 || base > 65_000) throw new CliError('CLI_USAGE', `--base-port: ${JSON.stringify(opts.basePort)} is not a port number`);
      await runDev(path.resolve(opts.dataDir), base, ctx);
    });

  const audit = group(program, 'audit', 'inspect audit logs', ['coffer audit verify ./data/n1/audit.jsonl']);
  leaf(audit, 'verify <file>', 'check the hash chain of an audit log and report the first broken line', ['coffer audit verify ./data/dev/n1/audit.jsonl', 'coffer audit verify audit.jsonl --json']).action(
    async (file: string, opts: { json?: boolean }) => {
      const r = await verifyAuditFile(file);
      if (opts.json === true) ctx.io.stdout.write(`${JSON.stringify(r)}\n`);
      else if (r.ok) ctx.io.stdout.write(`ok: ${r.lines} lines, chain intact (head ${r.lastHash})\n`);
      else ctx.io.stdout.write(`BROKEN at line ${r.firstBadLine}: ${r.reason}\n`);
      if (!r.ok) throw new CliError('CLI_FAILED', `audit chain broken at line ${r.firstBadLine}`);
    },
  );

  const snapshot = group(program, 'snapshot', 'save and restore backups');
  leaf(snapshot, 'restore <file>', 'prepare a NEW data dir from a snapshot (offline): a node started on it is a one-member cluster holding the backup; add the others with `coffer cluster add` / COFFER_JOIN', [
    'coffer snapshot restore backup.snap --data-dir ./data/n1 --node-id n1',
  ])
    .requiredOption('--data-dir <dir>', 'the data dir to create (must not hold a store yet)')
    .option('--node-id <id>', 'id of the node that will run on it (default COFFER_NODE_ID, else the data dir\'s name when it is a valid id, as in ./data/n1)')
    .option('--raft-addr <url>', 'the node\'s advertised Raft URL (default COFFER_ADVERTISE_RAFT, else http://127.0.0.1:8201)')
    .option('--integrity-root <file>', 'without COFFER_CLUSTER_KEY: the integrity-root.json of the node that made the snapshot (KMS-wrapped; unwrapped with the configured KMS or master key)')
    .addHelpText('after', '\nThe snapshot must be authentic: the same configuration variables as the server (COFFER_CLUSTER_KEY, or the KMS/master key with --integrity-root) are read to check it; an edited snapshot or one from a cluster with another key is refused.\n')
    .action(async (file: string, opts: { dataDir: string; nodeId?: string; raftAddr?: string; integrityRoot?: string; json?: boolean }) => {
      const base = path.basename(path.resolve(opts.dataDir));
      const nodeId = opts.nodeId ?? nonEmpty(ctx.io.env[CONFIG_ENV.NODE_ID]) ?? (checkNodeId(base).ok ? base : undefined);
      if (nodeId === undefined) throw new CliError('CLI_USAGE', `--node-id is required (COFFER_NODE_ID is unset and the data dir name ${JSON.stringify(base)} is not a node id)`);
      const idCheck = checkNodeId(nodeId);
      if (!idCheck.ok) throw new CliError('CLI_USAGE', `--node-id: ${idCheck.reason}`);
      if (!existsSync(file)) throw new CliError('CLI_USAGE', `${file}: no such file`);
      const blob = new Uint8Array(readFileSync(file));
      const raftAddr = opts.raftAddr ?? nonEmpty(ctx.io.env[CONFIG_ENV.ADVERTISE_RAFT]) ?? 'http://127.0.0.1:8201';
      const integrity = await offlineIntegrity(ctx, nodeId, path.resolve(opts.dataDir), opts.integrityRoot);
      let r;
      try {
        r = await restoreDataDir({ dataDir: path.resolve(opts.dataDir), nodeId, raftAddr, snapshot: blob, integrity });
      } catch (err) {
        const code = (err as { code?: unknown } | null)?.code;
        if (code === 'SM_SNAPSHOT_NOT_AUTHENTIC') throw new CliError('CLI_FAILED', `${file}: the snapshot is not authentic: it was edited or comes from a cluster with another key`);
        throw new CliError('CLI_FAILED', `${file}: ${err instanceof Error ? err.message : String(err)}`);
      } finally {
        integrity.destroy();
      }
      if (opts.json === true) ctx.io.stdout.write(`${JSON.stringify(r)}\n`);
      else ctx.io.stdout.write(`restored ${r.secrets} secrets at index ${r.index} into ${path.resolve(opts.dataDir)} for node ${nodeId} (Raft ${raftAddr}); start it with COFFER_NODE_ID=${nodeId} COFFER_DATA_DIR=${path.resolve(opts.dataDir)}\n`);
    });

  program
    .command('recover')
    .description('quorum-loss recovery (offline): turn a STOPPED surviving member\'s data dir into a new one-member cluster that keeps all its data; the other members then join with fresh data dirs (COFFER_JOIN)')
    .requiredOption('--data-dir <dir>', 'the survivor\'s data dir (holds store/); the node must be stopped')
    .option('--node-id <id>', 'id of the node that will run on it (default COFFER_NODE_ID)')
    .option('--raft-addr <url>', 'the node\'s advertised Raft URL (default: the address the survivor\'s address book holds for it)')
    .option('--dry-run', 'only print what would be kept (last index and term, commit index, old members, secrets); change nothing')
    .option('--json', 'print the result as JSON (for scripts)')
    .addHelpText(
      'after',
      [
        '',
        'Use it only when a majority of the members is lost for good (e.g. two of three data dirs destroyed).',
        'With several survivors, run it with --dry-run on each and pick the one with the highest index.',
        'Every entry the survivor holds is kept, including ones it had not yet seen committed. The old store is',
        'kept as DIR/store.pre-recover-<time> (remove it once the new cluster is healthy). Never start the lost',
        'members on their old data dirs again: wipe them and let them join (COFFER_JOIN=<API URL of the survivor>).',
        'Runbook: docs/OPERATIONS.md, "Quorum loss".',
        '',
        'Examples:',
        '  $ coffer recover --data-dir /var/lib/coffer/n1 --node-id n1 --dry-run',
        '  $ coffer recover --data-dir /var/lib/coffer/n1 --node-id n1',
        '',
      ].join('\n'),
    )
    .action(async (opts: { dataDir: string; nodeId?: string; raftAddr?: string; dryRun?: boolean; json?: boolean }) => {
      const nodeId = opts.nodeId ?? ctx.io.env[CONFIG_ENV.NODE_ID];
      if (nodeId === undefined || nodeId === '') throw new CliError('CLI_USAGE', '--node-id (or COFFER_NODE_ID) is required');
      const dataDir = path.resolve(opts.dataDir);
      if (!existsSync(path.join(dataDir, 'store'))) throw new CliError('CLI_USAGE', `${dataDir}: no store/ in this data dir`);
      const integrity = await offlineIntegrity(ctx, nodeId, dataDir, undefined);
      const adoptUntagged = ['true', '1'].includes(readEnv(ctx.io.env)[CONFIG_ENV.INTEGRITY_ADOPT]?.toLowerCase() ?? '');
      let r;
      try {
        r = await recoverDataDir({ dataDir, nodeId, ...(opts.raftAddr === undefined ? {} : { raftAddr: opts.raftAddr }), dryRun: opts.dryRun === true, integrity, adoptUntagged });
      } catch (err) {
        throw new CliError('CLI_FAILED', err instanceof Error ? err.message : String(err));
      } finally {
        integrity.destroy();
      }
      if (opts.json === true) ctx.io.stdout.write(`${JSON.stringify({ dryRun: opts.dryRun === true, ...r })}\n`);
      else if (opts.dryRun === true) ctx.io.stdout.write(`would keep ${r.secrets} secrets up to index ${r.index} (term ${r.term}; known committed ${r.commit}); old members: ${r.previousMembers.join(', ')}\n`);
      else ctx.io.stdout.write(`recovered ${r.secrets} secrets up to index ${r.index} into a one-member cluster (${nodeId}); old store kept at ${r.backupDir}; start the node, then join the others with COFFER_JOIN\n`);
    });
}

/**
 * The storage integrity keys an offline tool needs, from the same variables as the server
 * (COFFER_CLUSTER_KEY, else the KMS or local master key and the data dir's wrapped root).
 */
async function offlineIntegrity(ctx: CliContext, nodeId: string, dataDir: string, rootFile: string | undefined): Promise<Awaited<ReturnType<typeof loadStorageIntegrity>>> {
  let config;
  try {
    config = loadConfig({ ...readEnv(ctx.io.env), COFFER_NODE_ID: nodeId, COFFER_DATA_DIR: dataDir }, {});
  } catch (err) {
    if (err instanceof ConfigError) throw new CliError('CLI_USAGE', `the integrity keys come from the server's configuration: ${err.message}`);
    throw err;
  }
  try {
    return await loadStorageIntegrity(config, { create: false, rootFile });
  } catch (err) {
    throw new CliError('CLI_FAILED', `cannot load the integrity keys: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * `coffer server`: one flag per configuration variable, generated from the table in
 * @coffer/node (CONFIG_VARIABLES), grouped in `--help` by section with each variable's name and
 * default. The flags only collect text; loadConfig parses and validates them exactly as it does
 * the environment, so a bad flag and a bad variable fail with the same one-line message.
 */
function registerServer(program: Command, ctx: CliContext): void {
  const cmd = program
    .command('server')
    .summary('run one Coffer node (configured by COFFER_* variables or the matching flags)')
    .description('Runs one Coffer node. Every COFFER_* variable is also a flag (COFFER_NODE_ID = --node-id); a flag wins over the variable. A bad value stops the server with one line naming the variable.')
    .addHelpText('after', '\nEvery variable is described in docs/config.md.\n\nExample:\n  $ COFFER_NODE_ID=n1 COFFER_BOOTSTRAP_TOKEN=... coffer server --api-addr 127.0.0.1:8200\n');
  const flagOf = new Map<string, string>();
  for (const s of CONFIG_VARIABLES) {
    // NB: no commander default: an unset flag must leave the variable (or the table's default) in force.
    const opt = new Option(s.boolean ? `${s.flag} [bool]` : `${s.flag} <value>`, `${s.description} (${s.name}; default: ${s.defaultText})`).helpGroup(`${s.sectionTitle}:`);
    cmd.addOption(opt);
    flagOf.set(opt.attributeName(), s.flag.slice(2));
  }
  cmd.action(async (opts: Record<string, unknown>) => {
    const flags: Record<string, string | boolean> = {};
    for (const [attr, value] of Object.entries(opts)) {
      const flag = flagOf.get(attr);
      if (flag !== undefined && (typeof value === 'string' || typeof value === 'boolean')) flags[flag] = value;
    }
    await runServer(flags, ctx);
  });
}

async function runServer(flags: Record<string, string | boolean>, ctx: CliContext): Promise<void> {
  let config;
  try {
    config = loadConfig(readEnv(ctx.io.env), flags);
  } catch (err) {
    if (err instanceof ConfigError) {
      ctx.io.stderr.write(`coffer server: ${err.message}\n`);
      ctx.exitCode = 2;
      return;
    }
    throw err;
  }
  let server;
  try {
    server = await startServer(config);
  } catch (err) {
    ctx.io.stderr.write(`coffer server: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  const running = server;
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (code: number) => {
      if (stopping) return;
      stopping = true;
      // A hard deadline: a wedged close must not keep the process alive forever.
      setTimeout(() => process.exit(code === 0 ? 1 : code), 10_000).unref();
      void running.close().finally(() => {
        process.exitCode = code;
        resolve();
        setImmediate(() => process.exit(code));
      });
    };
    process.once('SIGTERM', () => stop(0));
    process.once('SIGINT', () => stop(0));
    void running.fatal.then(() => stop(1));
  });
}

interface DevKeys {
  clusterKey: string;
  masterKey: string;
  bootstrapToken: string;
}

function loadOrCreateKeys(dir: string): DevKeys {
  const file = path.join(dir, 'keys.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as DevKeys;
  const keys: DevKeys = {
    clusterKey: randomBytes(32).toString('base64'),
    masterKey: randomBytes(32).toString('base64'),
    bootstrapToken: `cof_dev_${randomBytes(24).toString('base64url')}`,
  };
  writeFileSync(file, `${JSON.stringify(keys, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return keys;
}

async function runDev(dir: string, basePort: number, ctx: CliContext): Promise<void> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = loadOrCreateKeys(dir);
  const ids = ['n1', 'n2', 'n3'];
  const api = (i: number) => basePort + i * 10;
  const raft = (i: number) => basePort + i * 10 + 1;
  const initial = ids.map((id, i) => `${id}=http://127.0.0.1:${raft(i)}`).join(',');
  const main = process.argv[1] as string;
  const children: ChildProcess[] = ids.map((id, i) => {
    const env = {
      ...process.env,
      COFFER_NODE_ID: id,
      COFFER_DATA_DIR: path.join(dir, id),
      COFFER_API_ADDR: `127.0.0.1:${api(i)}`,
      COFFER_RAFT_ADDR: `127.0.0.1:${raft(i)}`,
      COFFER_INITIAL_CLUSTER: initial,
      COFFER_CLUSTER_KEY: keys.clusterKey,
      COFFER_LOCAL_MASTER_KEY: keys.masterKey,
      COFFER_BOOTSTRAP_TOKEN: keys.bootstrapToken,
      COFFER_READ_ALLOWLIST: '127.0.0.0/8,::1/128',
      COFFER_LOG_LEVEL: process.env['COFFER_LOG_LEVEL'] ?? 'warn',
    };
    const child = spawn(process.execPath, [main, 'server'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    return child;
  });
  const addrs = ids.map((_, i) => `http://127.0.0.1:${api(i)}`).join(',');
  ctx.io.stdout.write(
    [
      `Coffer dev cluster: 3 nodes, data in ${dir} (keys in ${path.join(dir, 'keys.json')}, mode 0600)`,
      ...ids.map((id, i) => `  ${id}  API http://127.0.0.1:${api(i)}  Raft http://127.0.0.1:${raft(i)}`),
      '',
      `Bootstrap admin token: ${keys.bootstrapToken}`,
      '',
      'Try:',
      `  export COFFER_ADDR=${addrs} COFFER_TOKEN=${keys.bootstrapToken}`,
      '  ./bin/coffer secrets put app/db-password s3cr3t',
      '  ./bin/coffer secrets get app/db-password',
      '  ./bin/coffer cluster status',
      '',
      'Ctrl-C stops all three nodes.',
      '',
    ].join('\n'),
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    let alive = children.length;
    const stopAll = () => {
      if (stopping) return;
      stopping = true;
      for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
      setTimeout(() => {
        for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
      }, 8_000).unref();
    };
    for (const c of children) {
      c.on('exit', (code) => {
        alive--;
        if (!stopping && code !== 0) {
          ctx.io.stderr.write(`a node exited with code ${code}; stopping the others\n`);
          process.exitCode = 1;
          stopAll();
        }
        if (alive === 0) resolve();
      });
    }
    process.once('SIGINT', stopAll);
    process.once('SIGTERM', stopAll);
  });
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v === '' ? undefined : v;
}
