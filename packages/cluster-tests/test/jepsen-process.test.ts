/**
 * Fault-injection runs on a loopback cluster of real node processes: every process fault type,
 * short. Each run checks linearizability of the whole history, that no acknowledged write is
 * missing, that all nodes converge, and availability during and after the faults.
 * Prints: runs, operations, faults injected, violations.
 */
import { runScenario, summaryLine, type ScenarioResult } from '../src/jepsen/run';
import { processNemesis, type ProcessFault } from '../src/jepsen/process-nemesis';

jest.setTimeout(240_000);

const results: ScenarioResult[] = [];

afterAll(() => {
  console.log(`jepsen (process faults): ${summaryLine(results)}`);
});

async function run(name: string, seed: number, durationMs: number, sequence: ProcessFault[]): Promise<ScenarioResult> {
  const r = await runScenario({ name, seed, durationMs, nemesis: processNemesis(undefined, { sequence }) });
  results.push(r);
  if (!r.passed) throw new Error(`${name} seed ${seed} failed (history ${r.historyFile}):\n${r.failures.join('\n')}`);
  return r;
}

describe('jepsen: process faults on a real three-node cluster', () => {
  test('leader and random SIGKILL, leader and follower SIGSTOP', async () => {
    const r = await run('kill-pause', 11, 24_000, ['kill-leader', 'pause-leader', 'kill-random', 'pause-follower']);
    expect(r.faults.map((f) => f.kind)).toEqual(['kill-leader', 'pause-leader', 'kill-random', 'pause-follower']);
    expect(r.stats.ok).toBeGreaterThan(100);
    expect(r.violations).toBe(0);
  });

  test('no majority (two nodes paused) fails fast with 503; all nodes killed and restarted', async () => {
    const r = await run('no-quorum-restart', 12, 22_000, ['pause-majority', 'kill-all']);
    expect(r.faults.map((f) => f.kind)).toEqual(['pause-majority', 'kill-all']);
    expect(r.faults[0]?.noQuorumStatuses?.every((s) => s === 503)).toBe(true);
    expect(r.violations).toBe(0);
  });

  test('a member removed and re-added under load; a wiped node rejoins by snapshot', async () => {
    const r = await run('membership', 13, 22_000, ['member-readd', 'wipe-rejoin']);
    expect(r.faults.map((f) => f.kind)).toEqual(['member-readd', 'wipe-rejoin']);
    expect(r.faults[1]?.detail).toContain('caught up by snapshot');
    expect(r.violations).toBe(0);
  });
});
