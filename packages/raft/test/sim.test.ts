// Deterministic simulation: many seeded runs per cluster size. A failing seed prints the one
// command that replays it exactly. SIM_SEEDS=n changes how many seeds run (the long soak is
// scripts/raft-soak.mjs, not this suite).
import { replayCommand, runSim, type SimResult } from './sim/run';

const onlySeed = process.env.SEED === undefined ? null : Number(process.env.SEED);
const onlyNodes = process.env.NODES === undefined ? null : Number(process.env.NODES);
const seedCount = Number(process.env.SIM_SEEDS ?? 1000);

function report(nodes: number, failures: SimResult[]): string {
  return failures
    .slice(0, 5)
    .map((f) => `seed ${f.seed} (${nodes} nodes) ${f.kind}: ${(f.error ?? '').split('\n')[0]}\n  replay: ${replayCommand(f.seed, nodes)}`)
    .join('\n');
}

describe('sim', () => {
  for (const nodes of [3, 5] as const) {
    if (onlyNodes !== null && onlyNodes !== nodes) continue;
    const seeds = onlySeed !== null ? [onlySeed] : Array.from({ length: seedCount }, (_, i) => i + 1);
    test(`sim: ${seeds.length} seeds, ${nodes} nodes: safety after every round, liveness after healing`, () => {
      const failures: SimResult[] = [];
      let acked = 0;
      let snapshots = 0;
      let confChanges = 0;
      for (const seed of seeds) {
        const r = runSim({ seed, nodes });
        if (!r.ok) failures.push(r);
        acked += r.stats.acked;
        snapshots += r.stats.snapshots;
        confChanges += r.stats.confChanges;
        if (onlySeed !== null && !r.ok) console.log(r.error, r.stats);
      }
      if (failures.length > 0) throw new Error(`${failures.length} failing seed(s):\n${report(nodes, failures)}`);
      // The runs must actually exercise the machinery, or passing means nothing.
      if (onlySeed === null) {
        expect(acked).toBeGreaterThan(seeds.length * 20);
        expect(snapshots).toBeGreaterThan(seeds.length);
        expect(confChanges).toBeGreaterThan(seeds.length / 2);
      }
    });
  }

  test('sim: catches a deliberately broken vote rule (up-to-date log check skipped)', () => {
    const failures: SimResult[] = [];
    for (let seed = 1; seed <= 40; seed++) {
      const r = runSim({ seed, nodes: 3, config: { testingKnobs: { skipVoteLogCheck: true } } });
      if (!r.ok) failures.push(r);
    }
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.every((f) => f.kind === 'safety')).toBe(true);
  });
});
