// The `aws` key provider: AWS KMS (or a compatible endpoint such as moto_server) through
// @aws-sdk/client-kms. DEKs are AES_256 data keys; the KMS encryption context binds each wrapped
// DEK to its secret name and version, and ReEncrypt moves a DEK to new key material without the
// plaintext DEK ever leaving the KMS.
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import {
  DecryptCommand,
  DescribeKeyCommand,
  GenerateDataKeyCommand,
  KMSClient,
  ListKeyRotationsCommand,
  ReEncryptCommand,
  type KMSClientConfig,
} from '@aws-sdk/client-kms';
import { assertContext, kmsEncryptionContext, type SecretContext } from './context.js';
import { CryptoError } from './errors.js';
import { zeroize } from './bytes.js';
import { classifyKmsError, isRetryable } from './internal/kms-errors.js';
import type { DataKey, KeyProvider, KeyRotation, KmsHooks, KmsOperation, WrappedKey } from './key-provider.js';

/** Options of {@link createAwsProvider}. */
export interface AwsProviderOptions {
  /** Key id, key ARN or alias (`alias/coffer`) of the KMS key new DEKs are wrapped with. */
  readonly keyId: string;
  /** Endpoint override (VPC endpoint, moto_server). Default: the SDK's regional endpoint. */
  readonly endpoint?: string | undefined;
  /** Region. Default: the SDK's chain (AWS_REGION, config files). */
  readonly region?: string | undefined;
  /** Per-attempt bound on connect + response, in ms. Default 2000. */
  readonly timeoutMs?: number | undefined;
  /** Attempts per call, including the first (retries only on unavailable/throttled). Default 3. */
  readonly maxAttempts?: number | undefined;
  /** First backoff cap in ms; doubles per retry, full jitter. Default 100. */
  readonly backoffBaseMs?: number | undefined;
  /** Largest backoff in ms. Default 2000. */
  readonly backoffMaxMs?: number | undefined;
  /** Static credentials (tests, emulators). Default: the SDK's standard provider chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string } | undefined;
  /** Metric hooks (latency per attempt, error per failed attempt). */
  readonly hooks?: KmsHooks | undefined;
}

/** The AWS provider. */
export interface AwsKeyProvider extends KeyProvider {
  readonly kind: 'aws';
}

const DEK_LENGTH = 32;

function positiveInt(name: string, value: number | undefined, dflt: number, min: number): number {
  if (value === undefined) return dflt;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new CryptoError('CRYPTO_CONFIG', `aws key provider: ${name} must be an integer >= ${min}`);
  }
  return value;
}

/**
 * Creates the `aws` key provider. Each call is bounded: at most `maxAttempts` attempts of at most
 * `timeoutMs` each, with exponential backoff (full jitter, capped by `backoffMaxMs`) between
 * attempts that failed with an unavailable or throttled error. Worst case per call is roughly
 * `maxAttempts * timeoutMs + (maxAttempts - 1) * backoffMaxMs`.
 *
 * @param opts - key id, endpoint, region, timeouts, retries, credentials, hooks.
 * @returns the provider; call `close()` to release its connections.
 * @throws {CRYPTO_CONFIG} when `keyId` is empty or a numeric option is out of range.
 * @example
 * ```ts
 * const provider = createAwsProvider({ keyId: 'alias/coffer', endpoint: process.env.COFFER_KMS_ENDPOINT });
 * ```
 */
export function createAwsProvider(opts: AwsProviderOptions): AwsKeyProvider {
  if (typeof opts.keyId !== 'string' || opts.keyId.trim() === '') {
    throw new CryptoError('CRYPTO_CONFIG', 'aws key provider: COFFER_KMS_KEY_ID is required in aws mode');
  }
  const keyId = opts.keyId.trim();
  const timeoutMs = positiveInt('timeoutMs', opts.timeoutMs, 2000, 1);
  const maxAttempts = positiveInt('maxAttempts', opts.maxAttempts, 3, 1);
  const backoffBaseMs = positiveInt('backoffBaseMs', opts.backoffBaseMs, 100, 0);
  const backoffMaxMs = positiveInt('backoffMaxMs', opts.backoffMaxMs, 2000, 0);
  const hooks = opts.hooks ?? {};

  const config: KMSClientConfig = {
    // Retries are ours (below) so that every call has one visible bound and typed outcome.
    maxAttempts: 1,
    requestHandler: { connectionTimeout: timeoutMs, requestTimeout: timeoutMs },
  };
  if (opts.endpoint !== undefined) config.endpoint = opts.endpoint;
  if (opts.region !== undefined) config.region = opts.region;
  if (opts.credentials !== undefined) config.credentials = { ...opts.credentials };
  let client: KMSClient | undefined = new KMSClient(config);
  // The ARN learned from the KMS's answers; stored kmsKeyIds are ARNs even when keyId is an alias.
  let keyArn: string | undefined = keyId.startsWith('arn:') && !keyId.includes(':alias/') ? keyId : undefined;

  async function call<T>(op: KmsOperation, send: (c: KMSClient, signal: AbortSignal) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (!client) throw new CryptoError('CRYPTO_KMS_UNAVAILABLE', 'aws key provider is closed');
      const t0 = performance.now();
      try {
        return await send(client, AbortSignal.timeout(timeoutMs));
      } catch (err) {
        if (err instanceof CryptoError) throw err;
        const code = classifyKmsError(err);
        hooks.onKmsError?.(op, code);
        if (!isRetryable(code) || attempt >= maxAttempts) {
          // Name and code only: SDK messages are not ours to vouch for, and may echo request data.
          const sysCode = (err as { code?: unknown }).code;
          const detail = `${(err as { name?: unknown }).name ?? 'unknown error'}${typeof sysCode === 'string' ? ` (${sysCode})` : ''}`;
          throw new CryptoError(code, `KMS ${op} failed after ${attempt} attempt(s): ${detail}`, { cause: err });
        }
      } finally {
        hooks.onKmsLatency?.(op, (performance.now() - t0) / 1000);
      }
      const cap = Math.min(backoffMaxMs, backoffBaseMs * 2 ** (attempt - 1));
      await sleep(Math.floor(Math.random() * (cap + 1)));
    }
  }

  function bytesOf(v: Uint8Array | undefined, what: string): Uint8Array {
    if (!(v instanceof Uint8Array) || v.length === 0) {
      throw new CryptoError('CRYPTO_KMS_ERROR', `KMS answer lacks ${what}`);
    }
    return v;
  }

  async function resolveArn(): Promise<string> {
    if (keyArn) return keyArn;
    const out = await call('DescribeKey', (c, abortSignal) => c.send(new DescribeKeyCommand({ KeyId: keyId }), { abortSignal }));
    const arn = out.KeyMetadata?.Arn;
    if (!arn) throw new CryptoError('CRYPTO_KMS_ERROR', 'KMS DescribeKey answer lacks the key ARN');
    keyArn = arn;
    return arn;
  }

  return {
    kind: 'aws',
    currentKeyId: () => keyArn ?? keyId,
    async generateDataKey(ctx: SecretContext): Promise<DataKey> {
      const EncryptionContext = kmsEncryptionContext(ctx);
      const out = await call('GenerateDataKey', (c, abortSignal) =>
        c.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext }), { abortSignal }),
      );
      const sdkPlain = bytesOf(out.Plaintext, 'Plaintext');
      const plaintext = new Uint8Array(sdkPlain);
      zeroize(sdkPlain);
      if (plaintext.length !== DEK_LENGTH) {
        zeroize(plaintext);
        throw new CryptoError('CRYPTO_KMS_ERROR', `KMS returned a ${sdkPlain.length}-byte data key, expected ${DEK_LENGTH}`);
      }
      if (!out.KeyId) {
        zeroize(plaintext);
        throw new CryptoError('CRYPTO_KMS_ERROR', 'KMS GenerateDataKey answer lacks KeyId');
      }
      keyArn = out.KeyId;
      return { plaintext, wrappedDek: new Uint8Array(bytesOf(out.CiphertextBlob, 'CiphertextBlob')), kmsKeyId: out.KeyId };
    },
    async decrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<Uint8Array> {
      assertContext(ctx);
      if (!(wrappedDek instanceof Uint8Array) || wrappedDek.length === 0) {
        throw new CryptoError('CRYPTO_KMS_INVALID_CIPHERTEXT', 'wrapped DEK is empty');
      }
      const EncryptionContext = kmsEncryptionContext(ctx);
      // NB: KeyId pins the key: KMS refuses a blob that was wrapped by any other key.
      const out = await call('Decrypt', (c, abortSignal) =>
        c.send(new DecryptCommand({ CiphertextBlob: wrappedDek, KeyId: kmsKeyId, EncryptionContext }), { abortSignal }),
      );
      const sdkPlain = bytesOf(out.Plaintext, 'Plaintext');
      const plaintext = new Uint8Array(sdkPlain);
      zeroize(sdkPlain);
      if (plaintext.length !== DEK_LENGTH) {
        zeroize(plaintext);
        throw new CryptoError('CRYPTO_KMS_INVALID_CIPHERTEXT', 'wrapped DEK does not hold a 32-byte key');
      }
      return plaintext;
    },
    async reEncrypt(wrappedDek: Uint8Array, kmsKeyId: string, ctx: SecretContext): Promise<WrappedKey> {
      const EncryptionContext = kmsEncryptionContext(ctx);
      const out = await call('ReEncrypt', (c, abortSignal) =>
        c.send(
          new ReEncryptCommand({
            CiphertextBlob: wrappedDek,
            SourceKeyId: kmsKeyId,
            DestinationKeyId: keyId,
            SourceEncryptionContext: EncryptionContext,
            DestinationEncryptionContext: EncryptionContext,
          }),
          { abortSignal },
        ),
      );
      if (!out.KeyId) throw new CryptoError('CRYPTO_KMS_ERROR', 'KMS ReEncrypt answer lacks KeyId');
      keyArn = out.KeyId;
      return { wrappedDek: new Uint8Array(bytesOf(out.CiphertextBlob, 'CiphertextBlob')), kmsKeyId: out.KeyId };
    },
    async listKeyRotations(): Promise<KeyRotation[]> {
      // ListKeyRotations takes a key id or ARN, not an alias.
      const arn = await resolveArn();
      const rotations: KeyRotation[] = [];
      let marker: string | undefined;
      do {
        const out = await call('ListKeyRotations', (c, abortSignal) =>
          c.send(new ListKeyRotationsCommand(marker === undefined ? { KeyId: arn } : { KeyId: arn, Marker: marker }), { abortSignal }),
        );
        for (const r of out.Rotations ?? []) {
          const rotation: { keyId: string; rotationId: string; rotationType: string; rotatedAt?: Date } = {
            keyId: r.KeyId ?? arn,
            rotationId: r.RotationDate ? r.RotationDate.toISOString() : `unknown-${rotations.length}`,
            rotationType: r.RotationType ?? 'UNKNOWN',
          };
          if (r.RotationDate) rotation.rotatedAt = r.RotationDate;
          rotations.push(rotation);
        }
        marker = out.Truncated ? out.NextMarker : undefined;
      } while (marker !== undefined);
      return rotations.sort((a, b) => (a.rotatedAt?.getTime() ?? 0) - (b.rotatedAt?.getTime() ?? 0));
    },
    async close(): Promise<void> {
      client?.destroy();
      client = undefined;
    },
  };
}
