/**
 * Upgrade gating: the command versions each member can apply. A member says so in its `hello`
 * peer RPC; one that has not said falls back to the replicated floor (`cluster.versions`, the
 * versions every member listed there supported when a leader had heard from all of them), else to
 * the baseline. The leader never proposes a command version some member cannot apply (that member
 * would stop: it never skips an entry). The floor keeps a member that is down from holding newer
 * command types back after a leader change: it never said hello to the new leader.
 */
import type { ConfState, NodeId } from '@coffer/raft';
import { allVotersSupport, BASELINE_COMMAND_VERSIONS, type Command, COMMAND_TYPE_IDS, SUPPORTED_COMMAND_VERSIONS, type VersionFloorRecord } from '@coffer/state';
import { ServiceError } from '../service/errors.js';

/** The command types a follower may hand to the leader (Raft MsgProp): what `proposeHere` routes propose. */
export const HANDED_COMMAND_TYPES: ReadonlySet<Command['type']> = new Set(['secret.put']);
const TYPE_BY_ID: ReadonlyMap<number, Command['type']> = new Map(Object.entries(COMMAND_TYPE_IDS).map(([t, id]) => [id, t as Command['type']]));

/**
 * Whether a leader whose `hello` answer listed `table` applies the handed command types exactly as
 * this build encodes them (a follower hands proposals only to such a leader).
 */
export function sameHandedVersions(table: Readonly<Record<string, number>> | undefined): boolean {
  if (table === undefined) return false;
  for (const t of HANDED_COMMAND_TYPES) if (table[t] !== SUPPORTED_COMMAND_VERSIONS[t]) return false;
  return true;
}

/** What the members advertised. */
export class CommandVersions {
  private readonly nodeId: NodeId;
  private readonly advertised = new Map<NodeId, Readonly<Partial<Record<string, number>>>>();

  private readonly floor: () => Readonly<VersionFloorRecord> | undefined;

  /**
   * @param nodeId - this node (it applies this build's {@link SUPPORTED_COMMAND_VERSIONS})
   * @param floor - the replicated floor (`versionFloorOf(store.state)`)
   */
  constructor(nodeId: NodeId, floor: () => Readonly<VersionFloorRecord> | undefined = () => undefined) {
    this.nodeId = nodeId;
    this.floor = floor;
  }

  /** What `id` is known to apply: its hello, else the replicated floor if it lists `id`, else the baseline. */
  private tableOf(id: NodeId): Readonly<Partial<Record<string, number>>> {
    if (id === this.nodeId) return SUPPORTED_COMMAND_VERSIONS;
    const said = this.advertised.get(id);
    if (said !== undefined) return said;
    const f = this.floor();
    return f !== undefined && f.members.includes(id) ? Object.fromEntries(f.versions) : BASELINE_COMMAND_VERSIONS;
  }

  /**
   * The `cluster.versions` command to propose now: when every member of `members` has said which
   * versions it applies in a hello to this node (or is this node) and the replicated floor does
   * not already say the same.
   *
   * @param members - the configuration in force
   * @param at - the proposer's clock
   * @returns the command, or undefined when there is nothing to record
   */
  floorProposal(members: ConfState, at: number): Command | undefined {
    const ids = [...new Set([...members.voters, ...members.learners])].sort();
    if (ids.length < 2 || ids.length > 64) return undefined;
    const tables: Readonly<Partial<Record<string, number>>>[] = [];
    for (const id of ids) {
      const t = id === this.nodeId ? SUPPORTED_COMMAND_VERSIONS : this.advertised.get(id);
      if (t === undefined) return undefined;
      tables.push(t);
    }
    const versions: [string, number][] = [];
    for (const type of Object.keys(SUPPORTED_COMMAND_VERSIONS).sort()) {
      const v = Math.min(...tables.map((t) => t[type] ?? 0));
      if (v >= 1) versions.push([type, v]);
    }
    const f = this.floor();
    if (f !== undefined && JSON.stringify(f.versions) === JSON.stringify(versions) && JSON.stringify(f.members) === JSON.stringify(ids)) return undefined;
    return { type: 'cluster.versions', requestId: '', at, versions, members: ids };
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
  /**
   * Whether the leader appends a command a follower handed it: a handed type, encoded in the
   * version this build encodes, that every member can apply (as {@link check}). Anything else is
   * dropped: the follower's request then ends with an unknown outcome after its timeout.
   *
   * @param data - the encoded command (`[version u8][type u8]…`)
   * @param members - the configuration in force
   */
  admitsHanded(data: Uint8Array, members: ConfState): boolean {
    const type = data.length < 2 ? undefined : TYPE_BY_ID.get(data[1] as number);
    if (type === undefined || !HANDED_COMMAND_TYPES.has(type) || data[0] !== SUPPORTED_COMMAND_VERSIONS[type]) return false;
    const tables = [...members.voters, ...members.learners].map((id) => this.tableOf(id));
    return allVotersSupport(type, tables);
  }

  check(type: Command['type'], members: ConfState): void {
    const tables = [...members.voters, ...members.learners].map((id) => this.tableOf(id));
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
