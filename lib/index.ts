export { LogtoStrategy } from './strategy.js';
export type { LogtoTokenResponse, LogtoUser, LogtoVerifyContext, VerifyFunction, VerifyFunctionWithRequest } from './strategy.js';
export { FirstScreen, Prompt } from './sign-in-options.js';
export type { LogtoSignInOptions, SignInIdentifier } from './sign-in-options.js';
export type { Verified, VerifyDone, VerifyResult } from './verify-callback.js';
export type { LogtoConnectionOptions, LogtoFetch, LogtoStrategyOptions } from './configuration.js';
export type { LogtoOidcConfig } from './logto/connection.js';
export { LogtoClient } from './client.js';
export type { ClearAccessTokensOptions, GetAccessTokenOptions } from './client.js';
export type { AuthenticatedOptions, LogtoHandler, LogtoRequest } from './route-guard.js';
export type { SignOutOptions } from './sign-out.js';
export type { SilentSignInOptions } from './silent-sign-in.js';
export type { BackchannelLogoutOptions, SessionStoreLike } from './back-channel-logout.js';
export { MemoryTokenStore } from './store/token-store.js';
export type { MemoryTokenStoreOptions, TokenStore } from './store/token-store.js';
export { RedisTokenStore } from './store/redis-token-store.js';
export type { IoRedisClientLike, NodeRedisClientLike, RedisClientLike, RedisTokenStoreOptions } from './store/redis-token-store.js';
export { LogtoError, isLogtoError } from './errors.js';
export type { LogtoErrorCode, LogtoErrorOptions } from './errors.js';
export {
  ReservedResource,
  ReservedScope,
  UserScope,
  buildOrganizationUrn,
  getOrganizationIdFromUrn,
  organizationAudience,
  organizationUrnPrefix,
} from './logto/scopes.js';
export type {
  AccessTokenClaims,
  AddressClaim,
  IdTokenClaims,
  OrganizationData,
  UserClaims,
  UserIdentity,
  UserInfoResponse,
  UserOrganization,
  UserOrganizationDetails,
} from './logto/claims.js';
export type { StoredAccessToken, TokenRecord } from './store/sign-in-records.js';
export { LogtoBearerStrategy, logtoBearer } from './bearer/strategy.js';
export { LogtoBearerError } from './bearer/errors.js';
export type { BearerErrorCode } from './bearer/errors.js';
export type { BearerTokenLocation, LogtoBearerOptions } from './bearer/configuration.js';
export type {
  BearerVerifyFunction,
  BearerVerifyFunctionWithRequest,
  LogtoBearerAuthInfo,
  LogtoBearerRouteOptions,
  VerifyAccessTokenOptions,
} from './bearer/strategy.js';
export { LogtoTenants, LogtoBearerTenants, byHost, byPath } from './tenants.js';
export type {
  LogtoBearerTenantOptions,
  LogtoBearerTenantsOptions,
  LogtoTenantOptions,
  LogtoTenantsOptions,
  TenantSelector,
} from './tenants.js';
