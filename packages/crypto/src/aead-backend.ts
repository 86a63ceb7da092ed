import { aead, type AeadName } from './internal/aead.js';

/**
 * Which XChaCha20-Poly1305 implementation this process uses: `'sodium+node'` (libsodium through
 * the sodium-native addon below 16 KiB, OpenSSL from 16 KiB on), `'sodium'` (libsodium only, when
 * OpenSSL lacks ChaCha20-Poly1305), `'node'` (noble's HChaCha20 plus OpenSSL's
 * ChaCha20-Poly1305, when the addon does not load) or `'noble'` (pure JS). All of them pass the
 * same vectors and tests and produce identical bytes.
 */
export const AEAD_BACKEND: AeadName = aead.name;
