// `pnpm bench NAME [args]`: runs scripts/bench/NAME.mjs against the built packages. Benchmarks
// print numbers; they never fail on speed.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'bench');
const available = readdirSync(dir).filter((f) => f.endsWith('.mjs')).map((f) => f.slice(0, -4)).sort();
const [name, ...args] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: pnpm bench <${available.join('|')}> [args]`);
  process.exit(2);
}
const build = spawnSync(path.join(dir, '..', '..', 'node_modules', '.bin', 'tsc'), ['-b'], { stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const run = spawnSync(process.execPath, ['--expose-gc', path.join(dir, `${name}.mjs`), ...args], { stdio: 'inherit' });
process.exit(run.status ?? 1);
