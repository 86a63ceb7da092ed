// The configuration in force (Raft thesis §4.1): the latest one in this node's log. Kept as the
// configuration of the latest snapshot plus every confChange entry after it, in log order, so a
// truncated change is rolled back with its entry.
import { decodeConfChange } from './codec.js';
import { applyConfChangeTo } from './conf-change.js';
import { invariant } from './errors.js';
import type { ConfChange, ConfState, Entry } from './types.js';

/** Configurations of the log: the snapshot's, then one per confChange entry. */
export class ConfLog {
  private base: ConfState;
  private changes: { index: number; cs: ConfState }[] = [];

  constructor(base: ConfState) {
    this.base = { voters: [...base.voters], learners: [...base.learners] };
  }

  /** The configuration in force: the latest in the log. */
  current(): ConfState {
    return this.changes.length > 0 ? this.changes[this.changes.length - 1]!.cs : this.base;
  }

  /** Index of the latest confChange entry in the log (0 when none after the snapshot). */
  lastIndex(): number {
    return this.changes.length > 0 ? this.changes[this.changes.length - 1]!.index : 0;
  }

  /**
   * Notes an entry appended to the log (non-confChange entries are ignored).
   *
   * @param e - the entry
   * @param self - this node's id, for the error message
   * @returns whether the configuration changed
   * @throws {InvariantError} an undecodable confChange entry
   */
  note(e: Entry, self: string): boolean {
    if (e.type !== 'confChange') return false;
    let cc: ConfChange;
    try {
      cc = decodeConfChange(e.data);
    } catch (cause) {
      invariant(false, `${self} undecodable confChange entry at ${e.index}: ${String(cause)}`);
    }
    this.changes.push({ index: e.index, cs: applyConfChangeTo(this.current(), cc) });
    return true;
  }

  /**
   * Forgets changes at or after `first` (their entries are being replaced).
   *
   * @returns whether any was forgotten
   */
  truncateFrom(first: number): boolean {
    let changed = false;
    while (this.changes.length > 0 && this.changes[this.changes.length - 1]!.index >= first) {
      this.changes.pop();
      changed = true;
    }
    return changed;
  }

  /** Starts over from a snapshot's configuration. */
  reset(base: ConfState): void {
    this.base = { voters: [...base.voters], learners: [...base.learners] };
    this.changes = [];
  }
}
