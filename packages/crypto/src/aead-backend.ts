import { aead, type AeadName } from './internal/aead.js';

/**
 * Which XChaCha20-Poly1305 implementation this process uses: `'sodium'` (libsodium through the
 * sodium-native addon), `'node'` (noble's HChaCha20 plus OpenSSL's ChaCha20-Poly1305) or
 * `'noble'` (pure JS). All three pass the same vectors and tests and produce identical bytes.
 */
export const AEAD_BACKEND: AeadName = aead.name;
