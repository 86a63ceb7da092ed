/**
 * The node's key management: the KMS provider (AWS KMS or the local master key), the unwrapped-DEK
 * cache, and the envelopes over both. Metrics hooks are typed against the providers' seam: a
 * misspelt hook name does not compile (it used to hide behind a cast, and coffer_kms_* never moved).
 */
import { createAwsProvider, createLocalProvider, DekCache, Envelopes, type KeyProvider, type KmsHooks } from '@coffer/crypto';
import { sealConfigOf, type SealTables } from '@coffer/state';
import type { ServerConfig } from './config.js';
import type { Logger } from './logger.js';
import type { CofferMetrics } from './metrics.js';
import { SealableKeyProvider } from './seal/sealable-provider.js';
import { SealManager } from './seal/seal.js';

/** The KMS provider, the DEK cache and the envelopes that use them. */
export interface Keyring {
  readonly kms: KeyProvider;
  readonly envelopes: Envelopes;
  /** COFFER_SEAL=shamir: this node's seal (starts sealed); undefined otherwise. */
  readonly seal: SealManager | undefined;
  /** Empties the DEK cache and closes the provider. */
  close(): Promise<void>;
}

/**
 * @param config - `kmsMode`, key id / endpoint or local master keys, DEK cache TTL
 * @param logger - the local provider's warning (random master key) goes here
 * @param metrics - KMS latency and errors, DEK cache hits, misses and evictions
 * @param state - the replicated state (read each time): with COFFER_SEAL=shamir an unsealed key
 *   must have the replicated seal config's key id
 * @returns the keyring
 */
export function createKeyring(config: Readonly<ServerConfig>, logger: Logger, metrics: CofferMetrics, state: () => SealTables): Keyring {
  const hooks: KmsHooks = {
    onKmsLatency: (op, seconds) => metrics.kmsDuration.observe({ op }, seconds),
    onKmsError: (op) => metrics.kmsErrors.inc({ op }),
  };
  const cache = new DekCache({
    ttlSecs: config.dekCacheTtlSecs,
    onHit: () => metrics.dekCacheHits.inc(),
    onMiss: () => metrics.dekCacheMisses.inc(),
    onEvict: () => metrics.dekCacheEvictions.inc(),
  });
  if (config.seal === 'shamir') {
    // Sealed start: the envelopes are built once, on a provider that is empty until unsealed; the
    // key goes straight from the shares into a local provider (raw bytes, wiped on seal).
    const provider = new SealableKeyProvider({
      expectedKeyId: () => sealConfigOf(state())?.keyId,
      onSeal: () => cache.clear(),
      build: (key) => createLocalProvider({ masterKeys: [key], hooks }),
    });
    const seal = new SealManager({ target: provider });
    return {
      kms: provider,
      envelopes: new Envelopes({ provider, cache }),
      seal,
      async close() {
        await seal.seal();
        cache.clear();
        await provider.close();
      },
    };
  }
  const kms: KeyProvider =
    config.kmsMode === 'aws'
      ? createAwsProvider({ keyId: config.kmsKeyId as string, endpoint: config.kmsEndpoint, hooks })
      : createLocalProvider({
          masterKeyBase64: config.localMasterKeys === undefined ? undefined : config.localMasterKeys.map((k) => Buffer.from(k).toString('base64')).join(','),
          onWarning: (m) => logger.warn(m),
          hooks,
        });
  return {
    kms,
    envelopes: new Envelopes({ provider: kms, cache }),
    seal: undefined,
    async close() {
      cache.clear();
      await kms.close();
    },
  };
}
