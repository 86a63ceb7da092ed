/**
 * Text derived from the configuration table: `describeConfig()` (plain text) and the variable
 * tables of docs/config.md (Markdown, between the markers below).
 */
import { CONFIG_SECTIONS, CONFIG_VARIABLES, type VariableSpec } from './table.js';

/** docs/config.md's generated part starts after this line… */
export const DOCS_BEGIN = '<!-- BEGIN GENERATED from packages/node/src/config/table.ts: edit the table, then run UPDATE=1 jest packages/node/test/config.test.ts -->';
/** …and ends before this one. */
export const DOCS_END = '<!-- END GENERATED -->';

/**
 * Help text: every variable, its flag, default and meaning, grouped by section.
 *
 * @returns multi-line text
 */
export function describeConfig(): string {
  const width = Math.max(...CONFIG_VARIABLES.map((s) => s.name.length + s.flag.length + 2));
  const lines = [
    'Every setting is an environment variable and a flag; a flag wins over the variable.',
    'A bad value stops the server with one line naming the variable. See docs/config.md.',
  ];
  for (const [section, heading] of Object.entries(CONFIG_SECTIONS)) {
    lines.push('', `${heading}:`);
    for (const s of CONFIG_VARIABLES.filter((v) => v.section === section)) {
      lines.push(`  ${`${s.flag}, ${s.name}`.padEnd(width)}  ${s.description} [default: ${s.defaultText}]`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function cell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll('\n', ' ');
}

function defaultCell(s: VariableSpec): string {
  if (s.defaultText === 'required') return '**required**';
  // A value (`300`, `./data/<id>`) is shown as code; a worded default (`none`, `SDK default`) as prose.
  const prose = /\s/.test(s.defaultText) || s.defaultText === 'none' || s.defaultText === '—';
  return prose ? cell(s.defaultText) : `\`${s.defaultText}\``;
}

/**
 * The variable tables of docs/config.md, one per section.
 *
 * @returns Markdown, without the markers
 */
export function configDocsTables(): string {
  const out: string[] = [];
  for (const [section, heading] of Object.entries(CONFIG_SECTIONS)) {
    out.push(`## ${heading}`, '', '| variable | flag | default | validation |', '|---|---|---|---|');
    for (const s of CONFIG_VARIABLES.filter((v) => v.section === section)) {
      out.push(`| \`${s.name}\` | \`${s.flag}\` | ${defaultCell(s)} | ${cell(s.doc)} |`);
    }
    out.push('');
  }
  return out.join('\n');
}

/**
 * docs/config.md with its generated part replaced by {@link configDocsTables}.
 *
 * @param current - the file's text
 * @returns the updated text
 * @throws {RangeError} the markers are missing
 */
export function renderConfigDocs(current: string): string {
  const begin = current.indexOf(DOCS_BEGIN);
  const end = current.indexOf(DOCS_END);
  if (begin === -1 || end < begin) throw new RangeError('docs/config.md: generated-part markers missing');
  return `${current.slice(0, begin + DOCS_BEGIN.length)}\n\n${configDocsTables()}\n${current.slice(end)}`;
}
