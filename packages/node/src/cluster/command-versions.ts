/**
 * Upgrade gating: the command versions each member can apply. A member says so in its `hello`
 * peer RPC; one that has not said is assumed at the baseline. The leader never proposes a command
 * version some member cannot apply (that member would stop: it never skips an entry).
 */
import type { ConfState, NodeId } from '@coffer/raft';
import { allVotersSupport, BASELINE_COMMAND_VERSIONS, type Command, SUPPORTED_COMMAND_VERSIONS } from '@coffer/state';
import { ServiceError } from '../service/errors.js';

/** What the members advertised. */
export class CommandVersions {
  private readonly nodeId: NodeId;
  private readonly advertised = new Map<NodeId, Readonly<Partial<Record<string, number>>>>();

  /** @param nodeId - this node (it applies this build's {@link SUPPORTED_COMMAND_VERSIONS}) */
  constructor(nodeId: NodeId) {
    this.nodeId = nodeId;
  }

  /**
   * Records a member's table (from its `hello`).
   *
   * @param from - the member
   * @param table - from {@link parseCommandTable}
   */
  record(from: NodeId, table: Readonly<Record<string, number>>): void {
    this.advertised.set(from, table);
  }

  /**
   * @param type - the command about to be proposed
   * @param members - the configuration in force
   * @throws {ServiceError} `upgrade_pending` when a voter or learner cannot apply it yet
   */
  check(type: Command['type'], members: ConfState): void {
    const tables = [...members.voters, ...members.learners].map((id) => (id === this.nodeId ? SUPPORTED_COMMAND_VERSIONS : (this.advertised.get(id) ?? BASELINE_COMMAND_VERSIONS)));
    if (!allVotersSupport(type, tables)) {
      throw new ServiceError('upgrade_pending', `not every member can apply ${type} v${SUPPORTED_COMMAND_VERSIONS[type]} yet: finish upgrading every node first`, { retryAfterSecs: 5 });
    }
  }
}

/**
 * A peer's advertised command table: at most 256 `type → version` pairs, versions 1–255.
 *
 * @param v - the `commands` field of a `hello` body
 * @returns the frozen table, or undefined when it is malformed
 */
export function parseCommandTable(v: unknown): Readonly<Record<string, number>> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 256) return undefined;
  const out: Record<string, number> = Object.create(null) as Record<string, number>;
  for (const [k, n] of entries) {
    if (k.length > 64 || typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 255) return undefined;
    out[k] = n;
  }
  return Object.freeze(out);
}
