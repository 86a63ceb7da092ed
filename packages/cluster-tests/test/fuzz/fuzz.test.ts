// CI run of every fuzz target (the long run is `pnpm soak:security`): first every corpus entry
// (inputs that once found a bug or that cover a distinct path), then a short fast-check run of
// random and mutated-valid inputs. Any crash, hang, slow input, unbounded allocation or broken
// round trip fails, with the input in hex and how to keep it as a corpus entry.
import * as path from 'node:path';
import { fuzzTarget, readCorpus, replay } from './engine.js';
import { FUZZ_TARGETS } from './registry.js';

const ROOT = path.resolve(__dirname, '../../../..');
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 2000);
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261203);

jest.setTimeout(120_000);

describe.each(FUZZ_TARGETS.map((t) => [t.name, t] as const))('%s', (_name, t) => {
  test('corpus replays cleanly', async () => {
    const entries = readCorpus(ROOT, t);
    const failed: string[] = [];
    if (entries.length > 0) {
      await t.setup?.();
      try {
        for (const e of entries) {
          const why = await replay(t, e.input);
          if (why !== undefined) failed.push(`${path.relative(ROOT, e.file)}: ${why}`);
        }
      } finally {
        await t.teardown?.();
      }
    }
    expect(failed).toEqual([]);
  });

  const runs = Math.min(RUNS, t.ciRuns ?? RUNS);
  test(`${runs} random and mutated inputs: typed refusals only, bounded time and memory`, async () => {
    const report = await fuzzTarget(t, { runs, seed: SEED });
    const shown = report.failures.map((f) => `${f.reason}\n  input (${f.input.length} bytes): ${Buffer.from(f.input).toString('hex').slice(0, 400)}\n  keep it: node scripts/soak-security.mjs --target ${t.name} --seed ${SEED} --runs ${runs}`);
    expect(shown).toEqual([]);
    expect(report.inputs).toBe(runs);
    // The run reached more than one outcome (so inputs were not all refused at the first byte).
    expect(report.outcomes.size).toBeGreaterThan(1);
  });
});
