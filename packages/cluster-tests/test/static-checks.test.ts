/**
 * The checks that keep the code base in shape (issue 15, "Checks that keep it so") catch what they
 * promise: each ESLint rule of eslint.config.mjs fires on a small snippet that breaks it and stays
 * quiet on its lawful twin, and scripts/check-size.mjs flags a 601-line source file but not a
 * 600-line one. The snippets are linted in memory under the path they name (nothing is written
 * into the packages), with the repository's own config.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from '../src/harness';

jest.setTimeout(180_000);

/**
 * ESLint loads its config with a dynamic import, which jest's module runtime cannot do: the
 * snippets are linted by one plain node child process, all at once (one type-checker start).
 * They exist only in memory: type information comes from an inferred project for them (the
 * config's own `project` lists files on disk), with the same compiler options.
 */
const LINT_CHILD = `
const { ESLint } = require(require.resolve('eslint', { paths: [process.cwd()] }));
const cases = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
const eslint = new ESLint({
  cwd: process.cwd(),
  overrideConfig: { languageOptions: { parserOptions: {
    project: null,
    projectService: { allowDefaultProject: ['packages/*/src/*.ts', 'packages/*/src/*/*.ts', 'packages/*/test/*.ts'], defaultProject: 'tsconfig.eslint.json', maximumDefaultProjectFileMatchCount_THIS_WILL_SLOW_DOWN_LINTING: 32 },
    tsconfigRootDir: process.cwd(),
  } } },
});
(async () => {
  const out = [];
  for (const c of cases) {
    const [r] = await eslint.lintText(c.text, { filePath: require('node:path').join(process.cwd(), c.file) });
    out.push(r.messages.map((m) => ({ ruleId: m.ruleId, message: m.message })));
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
`;

interface Case {
  file: string;
  text: string;
}
const cases: Case[] = [];
let fired: Map<Case, string[]> | undefined;

/** Registers a snippet; its result is ready once the suite's `beforeAll` ran. */
function snippet(file: string, text: string): Case {
  const c = { file, text };
  cases.push(c);
  return c;
}

/** The rules that fired on `c`, sorted ('' for a problem without a rule, e.g. an unused directive). */
function rulesFiredOn(c: Case): string[] {
  const r = fired?.get(c);
  if (r === undefined) throw new Error(`${c.file} was not linted`);
  return r;
}

beforeAll(() => {
  const r = spawnSync(process.execPath, ['-e', LINT_CHILD], { cwd: REPO_ROOT, input: JSON.stringify(cases), encoding: 'utf8', timeout: 170_000 });
  if (r.status !== 0) throw new Error(`the lint child failed: ${r.stderr}`);
  const results = JSON.parse(r.stdout) as { ruleId: string | null; message: string }[][];
  fired = new Map();
  for (const [i, c] of cases.entries()) {
    const messages = results[i] ?? [];
    const fatal = messages.filter((m) => m.ruleId === null && !m.message.startsWith('Unused eslint-disable directive'));
    if (fatal.length > 0) throw new Error(`could not lint ${c.file}: ${fatal.map((m) => m.message).join('; ')}`);
    fired.set(c, messages.map((m) => m.ruleId ?? '').sort());
  }
});

describe('import boundaries', () => {
  const refused = [
    snippet('packages/raft/src/zz-probe.ts', "import { readFileSync } from 'node:fs';\nexport const x: string = readFileSync('f', 'utf8');\n"),
    snippet('packages/raft/src/zz-probe.ts', "import { encodeCommand } from '@coffer/state';\nexport const x: unknown = encodeCommand;\n"),
    snippet('packages/raft/src/zz-probe.ts', "import { x as y } from '../../node/src/x.js';\nexport const x: unknown = y;\n"),
    snippet('packages/raft/test/zz-probe.ts', "import { RaftDriver } from '@coffer/node';\nexport const x: unknown = RaftDriver;\n"),
    snippet('packages/state/src/zz-probe.ts', "import { RaftDriver } from '@coffer/node';\nexport const x: unknown = RaftDriver;\n"),
    snippet('packages/crypto/src/zz-probe.ts', "import type { NodeContext } from '@coffer/node';\nexport type X = NodeContext;\n"),
    snippet('packages/crypto/src/zz-probe.ts', "import { x as y } from '../../node/src/x.js';\nexport const x: unknown = y;\n"),
    snippet('packages/node/src/service/zz-probe.ts', "import { x as y } from '../http/errors.js';\nexport const x: unknown = y;\n"),
    snippet('packages/raft/src/zz-probe.ts', "import { prng } from '../../cluster-tests/src/prng.js';\nexport const x: unknown = prng;\n"),
    snippet('packages/raft/test/zz-probe.ts', "import { TestCluster } from '../../cluster-tests/src/harness';\nexport const x: unknown = TestCluster;\n"),
    snippet('packages/state/src/zz-probe.ts', "import { prng } from '../../cluster-tests/src/prng.js';\nexport const x: unknown = prng;\n"),
  ];
  const allowed = [
    snippet('packages/raft/src/zz-probe.ts', "import { x as y } from './log.js';\nexport const x: unknown = y;\n"),
    snippet('packages/raft/test/zz-probe.ts', "import { RawNode } from '@coffer/raft';\nimport { readFileSync } from 'node:fs';\nexport const x: unknown = [RawNode, readFileSync];\n"),
    snippet('packages/state/src/zz-probe.ts', "import type { Envelope } from '@coffer/crypto';\nexport type X = Envelope;\n"),
    snippet('packages/node/src/http/zz-probe.ts', "import { x as y } from '../service/errors.js';\nexport const x: unknown = y;\n"),
    snippet('packages/node/src/service/zz-probe.ts', "import { x as y } from './errors.js';\nexport const x: unknown = y;\n"),
    // Tests share one seeded PRNG, a leaf module of cluster-tests.
    snippet('packages/raft/test/zz-probe.ts', "import { prng } from '../../cluster-tests/src/prng';\nexport const x: unknown = prng;\n"),
    snippet('packages/state/test/zz-probe.ts', "import { prng } from '../../cluster-tests/src/prng.js';\nexport const x: unknown = prng;\n"),
  ];

  test('raft imports nothing but itself; state and crypto never import node; node/service never imports node/http', () => {
    for (const c of refused) expect([c.file, c.text, rulesFiredOn(c)]).toEqual([c.file, c.text, ['no-restricted-imports']]);
  });

  test('imports inside those lines are allowed', () => {
    for (const c of allowed) expect([c.file, c.text, rulesFiredOn(c)]).toEqual([c.file, c.text, []]);
  });
});

describe('promises', () => {
  const decl = 'async function save(): Promise<void> {}\n';
  const floating = snippet('packages/node/src/zz-probe.ts', `${decl}export function f(): void {\n  save();\n}\n`);
  const handled = snippet('packages/node/test/zz-probe.ts', `${decl}export async function f(): Promise<void> {\n  await save();\n  void save();\n  save().catch(() => undefined);\n}\n`);
  const inCondition = snippet('packages/node/src/zz-probe.ts', `${decl}export function f(): number {\n  return save() ? 1 : 0;\n}\n`);
  const asVoidCallback = snippet('packages/node/src/zz-probe.ts', `${decl}export function f(xs: number[]): void {\n  xs.forEach(async () => {\n    await save();\n  });\n}\n`);

  test('a floating promise is an error; awaited, void-ed or caught it is not', () => {
    expect(rulesFiredOn(floating)).toEqual(['@typescript-eslint/no-floating-promises']);
    expect(rulesFiredOn(handled)).toEqual([]);
  });

  test('a promise where a plain value is expected (condition, void callback) is an error', () => {
    expect(rulesFiredOn(inCondition)).toEqual(['@typescript-eslint/no-misused-promises']);
    expect(rulesFiredOn(asVoidCallback)).toEqual(['@typescript-eslint/no-misused-promises']);
  });
});

describe('unused code', () => {
  const unusedImport = snippet('packages/client/src/zz-probe.ts', "import { readFileSync } from 'node:fs';\nexport const x = 1;\n");
  const unusedLocalAndParam = snippet('packages/client/src/zz-probe.ts', 'export function f(a: number, b: number): number {\n  const c = 2;\n  return a;\n}\n');
  const underscored = snippet('packages/client/src/zz-probe.ts', 'export function f(a: number, _b: number): number {\n  return a;\n}\n');
  const idleDirective = snippet('packages/client/src/zz-probe.ts', '// eslint-disable-next-line @typescript-eslint/no-require-imports\nexport const x = 1;\n');

  test('unused imports, variables and parameters are errors; a leading underscore marks a deliberate one', () => {
    expect(rulesFiredOn(unusedImport)).toEqual(['@typescript-eslint/no-unused-vars']);
    expect(rulesFiredOn(unusedLocalAndParam)).toEqual(['@typescript-eslint/no-unused-vars', '@typescript-eslint/no-unused-vars']);
    expect(rulesFiredOn(underscored)).toEqual([]);
  });

  test('an eslint-disable comment that disables nothing is an error', () => {
    expect(rulesFiredOn(idleDirective)).toEqual(['']);
  });
});

describe('casts', () => {
  const asNever = snippet('packages/node/src/zz-probe.ts', 'export function f(g: (x: string) => void): void {\n  g(1 as never);\n}\n');
  const asUnknownAs = snippet('packages/node/src/zz-probe.ts', 'export const x: string = (1 as unknown as string);\n');
  const plain = snippet('packages/node/src/zz-probe.ts', "export const x: string = (JSON.parse('1') as string);\n");
  const allowListed = snippet('packages/crypto/test/bytes.test.ts', 'export const x: string = (1 as unknown as string);\n');
  const notAllowListed = snippet('packages/crypto/test/zz-probe.ts', 'export const x: string = (1 as unknown as string);\n');

  test('`as never` and `as unknown as` are errors outside the allow-list; a plain cast is not', () => {
    expect(rulesFiredOn(asNever)).toEqual(['no-restricted-syntax']);
    expect(rulesFiredOn(asUnknownAs)).toEqual(['no-restricted-syntax']);
    expect(rulesFiredOn(plain)).toEqual([]);
  });

  test('an allow-listed file may cast (its entry gives the reason), and only that file', () => {
    expect(rulesFiredOn(allowListed)).toEqual([]);
    expect(rulesFiredOn(notAllowListed)).toEqual(['no-restricted-syntax']);
  });
});

describe('scripts/check-size.mjs', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'coffer-size-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function run(files: Record<string, number>): { status: number | null; stdout: string } {
    for (const [file, lines] of Object.entries(files)) {
      const p = path.join(root, file);
      mkdirSync(path.dirname(p), { recursive: true });
      writeFileSync(p, 'export {};\n'.repeat(lines));
    }
    const r = spawnSync(process.execPath, [path.join(REPO_ROOT, 'scripts', 'check-size.mjs'), '--root', root], { encoding: 'utf8' });
    return { status: r.status, stdout: r.stdout };
  }

  test('600 lines pass; 601 fail, and the offender is named with its length', () => {
    expect(run({ 'packages/a/src/ok.ts': 600, 'packages/a/test/long.test.ts': 5_000 }).status).toBe(0);
    const r = run({ 'packages/b/src/deep/too-long.ts': 601 });
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/601 {2}packages\/b\/src\/deep\/too-long\.ts/);
    expect(r.stdout).not.toContain('ok.ts');
  });
});
