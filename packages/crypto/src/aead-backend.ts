import { aead } from './internal/aead.js';

/**
 * Which XChaCha20-Poly1305 implementation this process uses: `'node'` (noble's HChaCha20 plus
 * OpenSSL's ChaCha20-Poly1305) or `'noble'` (pure JS). Both pass the same vectors and tests.
 */
export const AEAD_BACKEND: 'node' | 'noble' = aead.name;
