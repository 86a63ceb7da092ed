/**
 * The member addresses carried in a Raft membership change's `context`, and the founding entries
 * of a new cluster.
 *
 * Invariant: every founder of a cluster must produce byte-identical founding entries (Raft's log
 * matching assumes that equal (index, term) means equal entries), so they are built only from
 * COFFER_INITIAL_CLUSTER, sorted by id, with no API address: each member registers its own API
 * address through the leader once the cluster runs.
 */
import { encodeConfChange, type Entry, type HardState } from '@coffer/raft';
import type { ClusterMember } from '../config.js';

/** Addresses of a member as they travel in a ConfChange context. */
export interface MemberAddresses {
  raftAddr: string;
  apiAddr: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

/**
 * @param a - the member's addresses
 * @returns the ConfChange context bytes (canonical JSON, fixed key order)
 */
export function encodeMemberContext(a: MemberAddresses): Uint8Array {
  return enc.encode(JSON.stringify({ raftAddr: a.raftAddr, apiAddr: a.apiAddr }));
}

/**
 * @param b - a ConfChange context
 * @returns the addresses, or empty strings when the context carries none
 */
export function decodeMemberContext(b: Uint8Array): MemberAddresses {
  if (b.length === 0) return { raftAddr: '', apiAddr: '' };
  try {
    const v = JSON.parse(dec.decode(b)) as Partial<MemberAddresses>;
    return { raftAddr: typeof v.raftAddr === 'string' ? v.raftAddr : '', apiAddr: typeof v.apiAddr === 'string' ? v.apiAddr : '' };
  } catch {
    return { raftAddr: '', apiAddr: '' };
  }
}

/**
 * The founding log of a new cluster: one committed `addVoter` per initial member at term 1.
 *
 * @param members - COFFER_INITIAL_CLUSTER
 * @returns entries 1..n and the hard state that commits them
 */
export function foundingLog(members: readonly ClusterMember[]): { entries: Entry[]; hardState: HardState } {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const entries: Entry[] = sorted.map((m, i) => ({
    term: 1,
    index: i + 1,
    type: 'confChange',
    data: encodeConfChange({ type: 'addVoter', nodeId: m.id, context: encodeMemberContext({ raftAddr: m.raftUrl, apiAddr: '' }) }),
  }));
  return { entries, hardState: { term: 1, vote: null, commit: entries.length } };
}
