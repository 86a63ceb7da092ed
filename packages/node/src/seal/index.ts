// The sealed start (COFFER_SEAL=shamir): re-exports only. See README.md for the design and wiring.
export { SealError, SEAL_ERROR_CODES, type SealErrorCode } from './errors.js';
export {
  SealManager,
  keyCheckOf,
  parseShare,
  sealConfigError,
  KEY_CHECK_LABEL,
  KEY_CHECK_LENGTH,
  MASTER_KEY_LENGTH,
  SHARE_LENGTH,
  type SealConfig,
  type SealInitResult,
  type SealManagerOptions,
  type SealStatus,
  type SealTarget,
} from './seal.js';
export { SealableKeyProvider, localProviderFromKey, type SealableKeyProviderOptions } from './sealable-provider.js';
