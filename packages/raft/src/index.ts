export { RaftError, InvariantError, RAFT_ERROR_CODES, type RaftErrorCode } from './errors.js';
export type {
  NodeId,
  Entry,
  EntryType,
  HardState,
  SoftState,
  RaftRole,
  ConfState,
  ConfChange,
  ConfChangeType,
  Snapshot,
  SnapshotMeta,
  SnapshotChunk,
  Message,
  MessageType,
  ReadState,
  Ready,
  Status,
  PeerProgress,
  Logger,
} from './types.js';
export { validateConfig, type Config, type ResolvedConfig } from './config.js';
export { MemoryStorage, type Storage } from './storage.js';
export { encodeMessages, decodeMessages, encodeConfChange, decodeConfChange } from './codec.js';
export { applyConfChangeTo } from './conf-change.js';
export { RawNode } from './raw-node.js';
