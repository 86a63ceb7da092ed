// Sessions as principals: the effective role a membership set compiles to, the per-record cache,
// and a session refused once it expired or its identity was disabled or deleted.
import { hashToken } from '@coffer/crypto';
import { StateMachine, encodeCommand, type Command } from '@coffer/state';
import { isAllowed } from '../../src/auth/rbac';
import { SessionAuth, compileMemberships, identityPrincipal, isOrgAdmin } from '../../src/auth/sessions';

const T0 = 1_700_000_000_000;

function replica(): (c: Command) => StateMachine {
  const sm = new StateMachine({ keepBlobs: true });
  let index = 0;
  let seq = 0;
  return (c) => {
    const r = sm.apply({ term: 1, index: ++index, type: 'normal', data: encodeCommand({ ...c, requestId: `r${++seq}` }) });
    if (r === null) throw new Error('not applied');
    return sm;
  };
}

describe('effective roles', () => {
  test('admin: every secret action on the org; member: read/write/list/delete in the project; readonly: read/list', () => {
    const admin = compileMemberships([{ org: 'acme', project: null, role: 'admin' }]);
    expect(isAllowed(admin, 'secret.destroy', 'org/acme/project/x/y')).toBe(true);
    expect(isAllowed(admin, 'secret.rotate', 'org/acme/z')).toBe(true);
    expect(isAllowed(admin, 'secret.read', 'org/acmex/project/x/y')).toBe(false);
    expect(isAllowed(admin, 'access.approve')).toBe(false); // decided per org by the pipeline, not here
    expect(isAllowed(admin, 'identity.manage')).toBe(false);
    const member = compileMemberships([{ org: 'acme', project: 'web', role: 'member' }]);
    for (const a of ['secret.read', 'secret.write', 'secret.list', 'secret.delete'] as const) expect(isAllowed(member, a, 'org/acme/project/web/db')).toBe(true);
    expect(isAllowed(member, 'secret.destroy', 'org/acme/project/web/db')).toBe(false);
    expect(isAllowed(member, 'secret.read', 'org/acme/project/api/db')).toBe(false);
    expect(isAllowed(member, 'secret.read', 'org/acme/project/web')).toBe(false);
    const ro = compileMemberships([{ org: 'acme', project: 'web', role: 'readonly' }]);
    expect(isAllowed(ro, 'secret.read', 'org/acme/project/web/db')).toBe(true);
    expect(isAllowed(ro, 'secret.write', 'org/acme/project/web/db')).toBe(false);
    expect(compileMemberships([]).grants.size).toBe(0);
  });

  test('a session authenticates until it expires or its identity is disabled; the role follows the memberships record', () => {
    const run = replica();
    run({ type: 'identity.put', requestId: '', at: T0, name: 'a', identityType: 'agent', publicKey: new Uint8Array(32).fill(1), fingerprint: 'f', actor: 'ops' });
    run({ type: 'membership.put', requestId: '', at: T0, identity: 'a', org: 'acme', project: 'web', role: 'readonly', actor: 'ops' });
    const sm = run({ type: 'session.create', requestId: '', at: T0, tokenHash: hashToken('raw-session'), identity: 'a', expiresAt: T0 + 1000, nonceId: '0'.repeat(32), nonceExpiresAt: T0 + 60_000 });
    const auth = new SessionAuth();
    const p = auth.authenticate(sm, 'raw-session', T0 + 1);
    expect(p?.token.name).toBe(identityPrincipal('a'));
    expect(p && isAllowed(p.role, 'secret.write', 'org/acme/project/web/x')).toBe(false);
    expect(auth.authenticate(sm, 'raw-session', T0 + 1)?.role).toBe(p?.role); // cached
    expect(auth.authenticate(sm, 'other', T0 + 1)).toBeUndefined();
    expect(auth.authenticate(sm, 'raw-session', T0 + 1000)).toBeUndefined(); // expired
    run({ type: 'membership.put', requestId: '', at: T0, identity: 'a', org: 'acme', project: 'web', role: 'member', actor: 'ops' });
    const q = auth.authenticate(sm, 'raw-session', T0 + 2);
    expect(q && isAllowed(q.role, 'secret.write', 'org/acme/project/web/x')).toBe(true);
    expect(isOrgAdmin(sm, 'a', 'acme')).toBe(false);
    run({ type: 'membership.put', requestId: '', at: T0, identity: 'a', org: 'acme', project: null, role: 'admin', actor: 'ops' });
    expect(isOrgAdmin(sm, 'a', 'acme')).toBe(true);
    expect(isOrgAdmin(sm, 'a', 'other')).toBe(false);
    run({ type: 'identity.disable', requestId: '', at: T0, name: 'a', actor: 'ops' });
    expect(auth.authenticate(sm, 'raw-session', T0 + 3)).toBeUndefined();
    expect(isOrgAdmin(sm, 'a', 'acme')).toBe(false);
  });
});
