/**
 * The GitHub workflow (.github/workflows/ci.yml) cannot run on our machines, and `.ci/run` cannot
 * run on GitHub's: both call scripts/test.sh, and this test holds them together. It checks the
 * workflow's promises (issue 16, "The CI workflow outside our machines") and that the script's
 * phases, which the workflow's jobs run, are exactly the tests of its default run, which `.ci/run`
 * runs.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../src/harness';

// js-yaml 3 ships no types; this is the part of its API the test uses.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- an import would need types js-yaml 3 lacks
const yaml = require('js-yaml') as { safeLoad(text: string): unknown };

jest.setTimeout(180_000);

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: Record<string, string>;
  env?: Record<string, string>;
}
interface Job {
  'runs-on': string;
  strategy?: { matrix?: { node?: string[] } };
  steps: Step[];
  env?: Record<string, string>;
}

const workflow = yaml.safeLoad(readFileSync(path.join(REPO_ROOT, '.github', 'workflows', 'ci.yml'), 'utf8')) as { env?: Record<string, string>; jobs: Record<string, Job> };
const testSh = readFileSync(path.join(REPO_ROOT, 'scripts', 'test.sh'), 'utf8');
const PHASES = ['lint', 'unit', 'cluster', 'jepsen'] as const;

/** The job that runs `bash scripts/test.sh --phase <phase>`, and that step. */
function phaseJob(phase: string): { name: string; job: Job; step: Step } {
  const found: { name: string; job: Job; step: Step }[] = [];
  for (const [name, job] of Object.entries(workflow.jobs)) {
    for (const step of job.steps) if (step.run !== undefined && new RegExp(`^bash scripts/test\\.sh --phase ${phase}$`, 'm').test(step.run)) found.push({ name, job, step });
  }
  expect(found.map((f) => f.name)).toHaveLength(1);
  return found[0] as { name: string; job: Job; step: Step };
}

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = path.join(dir, e);
    if (e === 'node_modules' || e === 'dist') continue;
    if (statSync(p).isDirectory()) out.push(...testFiles(p));
    else if (e.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** The files of one phase that mention `word` (e.g. which phases need moto_server). */
function phaseUses(files: string[], word: RegExp): boolean {
  return files.some((f) => word.test(readFileSync(f, 'utf8')));
}

/** The arguments of each `run_jest` call in the script's `case` arm for `phase`. */
function jestCalls(phase: string): string[][] {
  const arm = new RegExp(`\\n\\s+${phase}\\)\\n([\\s\\S]*?);;`).exec(testSh);
  expect(arm).not.toBeNull();
  return [...((arm as RegExpExecArray)[1] as string).matchAll(/^\s*run_jest (.*)$/gm)].map((m) => (m[1] as string).split(/\s+/).filter((a) => !a.startsWith('--outputFile=')));
}

/** `jest --listTests` with those arguments: the files that call would run. */
function listTests(args: string[]): Set<string> {
  const r = spawnSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'jest'), ['--listTests', ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`jest --listTests ${args.join(' ')} failed: ${r.stderr}`);
  return new Set(r.stdout.split('\n').filter((l) => l.trim() !== ''));
}

describe('.ci/run and the workflow call the same script', () => {
  test('.ci/run runs exactly the README test command', () => {
    const lines = readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#'));
    expect(lines[lines.length - 1]).toBe('bash scripts/test.sh');
    expect(readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8')).toMatch(/^bash scripts\/test\.sh\s+#/m);
  });

  test('one job per phase, each on Node 20 and 22 on a stock runner; engines admits both', () => {
    const engines = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    const min = /^>=\s*(\d+)\.(\d+)/.exec(engines);
    expect(min).not.toBeNull();
    for (const phase of PHASES) {
      const { job, step } = phaseJob(phase);
      expect(job['runs-on']).toBe('ubuntu-latest');
      expect(job.strategy?.matrix?.node).toEqual(['20', '22']);
      // setup-node installs the newest release of each line; our minimum must be on the 20 line.
      expect(Number((min as RegExpExecArray)[1])).toBe(20);
      const setup = job.steps.find((s) => s.uses?.startsWith('actions/setup-node@'));
      expect(setup?.with?.['node-version']).toBe('${{ matrix.node }}');
      expect(job.steps.indexOf(setup as Step)).toBeLessThan(job.steps.indexOf(step));
    }
  });

  test('no sudo drops the Node setup-node installed: root goes through COFFER_TEST_SUDO (sudo -E env PATH=$PATH)', () => {
    for (const job of Object.values(workflow.jobs)) {
      for (const s of job.steps) {
        for (const m of (s.run ?? '').matchAll(/sudo\b(.*)$/gm)) {
          // The only direct sudo: making root-written failure output readable for the upload.
          expect(m[1]).toMatch(/^ chmod -R a\+rX /);
        }
      }
    }
    expect(testSh).toContain('as_root=(sudo -E env "PATH=$PATH")');
    // glibc drops TMPDIR for setuid programs like sudo: the jobs that set it need it passed on.
    expect(testSh).toContain('as_root+=("TMPDIR=$TMPDIR")');
    for (const phase of ['unit', 'cluster', 'jepsen']) expect(phaseJob(phase).step.env?.['COFFER_TEST_SUDO']).toBe('1');
  });

  test('pnpm is the pinned version, its store cached; moto_server is pip-installed where the tests use it', () => {
    const pnpmPin = /^PNPM_VERSION=(\S+)$/m.exec(readFileSync(path.join(REPO_ROOT, 'scripts', 'bootstrap.sh'), 'utf8'));
    expect(pnpmPin).not.toBeNull();
    const all = testFiles(path.join(REPO_ROOT, 'packages'));
    const byPhase: Record<string, string[]> = {
      unit: all.filter((f) => !f.includes(`${path.sep}cluster-tests${path.sep}`)),
      cluster: all.filter((f) => f.includes(`${path.sep}cluster-tests${path.sep}`) && !path.basename(f).startsWith('jepsen-')),
      jepsen: all.filter((f) => path.basename(f).startsWith('jepsen-')),
    };
    expect(phaseUses(byPhase['unit'] as string[], /moto/)).toBe(true);
    for (const phase of PHASES) {
      const { job, step } = phaseJob(phase);
      const runs = job.steps.map((s) => s.run ?? '').join('\n');
      expect(runs).toContain(`"pnpm@$(sed -n 's/^PNPM_VERSION=//p' scripts/bootstrap.sh)"`);
      const cache = job.steps.find((s) => s.uses?.startsWith('actions/cache@'));
      expect(cache?.with?.['path']).toBe('${{ steps.pnpm-store.outputs.dir }}');
      expect(cache?.with?.['key']).toContain("hashFiles('pnpm-lock.yaml')");
      expect(job.steps.find((s) => s.run?.includes('pnpm store path') === true)?.['id' as keyof Step]).toBe('pnpm-store');
      expect(job.steps.indexOf(cache as Step)).toBeLessThan(job.steps.indexOf(step));
      if (phase !== 'lint' && phaseUses(byPhase[phase] as string[], /moto_server|startMoto|helpers\/moto/)) {
        const pip = job.steps.find((s) => /pip install "moto\[server\]==\$MOTO_VERSION"/.test(s.run ?? ''));
        expect([phase, pip !== undefined]).toEqual([phase, true]);
        expect(job.steps.some((s) => s.uses?.startsWith('actions/setup-python@'))).toBe(true);
      }
    }
    expect(workflow.env?.['MOTO_VERSION']).toMatch(/^5\.\d+\.\d+$/);
  });

  test("the Jepsen job uploads the failing runs' histories, verdicts and node logs", () => {
    const { job, step } = phaseJob('jepsen');
    // Where the suites write them: run.ts (histories), the loopback and namespace harnesses (clusters).
    expect(readFileSync(path.join(REPO_ROOT, 'packages/cluster-tests/src/jepsen/run.ts'), 'utf8')).toContain("path.join(REPO_ROOT, '.test-results', 'jepsen')");
    expect(readFileSync(path.join(REPO_ROOT, 'packages/cluster-tests/src/harness.ts'), 'utf8')).toContain("path.join(os.tmpdir(), 'coffer-e2e-')");
    expect(readFileSync(path.join(REPO_ROOT, 'packages/cluster-tests/src/jepsen/netns.ts'), 'utf8')).toContain("path.join(os.tmpdir(), 'coffer-netns-')");
    expect(step.env?.['TMPDIR']).toBe('${{ runner.temp }}');
    const upload = job.steps.find((s) => s.uses?.startsWith('actions/upload-artifact@'));
    expect(upload?.if).toBe('failure()');
    const paths = (upload?.with?.['path'] ?? '').split('\n').map((p) => p.trim());
    expect(paths).toEqual(expect.arrayContaining(['.test-results/', '${{ runner.temp }}/coffer-e2e-*/*.log', '${{ runner.temp }}/coffer-netns-*/*.log']));
    expect(upload?.with?.['name']).toContain('${{ matrix.node }}');
    const chmod = job.steps.find((s) => s.run?.includes('chmod -R a+rX') === true);
    expect(chmod?.if).toBe('failure()');
    expect(job.steps.indexOf(chmod as Step)).toBeLessThan(job.steps.indexOf(upload as Step));
  });

  test("the phases run exactly the default run's tests, each once", () => {
    const all = jestCalls('all').map(listTests);
    const phases = Object.fromEntries(['unit', 'cluster', 'jepsen'].map((p) => [p, jestCalls(p).map(listTests)]));
    expect(all).toHaveLength(2);
    for (const p of ['unit', 'cluster', 'jepsen']) expect((phases[p] as Set<string>[]).length).toBe(1);
    const [unit, cluster, jepsen] = ['unit', 'cluster', 'jepsen'].map((p) => (phases[p] as Set<string>[])[0] as Set<string>) as [Set<string>, Set<string>, Set<string>];
    for (const s of [unit, cluster, jepsen]) expect(s.size).toBeGreaterThan(0);
    const union = [...unit, ...cluster, ...jepsen];
    expect(new Set(union).size).toBe(union.length);
    const defaultRun = [...(all[0] as Set<string>), ...(all[1] as Set<string>)];
    expect(new Set(defaultRun).size).toBe(defaultRun.length);
    expect([...union].sort()).toEqual([...defaultRun].sort());
    // And the default run runs every test file there is.
    expect([...defaultRun].sort()).toEqual(testFiles(path.join(REPO_ROOT, 'packages')).sort());
  });

  test('test.sh refuses an unknown phase and extra arguments before it installs anything', () => {
    for (const args of [['--phase', 'nope'], ['--phase'], ['--phase', 'unit', 'extra']]) {
      const r = spawnSync('bash', [path.join(REPO_ROOT, 'scripts', 'test.sh'), ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
      expect([args.join(' '), r.status]).toEqual([args.join(' '), 2]);
      expect(r.stdout).toBe('');
    }
  });
});
