/**
 * Clients and users: Logto's reserved names, the API resource and organizations the provider
 * knows, the seeded roles and users, and the registry of apps.
 */
import type { AdapterPayload } from 'oidc-provider';
import { randomId, type ProviderInstance } from './helpers.js';
import type { RegisterAppOptions, TestApp, TestUser } from './index.js';
import { StoreAdapter, type MemoryStore } from './storage.js';

// Logto's reserved names.
export const ORGANIZATIONS_RESOURCE = 'urn:logto:resource:organizations';
export const ORGANIZATIONS_SCOPE = 'urn:logto:scope:organizations';
export const ORGANIZATION_ROLES_SCOPE = 'urn:logto:scope:organization_roles';
export const organizationAudience = (organizationId: string): string => `urn:logto:organization:${organizationId}`;

/** The one API resource the provider knows. */
export const API_RESOURCE = 'https://api.example.com';
export const API_SCOPES = ['read:items', 'write:items'] as const;
/** Organization permissions (scopes of organization tokens). */
export const ORGANIZATION_SCOPES = ['read:members', 'write:members', 'invite:members'] as const;

export const ORGANIZATIONS = [
  { id: 'org-acme', name: 'Acme', description: 'Acme Corporation, the organization demo belongs to' },
  { id: 'org-globex', name: 'Globex', description: 'Globex Corporation, nobody seeded belongs to it' },
] as const;

export const EXTRA_AUTHORIZATION_PARAMS = [
  'first_screen',
  'identifier',
  'direct_sign_in',
  'organization_id',
  'one_time_token',
  'interaction_mode',
] as const;

// ---------------------------------------------------------------------------
// Seed data: roles, users
// ---------------------------------------------------------------------------

export interface RoleDefinition {
  /** Organization permissions (organization roles only). */
  organizationScopes: string[];
  /** API resource indicator -> scopes. */
  apiScopes: Record<string, string[]>;
}

export const GLOBAL_ROLES: Record<string, RoleDefinition> = {
  admin: { organizationScopes: [], apiScopes: { [API_RESOURCE]: ['read:items', 'write:items'] } },
};

export const ORGANIZATION_ROLES: Record<string, RoleDefinition> = {
  member: { organizationScopes: ['read:members'], apiScopes: { [API_RESOURCE]: ['read:items'] } },
  admin: {
    organizationScopes: [...ORGANIZATION_SCOPES],
    apiScopes: { [API_RESOURCE]: ['read:items', 'write:items'] },
  },
};

// Claims only /oidc/me returns, never the ID token.
export const USERINFO_ONLY_CLAIMS = ['custom_data', 'identities', 'sso_identities', 'organization_data'];

export const CLAIMS_BY_SCOPE: Record<string, string[]> = {
  openid: ['sub'],
  profile: ['name', 'picture', 'username', 'updated_at', 'created_at'],
  email: ['email', 'email_verified'],
  phone: ['phone_number', 'phone_number_verified'],
  address: ['address'],
  custom_data: ['custom_data'],
  identities: ['identities', 'sso_identities'],
  roles: ['roles'],
  [ORGANIZATIONS_SCOPE]: ['organizations', 'organization_data'],
  [ORGANIZATION_ROLES_SCOPE]: ['organization_roles'],
};

interface UserSeed {
  sub: string;
  username: string;
  password: string;
  name: string | null;
  picture: string | null;
  email: string | null;
  phone: string | null;
  roles: string[];
  organizationRoles: Record<string, string[]>;
  customData: Record<string, unknown>;
  createdAt: number;
}

export function buildUser(seed: UserSeed): TestUser {
  const organizationIds = Object.keys(seed.organizationRoles);
  const claims: Record<string, unknown> = {
    sub: seed.sub,
    name: seed.name,
    picture: seed.picture,
    username: seed.username,
    created_at: seed.createdAt,
    updated_at: seed.createdAt + 60_000,
    email: seed.email,
    email_verified: seed.email !== null,
    phone_number: seed.phone,
    phone_number_verified: seed.phone !== null,
    address: {
      formatted: '1 Test Street, Testville',
      street_address: '1 Test Street',
      locality: 'Testville',
      country: 'XX',
    },
    custom_data: seed.customData,
    identities: {},
    sso_identities: [],
    roles: seed.roles,
    organizations: organizationIds,
    organization_data: ORGANIZATIONS.filter((o) => organizationIds.includes(o.id)).map((o) => ({
      id: o.id,
      name: o.name,
      description: o.description,
    })),
    organization_roles: Object.entries(seed.organizationRoles).flatMap(([id, roles]) => roles.map((r) => `${id}:${r}`)),
  };
  return {
    sub: seed.sub,
    username: seed.username,
    password: seed.password,
    name: seed.name,
    email: seed.email,
    roles: seed.roles,
    organizationRoles: seed.organizationRoles,
    claims,
  };
}

export function seedUsers(): { demo: TestUser; alice: TestUser } {
  // Fixed timestamps keep snapshots stable; Logto uses milliseconds.
  return {
    demo: buildUser({
      sub: 'demo00user01',
      username: 'demo',
      password: 'demo-password',
      name: 'Demo User',
      picture: null,
      email: 'demo@example.com',
      phone: '+15555550100',
      roles: ['admin'],
      organizationRoles: { 'org-acme': ['member'] },
      customData: { plan: 'pro' },
      createdAt: 1_700_000_000_000,
    }),
    alice: buildUser({
      sub: 'alice0user02',
      username: 'alice',
      password: 'alice-password',
      name: 'Alice Liddell',
      picture: 'https://example.com/alice.png',
      email: 'alice@example.com',
      phone: null,
      roles: [],
      organizationRoles: {},
      customData: {},
      createdAt: 1_700_000_100_000,
    }),
  };
}

export function scopesFromRoles(
  roleNames: string[],
  definitions: Record<string, RoleDefinition>,
  pick: (role: RoleDefinition) => string[],
): string[] {
  const scopes = new Set<string>();
  for (const name of roleNames) {
    const role = definitions[name];
    if (role) pick(role).forEach((s) => scopes.add(s));
  }
  return [...scopes];
}

// ---------------------------------------------------------------------------
// Apps
// ---------------------------------------------------------------------------

/** An http(s) URL on a loopback host, any port and path: what an app on this machine sends. */
function isLoopbackUri(value: string): boolean {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:')
    && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)
    && url.username === '' && url.password === '' && url.hash === '';
}

export interface AppRegistry {
  /** Where oidc-provider finds the apps; the sign-in pages read their names from it too. */
  clientAdapter: StoreAdapter;
  registerApp(opts: RegisterAppOptions): Promise<TestApp>;
  addRedirectUris(appId: string, redirectUris: string[], postLogoutRedirectUris?: string[]): Promise<void>;
  /** Lets apps registered with anyLoopbackRedirectUri use any loopback URI on this provider instance. */
  allowLoopbackRedirects(provider: ProviderInstance): void;
}

/** Apps live in the shared store, so they survive a key rotation (a new provider instance). */
export function createAppRegistry(store: MemoryStore, alg: 'ES384' | 'RS256'): AppRegistry {
  const loopbackApps = new Set<string>();
  const clientAdapter = new StoreAdapter('Client', store);

  function allowLoopbackRedirects(provider: ProviderInstance): void {
    // Apps registered with anyLoopbackRedirectUri take any loopback URI besides their listed ones.
    // Client is a class of this provider instance, so patching its prototype stays local to it.
    const clientPrototype = provider.Client.prototype;
    const { redirectUriAllowed, postLogoutRedirectUriAllowed } = clientPrototype;
    clientPrototype.redirectUriAllowed = function (this: InstanceType<ProviderInstance['Client']>, value: string) {
      return redirectUriAllowed.call(this, value) || (loopbackApps.has(this.clientId) && isLoopbackUri(value));
    };
    clientPrototype.postLogoutRedirectUriAllowed = function (this: InstanceType<ProviderInstance['Client']>, value: string) {
      return postLogoutRedirectUriAllowed.call(this, value) || (loopbackApps.has(this.clientId) && isLoopbackUri(value));
    };
  }

  async function registerApp(opts: RegisterAppOptions): Promise<TestApp> {
    const appId = opts.appId ?? randomId(21);
    const appSecret = opts.appSecret ?? randomId(32);
    if (opts.anyLoopbackRedirectUri) loopbackApps.add(appId);
    const metadata: AdapterPayload = {
      client_id: appId,
      client_secret: appSecret,
      client_name: opts.name ?? `Test app ${appId}`,
      application_type: 'web',
      redirect_uris: opts.redirectUris,
      post_logout_redirect_uris: opts.postLogoutRedirectUris ?? [],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: alg,
    };
    if (opts.backchannelLogoutUri) {
      metadata.backchannel_logout_uri = opts.backchannelLogoutUri;
      metadata.backchannel_logout_session_required = opts.backchannelLogoutSessionRequired ?? true;
    }
    await clientAdapter.upsert(appId, metadata);
    return { appId, appSecret };
  }

  async function addRedirectUris(appId: string, redirectUris: string[], postLogoutRedirectUris: string[] = []): Promise<void> {
    const metadata = await clientAdapter.find(appId);
    if (!metadata) throw new Error(`unknown app ${appId}`);
    metadata.redirect_uris = [...new Set([...(metadata.redirect_uris ?? []), ...redirectUris])];
    metadata.post_logout_redirect_uris = [
      ...new Set([...(metadata.post_logout_redirect_uris ?? []), ...postLogoutRedirectUris]),
    ];
    await clientAdapter.upsert(appId, metadata);
  }

  return { clientAdapter, registerApp, addRedirectUris, allowLoopbackRedirects };
}
