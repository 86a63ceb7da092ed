/**
 * Removal from the cluster. A removed node stops serving (503 `removed`) and stays so across
 * restarts (a `REMOVED` marker file in the data dir); members that see a removed node still
 * sending Raft messages tell it again (peer RPC `removed`).
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { ConfState, NodeId } from '@coffer/raft';
import type { Logger } from '../logger.js';
import type { MembershipApplied } from '../raft/apply.js';

/** A removed member: its Raft address and the log index of its removal. */
export interface RemovedPeer {
  readonly raftAddr: string;
  readonly index: number;
}

/** What {@link Removal} needs. */
export interface RemovalDeps {
  readonly nodeId: NodeId;
  readonly dataDir: string;
  readonly logger: Logger;
  /** Sends the `removed` RPC to a member. */
  readonly callPeer: (to: NodeId, base: string, method: string, body: unknown) => Promise<{ status: number }>;
  readonly closing: () => boolean;
}

/** This node's removal, and the members it saw removed. */
export class Removal {
  private readonly deps: RemovalDeps;
  private readonly marker: string;
  private selfRemoved: boolean;
  /** Whether this node was ever a member (a node that was and no longer is was removed). */
  private wasMember = false;
  private readonly removedPeers = new Map<string, RemovedPeer>();
  private readonly lastNotice = new Map<string, number>();

  /** @param deps - see {@link RemovalDeps}; a marker from an earlier run is read here */
  constructor(deps: RemovalDeps) {
    this.deps = deps;
    this.marker = path.join(deps.dataDir, 'REMOVED');
    this.selfRemoved = existsSync(this.marker);
    if (this.selfRemoved) deps.logger.warn(`${deps.nodeId} was removed from its cluster (${this.marker} exists): it answers 503 to everything; wipe the data dir to reuse this machine`);
  }

  /** @returns whether this node ever was a member (in the configuration or the address book) */
  get everMember(): boolean {
    return this.wasMember;
  }

  /** Notes that this node is a member now (called at boot and after each apply). */
  noteMember(isMember: boolean): void {
    if (isMember) this.wasMember = true;
  }

  /**
   * @param members - the configuration in force
   * @returns whether this node has been removed: told so, or a member once and no longer in it
   */
  isRemoved(members: ConfState): boolean {
    const id = this.deps.nodeId;
    return this.selfRemoved || (this.wasMember && !members.voters.includes(id) && !members.learners.includes(id));
  }

  /** @returns the removal of a member still talking to this node, if it was removed */
  removedPeer(id: NodeId): RemovedPeer | undefined {
    return this.removedPeers.get(id);
  }

  /**
   * This node was removed: write the marker (once) and stop serving.
   *
   * @param by - who said so (a member id, or `its own log`)
   */
  markSelfRemoved(by: string): void {
    if (this.selfRemoved) return;
    this.selfRemoved = true;
    try {
      writeFileSync(this.marker, `removed from the cluster (told by ${by}) at ${new Date().toISOString()}\n`, { mode: 0o600 });
    } catch (err) {
      this.deps.logger.error({ err: String(err) }, 'could not write the removal marker');
    }
    this.deps.logger.warn(`${this.deps.nodeId} was removed from the cluster (told by ${by}); it no longer serves`);
  }

  /** The applier's hook for every membership change. */
  onMembershipApplied(change: MembershipApplied): void {
    const nodeId = this.deps.nodeId;
    if (change.type !== 'remove') {
      // Re-added under the same id (e.g. after wiping its data dir): it is a member again.
      this.removedPeers.delete(change.id);
      if (change.id === nodeId && this.selfRemoved) {
        // This node, joining afresh under an id that was removed before, replayed that old
        // removal from the log while catching up; the later addition supersedes it.
        this.selfRemoved = false;
        rmSync(this.marker, { force: true });
        this.deps.logger.info(`${nodeId} was added to the cluster again`);
      }
      return;
    }
    if (change.id === nodeId) {
      this.markSelfRemoved('its own log');
      return;
    }
    if (change.raftAddr === '') return;
    const removed = { raftAddr: change.raftAddr, index: change.index };
    this.removedPeers.set(change.id, removed);
    void this.notify(change.id, removed);
  }

  /**
   * Tells a removed member so (at most once a second per member, three attempts).
   *
   * @param id - the member
   * @param removed - where it is and when it was removed
   */
  async notify(id: string, removed: RemovedPeer): Promise<void> {
    const now = Date.now();
    if (now - (this.lastNotice.get(id) ?? 0) < 1_000 || this.deps.closing()) return;
    this.lastNotice.set(id, now);
    for (let attempt = 0; attempt < 3 && !this.deps.closing(); attempt++) {
      try {
        if ((await this.deps.callPeer(id, removed.raftAddr, 'removed', { index: removed.index })).status === 200) return;
      } catch {
        // down or unreachable: it will be told when it next sends a Raft message
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  }
}
