// The deterministic command stream of the crash test, shared by the child process (which applies
// it to LevelDB until it is SIGKILLed) and the parent (which rebuilds a reference replica).
// Command i depends only on i and on the state after entries 1..i-1, so both sides agree.
import { prng as rng } from '../../cluster-tests/src/prng.js';
import { encodeCommand, type Command, type LogEntry, type StateMachine } from '../src/index.js';

const T0 = 1_700_000_000_000;

/** Whether entry `i` ends an apply batch (batch boundaries are a function of the index alone). */
export function endsBatch(i: number): boolean {
  return rng(i * 7919)() < 0.15;
}

/** The command at index `i`, given the state after 1..i-1. */
export function commandAt(i: number, sm: StateMachine): Command {
  const r = rng(i);
  const name = `svc/${Math.floor(r() * 20)}`;
  const at = T0 + i * 1000;
  const requestId = r() < 0.03 && i > 10 ? `c${i - 1 - Math.floor(r() * 5)}` : `c${i}`; // some retries
  const x = r();
  const latest = sm.latestVersion(name);
  if (x < 0.55) {
    const n = 16 + Math.floor(r() * 2000);
    const ct = new Uint8Array(n);
    for (let k = 0; k < n; k += 97) ct[k] = (i + k) & 0xff;
    return {
      type: 'secret.put',
      requestId,
      at,
      name,
      version: latest + 1,
      cas: r() < 0.1 ? latest : null,
      sealed: { formatVersion: 1, alg: 'xchacha20poly1305', nonce: new Uint8Array(24).fill(i & 0xff), ciphertext: ct, wrappedDek: new Uint8Array(48).fill((i >> 3) & 0xff), kmsKeyId: 'k1' },
      format: 'raw',
      description: null,
      rotation: null,
      actor: 'crash',
    };
  }
  if (x < 0.65) {
    const t = (['secret.delete', 'secret.undelete', 'secret.destroy'] as const)[Math.floor(r() * 3)] as 'secret.delete';
    return { type: t, requestId, at, name, versions: latest > 0 ? [1 + Math.floor(r() * latest)] : [], actor: 'crash' };
  }
  if (x < 0.7) {
    return { type: 'secret.metadata', requestId, at, name, maxVersions: 1 + Math.floor(r() * 6), casRequired: null, customMetadata: null, description: `d${i}`, rotation: null, deleteVersionAfterSecs: null, actor: 'crash' };
  }
  if (x < 0.73) return { type: 'secret.destroyAll', requestId, at, name, actor: 'crash' };
  if (x < 0.8) {
    return { type: 'token.create', requestId, at, name: `tok${Math.floor(r() * 5)}`, role: 'admin', tokenHash: new Uint8Array(32).fill(i & 0xff).map((b, k) => (b + k * i) & 0xff), expiresAt: at + 50_000, actor: 'crash' };
  }
  if (x < 0.83) return { type: 'token.revoke', requestId, at, name: `tok${Math.floor(r() * 5)}`, actor: 'crash' };
  if (x < 0.9) return { type: 'auth.failure', requestId, at, ip: `10.0.0.${Math.floor(r() * 8)}`, retainMs: 30_000 };
  if (x < 0.96 && latest > 0) {
    return { type: 'kms.rewrap', requestId, at, name, version: latest, wrappedDek: new Uint8Array(48).fill(7), kmsKeyId: 'k2', expectedKmsKeyId: 'k1', marker: 'm1' };
  }
  return { type: 'noop', requestId, at };
}

/** Entry at index `i` (term 1). */
export function entryAt(i: number, sm: StateMachine): LogEntry {
  return { index: i, term: 1, type: 'normal', data: encodeCommand(commandAt(i, sm)) };
}
