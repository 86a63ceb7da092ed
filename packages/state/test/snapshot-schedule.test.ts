// The replicated record behind scheduled snapshots (COFFER_SNAPSHOT_INTERVAL): one committed claim
// per slot, outcomes only for the current claim, and the record survives persistence, Raft
// snapshots and `state.restore`.
import { StateMachine, type Command, type SnapshotPhase } from '../src/index.js';
import { replica } from './helpers.js';

const T0 = 1_700_000_000_000;
let seq = 0;

function sched(phase: SnapshotPhase, slotAt: number, nodeId: string, extra: Partial<Extract<Command, { type: 'snapshot.schedule' }>> = {}): Command {
  return { type: 'snapshot.schedule', requestId: `s-${++seq}`, at: slotAt + 10, phase, slotAt, nodeId, index: 0, sizeBytes: 0, error: null, ...extra };
}

describe('snapshot.schedule', () => {
  test('one claim per slot: an equal or older slot is stale, a later one wins', () => {
    const { sm, run } = replica();
    expect(sm.getSnapshotSchedule()).toBeNull();
    expect(run(sched('claim', T0, 'n1'))).toEqual({ status: 'ok' });
    // A deposed leader (or a retry under a new request id) claiming the same slot changes nothing.
    expect(run(sched('claim', T0, 'n2'))).toEqual({ status: 'stale' });
    expect(run(sched('claim', T0 - 1000, 'n2'))).toEqual({ status: 'stale' });
    expect(sm.getSnapshotSchedule()).toMatchObject({ slotAt: T0, nodeId: 'n1', state: 'claimed', lastSuccessAt: null });
    expect(run(sched('claim', T0 + 60_000, 'n2'))).toEqual({ status: 'ok' });
    expect(sm.getSnapshotSchedule()).toMatchObject({ slotAt: T0 + 60_000, nodeId: 'n2', state: 'claimed' });
  });

  test('outcomes count only from the current claim and its writer', () => {
    const { sm, run } = replica();
    run(sched('claim', T0, 'n1'));
    expect(run(sched('done', T0, 'n2', { index: 9, sizeBytes: 100 }))).toEqual({ status: 'stale' });
    expect(run(sched('done', T0 - 1, 'n1', { index: 9, sizeBytes: 100 }))).toEqual({ status: 'stale' });
    expect(run(sched('done', T0, 'n1', { index: 9, sizeBytes: 100 }))).toEqual({ status: 'ok' });
    expect(sm.getSnapshotSchedule()).toMatchObject({ state: 'done', lastSuccessAt: T0 + 10, lastSlotAt: T0, lastIndex: 9, lastSizeBytes: 100, lastNodeId: 'n1', failures: 0 });
    // A second report for the same slot is stale: the slot is settled.
    expect(run(sched('failed', T0, 'n1', { error: 'late' }))).toEqual({ status: 'stale' });
    expect(sm.getSnapshotSchedule()?.failures).toBe(0);
  });

  test('a failed slot may be claimed again (a retry); a success clears the error but keeps the count', () => {
    const { sm, run } = replica();
    run(sched('claim', T0, 'n1'));
    expect(run(sched('failed', T0, 'n1', { error: 'ENOSPC' }))).toEqual({ status: 'ok' });
    expect(sm.getSnapshotSchedule()).toMatchObject({ state: 'failed', lastError: 'ENOSPC', failures: 1 });
    expect(run(sched('claim', T0, 'n2'))).toEqual({ status: 'ok' });
    expect(sm.getSnapshotSchedule()).toMatchObject({ slotAt: T0, nodeId: 'n2', state: 'claimed', lastError: 'ENOSPC', failures: 1 });
    expect(run(sched('done', T0, 'n2', { index: 12, sizeBytes: 5 }))).toEqual({ status: 'ok' });
    expect(sm.getSnapshotSchedule()).toMatchObject({ state: 'done', lastError: null, lastErrorAt: null, failures: 1, lastIndex: 12 });
    // Settled: no further claim of that slot.
    expect(run(sched('claim', T0, 'n1'))).toEqual({ status: 'stale' });
  });

  test('the record is persisted, travels in Raft snapshots, and is kept across state.restore', () => {
    const a = replica();
    a.run(sched('claim', T0, 'n1'));
    a.run(sched('done', T0, 'n1', { index: 3, sizeBytes: 77 }));
    const changes = a.sm.takeChanges();
    const reloaded = StateMachine.fromRecords(changes.puts, changes.applied);
    expect(reloaded.getSnapshotSchedule()).toEqual(a.sm.getSnapshotSchedule());
    expect(reloaded.stateDigest()).toBe(a.sm.stateDigest());

    // A backup taken now, restored after two more slots: the schedule stays where the cluster is.
    const blob = a.sm.createSnapshot();
    a.run(sched('claim', T0 + 60_000, 'n2'));
    a.run(sched('done', T0 + 60_000, 'n2', { index: 5, sizeBytes: 80 }));
    const before = a.sm.getSnapshotSchedule();
    expect(a.run({ type: 'state.restore', requestId: `s-${++seq}`, at: T0 + 70_000, snapshot: blob })).toMatchObject({ status: 'ok' });
    expect(a.sm.getSnapshotSchedule()).toEqual(before);
    const afterRestore = a.sm.takeChanges();
    expect(afterRestore.fullRewrite).toBe(true);
    expect(StateMachine.fromRecords(afterRestore.puts, afterRestore.applied).getSnapshotSchedule()).toEqual(before);
  });
});
