// Every host's exports: the strategy, the helper, the stores, Bearer, tenants and errors, typed with
// the host-neutral types of host-types.ts. Each entry (index.ts, fastify/, koa/, nestjs/) re-exports it.
export { LogtoStrategy } from './web/strategy.js';
export type {
  LogtoTokenResponse,
  LogtoUser,
  LogtoVerifyContext,
  ProfileVerifyFunction,
  ProfileVerifyFunctionWithRequest,
  VerifyFunction,
  VerifyFunctionWithRequest,
} from './web/verify-context.js';
export type { LogtoProfile } from './logto/profile.js';
export { FirstScreen, Prompt } from './web/sign-in-options.js';
export type { LogtoAuthenticateOptions, LogtoSignInOptions, SignInIdentifier } from './web/sign-in-options.js';
export type { LogtoAppAuthInfo, LogtoAppUser, Verified, VerifyDone, VerifyResult } from './verify-callback.js';
export type { HostNext, HostRequest, HostRequestHandler, HostResponse, LogtoHostTypes, PassportAuthenticateOptions, PassportDone, PassportRequest, PassportRequestAdditions } from './host-types.js';
export type { LogtoConnectionOptions, LogtoFetch, LogtoFetchInit, LogtoFetchResponse, LogtoStrategyOptions } from './configuration.js';
export type { LogtoOidcConfig } from './logto/connection.js';
export { LogtoClient } from './web/client.js';
export type { ClearAccessTokensOptions, GetAccessTokenOptions } from './web/client.js';
export type { AuthenticatedOptions, LogtoHandler, LogtoRequest } from './web/route-guard.js';
export type { SignOutOptions } from './web/sign-out.js';
export type { SilentSignInOptions } from './web/silent-sign-in.js';
export type { BackchannelLogoutOptions, SessionStoreLike } from './web/back-channel-logout.js';
export { MemoryTokenStore } from './store/token-store.js';
export type { MemoryTokenStoreOptions, TokenStore } from './store/token-store.js';
export { RedisTokenStore } from './store/redis-token-store.js';
export type { IoRedisClientLike, NodeRedisClientLike, NodeRedisClusterLike, RedisClientLike, RedisTokenStoreOptions } from './store/redis-token-store.js';
export { LogtoError, isLogtoError } from './errors.js';
export type { LogtoErrorCausedBy, LogtoErrorCode, LogtoErrorOptions } from './errors.js';
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
export type { StoredAccessToken, TokenRecord } from './store/token-record.js';
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
export { LogtoTenants } from './web/tenants.js';
export type { LogtoTenantOptions, LogtoTenantsOptions } from './web/tenants.js';
export { LogtoBearerTenants } from './web/bearer-tenants.js';
export type { LogtoBearerTenantOptions, LogtoBearerTenantsOptions } from './web/bearer-tenants.js';
export { byHost, byPath } from './web/tenant-selection.js';
export type { TenantSelector } from './web/tenant-selection.js';
