// The one option parser of the benchmarks (scripts/bench.mjs and scripts/bench/*.mjs), over
// node's util.parseArgs. Each script declares its options once — type, default, one line of help —
// and gets typed values back, `--help` for free, and a clear exit 2 on a bad or unknown option.
//
//   const opts = benchOptions({
//     usage: 'pnpm bench raft [--total N] [--codec]',
//     options: { total: { type: 'integer', default: 1_000_000, help: 'proposals to commit' }, codec: { type: 'boolean', help: '...' } },
//     positionals: [{ name: 'seconds', type: 'number', default: 1, help: 'seconds per run' }],
//   });
//
// Types: 'integer' (a whole number >= min, default min 1), 'number' (finite, > 0 unless min is
// given), 'string', 'boolean'; `multiple: true` makes a repeatable option whose value is an array
// (default []). Positionals are optional, in order, typed the same way.
// `--print-options` prints the parsed values as JSON and exits 0: a dry parse that runs nothing
// (how scripts are checked without running a benchmark).
import { parseArgs } from 'node:util';

/**
 * @typedef {{ type: 'integer' | 'number' | 'string' | 'boolean', default?: number | string | boolean, help: string, short?: string, min?: number, multiple?: boolean }} OptionSpec
 * @typedef {OptionSpec & { name: string }} PositionalSpec
 */

function convert(name, spec, raw) {
  if (spec.type === 'string' || spec.type === 'boolean') return raw;
  const n = Number(raw);
  if (spec.type === 'integer') {
    const min = spec.min ?? 1;
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  }
  if (!Number.isFinite(n) || (spec.min === undefined ? n <= 0 : n < spec.min)) {
    throw new Error(`${name} must be a number ${spec.min === undefined ? '> 0' : `>= ${spec.min}`}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/**
 * @param {{ usage: string, description?: string, options?: Record<string, OptionSpec>, positionals?: PositionalSpec[], argv?: string[] }} def
 * @returns {Record<string, number | string | boolean | undefined> & { _rest?: string[] }} the values, by option name
 */
export function benchOptions(def) {
  const options = def.options ?? {};
  const positionals = def.positionals ?? [];
  const help = () => {
    const lines = [`usage: ${def.usage}`];
    if (def.description !== undefined) lines.push('', def.description);
    const rows = [];
    for (const p of positionals) rows.push([p.name.toUpperCase(), p.help, p.default]);
    for (const [name, o] of Object.entries(options)) {
      const flag = `${o.short === undefined ? '' : `-${o.short}, `}--${name}${o.type === 'boolean' ? '' : ` ${o.type === 'string' ? 'S' : 'N'}`}${o.multiple === true ? ' ...' : ''}`;
      rows.push([flag, o.help, o.type === 'boolean' ? undefined : o.default]);
    }
    rows.push(['-h, --help', 'print this help', undefined], ['--print-options', 'print the parsed options as JSON and exit (runs nothing)', undefined]);
    const width = Math.max(...rows.map((r) => r[0].length));
    lines.push('');
    for (const [flag, text, dflt] of rows) lines.push(`  ${flag.padEnd(width)}  ${text}${dflt === undefined ? '' : ` (default ${dflt})`}`);
    return lines.join('\n');
  };

  const parserOptions = { help: { type: 'boolean', short: 'h' }, 'print-options': { type: 'boolean' } };
  for (const [name, o] of Object.entries(options)) {
    parserOptions[name] = { type: o.type === 'boolean' ? 'boolean' : 'string', multiple: o.multiple === true, ...(o.short === undefined ? {} : { short: o.short }) };
  }
  let parsed;
  try {
    parsed = parseArgs({ args: def.argv ?? process.argv.slice(2), options: parserOptions, allowPositionals: true, strict: true });
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${help()}`);
    process.exit(2);
  }
  if (parsed.values.help === true) {
    console.log(help());
    process.exit(0);
  }
  const out = {};
  try {
    for (const [name, o] of Object.entries(options)) {
      const raw = parsed.values[name];
      if (o.multiple === true) out[name] = (raw ?? []).map((r) => convert(`--${name}`, o, r));
      else out[name] = raw === undefined ? (o.type === 'boolean' ? (o.default ?? false) : o.default) : convert(`--${name}`, o, raw);
    }
    if (parsed.positionals.length > positionals.length) throw new Error(`unexpected argument ${JSON.stringify(parsed.positionals[positionals.length])}`);
    for (const [i, p] of positionals.entries()) {
      const raw = parsed.positionals[i];
      out[p.name] = raw === undefined ? p.default : convert(p.name.toUpperCase(), p, raw);
    }
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${help()}`);
    process.exit(2);
  }
  if (parsed.values['print-options'] === true) {
    console.log(JSON.stringify(out));
    process.exit(0);
  }
  return out;
}
