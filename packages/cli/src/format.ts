/** Output helpers: tables, timestamps, byte counts. */
import { toEpochMs, type Timestamp } from '@coffer/client';

/**
 * Render rows as an aligned text table.
 *
 * @param headers - column titles
 * @param rows - cells (already strings)
 * @returns the table with a trailing newline
 */
export function table(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/**
 * @param t - a server timestamp
 * @returns ISO-8601 text, or `-` when absent
 */
export function time(t: Timestamp | null | undefined): string {
  const ms = toEpochMs(t);
  return ms === undefined ? (t === null || t === undefined ? '-' : String(t)) : new Date(ms).toISOString();
}

/**
 * @param n - bytes
 * @returns e.g. `1.5 MiB`
 */
export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}
