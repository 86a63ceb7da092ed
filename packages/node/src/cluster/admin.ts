/**
 * The cluster as the API sees and changes it: who leads, the members with their health, adding
 * (as a learner) and removing members, handing leadership over, snapshots.
 */
import type { ConfState, Status } from '@coffer/raft';
import type { NodeStore } from '@coffer/state';
import type { ServerConfig } from '../config.js';
import type { ClusterAdmin, ClusterView, MemberView } from '../context.js';
import { ServiceError } from '../service/errors.js';
import type { RaftDriver } from '../raft/driver.js';
import { driverErrorToService } from '../raft/errors.js';
import { encodeMemberContext } from '../raft/members.js';
import type { AddressBook } from './addresses.js';

/** {@link ClusterView} and {@link ClusterAdmin} over the driver and the address book. */
export class ClusterControl implements ClusterView, ClusterAdmin {
  private readonly config: Readonly<ServerConfig>;
  private readonly driver: RaftDriver;
  private readonly store: NodeStore;
  private readonly addresses: AddressBook;

  /**
   * @param config - this node's id, advertised API address, election time
   * @param driver - the Raft driver
   * @param store - the node store (address book, snapshots)
   * @param addresses - member addresses
   */
  constructor(config: Readonly<ServerConfig>, driver: RaftDriver, store: NodeStore, addresses: AddressBook) {
    this.config = config;
    this.driver = driver;
    this.store = store;
    this.addresses = addresses;
  }

  isLeader(): boolean {
    return this.driver.isLeader();
  }

  leaderId(): string | null {
    return this.driver.leader();
  }

  leaderApiAddr(): string | undefined {
    const lead = this.driver.leader();
    return lead === null ? undefined : this.addresses.apiAddrOf(lead);
  }

  raftStatus(): Status {
    return this.driver.status();
  }

  confState(): ConfState {
    return this.driver.members();
  }

  members(): MemberView[] {
    const nodeId = this.config.nodeId;
    const st = this.driver.status();
    const cs = this.driver.members();
    const book = new Map(this.store.state.listMembers().map((m) => [m.id, m]));
    const view = (id: string, suffrage: 'voter' | 'learner'): MemberView => {
      const p = st.progress?.[id];
      const m = book.get(id);
      const healthy = id === nodeId ? true : p !== undefined ? p.recentActive : id === st.lead;
      return {
        id,
        raftAddr: m?.raftAddr || this.addresses.initialRaftAddr(id) || '',
        apiAddr: m?.apiAddr || (id === nodeId ? this.config.advertiseApi : ''),
        suffrage,
        matchIndex: p === undefined ? (id === nodeId ? st.lastIndex : null) : p.matchIndex,
        healthy,
      };
    };
    return [...cs.voters.map((id) => view(id, 'voter')), ...cs.learners.map((id) => view(id, 'learner'))].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async addMember(id: string, raftAddr: string, apiAddr: string): Promise<void> {
    const cs = this.driver.members();
    if (cs.voters.includes(id) || cs.learners.includes(id)) return;
    this.addresses.hint(id, raftAddr);
    try {
      await this.driver.proposeConfChange({ type: 'addLearner', nodeId: id, context: encodeMemberContext({ raftAddr, apiAddr }) });
    } catch (err) {
      throw driverErrorToService(err, this.driver.leader());
    }
  }

  async removeMember(id: string): Promise<void> {
    const cs = this.driver.members();
    if (!cs.voters.includes(id) && !cs.learners.includes(id)) throw new ServiceError('not_found', `member ${id} is not in the cluster`);
    try {
      await this.driver.proposeConfChange({ type: 'remove', nodeId: id, context: new Uint8Array(0) });
    } catch (err) {
      throw driverErrorToService(err, this.driver.leader());
    }
  }

  async transferLeadership(to: string | undefined): Promise<string> {
    const { driver } = this;
    const nodeId = this.config.nodeId;
    const st = driver.status();
    let target = to;
    if (target === undefined) {
      let best = -1;
      for (const id of driver.members().voters) {
        if (id === nodeId) continue;
        const m = st.progress?.[id]?.matchIndex ?? -1;
        if (m > best) {
          best = m;
          target = id;
        }
      }
    }
    if (target === undefined) throw new ServiceError('invalid_request', 'there is no other voter to hand leadership to');
    if (!driver.members().voters.includes(target)) throw new ServiceError('invalid_request', `${target} is not a voter`);
    if (target === nodeId) return nodeId;
    driver.transferLeadership(target);
    const deadline = Date.now() + this.config.electionMs * 3;
    while (Date.now() < deadline) {
      if (driver.leader() === target) return target;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new ServiceError('no_quorum', `leadership did not move to ${target} in time`, { retryAfterSecs: 1 });
  }

  snapshot(): Promise<{ index: number; term: number; data: Uint8Array }> {
    return this.store.createSnapshot();
  }
}
