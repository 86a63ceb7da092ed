// NodeSeal over a real state machine: init answers the shares only when its seal.init is the one
// applied; a loser gets already_initialized; the manager follows the replicated config (and a
// different config, e.g. from a restore, seals an unsealed node); unseal by shares; seal.
import { StateMachine, encodeCommand, type Command, type CommandResult } from '@coffer/state';
import { SealError } from '../src/seal/errors.js';
import { NodeSeal } from '../src/seal/node-seal.js';
import { SealManager, type SealTarget } from '../src/seal/seal.js';

function setup(): { seal: NodeSeal; sm: StateMachine; run: (c: Command) => CommandResult; target: SealTarget & { held: Uint8Array | undefined }; changes: boolean[] } {
  const sm = new StateMachine({});
  let index = 0;
  const run = (c: Command): CommandResult => {
    const r = sm.apply({ term: 1, index: ++index, type: 'normal', data: encodeCommand(c) });
    if (!r) throw new Error('not applied');
    return r.result;
  };
  const target: SealTarget & { held: Uint8Array | undefined } = {
    held: undefined,
    unseal(key) {
      this.held = Uint8Array.from(key);
      key.fill(0);
    },
    seal() {
      this.held?.fill(0);
      this.held = undefined;
    },
  };
  const changes: boolean[] = [];
  const seal = new NodeSeal({ manager: new SealManager({ target }), state: () => sm, propose: async (c) => run(c), now: () => 1_700_000_000_000, onChange: (s) => changes.push(s) });
  return { seal, sm, run, target, changes };
}

test('init: shares come back only from the winning init; the config reaches the manager', async () => {
  const { seal } = setup();
  expect(seal.status()).toMatchObject({ initialized: false, sealed: true });
  const { keys } = await seal.init(5, 3);
  expect(keys).toHaveLength(5);
  expect(seal.status()).toMatchObject({ initialized: true, sealed: true, t: 3, n: 5, progress: 0 });
  expect(seal.keyId()).toMatch(/^local:[0-9a-f]{16}$/);
  await expect(seal.init(5, 3)).rejects.toMatchObject({ code: 'NODE_SEAL_ALREADY_INITIALIZED' });
});

test('an init that loses the race in the log (another seal.init applied first) answers already_initialized', async () => {
  const { seal, sm, run } = setup();
  // Another node's init is committed between this node's check and its proposal's apply.
  const other = setup();
  const theirs = await other.seal.init(3, 2);
  expect(theirs.keys).toHaveLength(3);
  const racing = new NodeSeal({
    manager: new SealManager({ target: { unseal: (k) => void k.fill(0), seal: () => undefined } }),
    state: () => sm,
    propose: async (c) => {
      run({ type: 'seal.init', requestId: 'first', at: 1, shares: 3, threshold: 2, keyCheck: new Uint8Array(32).fill(7), keyId: 'local:00000000000000aa' });
      return run(c);
    },
    now: () => 2,
  });
  const err = await racing.init(5, 3).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(SealError);
  expect(err).toMatchObject({ code: 'NODE_SEAL_ALREADY_INITIALIZED' });
  expect(racing.status()).toMatchObject({ initialized: true, t: 2, n: 3 });
  expect(seal.keyId()).toBe('local:00000000000000aa');
});

test('unseal by threshold shares, seal drops the key, and a different replicated config seals the node', async () => {
  const { sm, run, target } = setup();
  let state: StateMachine = sm;
  const changes: boolean[] = [];
  const seal = new NodeSeal({ manager: new SealManager({ target }), state: () => state, propose: async (c) => run(c), now: () => 1, onChange: (s) => changes.push(s) });
  const { keys } = await seal.init(3, 2);
  expect((await seal.unseal(keys[2])).sealed).toBe(true);
  expect((await seal.unseal(keys[0])).sealed).toBe(false);
  expect(target.held).toHaveLength(32);
  expect(changes).toEqual([false]);
  expect((await seal.seal()).sealed).toBe(true);
  expect(target.held).toBeUndefined();
  expect(changes).toEqual([false, true]);
  await seal.unseal(keys[1]);
  expect((await seal.unseal(keys[2])).sealed).toBe(false);
  await seal.sync(); // same config: nothing changes
  expect(seal.isSealed()).toBe(false);
  // A restore replaces the state with another cluster's seal config: the key held is not that
  // cluster's, so the node seals.
  const replaced = setup();
  replaced.run({ type: 'seal.init', requestId: 'x', at: 1, shares: 3, threshold: 2, keyCheck: new Uint8Array(32).fill(9), keyId: 'local:00000000000000bb' });
  state = replaced.sm;
  await seal.sync();
  expect(seal.status()).toMatchObject({ sealed: true, initialized: true });
  expect(target.held).toBeUndefined();
  expect(seal.keyId()).toBe('local:00000000000000bb');
});

test('unseal before any config is refused as not initialized', async () => {
  const { seal } = setup();
  await expect(seal.unseal('x')).rejects.toMatchObject({ code: 'NODE_SEAL_NOT_INITIALIZED' });
});
