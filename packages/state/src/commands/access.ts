// Who may read, and who is locked out: the read allowlist (replace, first-start seed) and the
// cluster-wide lockout table (auth failures, reset).
import { KEY } from '../records.js';
import { MAX_ID_BYTES, checkInt, checkName, checkStrs, type CommandBase, type CommandSpec, type FamilySpecs } from './spec.js';

/** Failure timestamps kept per client IP; a lockout policy needs at most this many. */
export const MAX_FAILURES_KEPT = 64;

/** Replace the read allowlist (CIDRs validated by the server, stored as given). */
export type AllowlistReplaceCommand = CommandBase & { type: 'allowlist.replace'; cidrs: string[]; actor: string };

/**
 * First-start seed of the read allowlist (`COFFER_READ_ALLOWLIST`) on a cluster started without a
 * bootstrap token: applied only while no allowlist was ever set, a no-op after that.
 */
export type AllowlistSeedCommand = CommandBase & { type: 'allowlist.seed'; cidrs: string[] };

/** One failed authentication from a client IP (cluster-wide lockout). */
export type AuthFailureCommand = CommandBase & {
  type: 'auth.failure';
  ip: string;
  /** How long failure records are worth keeping: max(window, lockout) of the proposer's policy. */
  retainMs: number;
};

/** Clear the failures of a client IP (after a successful authentication). */
export type AuthResetCommand = CommandBase & { type: 'auth.reset'; ip: string };

/** The commands of this family. */
export type AccessCommand = AllowlistReplaceCommand | AllowlistSeedCommand | AuthFailureCommand | AuthResetCommand;

const allowlistReplace: CommandSpec<AllowlistReplaceCommand> = {
  id: 14,
  version: 1,
  validate(c) {
    checkStrs(c.cidrs, 'cidrs');
  },
  write(w, c) {
    w.strs(c.cidrs).str(c.actor);
  },
  read(r, base, type) {
    return { type, ...base, cidrs: r.strs(), actor: r.str() };
  },
  apply(ctx, c) {
    ctx.tables.allowlist = { cidrs: [...c.cidrs], updatedAt: c.at };
    ctx.changes.mark(KEY.allowlist);
    return { status: 'ok' };
  },
};

const allowlistSeed: CommandSpec<AllowlistSeedCommand> = {
  id: 23,
  version: 1,
  validate(c) {
    checkStrs(c.cidrs, 'cidrs');
  },
  write(w, c) {
    w.strs(c.cidrs);
  },
  read(r, base, type) {
    return { type, ...base, cidrs: r.strs() };
  },
  apply(ctx, c) {
    if (ctx.tables.allowlist !== null) return { status: 'noop' };
    ctx.tables.allowlist = { cidrs: [...c.cidrs], updatedAt: c.at };
    ctx.changes.mark(KEY.allowlist);
    return { status: 'ok' };
  },
};

const authFailure: CommandSpec<AuthFailureCommand> = {
  id: 18,
  version: 1,
  validate(c) {
    checkName(c.ip, 'ip', MAX_ID_BYTES);
    checkInt(c.retainMs, 'retainMs', 1);
  },
  write(w, c) {
    w.str(c.ip).u53(c.retainMs);
  },
  read(r, base, type) {
    return { type, ...base, ip: r.str(), retainMs: r.u53() };
  },
  apply(ctx, c) {
    const { lockouts } = ctx.tables;
    const rec = lockouts.get(c.ip) ?? { ip: c.ip, failures: [] };
    const f = rec.failures;
    // Proposer clocks may step back across leaders: keep the list sorted regardless.
    let i = f.length;
    while (i > 0 && (f[i - 1] as number) > c.at) i--;
    f.splice(i, 0, c.at);
    const keepFrom = c.at - c.retainMs;
    while (f.length > 0 && ((f[0] as number) < keepFrom || f.length > MAX_FAILURES_KEPT)) f.shift();
    lockouts.set(c.ip, rec);
    ctx.changes.mark(KEY.lockout + c.ip);
    // Bounded table: once per retention period (decided by the command's own `at`, so every replica
    // sweeps on the same entry) drop IPs whose newest failure is past retention.
    const bucket = Math.floor(c.at / c.retainMs);
    if (bucket !== ctx.tables.lockoutSweep) {
      ctx.tables.lockoutSweep = bucket;
      ctx.changes.mark(KEY.sweep);
      for (const [k, r] of lockouts) {
        const last = r.failures[r.failures.length - 1];
        if (last === undefined || last < keepFrom) {
          lockouts.delete(k);
          ctx.changes.mark(KEY.lockout + k);
        }
      }
    }
    return { status: 'ok', count: f.length };
  },
};

const authReset: CommandSpec<AuthResetCommand> = {
  id: 19,
  version: 1,
  validate(c) {
    checkName(c.ip, 'ip', MAX_ID_BYTES);
  },
  write(w, c) {
    w.str(c.ip);
  },
  read(r, base, type) {
    return { type, ...base, ip: r.str() };
  },
  apply(ctx, c) {
    if (!ctx.tables.lockouts.delete(c.ip)) return { status: 'noop' };
    ctx.changes.mark(KEY.lockout + c.ip);
    return { status: 'ok' };
  },
};

/** Specs of the allowlist and lockout family. */
export const accessCommands: FamilySpecs<AccessCommand> = {
  'allowlist.replace': allowlistReplace,
  'allowlist.seed': allowlistSeed,
  'auth.failure': authFailure,
  'auth.reset': authReset,
};
