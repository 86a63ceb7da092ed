// Readiness (health means ready): a node is ready only after a ReadIndex round under the leader it
// knows; a lost round is retried quickly; a leader change needs a new round; seeds and suffrage count.
import { Readiness, type ReadinessDeps } from '../src/readiness.js';

function harness(over: Partial<ReadinessDeps> = {}) {
  const st = { leader: 'n1' as string | null, api: 'http://n1' as string | undefined, seeded: true, voter: true, rounds: 0, lose: 0 };
  const deps: ReadinessDeps = {
    leader: () => st.leader,
    leaderApiAddr: () => st.api,
    // A lost round never answers (as a ReadIndex dropped on the way); others answer at once.
    readBarrier: () => {
      st.rounds++;
      return st.lose-- > 0 ? new Promise<void>(() => undefined) : Promise.resolve();
    },
    seeded: () => st.seeded,
    isVoter: () => st.voter,
    retryMs: 5,
    attemptMs: 20,
    ...over,
  };
  return { st, r: new Readiness(deps) };
}

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('ready after one round under the known leader; not before', async () => {
  const { st, r } = harness();
  expect(r.isReady()).toBe(false);
  r.onLeader('n1');
  await tick(5);
  expect(r.isReady()).toBe(true);
  expect(st.rounds).toBe(1);
  r.stop();
});

test('a lost round is retried after attemptMs, not after the read timeout', async () => {
  const { st, r } = harness();
  st.lose = 2;
  r.onLeader('n1');
  await tick(10);
  expect(r.isReady()).toBe(false);
  await tick(100);
  expect(r.isReady()).toBe(true);
  expect(st.rounds).toBe(3);
  r.stop();
});

test('a leader change makes the node not ready until a round completes under the new leader', async () => {
  const { st, r } = harness();
  r.onLeader('n1');
  await tick(5);
  expect(r.isReady()).toBe(true);
  st.leader = 'n2';
  st.lose = 1;
  r.onLeader('n2');
  expect(r.isReady()).toBe(false);
  await tick(10);
  expect(r.isReady()).toBe(false);
  await tick(60);
  expect(r.isReady()).toBe(true);
  r.stop();
});

test('the leader API address, the seeds and being a voter are part of ready', async () => {
  const { st, r } = harness();
  r.onLeader('n1');
  await tick(5);
  expect(r.isReady()).toBe(true);
  st.api = undefined;
  expect(r.isReady()).toBe(false);
  st.api = 'http://n1';
  st.seeded = false;
  expect(r.isReady()).toBe(false);
  st.seeded = true;
  st.voter = false;
  expect(r.isReady()).toBe(false);
  st.voter = true;
  st.leader = null;
  r.onLeader(null);
  expect(r.isReady()).toBe(false);
  r.stop();
});
