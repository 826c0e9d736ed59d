/**
 * Logto's rules, as oidc-provider configuration: which claims each scope releases, PKCE unless
 * client_secret_basic, refresh-token rotation, resource and organization tokens narrowed by the
 * user's roles, organization_id on refreshes, and Logto's error fields. The refresh-token grace and
 * the grant revoked on reuse of a code or refresh token live in storage.ts.
 */
import type internals from 'oidc-provider/lib/helpers/weak_cache.js';
import type { Configuration, KoaContextWithOIDC, ResourceServer, UnknownObject } from 'oidc-provider';
import {
  API_RESOURCE,
  API_SCOPES,
  CLAIMS_BY_SCOPE,
  EXTRA_AUTHORIZATION_PARAMS,
  GLOBAL_ROLES,
  ORGANIZATION_ROLES,
  ORGANIZATION_SCOPES,
  ORGANIZATIONS_RESOURCE,
  ORGANIZATIONS_SCOPE,
  organizationAudience,
  scopesFromRoles,
  USERINFO_ONLY_CLAIMS,
} from './clients-and-users.js';
import type { OidcModule, ProviderInstance } from './helpers.js';
import type { TestUser } from './index.js';
import { signedOutPage, signingOutPage } from './pages.js';
import { StoreAdapter, type MemoryStore } from './storage.js';

/** What the rules read: the provider's settings and its users. */
export interface RuleContext {
  errors: OidcModule['errors'];
  store: MemoryStore;
  alg: 'ES384' | 'RS256';
  accessTokenTtl: number;
  idTokenTtl: number;
  refreshTokenTtl: number;
  usersBySub: Map<string, TestUser>;
  suspended: Set<string>;
}

function stringParam(ctx: KoaContextWithOIDC, name: string): string | undefined {
  const value = ctx.oidc?.params?.[name];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

function resourceServerInfo(rules: RuleContext, ctx: KoaContextWithOIDC, indicator: string): ResourceServer {
  const jwtFormat = {
    accessTokenFormat: 'jwt' as const,
    accessTokenTTL: rules.accessTokenTtl,
    jwt: { sign: { alg: rules.alg } },
  };
  // At sign-in every defined scope may be granted; at the token endpoint the
  // user's roles narrow them, like Logto's RBAC.
  const atTokenEndpoint = ctx.oidc.route === 'token';
  const accountId = ctx.oidc.entities.Account?.accountId;
  const user = accountId === undefined ? undefined : rules.usersBySub.get(accountId);
  const organizationId = atTokenEndpoint ? stringParam(ctx, 'organization_id') : undefined;

  if (indicator === API_RESOURCE) {
    let scopes: string[] = [...API_SCOPES];
    if (atTokenEndpoint && user) {
      scopes = organizationId
        ? scopesFromRoles(user.organizationRoles[organizationId] ?? [], ORGANIZATION_ROLES, (r) => r.apiScopes[indicator] ?? [])
        : scopesFromRoles(user.roles, GLOBAL_ROLES, (r) => r.apiScopes[indicator] ?? []);
    }
    return { scope: scopes.join(' '), ...jwtFormat };
  }
  if (indicator === ORGANIZATIONS_RESOURCE) {
    if (atTokenEndpoint && organizationId) {
      const scopes = user
        ? scopesFromRoles(user.organizationRoles[organizationId] ?? [], ORGANIZATION_ROLES, (r) => r.organizationScopes)
        : [];
      return { scope: scopes.join(' '), audience: organizationAudience(organizationId), ...jwtFormat };
    }
    return { scope: ORGANIZATION_SCOPES.join(' '), ...jwtFormat };
  }
  throw new rules.errors.InvalidTarget();
}

/** The oidc-provider configuration, without the signing keys (each provider instance has its own). */
export function logtoConfiguration(rules: RuleContext): Configuration {
  const { accessTokenTtl, idTokenTtl, refreshTokenTtl, store, usersBySub, suspended } = rules;
  return {
    adapter: (name: string) => new StoreAdapter(name, store),
    clients: [],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
    cookies: { keys: ['passport-logto-test-provider-cookie-key'] },
    routes: {
      authorization: '/auth',
      token: '/token',
      userinfo: '/me',
      jwks: '/jwks',
      end_session: '/session/end',
      revocation: '/token/revocation',
      introspection: '/token/introspection',
    },
    scopes: ['openid', 'offline_access', ...Object.keys(CLAIMS_BY_SCOPE).filter((s) => s !== 'openid')],
    claims: CLAIMS_BY_SCOPE,
    // Logto puts scope claims in code-flow ID tokens too.
    conformIdTokenClaims: false,
    extraParams: [...EXTRA_AUTHORIZATION_PARAMS],
    responseTypes: ['code'],
    enabledJWA: { idTokenSigningAlgValues: ['ES384', 'RS256', 'PS256', 'ES256', 'ES512'] },
    // Logto requires PKCE unless the client authenticates with client_secret_basic.
    pkce: { required: (_ctx, client) => client.clientAuthMethod !== 'client_secret_basic' },
    rotateRefreshToken: true,
    ttl: {
      AccessToken: (_ctx, token) => token.resourceServer?.accessTokenTTL ?? accessTokenTtl,
      AuthorizationCode: 60,
      IdToken: idTokenTtl,
      RefreshToken: refreshTokenTtl,
      Interaction: 3600,
      Session: 14 * 24 * 3600,
      Grant: 180 * 24 * 3600,
      ClientCredentials: 600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      backchannelLogout: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // Logto's logout page confirms by itself (see signingOutPage).
        logoutSource: async (ctx, form) => {
          ctx.body = signingOutPage(form);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = signedOutPage();
        },
      },
      resourceIndicators: {
        enabled: true,
        // No `resource` at the token endpoint means the opaque userinfo token.
        defaultResource: async (_ctx, _client, oneOf) => (oneOf && oneOf.length === 1 ? oneOf[0] : oneOf),
        useGrantedResource: async () => false,
        getResourceServerInfo: async (ctx, indicator) => resourceServerInfo(rules, ctx, indicator),
      },
    },
    extraTokenClaims: async (ctx) => {
      const organizationId = ctx.oidc.route === 'token' ? stringParam(ctx, 'organization_id') : undefined;
      const resource = stringParam(ctx, 'resource');
      // Organization-scoped API tokens name the organization; organization tokens carry it in aud.
      if (organizationId && resource && resource !== ORGANIZATIONS_RESOURCE) return { organization_id: organizationId };
      return undefined;
    },
    findAccount: async (_ctx, sub) => {
      const user = usersBySub.get(sub);
      if (!user || suspended.has(sub)) return undefined;
      return {
        accountId: sub,
        claims: async (use: string) => {
          const claims = structuredClone(user.claims);
          if (use === 'id_token') for (const name of USERINFO_ONLY_CLAIMS) delete claims[name];
          return claims as UnknownObject & { sub: string };
        },
      };
    },
    interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // Logto answers JSON even to a browser (an unregistered redirect URI shows
    // {"error":"invalid_redirect_uri",...,"code":"oidc.invalid_redirect_uri","message":...}).
    renderError: async (ctx, out) => {
      ctx.body = out;
    },
    clientBasedCORS: () => false,
    // oidc-provider's default dispatcher refuses special-use IPs (127.0.0.1),
    // which would stop back-channel logout to the test app.
    fetch: (url, init) => {
      const { dispatcher: _ignored, ...rest } = init as RequestInit & { dispatcher?: unknown };
      return fetch(url, rest);
    },
  };
}

/** Logto's checks for organization_id on a refresh, before the token is looked at further. */
async function checkOrganizationAccess(
  rules: RuleContext,
  provider: ProviderInstance,
  ctx: KoaContextWithOIDC,
  organizationId: string,
): Promise<void> {
  const value = stringParam(ctx, 'refresh_token');
  const refreshToken = value ? await provider.RefreshToken.find(value, { ignoreExpiration: true }) : undefined;
  // Unusable tokens are left to the built-in handler (invalid_grant, reuse detection).
  if (!refreshToken || refreshToken.consumed || refreshToken.isExpired || refreshToken.clientId !== ctx.oidc.client?.clientId) return;
  if (!refreshToken.scopes.has(ORGANIZATIONS_SCOPE)) {
    throw new rules.errors.InsufficientScope('refresh token missing required scope', ORGANIZATIONS_SCOPE);
  }
  const user = refreshToken.accountId ? rules.usersBySub.get(refreshToken.accountId) : undefined;
  if (!user?.organizationRoles[organizationId]) {
    throw new rules.errors.AccessDenied('user is not a member of the organization');
  }
}

/** Logto's refresh_token grant also reads organization_id; wrap the built-in one. */
export function acceptOrganizationRefresh(rules: RuleContext, provider: ProviderInstance, providerInternals: typeof internals): void {
  const builtInRefresh = providerInternals(provider).grantTypeHandlers.get('refresh_token');
  if (!builtInRefresh) throw new Error('oidc-provider has no refresh_token grant handler');
  provider.registerGrantType(
    'refresh_token',
    async (ctx) => {
      const organizationId = stringParam(ctx, 'organization_id');
      if (organizationId) {
        await checkOrganizationAccess(rules, provider, ctx, organizationId);
        // An organization token is a token for the reserved resource whose
        // audience (see resourceServerInfo) names the organization.
        const params = ctx.oidc.params as UnknownObject;
        if (!stringParam(ctx, 'resource')) params.resource = ORGANIZATIONS_RESOURCE;
      }
      await builtInRefresh(ctx);
    },
    ['refresh_token', 'scope', 'resource', 'organization_id'],
    ['resource'],
  );
}

/** Logto's error bodies also carry `code` and `message`. */
export function withLogtoErrorFields(json: Record<string, unknown>, error: string): Record<string, unknown> {
  return {
    ...json,
    code: `oidc.${error}`,
    message: typeof json.error_description === 'string' ? json.error_description : error,
  };
}
