// Majority arithmetic over a voter set (etcd-io/raft `quorum/majority.go`): how many make a
// quorum, the highest index a quorum holds, and whether an election is won, lost or open.
import type { NodeId } from './types.js';

/** Outcome of counting votes. */
export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * @param voters - number of voters
 * @returns the size of a majority
 */
export function majority(voters: number): number {
  return Math.floor(voters / 2) + 1;
}

/**
 * The highest index held by a majority of `voters` (etcd `CommittedIndex`).
 *
 * @param voters - the voter set
 * @param matchOf - each voter's match index
 * @returns that index, or null for an empty voter set
 */
export function committedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number): number | null {
  const matches: number[] = [];
  for (const id of voters) matches.push(matchOf(id));
  if (matches.length === 0) return null;
  matches.sort((a, b) => b - a);
  return matches[majority(voters.size) - 1]!;
}

/**
 * Counts the votes of `voters` (etcd `VoteResult`); votes from non-voters are ignored.
 *
 * @param voters - the voter set
 * @param votes - granted (true) or rejected (false) per node
 * @returns won once a majority granted, lost once a majority can no longer grant, else pending
 */
export function voteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let yes = 0;
  let no = 0;
  for (const v of voters) {
    const g = votes.get(v);
    if (g === true) yes++;
    else if (g === false) no++;
  }
  const q = majority(voters.size);
  if (yes >= q) return 'won';
  if (no > voters.size - q) return 'lost';
  return 'pending';
}

/**
 * @param voters - the voter set
 * @param acks - nodes that acknowledged something
 * @returns whether the acknowledging voters form a majority
 */
export function hasQuorum(voters: ReadonlySet<NodeId>, acks: Iterable<NodeId>): boolean {
  let n = 0;
  for (const id of acks) if (voters.has(id)) n++;
  return n >= majority(voters.size);
}
