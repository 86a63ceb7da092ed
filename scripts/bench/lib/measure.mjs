// Measuring and reporting for scripts/bench/vs-etcd.mjs: the load generator (autocannon in this
// process, with latencies kept at sub-millisecond resolution), process and disk figures from /proc
// and the file system, machine facts, medians, and the one table (terminal and docs/PERFORMANCE.md
// are rendered from the same JSON, so the doc's numbers are never typed by hand).
import { readFileSync, readdirSync, lstatSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem } from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';

/** Invariant: benchmark traffic goes to 127.0.0.1 only (ENVIRONMENT.md, "Network rule"). */
export function assertLoopback(url) {
  const host = new URL(url).hostname;
  if (host !== '127.0.0.1') throw new Error(`refusing to send benchmark traffic to ${host}: loopback only`);
}

/** fetch, to 127.0.0.1 only. */
export function fetchLocal(url, init) {
  assertLoopback(url);
  return fetch(url, init);
}

/** The value at quantile q (0..1) of an ascending array (nearest rank), or null when empty. */
export function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Median (mean of the two middle values for an even count), min and max; null when no values. */
export function stats(values) {
  const xs = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  const mid = xs.length >> 1;
  const median = xs.length % 2 === 1 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2;
  return { median, min: xs[0], max: xs[xs.length - 1], n: xs.length };
}

/**
 * One autocannon run. autocannon's own histogram keeps whole milliseconds, too coarse for a
 * 1-connection p50 on loopback, so latencies are also taken from its `response` event (fractional
 * ms, answers of every status) and the percentiles come from those. With `amount`, autocannon
 * notices the end only at its next sample tick (1 s by default) and its duration is rounded to
 * that, so the tick is made short and the rate is the count over the time to the last answer.
 * @returns {Promise<{ rps: number, p50: number | null, p99: number | null, total: number, ok: number, errors: number, non2xx: number, timeouts: number, codes: Record<string, number>, seconds: number }>}
 */
export function cannon(opts) {
  assertLoopback(opts.url);
  const bulk = opts.amount !== undefined;
  return new Promise((resolve, reject) => {
    const lat = [];
    const t0 = performance.now();
    let last = t0;
    const inst = autocannon({ timeout: 10, ...(bulk ? { sampleInt: 50 } : {}), ...opts }, (err, res) => {
      if (err) return reject(err);
      lat.sort((a, b) => a - b);
      const ok = res['2xx'];
      const seconds = bulk ? (last - t0) / 1000 : res.duration;
      const rps = bulk ? ok / Math.max(0.001, seconds) : res.requests.average;
      // Status codes other than 2xx, e.g. {"503": 12}: what a failed phase failed with.
      const codes = Object.fromEntries(Object.entries(res.statusCodeStats ?? {}).filter(([code]) => !code.startsWith('2')).map(([code, v]) => [code, v.count]));
      resolve({ rps, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), total: res.requests.total, ok, errors: res.errors + res.timeouts + res.non2xx, non2xx: res.non2xx, timeouts: res.timeouts, codes, seconds });
    });
    inst.on('response', (_client, _status, _bytes, ms) => {
      lat.push(ms);
      last = performance.now();
    });
  });
}

/** " (503 ×12, 3 timeouts, 1 connection errors)" for a run with failures, else "". */
export function failures(r) {
  if (r.errors === 0) return '';
  const parts = Object.entries(r.codes).map(([code, n]) => `${code} ×${n}`);
  if (r.timeouts > 0) parts.push(`${r.timeouts} timeouts`);
  const conn = r.errors - r.non2xx - r.timeouts;
  if (conn > 0) parts.push(`${conn} connection errors`);
  return ` (failed: ${parts.join(', ')})`;
}

/** Resident set size of a live process in bytes (VmRSS), or null once it is gone. */
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/**
 * Disk use of a directory tree: `allocated` counts blocks as `du` does (what the disk holds,
 * preallocated WAL files included), `apparent` the file lengths (`du --apparent-size`).
 */
export function diskUsage(dir) {
  let allocated = 0;
  let apparent = 0;
  const walk = (p) => {
    const st = lstatSync(p);
    allocated += st.blocks * 512;
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(path.join(p, e));
    else apparent += st.size;
  };
  walk(dir);
  return { allocated, apparent };
}

/** The file system type holding `dir` (fsync cost depends on it: tmpfs makes it free). */
function fsType(dir) {
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f.length > 2);
    const best = mounts.filter(([, mp]) => dir === mp || dir.startsWith(mp.endsWith('/') ? mp : `${mp}/`)).sort((a, b) => b[1].length - a[1].length)[0];
    return best?.[2] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const run = (cmd, argv, cwd) => {
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
};

/** Facts that explain a result: cores, load, versions, the commit measured, where data lived. */
export function machineFacts(repo, dataRoot) {
  // Uncommitted work in the tree is in the build and so in what is measured: say so.
  const dirty = (run('git', ['diff', '--name-only', 'HEAD', '--', 'packages'], repo) ?? '').split('\n').filter((l) => l !== '');
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryBytes: totalmem(),
    kernel: release(),
    node: process.version,
    gitCommit: run('git', ['rev-parse', 'HEAD'], repo) ?? 'unknown',
    gitDirty: dirty.length > 0,
    gitDirtyFiles: dirty.slice(0, 20),
    dataFs: fsType(dataRoot),
    loadBefore: loadavg(),
  };
}

const fmtInt = (v) => Math.round(v).toLocaleString('en-US');
/** Latencies: two significant decimals below 10 ms, one below 100, whole above. */
const fmtMs = (v) => (v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : fmtInt(v));
const MIB = 1024 * 1024;

// ---- the summary of a run -------------------------------------------------------------------

/** [phase, field, label, unit, better] of each table row. */
function rowSpecs(o) {
  const tp = (ph, label) => [[ph, 'rps', `${label}: ops/s`, '/s', 'higher'], [ph, 'p50', `${label}: p50`, 'ms', 'lower'], [ph, 'p99', `${label}: p99`, 'ms', 'lower']];
  return [
    ...tp('writes', `writes, leader, ${o.connections} conns`),
    ...tp('fwrites', `writes via a follower, ${o.connections} conns`),
    ...tp('reads', `linearizable reads, leader, ${o.connections} conns`),
    ...tp('freads', `linearizable reads, follower, ${o.connections} conns`),
    ...tp('stale', `stale reads, follower, ${o.connections} conns (etcd: serializable)`),
    ...tp('single', 'writes, 1 connection'),
    ...tp('singleReads', 'linearizable reads, 1 connection'),
    ['failover', 'medianMs', 'failover: SIGKILL leader → next acked write', 'ms', 'lower'],
    ['load', 'rps', `bulk load of ${o['rss-value-bytes']}-byte secrets, ${o['load-connections']} conns: ops/s`, '/s', 'higher'],
    ['restart', 'ms', `restart-to-serving, follower, ${o.restartKeys.toLocaleString('en-US')} secrets`, 'ms', 'lower'],
    ['rss', 'maxBytes', `RSS per node (max of 3), ${o.restartKeys.toLocaleString('en-US')} secrets`, 'MiB', 'lower'],
    ['disk', 'rps', `overwrites, ${o['load-connections']} conns: ops/s`, '/s', 'higher'],
    ['disk', 'sumBytes', `data dirs, sum of 3 (du), after ${o.overwrites.toLocaleString('en-US')} overwrites`, 'MiB', 'lower'],
  ];
}

/**
 * Medians over rounds per row, the ratio Coffer/etcd, the goals and the notes. `o` is the run's
 * options (as stored in its JSON). Rows and notes are stored rendered, so an old file still renders.
 */
export function summarize(rounds, o) {
  const pick = (sys, ph, field) => stats(rounds.map((r) => r[sys].phases[ph]?.[field]));
  const rows = [];
  for (const [ph, field, label, unit, better] of rowSpecs(o)) {
    const row = { phase: ph, field, label, unit, better, etcd: pick('etcd', ph, field), coffer: pick('coffer', ph, field) };
    if (row.etcd === null && row.coffer === null) continue;
    rows.push({ ...row, ...compare(row) });
  }
  const get = (ph, field) => rows.find((r) => r.phase === ph && r.field === field) ?? null;
  const ratioGoal = (goal, row, min) => ({ goal, value: row?.ratio == null ? '–' : `${row.ratio.toFixed(2)}× etcd`, met: row?.ratio == null ? null : row.ratio >= min });
  // A latency no higher than etcd's.
  const latencyGoal = (goal, row) =>
    row?.coffer && row?.etcd ? { goal, value: `${fmtMs(row.coffer.median)} ms vs ${fmtMs(row.etcd.median)} ms`, met: row.coffer.median <= row.etcd.median } : { goal, value: '–', met: null };
  const cw = get('writes', 'rps')?.coffer;
  const cf = get('fwrites', 'rps')?.coffer;
  const fw = cw && cf ? cf.median / cw.median : null;
  // The scale goals hold at 1,000,000 secrets: a smaller run shows the figure but does not judge it.
  const scaleNote = o.restartKeys < 1_000_000 ? `measured at ${o.restartKeys.toLocaleString('en-US')} secrets; the goal is for 1,000,000 (--scale 1m)` : undefined;
  const restart = get('restart', 'ms')?.coffer;
  const rss = get('rss', 'maxBytes')?.coffer;
  const goals = [
    ratioGoal(`writes ≥ 1.5× etcd (leader, ${o.connections} conns)`, get('writes', 'rps'), 1.5),
    latencyGoal(`write p99 ≤ etcd's (leader, ${o.connections} conns)`, get('writes', 'p99')),
    ratioGoal('linearizable reads ≥ 2× etcd (leader)', get('reads', 'rps'), 2),
    ratioGoal('linearizable reads ≥ 2× etcd (follower)', get('freads', 'rps'), 2),
    // Three decimals where two would round a miss up to the goal (0.7999 is not 0.80).
    { goal: "Coffer's writes via a follower ≥ 0.8× its writes via the leader", value: fw === null ? '–' : `${fw.toFixed(fw < 0.8 && fw >= 0.795 ? 3 : 2)}×`, met: fw === null ? null : fw >= 0.8 },
    latencyGoal("1-connection write p50 ≤ etcd's", get('single', 'p50')),
    ratioGoal("1-connection linearizable reads/s ≥ etcd's", get('singleReads', 'rps'), 1),
    { goal: 'restart-to-serving < 10 s at 1M secrets', value: restart ? `${(restart.median / 1000).toFixed(1)} s` : '–', met: restart && !scaleNote ? restart.median < 10_000 : null, note: scaleNote },
    { goal: 'RSS < 1 GiB per node at 1M secrets', value: rss ? `${(rss.median / MIB).toFixed(0)} MiB` : '–', met: rss && !scaleNote ? rss.median < 1024 * MIB : null, note: scaleNote },
  ];
  return { rows, goals, notes: notes(rounds, o) };
}

/** Caveats that change how the figures read, from the run's own data (only for phases it has). */
function notes(rounds, o) {
  const ran = (ph) => rounds.some((r) => r.etcd.phases[ph] !== undefined || r.coffer.phases[ph] !== undefined);
  const out = [
    'Both systems over HTTP/1.1 + JSON from the same autocannon process on the same cores as the clusters; etcd through its JSON gateway (grpc-gateway inside each member), which its native gRPC clients skip.',
    'Coffer: encryption, fsync, audit log (in the data dir, fsynced), a bearer token on every request. etcd 3.4 defaults: fsync on, no auth, no TLS, no auto-compaction; only the log level and the backend quota (8 GiB) are set.',
  ];
  if (ran('writes') || ran('fwrites') || ran('reads') || ran('freads') || ran('stale') || ran('single')) {
    out.push('Latency percentiles are from every answer at sub-millisecond resolution. "Via a follower": etcd followers forward proposals to the leader internally; so do Coffer followers for secret puts (Raft MsgProp, after a read barrier; the follower authorises, seals and audits).');
  }
  if (ran('failover')) {
    out.push(`Failover: open-loop probe of 100 writes/s through the two other nodes; time from SIGKILL to the acknowledgement of the first write sent after it, median of ${o.kills} kills per round (election timeout 1000 ms on both).`);
  }
  if (ran('rss')) out.push("RSS is VmRSS from /proc after the load (etcd's includes the touched pages of its mmapped bbolt file).");
  const short = rounds.flatMap((r) => ['etcd', 'coffer'].map((s) => [r, r[s]]).filter(([, x]) => x.phases.load && x.phases.load.ok < o.restartKeys).map(([rr, x]) => `${x.system} ${x.phases.load.ok.toLocaleString('en-US')} (round ${rr.round})`));
  if (short.length > 0) out.push(`Fewer secrets than ${o.restartKeys.toLocaleString('en-US')} were stored where writes of the load failed, and RSS and restart were measured with those: ${short.join(', ')}.`);
  if (ran('restart')) out.push('Restart-to-serving: SIGTERM a follower, then from its spawn until a linearizable read of the last key written answers on it (Coffer: health 200 with standbyok, then the read).');
  if (ran('disk')) {
    const audit = rounds.map((r) => r.coffer.phases.disk).filter((d) => d?.auditBytes && d.sumBytes);
    const share = audit.length === 0 ? null : stats(audit.map((d) => d.auditBytes.reduce((a, b) => a + (b ?? 0), 0) / d.sumBytes)).median;
    out.push(`Data dirs: du (allocated blocks, etcd's preallocated 64 MB WAL segments included) while running, summed over the three members.${share === null ? '' : ` Coffer's include its audit log (on the node that took the writes): ${(share * 100).toFixed(0)} % of the total.`} etcd keeps every revision until compacted.`);
  }
  const changed = rounds.flatMap((r) => ['etcd', 'coffer'].flatMap((s) => Object.entries(r[s].phases).filter(([, p]) => p?.leaderChanged).map(([k]) => `${r[s].system} ${k} (round ${r.round})`)));
  if (changed.length > 0) out.push(`The leader changed during: ${changed.join(', ')}.`);
  const errors = rounds.flatMap((r) => [...r.etcd.errors, ...r.coffer.errors].map((e) => `${e} (round ${r.round})`));
  if (errors.length > 0) out.push(`Errors (their phases' figures are in the table all the same): ${errors.join('; ')}.`);
  return out;
}

// ---- the table -------------------------------------------------------------------------------


/** A value in the row's unit, for the table. */
export function fmtValue(unit, v) {
  if (v === null || v === undefined) return '–';
  if (unit === 'ms') return fmtMs(v);
  if (unit === 'MiB') return (v / MIB).toFixed(v / MIB < 100 ? 1 : 0);
  return fmtInt(v);
}

const cell = (unit, s) => (s === null || s === undefined ? '–' : s.n > 1 ? `${fmtValue(unit, s.median)} (${fmtValue(unit, s.min)}–${fmtValue(unit, s.max)})` : fmtValue(unit, s.median));

/**
 * The ratio Coffer/etcd of two medians and who is ahead: for `better: 'higher'` a ratio above 1
 * favours Coffer, for `'lower'` (latencies, times, sizes) one below 1 does.
 */
export function compare(row) {
  if (row.etcd === null || row.coffer === null || row.etcd.median === 0) return { ratio: null, ahead: '–' };
  const ratio = row.coffer.median / row.etcd.median;
  const ahead = Math.abs(ratio - 1) < 0.02 ? 'even' : (ratio > 1) === (row.better === 'higher') ? 'Coffer' : 'etcd';
  return { ratio, ahead };
}

/** The comparison as one markdown table (readable as is in a terminal). */
export function renderTable(summary) {
  const head = ['metric', 'unit', 'etcd', 'Coffer', 'Coffer/etcd', 'better', 'ahead'];
  const rows = summary.rows.map((r) => [r.label, r.unit, cell(r.unit, r.etcd), cell(r.unit, r.coffer), r.ratio === null ? '–' : `${r.ratio.toFixed(2)}×`, r.better, r.ahead]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => (i >= 2 && i <= 4 ? c.padStart(width[i]) : c.padEnd(width[i]))).join(' | ')} |`;
  const sep = `|${width.map((w, i) => (i >= 2 && i <= 4 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`;
  return [line(head), sep, ...rows.map(line)].join('\n');
}

/** The goals as a list of "goal met / not met" lines (markdown bullets). */
export function renderGoals(summary) {
  return summary.goals.map((g) => `- ${g.goal}: ${g.value} — ${g.met === null ? (g.note && g.value !== '–' ? 'not judged' : 'not measured') : g.met ? 'goal met' : 'goal not met'}${g.note ? ` (${g.note})` : ''}`).join('\n');
}

/** What load a run applied: only the parts of the phases it ran. */
function loadLine(o) {
  const ran = (...p) => o.phases === undefined || p.some((x) => o.phases.includes(x));
  const parts = [];
  if (ran('writes', 'fwrites', 'reads', 'freads', 'stale', 'single', 'failover')) {
    parts.push(`Load: ${o.connections} connections, ${o.keys.toLocaleString('en-US')} names, ${o['value-bytes']}-byte values, ${o.duration} s per phase.`);
  }
  parts.push(`${o.rounds} round(s), each on fresh clusters; values are the median over rounds (min–max in brackets).`);
  if (ran('restart', 'rss')) parts.push(`Restart and RSS after ${o.restartKeys.toLocaleString('en-US')} secrets of ${o['rss-value-bytes']} bytes.`);
  if (ran('disk')) parts.push(`Disk after ${o.overwrites.toLocaleString('en-US')} overwrites of ${o.keys.toLocaleString('en-US')} names.`);
  return parts.join(' ');
}

/** The generated section of docs/PERFORMANCE.md (between the vs-etcd markers). */
export function renderDocSection(result, file) {
  const m = result.machine;
  const o = result.options;
  const load = (l) => (l ? l.map((x) => x.toFixed(2)).join(' / ') : '?');
  return [
    `Generated by \`node scripts/bench/vs-etcd.mjs --from-json ${file} --write-doc\` — do not edit by hand.`,
    '',
    `Run ${result.startedAt} (${Math.round(result.elapsedSeconds / 60)} min): \`${result.command}\``,
    `Machine: ${m.cores} cores (${m.cpuModel}), ${(m.memoryBytes / 1024 ** 3).toFixed(0)} GiB, Linux ${m.kernel}, data on ${m.dataFs}; Node ${m.node}; etcd ${m.etcdVersion}; ` +
      `Coffer commit ${m.gitCommit.slice(0, 12)}${m.gitDirty ? ' (with uncommitted changes)' : ''}. Load average (1/5/15 min) ${load(m.loadBefore)} before, ${load(m.loadAfter)} after.`,
    loadLine(o),
    '',
    renderTable(result.summary),
    '',
    ...result.summary.notes.map((n) => `- ${n}`),
    '',
    'Goals:',
    '',
    renderGoals(result.summary),
  ].join('\n');
}

/**
 * `doc` with the text between a pair of markers replaced; throws if the markers are missing.
 * `name` picks the pair: `vs-etcd` (the main run) or `vs-etcd-1m` (a `--scale 1m` run).
 */
export function replaceDocSection(doc, section, name = 'vs-etcd') {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const b = doc.indexOf(begin);
  const e = doc.indexOf(end);
  if (b < 0 || e < b) throw new Error(`markers ${begin} … ${end} not found`);
  return `${doc.slice(0, b + begin.length)}\n${section}\n${doc.slice(e)}`;
}
