// Long simulator soak for @coffer/raft: `node scripts/raft-soak.mjs [--seeds 100000] [--nodes 3,5] [--from 1]`.
// Transpiles the package's simulator (packages/raft/test/sim) against the BUILT package
// (run `pnpm build` first), runs every seed, prints failures with the command that replays each
// one exactly, and a summary. Each cluster size runs in its own child process.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const seeds = Number(opt('seeds', '100000'));
const from = Number(opt('from', '1'));
const sizes = opt('nodes', '3,5').split(',').map(Number);

if (args.includes('--worker')) {
  // Child: run one cluster size.
  const dir = opt('dir');
  const nodes = Number(opt('size'));
  const require = createRequire(import.meta.url);
  const { runSim, replayCommand } = require(path.join(dir, 'run.js'));
  const t0 = Date.now();
  let failures = 0;
  const kinds = {};
  for (let s = from; s < from + seeds; s++) {
    const r = runSim({ seed: s, nodes });
    if (!r.ok) {
      failures++;
      kinds[r.kind] = (kinds[r.kind] ?? 0) + 1;
      console.log(`FAIL seed ${s} (${nodes} nodes) ${r.kind}: ${String(r.error).split('\n')[0]}\n  replay: ${replayCommand(s, nodes)}`);
    }
    if ((s - from + 1) % 10000 === 0) console.log(`  ${nodes} nodes: ${s - from + 1}/${seeds} seeds, ${failures} failures, ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
  console.log(`RESULT ${nodes} nodes: ${seeds} seeds (${from}..${from + seeds - 1}), ${failures} failures ${JSON.stringify(kinds)}, ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.exit(failures > 0 ? 1 : 0);
}

// Parent: transpile the simulator once, then one worker per size.
const require = createRequire(import.meta.url);
const ts = require('typescript');
const dir = mkdtempSync(path.join(tmpdir(), 'coffer-raft-soak-'));
const dist = path.join(root, 'packages/raft/dist/index.js');
for (const f of ['cluster', 'run']) {
  const src = readFileSync(path.join(root, 'packages/raft/test/sim', `${f}.ts`), 'utf8').replaceAll("'../../src/index'", JSON.stringify(dist));
  const out = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
  writeFileSync(path.join(dir, `${f}.js`), out);
}
const t0 = Date.now();
const codes = await Promise.all(
  sizes.map(
    (size) =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--worker', '--dir', dir, '--size', String(size), '--seeds', String(seeds), '--from', String(from)], { stdio: 'inherit' });
        child.on('exit', (code) => resolve(code ?? 1));
      }),
  ),
);
rmSync(dir, { recursive: true, force: true });
console.log(`soak finished in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${codes.every((c) => c === 0) ? 'no failures' : 'FAILURES (see above)'}`);
process.exit(codes.every((c) => c === 0) ? 0 : 1);
