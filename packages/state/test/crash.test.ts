// Crash safety with a real process: a child applies a deterministic command stream to LevelDB and
// is SIGKILLed at random moments, many times. After each kill the store is reopened and its state
// digest must equal a reference replica's at the persisted applied index: nothing applied twice,
// nothing skipped, no torn batch.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { StateMachine, openNodeStore } from '../src/index.js';
import { entryAt } from './crash-stream.js';
import { TEST_INTEGRITY, tempDir } from './helpers.js';

const CHILD = path.join(__dirname, 'fixtures', 'crash-child.cjs');
const KILLS = Number(process.env['COFFER_CRASH_KILLS'] ?? 10);

function startChild(dir: string): Promise<{ child: ChildProcess; startApplied: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ready (\d+)/.exec(out);
      if (m) resolve({ child, startApplied: Number(m[1]) });
    });
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      if (!/ready/.test(out)) reject(new Error(`child exited early (${code ?? signal}): ${err}`));
    });
  });
}

function killAndWait(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

jest.setTimeout(120_000);

test(`SIGKILL at random moments (${KILLS}×): reopened state equals the reference at the persisted applied index`, async () => {
  const tmp = tempDir('coffer-crash-');
  let child: ChildProcess | null = null;
  const ref = new StateMachine({ keepBlobs: true, integrity: TEST_INTEGRITY });
  let lastApplied = 0;
  // A fixed seed keeps the kill schedule reproducible; the interleaving with the disk is not.
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  try {
    for (let k = 0; k < KILLS; k++) {
      const started = await startChild(tmp.dir);
      child = started.child;
      expect(started.startApplied).toBe(lastApplied);
      await new Promise((r) => setTimeout(r, 50 + Math.floor(rand() * 400)));
      await killAndWait(child);
      child = null;

      const store = await openNodeStore(tmp.dir, TEST_INTEGRITY);
      try {
        const applied = store.applied;
        expect(applied).toBeGreaterThanOrEqual(lastApplied);
        // The Raft log was appended (synced) before apply: it covers every applied entry.
        expect(store.log.lastIndex).toBeGreaterThanOrEqual(applied);
        for (let i = ref.applied + 1; i <= applied; i++) ref.apply(entryAt(i, ref));
        expect(store.state.stateDigest()).toBe(ref.stateDigest());
        for (const name of ref.listNames('svc/')) {
          const v = ref.latestVersion(name);
          expect(await store.readSealed(name, v)).toEqual(ref.readSealedSync(name, v));
        }
        if (process.env["COFFER_CRASH_DEBUG"]) process.stderr.write(`kill ${k}: applied ${applied}, log ${store.log.firstIndex}..${store.log.lastIndex}\n`);
        lastApplied = applied;
      } finally {
        await store.close();
      }
    }
    expect(lastApplied).toBeGreaterThan(0);
  } finally {
    if (child) await killAndWait(child);
    tmp.cleanup();
  }
});
