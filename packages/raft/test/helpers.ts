import { MemoryStorage, RawNode, type Config, type Message, type Ready } from '../src/index';
import { prng } from './sim/cluster';

export const enc = new TextEncoder();
export const dec = new TextDecoder();

export function newNode(id: string, storage: MemoryStorage, over: Partial<Config> = {}): RawNode {
  return new RawNode({ id, electionTicks: 10, heartbeatTicks: 1, rng: prng(id.charCodeAt(id.length - 1)), ...over }, storage);
}

/** Persists a Ready the way a correct driver does and acknowledges it; returns it for inspection. */
export function persist(node: RawNode, storage: MemoryStorage): Ready {
  const rd = node.ready();
  if (rd.snapshot !== undefined) storage.applySnapshot(rd.snapshot);
  storage.append(rd.entries);
  if (rd.hardState !== undefined) storage.setHardState(rd.hardState);
  node.advance();
  return rd;
}

export function msg(partial: Partial<Message> & Pick<Message, 'type' | 'from' | 'to' | 'term'>): Message {
  return { logTerm: 0, index: 0, commit: 0, entries: [], reject: false, rejectHint: 0, context: new Uint8Array(0), ...partial };
}

export { raftOf } from './internals';
