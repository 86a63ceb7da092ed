// Prints jest's totals from one or more --json outputs as one plain line: "N passed, M failed".
import { readFileSync, existsSync } from 'node:fs';

const files = process.argv.slice(2);
let passed = 0;
let failed = 0;
let skipped = 0;
if (files.length === 0) files.push('');
for (const file of files) {
  if (!file || !existsSync(file)) {
    failed += 1;
    console.error(`coffer: jest wrote no results to ${file || '(none)'}`);
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  if ((r.numFailedTestSuites ?? 0) > 0) {
    for (const s of r.testResults ?? []) {
      if (s.status === 'failed') console.error(`FAILED SUITE ${s.name}`);
    }
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
