// The approle family: put keeps the role id and secret ids, secret ids spend exactly their uses,
// expire at `at`, several are valid at once, login creates a normal token and prunes dead ones,
// delete takes secret ids and sessions with it, and every replica (and a snapshot) agrees.
import { createHash } from 'node:crypto';
import {
  StateMachine,
  approleByName,
  approleSecretIds,
  approleTokenCreator,
  encodeCommand,
  liveSecretIdCount,
  secretIdByHash,
  tokenStatusAt,
  type Command,
  type CommandResult,
} from '../src/index.js';
import { TEST_INTEGRITY } from './helpers.js';

const T0 = 1_700_000_000_000;
const ROLE_ID = 'rid-0001';
const sha = (s: string): Uint8Array => new Uint8Array(createHash('sha256').update(s).digest());

function replica(): { sm: StateMachine; run: (c: Command) => CommandResult; log: Command[] } {
  const sm = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
  const log: Command[] = [];
  let index = 0;
  const run = (c: Command): CommandResult => {
    log.push(c);
    const r = sm.apply({ term: 1, index: ++index, type: 'normal', data: encodeCommand(c) });
    if (!r) throw new Error('entry not applied');
    return r.result;
  };
  return { sm, run, log };
}

let seq = 0;
const rid = (): string => `req-${++seq}`;

const rolePut = (name: string, at = T0): Command => ({
  type: 'role.put', requestId: rid(), at, name, rules: [{ paths: ['app/**'], actions: ['secret.read'] }], rateLimit: null, actor: 'ops', maxTtlSecs: null,
});
const apPut = (over: Partial<Extract<Command, { type: 'approle.put' }>> = {}): Command => ({
  type: 'approle.put', requestId: rid(), at: T0, name: 'ci', role: 'reader', roleId: ROLE_ID, tokenTtlSecs: 60,
  secretIdTtlSecs: null, secretIdUses: null, boundCidrs: [], actor: 'ops', ...over,
});
const mint = (secret: string, at = T0, name = 'ci'): Command => ({ type: 'approle.secretId', requestId: rid(), at, name, secretIdHash: sha(secret), actor: 'ops' });
let tok = 0;
const login = (secret: string, at: number, updatedAt: number, roleId = ROLE_ID): Command => {
  tok++;
  return { type: 'approle.login', requestId: rid(), at, roleId, secretIdHash: sha(secret), tokenHash: sha(`tok-${tok}`), tokenName: `approle-ci-${tok}`, approleUpdatedAt: updatedAt };
};

function setup(over: Partial<Extract<Command, { type: 'approle.put' }>> = {}): ReturnType<typeof replica> {
  const r = replica();
  expect(r.run(rolePut('reader')).status).toBe('ok');
  expect(r.run(apPut(over)).status).toBe('ok');
  return r;
}

describe('approle.put', () => {
  test('needs an existing role; an update keeps the role id, createdAt and secret ids', () => {
    const { sm, run } = replica();
    expect(run(apPut()).status).toBe('role_not_found');
    run(rolePut('reader'));
    expect(run(apPut())).toEqual({ status: 'ok', createdAt: T0 });
    expect(run(mint('s1')).status).toBe('ok');
    expect(run(apPut({ at: T0 + 5, roleId: 'other', tokenTtlSecs: 120, boundCidrs: ['10.0.0.0/8'] }))).toEqual({ status: 'ok', createdAt: T0 });
    expect(approleByName(sm, 'ci')).toEqual({
      name: 'ci', role: 'reader', roleId: ROLE_ID, tokenTtlSecs: 120, secretIdTtlSecs: null, secretIdUses: null, boundCidrs: ['10.0.0.0/8'], createdAt: T0, updatedAt: T0 + 5,
    });
    expect(secretIdByHash(sm, sha('s1'))?.approle).toBe('ci');
  });

  test('a second approle cannot take a role id already in use', () => {
    const { run } = setup();
    expect(run(apPut({ name: 'other' })).status).toBe('hash_conflict');
    expect(run(apPut({ name: 'other', roleId: 'rid-0002' })).status).toBe('ok');
  });
});

describe('approle.login', () => {
  test('creates a normal token of the approle role that expires after tokenTtl; the use count is spent exactly', () => {
    const { sm, run } = setup({ secretIdUses: 2 });
    run(mint('s1'));
    expect(secretIdByHash(sm, sha('s1'))?.usesLeft).toBe(2);
    const l1 = login('s1', T0 + 10, T0);
    expect(run(l1)).toEqual({ status: 'ok', createdAt: T0 + 10, count: 0 });
    const t = sm.tokenByHash(sha('tok-1'));
    expect(t).toMatchObject({ name: 'approle-ci-1', role: 'reader', createdBy: approleTokenCreator('ci'), expiresAt: T0 + 10 + 60_000, revokedAt: null });
    expect(secretIdByHash(sm, sha('s1'))?.usesLeft).toBe(1);
    expect(run(login('s1', T0 + 20, T0)).status).toBe('ok');
    // Used up: the record is gone, a third login is refused and creates nothing.
    expect(secretIdByHash(sm, sha('s1'))).toBeUndefined();
    expect(run(login('s1', T0 + 30, T0)).status).toBe('not_found');
    expect(sm.tokenByHash(sha('tok-3'))).toBeUndefined();
  });

  test("a login's token is capped by the role's maxTtl, even one lowered after the approle was written", () => {
    const { sm, run } = setup({ tokenTtlSecs: 3_600 });
    run(mint('s1'));
    run({ type: 'role.put', requestId: rid(), at: T0 + 1, name: 'reader', rules: [], rateLimit: null, actor: 'ops', maxTtlSecs: 30 });
    expect(run(login('s1', T0 + 2, T0)).status).toBe('ok');
    expect(sm.tokenByHash(sha(`tok-${tok}`))?.expiresAt).toBe(T0 + 2 + 30_000);
  });

  test('N logins racing on one secret id with N uses: exactly N succeed, whatever their order', () => {
    const { sm, run } = setup({ secretIdUses: 3 });
    run(mint('s1'));
    const results = Array.from({ length: 8 }, () => run(login('s1', T0 + 100, T0)).status);
    expect(results.filter((s) => s === 'ok')).toHaveLength(3);
    expect(sm.listTokens().filter((t) => t.createdBy === approleTokenCreator('ci'))).toHaveLength(3);
  });

  test('an expired secret id is refused (and dropped); unlimited ones are never decremented', () => {
    const { sm, run } = setup({ secretIdTtlSecs: 10 });
    run(mint('s1'));
    expect(secretIdByHash(sm, sha('s1'))?.expiresAt).toBe(T0 + 10_000);
    expect(run(login('s1', T0 + 9_999, T0)).status).toBe('ok');
    expect(secretIdByHash(sm, sha('s1'))?.usesLeft).toBeNull();
    expect(run(login('s1', T0 + 10_000, T0)).status).toBe('token_inactive');
    expect(secretIdByHash(sm, sha('s1'))).toBeUndefined();
  });

  test('two secret ids are valid at once: minting a new one does not revoke the old', () => {
    const { sm, run } = setup();
    run(mint('old'));
    run(mint('new', T0 + 1));
    expect(liveSecretIdCount(sm, 'ci', T0 + 2)).toBe(2);
    expect(run(login('old', T0 + 2, T0)).status).toBe('ok');
    expect(run(login('new', T0 + 3, T0)).status).toBe('ok');
  });

  test('wrong role id, a secret id of another approle, a stale approle version or a deleted role are refused', () => {
    const { run } = setup();
    run(apPut({ name: 'b', roleId: 'rid-b' }));
    run(mint('sa'));
    run(mint('sb', T0, 'b'));
    expect(run(login('sa', T0 + 1, T0, 'nope')).status).toBe('not_found');
    expect(run(login('sb', T0 + 1, T0)).status).toBe('not_found');
    expect(run(login('unknown', T0 + 1, T0)).status).toBe('not_found');
    expect(run(login('sa', T0 + 1, T0 - 1)).status).toBe('stale');
    run({ type: 'role.delete', requestId: rid(), at: T0 + 2, name: 'reader', actor: 'ops' });
    expect(run(login('sa', T0 + 3, T0)).status).toBe('role_not_found');
  });

  test('expired approle tokens are pruned by later logins, so logins do not grow the tokens table', () => {
    const { sm, run } = setup();
    run(mint('s1'));
    for (let i = 0; i < 20; i++) run(login('s1', T0 + i * 61_000, T0));
    const mine = sm.listTokens().filter((t) => t.createdBy === approleTokenCreator('ci'));
    // Each token lives 60 s and logins are 61 s apart: only the newest is left.
    expect(mine).toHaveLength(1);
    expect(tokenStatusAt(mine[0] as NonNullable<(typeof mine)[0]>, T0 + 19 * 61_000)).toBe('active');
  });
});

describe('approle.delete and secret ids', () => {
  test('delete drops its secret ids and ends its sessions; other tokens are untouched', () => {
    const { sm, run } = setup();
    run({ type: 'token.create', requestId: rid(), at: T0, name: 'human', role: 'reader', tokenHash: sha('human'), expiresAt: null, actor: 'ops' });
    run(mint('s1'));
    run(login('s1', T0 + 1, T0));
    expect(run({ type: 'approle.delete', requestId: rid(), at: T0 + 2, name: 'ci', actor: 'ops' })).toEqual({ status: 'ok', count: 1 });
    expect(approleByName(sm, 'ci')).toBeUndefined();
    expect(sm.table(approleSecretIds).size).toBe(0);
    expect(sm.listTokens().map((t) => t.name)).toEqual(['human']);
    expect(run({ type: 'approle.delete', requestId: rid(), at: T0 + 3, name: 'ci', actor: 'ops' }).status).toBe('not_found');
    expect(run(mint('s2')).status).toBe('not_found');
  });

  test('a duplicate secret id hash is refused; minting prunes expired secret ids of the approle', () => {
    const { sm, run } = setup({ secretIdTtlSecs: 1 });
    run(mint('s1'));
    expect(run(mint('s1', T0 + 1)).status).toBe('hash_conflict');
    run(mint('s2', T0 + 5_000));
    expect(secretIdByHash(sm, sha('s1'))).toBeUndefined();
    expect(sm.table(approleSecretIds).size).toBe(1);
  });
});

test('replicas and a snapshot agree on the approle tables', () => {
  const a = setup({ secretIdUses: 5, secretIdTtlSecs: 100 });
  a.run(mint('s1'));
  a.run(mint('s2', T0 + 1));
  a.run(login('s1', T0 + 2, T0));
  a.run(login('s2', T0 + 200_000, T0));
  const b = replica();
  for (const c of a.log) b.run(c);
  expect(b.sm.stateDigest()).toBe(a.sm.stateDigest());
  const restored = StateMachine.fromRecords(a.sm.metaRecords(), { index: a.log.length, term: 1 }, { keepBlobs: true, integrity: TEST_INTEGRITY });
  expect(restored.stateDigest()).toBe(a.sm.stateDigest());
  expect(secretIdByHash(restored, sha('s1'))?.usesLeft).toBe(4);
  expect(approleByName(restored, 'ci')?.roleId).toBe(ROLE_ID);
});
