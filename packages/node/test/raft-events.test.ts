/**
 * The wait for a first leader (packages/node/src/raft/events.ts): what wakes it. A request that
 * arrives before this node knows a leader (and, for forwarding, the leader's API address) waits for
 * it; the wait ends as soon as the condition holds — on the leader change, the applied entry or
 * the installed snapshot that made it true — not on a polling timer. Fake timers: no timer fires
 * unless a test advances the clock, so a wait that ends here was woken.
 */
import { createLogger } from '../src/logger.js';
import { createMetrics } from '../src/metrics.js';
import { RaftEvents } from '../src/raft/events.js';

function events(): RaftEvents {
  return new RaftEvents({ nodeId: 'n1', logger: createLogger({ level: 'silent', nodeId: 'n1' }), metrics: createMetrics(), closing: () => false, fatal: () => undefined });
}

/** Starts a wait and reports whether it has ended. */
function waitFor(ev: RaftEvents, ready: () => boolean, ms: number): { readonly ended: boolean } {
  const o = { ended: false };
  void ev.firstLeader(ready, ms).then(() => {
    o.ended = true;
  });
  return o;
}

/** Runs pending promise callbacks without moving the fake clock. */
const settle = (): Promise<void> => jest.advanceTimersByTimeAsync(0);

beforeEach(() => {
  jest.useFakeTimers();
});

afterEach(() => {
  jest.useRealTimers();
});

describe('firstLeader', () => {
  test('a leader change ends the wait at once', async () => {
    const ev = events();
    let lead: string | null = null;
    const w = waitFor(ev, () => lead !== null, 5_000);
    await settle();
    expect(w.ended).toBe(false);
    lead = 'n2';
    ev.onLeaderChange('n2', 3);
    await settle();
    expect(w.ended).toBe(true);
  });

  test('an applied entry that completes the condition (the leader API address) ends the wait without a poll', async () => {
    const ev = events();
    let apiKnown = false;
    const w = waitFor(ev, () => apiKnown, 5_000);
    // The leader becomes known, its address not yet: the wait goes on.
    ev.onLeaderChange('n2', 3);
    await settle();
    expect(w.ended).toBe(false);
    apiKnown = true;
    ev.onApplied(7);
    await settle();
    expect(w.ended).toBe(true);
  });

  test('an installed snapshot wakes it too', async () => {
    const ev = events();
    let ready = false;
    const w = waitFor(ev, () => ready, 5_000);
    await settle();
    ready = true;
    ev.onSnapshotInstalled(100);
    await settle();
    expect(w.ended).toBe(true);
  });

  test('without any wake-up the wait still ends by its bound, and a condition that holds later is seen by the fallback re-check', async () => {
    const ev = events();
    const bounded = waitFor(ev, () => false, 1_000);
    let late = false;
    const polled = waitFor(ev, () => late, 5_000);
    await jest.advanceTimersByTimeAsync(999);
    expect(bounded.ended).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(bounded.ended).toBe(true);
    late = true;
    await jest.advanceTimersByTimeAsync(250);
    expect(polled.ended).toBe(true);
  });
});
