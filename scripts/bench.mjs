// `pnpm bench NAME [args]`: runs scripts/bench/NAME.mjs against the built packages. Benchmarks
// print numbers; they never fail on speed.
import { readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { benchOptions } from './bench/lib/options.mjs';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bench');
const available = readdirSync(dir).filter((f) => f.endsWith('.mjs')).map((f) => f.slice(0, -4)).sort();
// The first comment line of each benchmark is its usage line.
const summaries = available.map((n) => `  ${(/^\/\/ (.*)$/m.exec(readFileSync(path.join(dir, `${n}.mjs`), 'utf8'))?.[1] ?? n).slice(0, 110)}`);
const description = `Each benchmark takes --help (its own options). Benchmarks:\n${summaries.join('\n')}`;
// Only NAME is ours: everything after it is the benchmark's, parsed by it (scripts/bench/lib/options.mjs).
const { name } = benchOptions({
  usage: `pnpm bench <${available.join('|')}> [args]`,
  description,
  positionals: [{ name: 'name', type: 'string', help: 'the benchmark to run' }],
  argv: process.argv.slice(2, 3),
});
const args = process.argv.slice(3);
if (name === undefined || !available.includes(name)) {
  console.error(`usage: pnpm bench <${available.join('|')}> [args]\n\n${description}`);
  process.exit(2);
}
const build = spawnSync(path.join(dir, '..', '..', 'node_modules', '.bin', 'tsc'), ['-b'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const run = spawnSync(process.execPath, ['--expose-gc', path.join(dir, `${name}.mjs`), ...args], { stdio: 'inherit' });
process.exit(run.status ?? 1);
