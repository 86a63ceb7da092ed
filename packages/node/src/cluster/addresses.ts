/**
 * Where the members are: the replicated address book first, then COFFER_INITIAL_CLUSTER, then
 * what a join taught this node (a new member knows no peer address until the first entries or
 * snapshot reach it).
 */
import type { NodeId } from '@coffer/raft';
import type { StateMachine } from '@coffer/state';
import type { ServerConfig } from '../config.js';

/** Member addresses as this node knows them. */
export class AddressBook {
  private readonly config: Readonly<ServerConfig>;
  private readonly state: () => StateMachine;
  private readonly initial: ReadonlyMap<NodeId, string>;
  private readonly hints = new Map<NodeId, string>();

  /**
   * @param config - this node's id and advertised API address, and the initial cluster
   * @param state - the replicated state (read each time: a snapshot install replaces it)
   */
  constructor(config: Readonly<ServerConfig>, state: () => StateMachine) {
    this.config = config;
    this.state = state;
    this.initial = new Map(config.initialCluster.map((m) => [m.id, m.raftUrl]));
  }

  /** @returns a member's Raft listener (e.g. `http://10.8.0.2:8201`), if known */
  raftAddrOf(id: NodeId): string | undefined {
    const m = this.state().listMembers().find((x) => x.id === id);
    if (m !== undefined && m.raftAddr !== '') return m.raftAddr;
    return this.initial.get(id) ?? this.hints.get(id);
  }

  /** @returns a member's Raft address from COFFER_INITIAL_CLUSTER, if it is listed there */
  initialRaftAddr(id: NodeId): string | undefined {
    return this.initial.get(id);
  }

  /** @returns a member's API origin (this node's advertised one for itself), if known */
  apiAddrOf(id: NodeId): string | undefined {
    if (id === this.config.nodeId) return this.config.advertiseApi;
    const m = this.state().listMembers().find((x) => x.id === id);
    return m !== undefined && m.apiAddr !== '' ? m.apiAddr : undefined;
  }

  /**
   * Remembers a Raft address learnt outside the log (a join request, a join answer).
   *
   * @param id - the member
   * @param raftAddr - its Raft listener
   */
  hint(id: NodeId, raftAddr: string): void {
    this.hints.set(id, raftAddr);
  }
}
