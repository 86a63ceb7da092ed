// The one place tests look inside a RawNode: invariant checks (election safety, leader
// completeness, log matching) and a few white-box tests read the Raft core's private state, which
// no public API exposes by design. The cast lives here only (allow-listed in eslint.config.mjs).
import type { RawNode } from '../src/index';

/** The parts of the Raft core the tests read. */
export interface RaftInternals {
  role: string;
  term: number;
  electionElapsed: number;
  randomizedElectionTimeout: number;
  log: {
    committed: number;
    firstIndex(): number;
    lastIndex(): number;
    term(i: number): number | null;
    slice(lo: number, hi: number, max: number): { type: string; data: Uint8Array }[];
  };
}

/** The Raft core inside `node` (read-only use in tests). */
export function raftOf(node: RawNode): RaftInternals {
  return (node as unknown as { raft: RaftInternals }).raft;
}
