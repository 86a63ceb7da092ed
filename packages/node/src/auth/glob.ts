/**
 * Role path globs over secret names.
 *
 * - `*` matches any run of characters inside ONE segment (never a `/`); it may sit beside
 *   literal text (`db-*`).
 * - `**` must be a whole segment and matches across segments: in the middle or at the start it
 *   matches zero or more segments (`a/**\/b` matches `a/b` and `a/x/y/b`); at the end it matches
 *   one or more (`payments/**` matches everything beneath `payments`, not `payments` itself); a
 *   pattern of just `**` matches every name.
 * - Every other character is literal. Matching is done segment by segment without building a
 *   regular expression, so no pattern can inject regex syntax or cause catastrophic backtracking.
 */

/** A compiled glob. */
export interface Glob {
  /** The pattern text. */
  readonly pattern: string;
  /** @returns whether `name` matches */
  matches(name: string): boolean;
}

const GLOB_SEGMENT_RE = /^[A-Za-z0-9._*-]+$/;
/** Longest pattern accepted, in bytes (a pattern longer than any name is a mistake). */
export const MAX_GLOB_BYTES = 512;

/**
 * Checks a glob pattern.
 *
 * @param pattern - candidate pattern
 * @returns `undefined` when valid, otherwise a sentence naming the pattern
 * @example
 * ```ts
 * globProblem('payments/*');  // undefined
 * globProblem('a/x**');       // '... "**" must be a whole segment'
 * ```
 */
export function globProblem(pattern: unknown): string | undefined {
  if (typeof pattern !== 'string') return 'path pattern must be a string';
  const shown = JSON.stringify(pattern.length > 80 ? `${pattern.slice(0, 80)}…` : pattern);
  if (pattern.length === 0) return 'path pattern must not be empty';
  if (Buffer.byteLength(pattern, 'utf8') > MAX_GLOB_BYTES) return `path pattern ${shown} is longer than ${MAX_GLOB_BYTES} bytes`;
  for (const seg of pattern.split('/')) {
    if (seg.length === 0) return `path pattern ${shown} has an empty segment`;
    if (seg === '.' || seg === '..') return `path pattern ${shown} has a "${seg}" segment`;
    if (!GLOB_SEGMENT_RE.test(seg)) return `path pattern ${shown} may contain only A-Z a-z 0-9 . _ - * and /`;
    if (seg !== '**' && seg.includes('**')) return `path pattern ${shown}: "**" must be a whole segment`;
  }
  return undefined;
}

/** Wildcard match of one segment: `*` = any run of characters. Linear-time two-pointer scan. */
function segmentMatches(pat: string, text: string): boolean {
  if (!pat.includes('*')) return pat === text;
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pat.length && pat[p] !== '*' && pat[p] === text[t]) {
      p++;
      t++;
    } else if (p < pat.length && pat[p] === '*') {
      starP = p++;
      starT = t;
    } else if (starP !== -1) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pat.length && pat[p] === '*') p++;
  return p === pat.length;
}

function matchSegments(pat: readonly string[], pi: number, name: readonly string[], ni: number, memo: Map<number, boolean>): boolean {
  const key = pi * (name.length + 1) + ni;
  const cached = memo.get(key);
  if (cached !== undefined) return cached;
  let result: boolean;
  if (pi === pat.length) {
    result = ni === name.length;
  } else if (pat[pi] === '**') {
    const last = pi === pat.length - 1;
    if (last) {
      result = name.length - ni >= 1;
    } else {
      result = false;
      for (let k = ni; k <= name.length && !result; k++) result = matchSegments(pat, pi + 1, name, k, memo);
    }
  } else {
    result = ni < name.length && segmentMatches(pat[pi] ?? '', name[ni] ?? '') && matchSegments(pat, pi + 1, name, ni + 1, memo);
  }
  memo.set(key, result);
  return result;
}

/**
 * Compiles a pattern.
 *
 * @param pattern - a valid pattern (see {@link globProblem})
 * @returns the compiled glob
 * @throws {TypeError} when the pattern is invalid (validate role documents first)
 * @example
 * ```ts
 * compileGlob('payments/*').matches('payments/stripe');    // true
 * compileGlob('payments/*').matches('payments/eu/stripe'); // false
 * compileGlob('payments/**').matches('payments/eu/stripe'); // true
 * ```
 */
export function compileGlob(pattern: string): Glob {
  const problem = globProblem(pattern);
  if (problem !== undefined) throw new TypeError(problem);
  const segs = Object.freeze(pattern.split('/'));
  if (pattern === '**') return { pattern, matches: (name: string) => name.length > 0 };
  if (!pattern.includes('*')) return { pattern, matches: (name: string) => name === pattern };
  return {
    pattern,
    matches: (name: string) => matchSegments(segs, 0, name.split('/'), 0, new Map()),
  };
}
