import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

// The package's contract: no I/O, no clock, no ambient randomness, no timers, no waiting.
const forbidden = [/from ['"]node:/, /require\(/, /\bDate\b/, /Math\.random/, /\bprocess\./, /setTimeout|setInterval|setImmediate/, /\bawait\b/, /\basync\b/];

test('src is pure: no node:*, Date, Math.random, process, timers, async/await', () => {
  const dir = path.join(__dirname, '..', 'src');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  expect(files.length).toBeGreaterThan(5);
  const hits: string[] = [];
  for (const f of files) {
    readFileSync(path.join(dir, f), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        for (const re of forbidden) if (re.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`);
      });
  }
  expect(hits).toEqual([]);
});

test('no runtime dependencies', () => {
  const pkg = JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { dependencies?: object };
  expect(Object.keys(pkg.dependencies ?? {})).toEqual([]);
});
