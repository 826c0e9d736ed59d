import { LogtoError } from '../errors.js';

/**
 * The scopes that Logto knows, with the names that Logto's official SDKs give them. Logto's own
 * `UserScope` has no `OpenId` and `OfflineAccess` (those are {@link ReservedScope}); they are kept
 * here too, as passport-logto 0.1.0 had them.
 */
export const UserScope = {
  OpenId: 'openid',
  OfflineAccess: 'offline_access',
  /** name, picture, username and the other OIDC profile claims. */
  Profile: 'profile',
  /** email, email_verified. */
  Email: 'email',
  /** phone_number, phone_number_verified. */
  Phone: 'phone',
  /** address. */
  Address: 'address',
  /** custom_data; returned by userinfo only. */
  CustomData: 'custom_data',
  /** identities and sso_identities; returned by userinfo only. */
  Identities: 'identities',
  /** roles. */
  Roles: 'roles',
  /** organizations (and organization_data from userinfo); needed for organization tokens. */
  Organizations: 'urn:logto:scope:organizations',
  /** organization_roles, as `<organizationId>:<roleName>`. */
  OrganizationRoles: 'urn:logto:scope:organization_roles',
  /** Session management through Logto's Account API; it adds no claims. */
  Sessions: 'urn:logto:scope:sessions',
} as const;

export type UserScope = (typeof UserScope)[keyof typeof UserScope];

/** Resource indicators that Logto reserves. */
export const ReservedResource = {
  /** Asked for at sign-in so that organization tokens can be granted later. */
  Organization: 'urn:logto:resource:organizations',
} as const;

export type ReservedResource = (typeof ReservedResource)[keyof typeof ReservedResource];

/** Scopes that Logto's SDKs add to every sign-in, as Logto's `ReservedScope` names them. */
export const ReservedScope = {
  OpenId: 'openid',
  OfflineAccess: 'offline_access',
} as const;

export type ReservedScope = (typeof ReservedScope)[keyof typeof ReservedScope];

/** Logto only issues a refresh token and profile claims with these; the official SDKs always send them. */
const reservedScopes: readonly string[] = [ReservedScope.OpenId, ReservedScope.OfflineAccess, UserScope.Profile];

/**
 * The scopes to ask for at sign-in: the configured ones plus those Logto needs, without repeats.
 * Without the reserved ones, only `openid` is added: it is what makes the sign-in OpenID Connect.
 */
export function signInScopes(configured: readonly string[], includeReservedScopes = true): string[] {
  return [...new Set([...(includeReservedScopes ? reservedScopes : [ReservedScope.OpenId]), ...configured])];
}

/** The resources to declare at sign-in: asking for organizations brings Logto's organization resource. */
export function signInResources(configured: readonly string[], scopes: readonly string[]): string[] {
  const resources = new Set(configured);
  if (scopes.includes(UserScope.Organizations)) resources.add(ReservedResource.Organization);
  return [...resources];
}

/** What an organization's URN (the audience of its organization tokens) starts with. */
export const organizationUrnPrefix = 'urn:logto:organization:';

/** The URN of an organization, `urn:logto:organization:<id>`: the audience of its organization tokens. */
export function buildOrganizationUrn(organizationId: string): string {
  return `${organizationUrnPrefix}${organizationId}`;
}

/** @deprecated The name passport-logto 0.1.0 gave {@link buildOrganizationUrn}, Logto's name: use that. */
export const organizationAudience = buildOrganizationUrn;

/**
 * The organization ID in an organization URN, such as an organization token's `aud`. Throws a
 * `LogtoError` with code `invalid_resource` for anything else (Logto's SDK throws a TypeError).
 */
export function getOrganizationIdFromUrn(urn: string): string {
  if (typeof urn !== 'string' || !urn.startsWith(organizationUrnPrefix) || urn.length === organizationUrnPrefix.length) {
    throw new LogtoError(
      'invalid_resource',
      `"${String(urn)}" is not an organization URN; one looks like ${organizationUrnPrefix}<organization ID> (the aud of an organization token).`,
    );
  }
  return urn.slice(organizationUrnPrefix.length);
}
