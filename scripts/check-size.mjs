#!/usr/bin/env node
// No source file over 600 lines (issue 15, "Checks that keep it so"): a file that long holds more
// than one concept (STYLE.md §1, "One concept per file"). Checks every .ts/.mjs/.js file under
// packages/*/src, prints each offender with its line count, and exits 1 if there is one.
//
//   node scripts/check-size.mjs            # the check
//   node scripts/check-size.mjs --max 400  # another bound (to see what comes next)
//   node scripts/check-size.mjs --root DIR # another tree with packages/*/src (the script's own test)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEFAULT_MAX_LINES = 600;

const { values } = parseArgs({ options: { max: { type: 'string' }, root: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
if (values.help === true) {
  console.log('usage: node scripts/check-size.mjs [--max LINES] [--root DIR]   (default 600 lines; DIR/packages/*/src, DIR = the repository)');
  process.exit(0);
}
const ROOT = values.root === undefined ? REPO_ROOT : path.resolve(values.root);
const maxLines = values.max === undefined ? DEFAULT_MAX_LINES : Number(values.max);
if (!Number.isInteger(maxLines) || maxLines <= 0) {
  console.error(`check-size: --max must be a positive integer, got ${values.max}`);
  process.exit(2);
}

function sourceFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mts|cts|mjs|cjs|js)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Lines as an editor numbers them: a final newline does not start another line. */
function lineCount(file) {
  const text = readFileSync(file, 'utf8');
  if (text === '') return 0;
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
}

const packagesDir = path.join(ROOT, 'packages');
const files = [];
for (const pkg of readdirSync(packagesDir).sort()) {
  const src = path.join(packagesDir, pkg, 'src');
  try {
    if (statSync(src).isDirectory()) files.push(...sourceFiles(src));
  } catch {
    // A package without src/ has nothing to check.
  }
}

const offenders = files
  .map((f) => ({ file: path.relative(ROOT, f), lines: lineCount(f) }))
  .filter((f) => f.lines > maxLines)
  .sort((a, b) => b.lines - a.lines);

if (offenders.length === 0) {
  console.log(`check-size: ${files.length} source files, none over ${maxLines} lines`);
  process.exit(0);
}
console.log(`check-size: ${offenders.length} of ${files.length} source files are over ${maxLines} lines:`);
for (const o of offenders) console.log(`  ${String(o.lines).padStart(5)}  ${o.file}`);
process.exit(1);
