/**
 * Route patterns: exact paths, one-segment parameters (`{name}`), and whole-rest parameters
 * (`{name+}`: everything after the prefix is the secret name, so operations are prefixes and no
 * name can collide with a route). The dispatcher and docs/API.md share these templates.
 */

/** HTTP methods the API serves (`LIST` is Vault's; see list-method.ts for how it reaches us). */
export type Method = 'GET' | 'PUT' | 'POST' | 'DELETE' | 'PATCH' | 'LIST';

/** A compiled pattern. */
export interface Pattern {
  /** The template as documented, e.g. `/v1/tokens/{name}/rotate`. */
  readonly template: string;
  /**
   * @param path - request path without the query, still percent-encoded
   * @returns the raw (encoded) parameter, `''` for exact paths, or null when it does not match
   */
  match(path: string): string | null;
}

/**
 * Compiles a template.
 *
 * @param template - `/exact`, `/prefix/{name}`, `/prefix/{name}/suffix` or `/prefix/{name+}`
 * @returns the pattern
 * @throws {TypeError} for a template with more than one parameter
 */
export function compilePattern(template: string): Pattern {
  const open = template.indexOf('{');
  if (open === -1) return { template, match: (p) => (p === template ? '' : null) };
  const close = template.indexOf('}', open);
  if (close === -1 || template.indexOf('{', close) !== -1) throw new TypeError(`bad route template ${template}`);
  const prefix = template.slice(0, open);
  const rest = template.slice(open + 1, close).endsWith('+');
  const suffix = template.slice(close + 1);
  if (rest) {
    if (suffix !== '') throw new TypeError(`a {name+} parameter must end the template: ${template}`);
    return { template, match: (p) => (p.length > prefix.length && p.startsWith(prefix) ? p.slice(prefix.length) : null) };
  }
  return {
    template,
    match(p) {
      if (!p.startsWith(prefix) || !p.endsWith(suffix) || p.length <= prefix.length + suffix.length) return null;
      const seg = p.slice(prefix.length, p.length - suffix.length);
      return seg.includes('/') ? null : seg;
    },
  };
}
