export {
  CofferClient,
  DEFAULT_ADDRESS,
  parseAddresses,
  type BreakerOptions,
  type BreakerState,
  type CacheOptions,
  type ClientWarning,
  type CofferClientEvents,
  type CofferClientOptions,
  type RetryInfo,
  type RetryOptions,
  type TokenExpiryInfo,
} from './client.js';
export { CofferError, ClientErrorCodes, isAvailabilityError, type ClientErrorCode, type CofferErrorDetails } from './errors.js';
export { SecretsApi } from './api/secrets.js';
export { TokensApi } from './api/tokens.js';
export { RolesApi } from './api/roles.js';
export { AllowlistApi, AuditApi, KmsApi } from './api/admin.js';
export { ClusterApi } from './api/cluster.js';
export * from './types.js';
