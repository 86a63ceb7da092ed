/**
 * Command-line entry of the workload, so that it can run inside a network namespace
 * (`ip netns exec NS node packages/cluster-tests/dist/jepsen/workload-main.js …`).
 *
 *   workload-main.js run --endpoints URL,URL,… --token-file F --duration-ms N --seed S --out H.jsonl
 *                        [--workers 8] [--keys a,b,c] [--request-timeout-ms 5000] [--first-id 1]
 *     Runs the workload, writes the history (JSON lines) and prints one JSON summary line.
 *   workload-main.js final-read --endpoints URL,… --token-file F --keys a,b,c [--request-timeout-ms 5000]
 *     Reads every name on every endpoint with ?consistency=stale and prints one JSON line:
 *     {"nodes":[{"endpoint","complete","digest","state","errors"}],"digestsEqual":bool}
 *
 * `run` is the default command. Endpoints must be loopback, or private addresses while this
 * process is inside a network namespace other than the machine's (see checkNamespacedAddress).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { saveHistory } from './history.js';
import { checkNamespacedAddress, finalRead, runWorkload, statsOf } from './workload.js';

/** Default secret names of the workload. */
export const DEFAULT_KEYS: readonly string[] = ['jepsen/a', 'jepsen/b', 'jepsen/c', 'jepsen/d', 'jepsen/e'];

async function main(argv: string[]): Promise<number> {
  const command = argv[0] !== undefined && !argv[0].startsWith('--') ? argv[0] : 'run';
  const rest = command === argv[0] ? argv.slice(1) : argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      endpoints: { type: 'string' },
      'token-file': { type: 'string' },
      'duration-ms': { type: 'string', default: '10000' },
      seed: { type: 'string', default: '1' },
      out: { type: 'string' },
      workers: { type: 'string', default: '8' },
      keys: { type: 'string' },
      'request-timeout-ms': { type: 'string', default: '5000' },
      'first-id': { type: 'string', default: '1' },
    },
    strict: true,
  });
  if (values.endpoints === undefined || values['token-file'] === undefined) throw new Error('--endpoints and --token-file are required');
  const endpoints = values.endpoints.split(',').filter((e) => e !== '');
  for (const e of endpoints) checkNamespacedAddress(e);
  const token = readFileSync(values['token-file'], 'utf8').trim();
  const keys = values.keys === undefined ? [...DEFAULT_KEYS] : values.keys.split(',').filter((k) => k !== '');
  const timeoutMs = Number(values['request-timeout-ms']);
  if (command === 'final-read') {
    const nodes = await Promise.all(endpoints.map((e) => finalRead(e, token, keys, timeoutMs)));
    const digestsEqual = nodes.every((n) => n.complete && n.digest === nodes[0]?.digest);
    process.stdout.write(JSON.stringify({ nodes, digestsEqual }) + '\n');
    return 0;
  }
  if (command !== 'run') throw new Error(`unknown command ${command}`);
  if (values.out === undefined) throw new Error('--out is required');
  const ops = await runWorkload({
    endpoints,
    token,
    durationMs: Number(values['duration-ms']),
    workers: Number(values.workers),
    keys,
    seed: Number(values.seed),
    requestTimeoutMs: timeoutMs,
    firstId: Number(values['first-id']),
    checkAddress: checkNamespacedAddress,
  });
  saveHistory(values.out, ops);
  process.stdout.write(JSON.stringify({ out: values.out, ...statsOf(ops) }) + '\n');
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`workload: ${(err as Error).message}\n`);
      process.exit(2);
    },
  );
}
