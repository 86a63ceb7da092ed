// The identities family: identities, memberships, access requests and sessions. What the server
// relies on: a login nonce opens at most one session cluster-wide (decided at apply), a disabled
// or deleted identity opens none, an approval creates the membership in the same entry, the
// requester never decides its own request, and sweeping is a pure function of the entries.
import {
  StateMachine,
  accessRequests,
  encodeCommand,
  identities,
  memberships,
  sessionByHash,
  sessions,
  usedNonces,
  type Command,
  type CommandResult,
} from '../src/index.js';
import { SESSION_SWEEP_MS } from '../src/commands/identities.js';
import { TEST_INTEGRITY, bytes } from './helpers.js';

const T0 = 1_700_000_000_000;
let seq = 0;
const rid = (): string => `q-${++seq}`;

function replica(): { sm: StateMachine; run: (c: Command) => CommandResult } {
  const sm = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
  let index = 0;
  const run = (c: Command): CommandResult => {
    const data = encodeCommand(c); // a refused command never reaches the log
    const r = sm.apply({ term: 1, index: ++index, type: 'normal', data });
    if (!r) throw new Error('entry not applied');
    return r.result;
  };
  return { sm, run };
}

const putIdentity = (name: string, at = T0): Command => ({ type: 'identity.put', requestId: rid(), at, name, identityType: 'agent', publicKey: bytes(32, name.length), fingerprint: `fp-${name}`, actor: 'ops' });
const nonce = (n: number): string => n.toString(16).padStart(32, '0');
const login = (identity: string, n: number, at = T0 + 1000, hashSeed = n): Command => ({
  type: 'session.create', requestId: rid(), at, tokenHash: bytes(32, hashSeed), identity, expiresAt: at + 3_600_000, nonceId: nonce(n), nonceExpiresAt: T0 + 60_000,
});

describe('identities', () => {
  test('identity.put registers once; disable and delete refuse unknown names', () => {
    const { sm, run } = replica();
    expect(run(putIdentity('agent-1'))).toEqual({ status: 'ok' });
    expect(run(putIdentity('agent-1'))).toEqual({ status: 'already_exists' });
    expect(sm.table(identities).get('agent-1')).toMatchObject({ name: 'agent-1', identityType: 'agent', fingerprint: 'fp-agent-1', createdBy: 'ops', disabledAt: null });
    expect(run({ type: 'identity.disable', requestId: rid(), at: T0, name: 'nobody', actor: 'ops' })).toEqual({ status: 'not_found' });
    expect(run({ type: 'identity.delete', requestId: rid(), at: T0, name: 'nobody', actor: 'ops' })).toEqual({ status: 'not_found' });
  });

  test('a nonce opens one session, cluster-wide: the second use is refused at apply', () => {
    const { sm, run } = replica();
    run(putIdentity('agent-1'));
    expect(run(login('agent-1', 1))).toEqual({ status: 'ok' });
    expect(sessionByHash(sm, bytes(32, 1))).toMatchObject({ identity: 'agent-1' });
    // Same nonce, a different token hash (a replayed login on another node): refused.
    expect(run(login('agent-1', 1, T0 + 2000, 99))).toEqual({ status: 'nonce_used' });
    expect(sessionByHash(sm, bytes(32, 99))).toBeUndefined();
    // A command proposed after the nonce expired is refused too.
    expect(run(login('agent-1', 2, T0 + 60_001))).toEqual({ status: 'nonce_used' });
  });

  test('a disabled or missing identity opens no session; disable and delete end its sessions', () => {
    const { sm, run } = replica();
    expect(run(login('ghost', 1))).toEqual({ status: 'identity_inactive' });
    run(putIdentity('a'));
    run(putIdentity('b'));
    run(login('a', 2));
    run(login('b', 3));
    expect(run({ type: 'identity.disable', requestId: rid(), at: T0 + 5000, name: 'a', actor: 'ops' })).toEqual({ status: 'ok', count: 1 });
    expect(sessionByHash(sm, bytes(32, 2))).toBeUndefined();
    expect(sessionByHash(sm, bytes(32, 3))).toBeDefined();
    expect(sm.table(identities).get('a')?.disabledAt).toBe(T0 + 5000);
    expect(run(login('a', 4))).toEqual({ status: 'identity_inactive' });
    // The nonce of a refused login was not spent.
    expect(sm.table(usedNonces).has(nonce(4))).toBe(false);
    run({ type: 'membership.put', requestId: rid(), at: T0, identity: 'b', org: 'acme', project: null, role: 'admin', actor: 'ops' });
    expect(run({ type: 'identity.delete', requestId: rid(), at: T0 + 6000, name: 'b', actor: 'ops' })).toEqual({ status: 'ok', count: 1 });
    expect(sm.table(identities).has('b')).toBe(false);
    expect(sm.table(memberships).has('b')).toBe(false);
    expect(sessionByHash(sm, bytes(32, 3))).toBeUndefined();
  });

  test('memberships: one per (org, project), replaced on a second grant, removed one by one', () => {
    const { sm, run } = replica();
    const grant = (org: string, project: string | null, role: 'admin' | 'member' | 'readonly'): CommandResult =>
      run({ type: 'membership.put', requestId: rid(), at: T0, identity: 'a', org, project, role, actor: 'ops' });
    expect(grant('acme', 'web', 'member')).toEqual({ status: 'not_found' });
    run(putIdentity('a'));
    expect(grant('acme', 'web', 'member')).toEqual({ status: 'ok', count: 1 });
    expect(grant('acme', 'web', 'readonly')).toEqual({ status: 'ok', count: 1 });
    expect(grant('acme', 'api', 'member')).toEqual({ status: 'ok', count: 2 });
    expect(sm.table(memberships).get('a')?.entries.map((e) => `${e.org}/${e.project}:${e.role}`)).toEqual(['acme/api:member', 'acme/web:readonly']);
    expect(() => grant('acme', 'web', 'admin')).toThrow(/project must be null/);
    expect(() => grant('acme', null, 'member')).toThrow(/project/);
    const del = (project: string | null): CommandResult => run({ type: 'membership.delete', requestId: rid(), at: T0, identity: 'a', org: 'acme', project, actor: 'ops' });
    expect(del(null)).toEqual({ status: 'not_found' });
    expect(del('web')).toEqual({ status: 'ok', count: 1 });
    expect(del('api')).toEqual({ status: 'ok', count: 0 });
    expect(sm.table(memberships).has('a')).toBe(false);
  });

  test('access requests: approval creates the membership in the same entry; self-approval and second decisions are refused', () => {
    const { sm, run } = replica();
    run(putIdentity('agent-1'));
    const file = (id: string, role: 'member' | 'readonly' | 'admin' = 'member'): CommandResult =>
      run({ type: 'access.request', requestId: rid(), at: T0, id, requester: 'identity:agent-1', identity: 'agent-1', org: 'acme', project: 'web', role, justification: 'deploys' });
    expect(file('r1')).toEqual({ status: 'ok' });
    expect(file('r1')).toEqual({ status: 'already_exists' });
    const decide = (id: string, decision: 'approved' | 'denied', actor: string): CommandResult => run({ type: 'access.decide', requestId: rid(), at: T0 + 10, id, decision, actor });
    expect(decide('r1', 'approved', 'identity:agent-1')).toEqual({ status: 'self_approval' });
    expect(sm.table(memberships).has('agent-1')).toBe(false);
    expect(decide('r1', 'approved', 'alice-token')).toEqual({ status: 'ok' });
    expect(sm.table(memberships).get('agent-1')?.entries).toEqual([{ org: 'acme', project: 'web', role: 'member', grantedBy: 'alice-token', at: T0 + 10 }]);
    expect(sm.table(accessRequests).get('r1')).toMatchObject({ status: 'approved', decidedBy: 'alice-token', decidedAt: T0 + 10 });
    expect(decide('r1', 'denied', 'alice-token')).toEqual({ status: 'already_decided' });
    expect(decide('nope', 'denied', 'alice-token')).toEqual({ status: 'not_found' });
    // An admin request is org-wide when approved.
    file('r2', 'admin');
    decide('r2', 'approved', 'alice-token');
    expect(sm.table(memberships).get('agent-1')?.entries.find((e) => e.role === 'admin')).toMatchObject({ org: 'acme', project: null });
    // A denial creates nothing.
    run({ type: 'identity.put', requestId: rid(), at: T0, name: 'agent-2', identityType: 'agent', publicKey: bytes(32, 7), fingerprint: 'f', actor: 'ops' });
    run({ type: 'access.request', requestId: rid(), at: T0, id: 'r3', requester: 'identity:agent-2', identity: 'agent-2', org: 'acme', project: 'web', role: 'member', justification: '' });
    expect(decide('r3', 'denied', 'alice-token')).toEqual({ status: 'ok' });
    expect(sm.table(memberships).has('agent-2')).toBe(false);
  });

  test('deleting an identity closes its pending requests: a later identity of the same name gets nothing from them', () => {
    const { sm, run } = replica();
    run(putIdentity('agent-1'));
    run({ type: 'access.request', requestId: rid(), at: T0, id: 'r1', requester: 'identity:agent-1', identity: 'agent-1', org: 'acme', project: 'web', role: 'member', justification: '' });
    run({ type: 'identity.delete', requestId: rid(), at: T0 + 5, name: 'agent-1', actor: 'ops' });
    expect(sm.table(accessRequests).get('r1')).toMatchObject({ status: 'denied', decidedBy: 'ops', decidedAt: T0 + 5 });
    run(putIdentity('agent-1'));
    expect(run({ type: 'access.decide', requestId: rid(), at: T0 + 6, id: 'r1', decision: 'approved', actor: 'alice' })).toEqual({ status: 'already_decided' });
    expect(sm.table(memberships).has('agent-1')).toBe(false);
  });

  test('sweeping is decided by the entries alone: replicas and a restored snapshot agree', () => {
    const a = replica();
    const b = replica();
    const both = (c: Command): CommandResult => {
      const r = a.run(c);
      expect(b.run(c)).toEqual(r);
      return r;
    };
    both(putIdentity('a'));
    for (let i = 1; i <= 5; i++) both(login('a', i, T0 + i * 1000));
    expect(a.sm.table(sessions).size).toBe(5);
    // Far later: the sessions expired and the nonces are past their retention; the next login sweeps them.
    const later = T0 + 3 * 3_600_000;
    const late = login('a', 100, later);
    if (late.type === 'session.create') late.nonceExpiresAt = later + 60_000;
    both(late);
    expect(a.sm.table(sessions).size).toBe(1);
    expect([...a.sm.table(usedNonces).keys()].filter((k) => k !== '.sweep')).toEqual([nonce(100)]);
    expect(a.sm.stateDigest()).toBe(b.sm.stateDigest());
    const restored = StateMachine.fromRecords(a.sm.metaRecords(), { index: a.sm.applied, term: 1 }, { keepBlobs: true, integrity: TEST_INTEGRITY });
    expect(restored.stateDigest()).toBe(a.sm.stateDigest());
    expect(sessionByHash(restored, bytes(32, 100))).toMatchObject({ identity: 'a' });
    expect(SESSION_SWEEP_MS).toBeGreaterThan(0);
  });
});
