/**
 * Is this process in a sealed test network namespace, where a private address cannot leave the
 * machine? Used before sending to any non-loopback address.
 *
 * Sealed means: the namespace has no default route (IPv4 or IPv6), so only the directly attached
 * test subnet is reachable; and, where it can be told, it is not the machine's own namespace
 * (`/proc/1/ns/net` is unreadable in some sandboxes) nor the namespace of the test process that
 * started it (`COFFER_JEPSEN_PARENT_NETNS`, set by the harness).
 */
import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';

let cached: string | null | undefined;

function link(p: string): string | undefined {
  try {
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

/**
 * @returns null when sealed, else why not
 */
export function unsealedReason(): string | null {
  if (cached !== undefined) return cached;
  cached = compute();
  return cached;
}

function compute(): string | null {
  const own = link('/proc/self/ns/net');
  if (own === undefined) return 'cannot tell which network namespace this process is in';
  const init = link('/proc/1/ns/net');
  if (init !== undefined && init === own) return 'this process runs in the machine\'s own network namespace';
  const parent = process.env['COFFER_JEPSEN_PARENT_NETNS'];
  if (parent !== undefined && parent === own) return 'this process runs in the test process\'s network namespace';
  for (const family of ['-4', '-6']) {
    const r = spawnSync('ip', [family, 'route', 'show', 'default'], { encoding: 'utf8', timeout: 10_000 });
    if (r.error !== undefined || r.status !== 0) return `cannot list routes (${r.error?.message ?? r.stderr.trim()})`;
    if (r.stdout.trim() !== '') return `this network namespace has a default route (${family === '-4' ? 'IPv4' : 'IPv6'}): a private address could leave the machine`;
  }
  return null;
}
