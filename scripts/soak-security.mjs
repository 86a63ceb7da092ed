#!/usr/bin/env node
// pnpm soak:security — the long fuzz run of every decoder that reads outside bytes.
//
//   node scripts/soak-security.mjs [--runs N] [--target NAME]... [--seed S] [--max-seconds T] [--no-corpus] [--list]
//
// Runs N inputs (default 1,000,000) through each target of
// packages/cluster-tests/test/fuzz/registry.ts, one target after another, and prints per target:
// inputs, seconds, failures; then one summary line. Exits 1 on any failure. Failing inputs are
// saved as corpus entries (packages/<pkg>/test/fuzz/corpus/<target>/<hash>.bin), and so is the
// smallest input of each outcome class not yet represented (at most 12 per target, ≤ 4 KiB each);
// the jest run (fuzz.test.ts) replays them first. --no-corpus saves nothing. --max-seconds caps the
// time per target for slow targets (file-backed ones): the table then shows the inputs that ran.
//
// The targets are the TypeScript test sources that jest runs, not dist/: this script compiles them
// on load with the repository's TypeScript (transpile only; `tsc -b` does the type checking), with
// the same module mapping as jest.config.js (`@coffer/<pkg>` → packages/<pkg>/src/index.ts,
// `./x.js` → `./x.ts`). So the soak and CI exercise exactly the same code, built or not.
// Run it niced on shared machines: `nice -n 10 pnpm soak:security`.
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchOptions } from './bench/lib/options.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

function parseOptions() {
  const v = benchOptions({
    usage: 'pnpm soak:security [--runs N] [--target NAME]... [--seed S] [--max-seconds T] [--no-corpus] [--list]',
    options: {
      runs: { type: 'integer', default: 1_000_000, help: 'inputs per target' },
      target: { type: 'string', multiple: true, help: 'a target to run (repeatable; default: every target)' },
      seed: { type: 'integer', min: Number.MIN_SAFE_INTEGER, default: Date.now() % 2_147_483_647, help: 'master seed (the default comes from the clock)' },
      'max-seconds': { type: 'number', help: 'cap on the time per target' },
      'no-corpus': { type: 'boolean', help: 'save no corpus entries' },
      list: { type: 'boolean', help: 'list the targets and exit' },
    },
  });
  return { runs: v.runs, targets: v.target, seed: v.seed, corpus: !v['no-corpus'], list: v.list, maxSeconds: v['max-seconds'] };
}

/** A CommonJS loader for the TypeScript sources, mirroring jest.config.js's mapping. */
function installTypeScriptLoader() {
  const ts = require('typescript');
  const Module = require('node:module');
  const resolve = Module._resolveFilename;
  Module._resolveFilename = function (request, parent, ...rest) {
    const pkg = /^@coffer\/([a-z-]+)$/.exec(request);
    if (pkg !== null) return path.join(ROOT, 'packages', pkg[1], 'src', 'index.ts');
    if (parent?.filename?.endsWith('.ts') && (request.startsWith('./') || request.startsWith('../')) && request.endsWith('.js')) {
      const candidate = path.resolve(path.dirname(parent.filename), `${request.slice(0, -3)}.ts`);
      if (fs.existsSync(candidate)) return candidate;
    }
    return resolve.call(this, request, parent, ...rest);
  };
  const options = { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false, inlineSourceMap: true };
  require.extensions['.ts'] = (module, filename) => {
    const out = ts.transpileModule(fs.readFileSync(filename, 'utf8'), { compilerOptions: options, fileName: filename });
    module._compile(out.outputText, filename);
  };
}

async function main() {
  const opts = parseOptions();
  installTypeScriptLoader();
  const engine = require(path.join(ROOT, 'packages/cluster-tests/test/fuzz/engine.ts'));
  const { FUZZ_TARGETS, targetByName } = require(path.join(ROOT, 'packages/cluster-tests/test/fuzz/registry.ts'));
  if (opts.list) {
    for (const t of FUZZ_TARGETS) console.log(`${t.name.padEnd(22)} ${t.what}`);
    return 0;
  }
  const targets = opts.targets.length === 0 ? FUZZ_TARGETS : opts.targets.map(targetByName);
  console.log(`soak:security: ${targets.length} targets × ${opts.runs.toLocaleString('en-US')} inputs, seed ${opts.seed}, node ${process.version}`);
  console.log(`${'target'.padEnd(22)} ${'inputs'.padStart(11)} ${'seconds'.padStart(9)} ${'inputs/s'.padStart(9)} ${'failures'.padStart(8)}  corpus`);
  let totalInputs = 0;
  let totalFailures = 0;
  let totalSeconds = 0;
  const failed = [];
  for (const t of targets) {
    let lastShown = Date.now();
    const report = await engine.fuzzTarget(t, {
      runs: opts.runs,
      seed: opts.seed,
      ...(opts.maxSeconds === undefined ? {} : { maxSeconds: opts.maxSeconds }),
      progress: (done) => {
        if (process.stderr.isTTY && Date.now() - lastShown > 2000) {
          lastShown = Date.now();
          process.stderr.write(`\r  ${t.name}: ${done.toLocaleString('en-US')} / ${opts.runs.toLocaleString('en-US')}   `);
        }
      },
    });
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
    const saved = [];
    if (opts.corpus) {
      // The smallest failing input of each kind of failure (a failure found again and again is
      // one bug, not many corpus entries).
      for (const f of smallestPerReason(engine, report.failures)) {
        const file = engine.saveCorpusEntry(ROOT, t, f.input);
        if (file !== undefined) saved.push(path.relative(ROOT, file));
      }
      // One smallest input per outcome class not yet in the corpus, kept small.
      const existing = engine.readCorpus(ROOT, t);
      let room = engine.MAX_OUTCOME_ENTRIES - existing.length;
      if (room > 0) {
        const known = new Set();
        await t.setup?.();
        try {
          for (const e of existing) known.add(await classOf(engine, t, e.input));
        } finally {
          await t.teardown?.();
        }
        const fresh = [...report.outcomes.entries()].filter(([k, input]) => !known.has(k) && input.length <= engine.MAX_CORPUS_ENTRY_BYTES).sort((a, b) => a[1].length - b[1].length);
        for (const [, input] of fresh) {
          if (room-- <= 0) break;
          const file = engine.saveCorpusEntry(ROOT, t, input);
          if (file !== undefined) saved.push(path.relative(ROOT, file));
        }
      }
    }
    totalInputs += report.inputs;
    totalFailures += report.failures.length;
    totalSeconds += report.seconds;
    const rate = Math.round(report.inputs / Math.max(report.seconds, 1e-9));
    console.log(`${t.name.padEnd(22)} ${report.inputs.toLocaleString('en-US').padStart(11)} ${report.seconds.toFixed(1).padStart(9)} ${rate.toLocaleString('en-US').padStart(9)} ${String(report.failures.length).padStart(8)}  ${saved.length === 0 ? '-' : `+${saved.length}`}`);
    for (const f of smallestPerReason(engine, report.failures)) {
      failed.push(t.name);
      const times = report.failures.filter((g) => engine.outcomeClass(g.reason) === engine.outcomeClass(f.reason)).length;
      console.log(`  FAIL ×${times} ${f.reason}`);
      console.log(`       smallest input (${f.input.length} bytes): ${Buffer.from(f.input).toString('hex').slice(0, 200)}${f.input.length > 100 ? '…' : ''}`);
    }
  }
  console.log(
    `soak:security summary: ${targets.length} targets, ${totalInputs.toLocaleString('en-US')} inputs in ${totalSeconds.toFixed(0)} s, ${totalFailures} failures${failed.length > 0 ? ` (${[...new Set(failed)].join(', ')})` : ''}, seed ${opts.seed}`,
  );
  return totalFailures === 0 ? 0 : 1;
}

/** One failure per kind (outcome class of its reason): the one with the smallest input. */
function smallestPerReason(engine, failures) {
  const by = new Map();
  for (const f of failures) {
    const k = engine.outcomeClass(f.reason);
    const prev = by.get(k);
    if (prev === undefined || f.input.length < prev.input.length) by.set(k, f);
  }
  return [...by.values()];
}

/** The outcome class of a corpus entry (so the soak does not save a second input for a known class). */
async function classOf(engine, t, input) {
  try {
    let out = t.run(input);
    if (t.async === true) out = await out;
    const label = (await t.check?.(input, out)) ?? 'ok';
    return engine.outcomeClass(label);
  } catch (err) {
    return engine.outcomeClass(t.refusal(err) ?? 'crash');
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
