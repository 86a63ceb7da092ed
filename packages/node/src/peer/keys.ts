/**
 * This node's peer keys: the signing key derived from COFFER_CLUSTER_KEY and the verifier of
 * what members send. A single-node cluster without a cluster key gets a random one (nobody else
 * can talk to it).
 */
import { randomBytes } from 'node:crypto';
import type { ServerConfig } from '../config.js';
import { derivePeerKey, PeerVerifier } from './auth.js';

/** The keys, and how to zero them. */
export interface PeerKeys {
  readonly peerKey: Uint8Array;
  readonly verifier: PeerVerifier;
  /** Zeroes the derived keys (best effort). */
  destroy(): void;
}

/**
 * @param config - `clusterKey` and `nodeId`
 * @returns the keys
 */
export function createPeerKeys(config: Readonly<ServerConfig>): PeerKeys {
  const clusterKey = config.clusterKey ?? new Uint8Array(randomBytes(32));
  const peerKey = derivePeerKey(clusterKey);
  const verifier = new PeerVerifier({ clusterKey, nodeId: config.nodeId });
  return {
    peerKey,
    verifier,
    destroy() {
      verifier.destroy();
      peerKey.fill(0);
    },
  };
}
