// Every fuzz target, in one list: fuzz.test.ts runs a short run of each in CI, and
// `pnpm soak:security` (scripts/soak-security.mjs) runs ≥ 1,000,000 inputs of each.
// Add a target here when a new decoder starts reading outside bytes.
import type { FuzzTarget } from './engine.js';
import { apiRoutes } from './targets-api.js';
import { NODE_TARGETS } from './targets-node.js';
import { RAFT_TARGETS } from './targets-raft.js';
import { STATE_TARGETS } from './targets-state.js';

export const FUZZ_TARGETS: readonly FuzzTarget[] = [...RAFT_TARGETS, ...STATE_TARGETS, ...NODE_TARGETS, apiRoutes];

/**
 * @param name - a target name
 * @returns the target
 * @throws {Error} when no target has that name
 */
export function targetByName(name: string): FuzzTarget {
  const t = FUZZ_TARGETS.find((x) => x.name === name);
  if (t === undefined) throw new Error(`no fuzz target "${name}" (have: ${FUZZ_TARGETS.map((x) => x.name).join(', ')})`);
  return t;
}
