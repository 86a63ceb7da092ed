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
export { OperatorApi, type SealInit, type SealStatus } from './api/operator.js';
export { TransitApi, type TransitCiphertext, type TransitContextOptions, type TransitKey, type TransitKeyType } from './api/transit.js';
export { ClusterApi } from './api/cluster.js';
export * from './types.js';
export { IdentitiesApi, AccessRequestsApi, type AccessRequest, type IdentityInfo, type IdentityType, type Membership, type MembershipRole } from './api/identities.js';
export { ed25519PrivateKey, ed25519PublicKeyBase64, generateEd25519KeyPair, loginMessage, type Ed25519LoginOptions, type Session } from './api/ed25519.js';
export { AppRolesApi, type AppRoleInfo, type AppRoleLoginOptions, type AppRoleSettings, type MintedSecretId } from './api/approle.js';
