export { LogtoStrategy } from './strategy.js';
export type {
  FirstScreen,
  LogtoSignInOptions,
  LogtoTokenResponse,
  LogtoUser,
  LogtoVerifyContext,
  SignInIdentifier,
  VerifyDone,
  VerifyFunction,
  VerifyFunctionWithRequest,
  VerifyResult,
} from './strategy.js';
export type { LogtoStrategyOptions } from './configuration.js';
export { LogtoClient } from './client.js';
export type { AuthenticatedOptions } from './route-guard.js';
export type { SignOutOptions } from './sign-out.js';
export type { BackchannelLogoutOptions, SessionStoreLike } from './back-channel-logout.js';
export { MemoryRefreshCoordinator } from './refresh-coordinator.js';
export type { GrantState, MemoryRefreshCoordinatorOptions, RefreshCoordinator } from './refresh-coordinator.js';
export { SharedRefreshCoordinator } from './shared-refresh-coordinator.js';
export type { CoordinationStore, SharedRefreshCoordinatorOptions } from './shared-refresh-coordinator.js';
export { LogtoError, isLogtoError } from './errors.js';
export type { LogtoErrorCode, LogtoErrorOptions } from './errors.js';
export { ReservedResource, UserScope, organizationAudience } from './scopes.js';
export type {
  AccessTokenClaims,
  AddressClaim,
  IdTokenClaims,
  OrganizationData,
  UserClaims,
  UserIdentity,
  UserInfoResponse,
} from './claims.js';
export type { StoredAccessToken } from './session-store.js';
export { LogtoBearerError, LogtoBearerStrategy, logtoBearer } from './bearer-strategy.js';
export type {
  BearerErrorCode,
  BearerTokenLocation,
  BearerVerifyFunction,
  BearerVerifyFunctionWithRequest,
  LogtoBearerAuthInfo,
  LogtoBearerOptions,
  LogtoBearerRouteOptions,
  VerifyAccessTokenOptions,
} from './bearer-strategy.js';
