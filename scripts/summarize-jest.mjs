// Prints jest's totals from its --json output as one plain line: "N passed, M failed".
import { readFileSync, existsSync } from 'node:fs';

const file = process.argv[2];
if (!file || !existsSync(file)) {
  console.log('0 passed, 1 failed');
  console.error(`coffer: jest wrote no results to ${file ?? '(none)'}`);
  process.exit(0);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
const failedSuites = r.numFailedTestSuites ?? 0;
const failed = (r.numFailedTests ?? 0) + (r.numRuntimeErrorTestSuites ?? 0);
const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
if (failedSuites > 0) {
  for (const s of r.testResults ?? []) {
    if (s.status === 'failed') console.error(`FAILED SUITE ${s.name}`);
  }
}
console.log(`${r.numPassedTests ?? 0} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
