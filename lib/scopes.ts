/** The scopes that Logto knows, with the names that Logto's official SDKs give them. */
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
} as const;

export type UserScope = (typeof UserScope)[keyof typeof UserScope];

/** Resource indicators that Logto reserves. */
export const ReservedResource = {
  /** Asked for at sign-in so that organization tokens can be granted later. */
  Organization: 'urn:logto:resource:organizations',
} as const;

export type ReservedResource = (typeof ReservedResource)[keyof typeof ReservedResource];

/** Logto only issues a refresh token and profile claims with these; the official SDKs always send them. */
const alwaysRequestedScopes: readonly string[] = [UserScope.OpenId, UserScope.OfflineAccess, UserScope.Profile];

/** The scopes to ask for at sign-in: the configured ones plus those Logto needs, without repeats. */
export function signInScopes(configured: readonly string[]): string[] {
  return [...new Set([...alwaysRequestedScopes, ...configured])];
}

/** The resources to declare at sign-in: asking for organizations brings Logto's organization resource. */
export function signInResources(configured: readonly string[], scopes: readonly string[]): string[] {
  const resources = new Set(configured);
  if (scopes.includes(UserScope.Organizations)) resources.add(ReservedResource.Organization);
  return [...resources];
}

/** The audience of an organization token for the given organization. */
export function organizationAudience(organizationId: string): string {
  return `urn:logto:organization:${organizationId}`;
}
