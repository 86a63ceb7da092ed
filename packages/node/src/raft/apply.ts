/**
 * Applying committed entries to the node store: the driver's {@link Applier}. Commands go to the
 * state machine in runs; a membership change also updates the replicated address book,
 * immediately before the entry itself, so both land in the same ordered stream on every node.
 */
import type { ConfChange, Entry } from '@coffer/raft';
import type { ApplyResult, NodeStore } from '@coffer/state';
import type { Applier, ApplyOutcome } from './driver-types.js';
import { decodeMemberContext } from './members.js';

/** A membership change as it is applied. */
export interface MembershipApplied {
  readonly type: ConfChange['type'];
  readonly id: string;
  /** The member's Raft address (for a removal: as it was before). */
  readonly raftAddr: string;
  /** Log index of the change. */
  readonly index: number;
}

/**
 * The driver's applier over the node store.
 *
 * @param store - the node store (state machine, snapshots)
 * @param onMembership - told of each membership change as it is applied (removal bookkeeping)
 * @returns the applier
 */
export function createApplier(store: NodeStore, onMembership: (change: MembershipApplied) => void): Applier {
  return {
    appliedIndex: () => store.applied,
    apply: (entries, confChanges, early) => applyEntries(store, entries, confChanges, onMembership, early),
    snapshot: async () => {
      const snap = await store.createSnapshot();
      return { index: snap.index, data: snap.data };
    },
    restore: async (_index, data) => {
      await store.restoreSnapshot(data);
    },
  };
}

/**
 * Applies a batch of committed entries.
 *
 * @param store - the node store
 * @param entries - committed entries, in order
 * @param confChanges - the decoded membership changes among them, by index
 * @param onMembership - told of each membership change (before the address book changes for an
 *   addition, after for a removal)
 * @param early - given the outcomes of the entries after the last membership change as soon as
 *   they are applied in memory (see {@link Applier.apply})
 * @returns one outcome per entry
 */
export async function applyEntries(
  store: NodeStore,
  entries: readonly Entry[],
  confChanges: ReadonlyMap<number, ConfChange>,
  onMembership?: (change: MembershipApplied) => void,
  early?: (outcomes: ReadonlyMap<number, ApplyOutcome>) => void,
): Promise<ApplyOutcome[]> {
  const byIndex = new Map<number, ApplyOutcome>();
  let run: Entry[] = [];
  const flush = async (last = false): Promise<void> => {
    if (run.length === 0) return;
    const onApplied =
      last && early !== undefined
        ? (results: readonly ApplyResult[]): void => {
            const m = new Map<number, ApplyOutcome>();
            for (const r of results) m.set(r.index, r);
            early(m);
          }
        : undefined;
    const results = await store.applyEntries(run, onApplied);
    for (const r of results) byIndex.set(r.index, r);
    run = [];
  };
  for (const e of entries) {
    const cc = confChanges.get(e.index);
    if (cc !== undefined && e.index > store.applied) {
      await flush();
      const addr = decodeMemberContext(cc.context);
      const sm = store.state;
      if (cc.type === 'remove') {
        const prev = sm.listMembers().find((m) => m.id === cc.nodeId);
        sm.applyCommand({ type: 'member.remove', requestId: '', at: 0, id: cc.nodeId });
        onMembership?.({ type: 'remove', id: cc.nodeId, raftAddr: prev?.raftAddr ?? '', index: e.index });
      } else {
        onMembership?.({ type: cc.type, id: cc.nodeId, raftAddr: addr.raftAddr, index: e.index });
        const prev = sm.listMembers().find((m) => m.id === cc.nodeId);
        sm.applyCommand({
          type: 'member.upsert',
          requestId: '',
          at: 0,
          id: cc.nodeId,
          raftAddr: addr.raftAddr !== '' ? addr.raftAddr : (prev?.raftAddr ?? ''),
          apiAddr: addr.apiAddr !== '' ? addr.apiAddr : (prev?.apiAddr ?? ''),
        });
      }
    }
    run.push(e);
    if (cc !== undefined) await flush();
  }
  await flush(true);
  return entries.map((e) => byIndex.get(e.index));
}
