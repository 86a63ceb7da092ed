/**
 * The read allowlist: which client IPs may read secrets, verify values and scrape metrics.
 *
 * Fail-closed by construction: an empty list denies everything, and a list with even one invalid
 * entry denies everything too (a typo must never widen access, nor silently narrow it to "some
 * entries"). IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports for
 * an IPv4 peer) are normalised to IPv4 on both sides, so `10.0.0.0/8` matches them.
 *
 * Parsing is strict: IPv4 only in dotted four-part decimal (ipaddr.js would otherwise accept
 * `127.1` or `0x7f.0.0.1`, which no operator means in an allowlist).
 */
import * as ipaddr from 'ipaddr.js';
import type { IncomingHttpHeaders } from 'node:http';

type Addr = ipaddr.IPv4 | ipaddr.IPv6;

/** One parsed allowlist entry. */
export interface CidrEntry {
  /** Canonical text, e.g. `10.8.0.0/24`, `fd00::/8`, `10.0.0.1/32`. */
  readonly cidr: string;
  readonly kind: 'ipv4' | 'ipv6';
  readonly prefix: number;
  readonly network: Addr;
}

/** Result of {@link validateCidrs}: canonical entries, or one error per bad entry. */
export type CidrValidation =
  | { readonly ok: true; readonly entries: readonly CidrEntry[]; readonly cidrs: readonly string[] }
  | { readonly ok: false; readonly errors: readonly string[] };

/** Most entries an allowlist may hold (keeps matching cheap and the replicated record small). */
export const MAX_ALLOWLIST_ENTRIES = 1024;

function parseStrictAddr(text: string): Addr | undefined {
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  return undefined;
}

/** Maps IPv4-mapped IPv6 to IPv4; zone ids are dropped (they never identify a remote client). */
function normalise(addr: Addr): Addr {
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
    if (v6.zoneId !== undefined) return new ipaddr.IPv6(v6.parts);
  }
  return addr;
}

function maskTo(addr: Addr, prefix: number): Addr {
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] = (bytes[i] ?? 0) & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes);
}

/**
 * Parses one entry: a CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (taken as /32 or
 * /128). Host bits below the prefix are cleared (`10.0.0.7/24` → `10.0.0.0/24`). An IPv4-mapped
 * IPv6 CIDR with prefix ≥ 96 becomes the IPv4 CIDR it denotes.
 *
 * @param entry - the entry text (surrounding whitespace is ignored)
 * @returns the entry, or a sentence naming the bad entry
 * @example
 * ```ts
 * parseCidr('::ffff:10.0.0.0/104'); // { cidr: '10.0.0.0/8', kind: 'ipv4', ... }
 * ```
 */
export function parseCidr(entry: unknown): CidrEntry | string {
  if (typeof entry !== 'string') return `allowlist entry ${String(entry)} is not a string`;
  const text = entry.trim();
  const shown = JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
  if (text.length === 0) return 'allowlist entry is empty';
  const slash = text.indexOf('/');
  const addrText = slash === -1 ? text : text.slice(0, slash);
  const prefixText = slash === -1 ? undefined : text.slice(slash + 1);
  let addr = parseStrictAddr(addrText);
  if (addr === undefined) return `allowlist entry ${shown} is not an IPv4 or IPv6 address or CIDR`;
  const max = addr.kind() === 'ipv4' ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
      return `allowlist entry ${shown} has an invalid prefix length (0-${max})`;
    }
    prefix = Number(prefixText);
  }
  if (addr.kind() === 'ipv6') {
    const v6 = addr as ipaddr.IPv6;
    if (v6.zoneId !== undefined) return `allowlist entry ${shown} must not carry a zone id`;
    if (v6.isIPv4MappedAddress()) {
      if (prefix < 96) return `allowlist entry ${shown} mixes IPv4-mapped and plain IPv6 space (prefix < 96)`;
      addr = v6.toIPv4Address();
      prefix -= 96;
    }
  }
  const network = maskTo(addr, prefix);
  return { cidr: `${network.toString()}/${prefix}`, kind: network.kind(), prefix, network };
}

/**
 * Validates a whole list, for the API (`PUT /v1/allowlist` answers 400 with these errors) and for
 * `COFFER_READ_ALLOWLIST`.
 *
 * @param list - the entries
 * @returns canonical entries (duplicates removed, order kept), or every error found
 * @example
 * ```ts
 * validateCidrs(['10.8.0.0/24', '::1']); // { ok: true, cidrs: ['10.8.0.0/24', '::1/128'], ... }
 * ```
 */
export function validateCidrs(list: unknown): CidrValidation {
  if (!Array.isArray(list)) return { ok: false, errors: ['allowlist must be an array of CIDR strings'] };
  if (list.length > MAX_ALLOWLIST_ENTRIES) {
    return { ok: false, errors: [`allowlist has ${list.length} entries; at most ${MAX_ALLOWLIST_ENTRIES} are allowed`] };
  }
  const errors: string[] = [];
  const entries: CidrEntry[] = [];
  const seen = new Set<string>();
  for (const item of list as unknown[]) {
    const parsed = parseCidr(item);
    if (typeof parsed === 'string') errors.push(parsed);
    else if (!seen.has(parsed.cidr)) {
      seen.add(parsed.cidr);
      entries.push(parsed);
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, entries, cidrs: entries.map((e) => e.cidr) };
}

/**
 * Normalises a client address for matching and logging: strict parse, IPv4-mapped IPv6 → IPv4,
 * zone id dropped.
 *
 * @param ip - an address as a socket or header reports it
 * @returns the canonical address text, or `undefined` when it is not an IP address
 * @example
 * ```ts
 * normaliseIp('::ffff:127.0.0.1'); // '127.0.0.1'
 * ```
 */
export function normaliseIp(ip: string | undefined): string | undefined {
  if (ip === undefined) return undefined;
  const addr = parseStrictAddr(ip.trim());
  return addr === undefined ? undefined : normalise(addr).toString();
}

/**
 * The network an address is held accountable as: an IPv4 address by itself, an IPv6 address by its
 * /64 (the usual allocation to one host or site, so a client cannot dodge a per-address limit by
 * stepping through its own /64).
 *
 * @param ip - a normalised address (from {@link normaliseIp})
 * @returns e.g. `10.0.0.7` or `2001:db8:1:2::/64`; the input itself when it is not an address
 */
export function addressKey(ip: string): string {
  if (!ip.includes(':')) return ip;
  const addr = parseStrictAddr(ip);
  if (addr === undefined || addr.kind() !== 'ipv6') return ip;
  return `${(addr as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16)).join(':')}::/64`;
}

/**
 * An immutable, compiled allowlist. Build one per replicated allowlist version, not per request.
 *
 * @example
 * ```ts
 * const list = Allowlist.from(['10.8.0.0/24']);
 * list.allows('10.8.0.9');        // true
 * list.allows('::ffff:10.8.0.9'); // true
 * Allowlist.from(['10.8.0.0/24', 'oops']).allows('10.8.0.9'); // false: fail closed
 * ```
 */
export class Allowlist {
  /** Canonical entries; empty when the list is empty or invalid. */
  readonly entries: readonly CidrEntry[];
  /** Why the list denies everything, if it was invalid; empty otherwise. */
  readonly errors: readonly string[];
  /** IPv4 entries as (network, mask) pairs: the hot path for reads avoids ipaddr.js parsing. */
  private readonly v4: readonly (readonly [number, number])[];

  private constructor(entries: readonly CidrEntry[], errors: readonly string[]) {
    this.entries = Object.freeze([...entries]);
    this.errors = Object.freeze([...errors]);
    this.v4 = entries
      .filter((e) => e.kind === 'ipv4')
      .map((e) => {
        const mask = e.prefix === 0 ? 0 : (0xffffffff << (32 - e.prefix)) >>> 0;
        return [ipv4ToUint(e.network.toString()) ?? 0, mask] as const;
      });
  }

  /**
   * Compiles a list. Never throws: an invalid list yields an allowlist that denies everything
   * and carries the errors.
   *
   * @param list - CIDR strings
   * @returns the compiled allowlist
   */
  static from(list: readonly string[]): Allowlist {
    const v = validateCidrs(list);
    return v.ok ? new Allowlist(v.entries, []) : new Allowlist([], v.errors);
  }

  /** @returns an allowlist that denies every address */
  static denyAll(): Allowlist {
    return new Allowlist([], []);
  }

  /**
   * @param ip - client address (as from {@link clientIp}); `undefined` is denied
   * @returns whether the address falls in any entry; always false for an empty or invalid list
   */
  allows(ip: string | undefined): boolean {
    if (ip === undefined || this.entries.length === 0) return false;
    // Fast path for what sockets report: dotted IPv4, plain or IPv4-mapped.
    const v4 = ipv4ToUint(ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' ? ip.slice(7) : ip);
    if (v4 !== undefined) {
      for (const [net, mask] of this.v4) if (((v4 & mask) >>> 0) === net) return true;
      return false;
    }
    const parsed = parseStrictAddr(ip.trim());
    if (parsed === undefined) return false;
    const addr = normalise(parsed);
    for (const e of this.entries) {
      if (e.kind === addr.kind() && addr.match(e.network, e.prefix)) return true;
    }
    return false;
  }
}

const DOTTED_RE = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/** Strict dotted-decimal IPv4 → uint32 (same acceptance as ipaddr's four-part decimal check). */
function ipv4ToUint(text: string): number | undefined {
  const m = DOTTED_RE.exec(text);
  if (m === null) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(m[i]);
    if (octet > 255) return undefined;
    n = n * 256 + octet;
  }
  return n;
}

/** The parts of a request {@link clientIp} looks at (an `http.IncomingMessage` fits). */
export interface ClientIpSource {
  readonly socket: { readonly remoteAddress?: string | undefined };
  readonly headers: IncomingHttpHeaders;
}

/** Which reverse proxies may name the client in `X-Forwarded-For`. */
export interface ProxyTrust {
  /** `COFFER_TRUST_PROXY`: the direct peer (the socket's address) is a trusted proxy. */
  readonly trustDirectPeer: boolean;
  /** `COFFER_TRUSTED_PROXIES`: addresses of proxies whose `X-Forwarded-For` entries are believed. */
  readonly proxies: Allowlist;
}

/** No proxy is trusted: the socket's address is the client's. */
export const NO_PROXY_TRUST: ProxyTrust = Object.freeze({ trustDirectPeer: false, proxies: Allowlist.denyAll() });

/**
 * The client's address. Without proxy trust it is the socket's, and `X-Forwarded-For` is ignored
 * entirely, so a client cannot spoof its way onto the allowlist. When the direct peer is a trusted
 * proxy, the header is walked from the right (each proxy appends the address it saw, so only
 * right-most entries were written by proxies we trust): the client is the right-most entry that is
 * not itself a trusted proxy. `COFFER_TRUST_PROXY=true` trusts exactly one proxy, the direct peer,
 * so the client is the right-most entry. Entries to the left of the first untrusted one were
 * written by the client and are never read. An unparseable entry at the chosen position means a
 * broken proxy chain: the request gets no address (callers deny) rather than falling back.
 *
 * @param req - the request
 * @param trust - which proxies are trusted
 * @returns the normalised address, or `undefined` if none is usable (callers deny)
 * @example
 * ```ts
 * clientIp(req, NO_PROXY_TRUST); // e.g. '127.0.0.1' even if X-Forwarded-For says otherwise
 * ```
 */
export function clientIp(req: ClientIpSource, trust: ProxyTrust): string | undefined {
  const peer = normaliseIp(req.socket.remoteAddress);
  const peerTrusted = peer !== undefined && (trust.trustDirectPeer || trust.proxies.allows(peer));
  if (!peerTrusted) return peer;
  const raw = req.headers['x-forwarded-for'];
  // Several header lines are one list, in order (RFC 9110 §5.3).
  const header = Array.isArray(raw) ? raw.join(',') : raw;
  if (header === undefined || header.trim() === '') return peer;
  const hops = header.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normaliseIp(hops[i]);
    if (hop === undefined) return undefined;
    // COFFER_TRUST_PROXY alone: the direct peer is the one trusted proxy, the next hop is the client.
    if (trust.proxies.allows(hop) && i > 0) continue;
    return hop;
  }
  return undefined;
}
