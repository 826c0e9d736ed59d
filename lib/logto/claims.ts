/**
 * The claims Logto puts in its tokens and userinfo, per scope. A claim whose scope was not asked
 * for is absent; one that was asked for but is empty is `null`, as Logto sends it.
 */

export interface AddressClaim {
  formatted?: string;
  street_address?: string;
  locality?: string;
  region?: string;
  postal_code?: string;
  country?: string;
}

/** The claims that describe the user, shared by the ID token and userinfo. */
export interface UserClaims {
  sub: string;
  /** scope `profile` */
  name?: string | null;
  picture?: string | null;
  username?: string | null;
  given_name?: string | null;
  family_name?: string | null;
  middle_name?: string | null;
  nickname?: string | null;
  preferred_username?: string | null;
  profile?: string | null;
  website?: string | null;
  gender?: string | null;
  birthdate?: string | null;
  zoneinfo?: string | null;
  locale?: string | null;
  /** Milliseconds since the epoch. */
  created_at?: number;
  /** Milliseconds since the epoch. */
  updated_at?: number;
  /** scope `email` */
  email?: string | null;
  email_verified?: boolean;
  /** scope `phone` */
  phone_number?: string | null;
  phone_number_verified?: boolean;
  /** scope `address` */
  address?: AddressClaim | null;
  /** scope `roles` */
  roles?: string[];
  /** scope `urn:logto:scope:organizations` */
  organizations?: string[];
  /** scope `urn:logto:scope:organization_roles`: `<organizationId>:<roleName>` */
  organization_roles?: string[];
  [claim: string]: unknown;
}

export interface IdTokenClaims extends UserClaims {
  iss: string;
  aud: string | string[];
  exp: number;
  iat: number;
  nonce?: string;
  at_hash?: string;
  auth_time?: number;
  sid?: string;
}

export interface OrganizationData {
  id: string;
  name: string;
  description: string | null;
}

export interface UserIdentity {
  userId: string;
  details?: Record<string, unknown>;
}

/** What Logto's userinfo endpoint answers: the user claims plus those only it returns. */
export interface UserInfoResponse extends UserClaims {
  /** scope `custom_data` */
  custom_data?: Record<string, unknown>;
  /** scope `identities` */
  identities?: Record<string, UserIdentity>;
  sso_identities?: Array<Record<string, unknown>>;
  /** scope `urn:logto:scope:organizations` */
  organization_data?: OrganizationData[];
}

/** The claims of a JWT access token for an API resource or an organization. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  /** The resource indicator, or `urn:logto:organization:<id>` for an organization token. */
  aud: string | string[];
  exp: number;
  iat: number;
  jti?: string;
  client_id?: string;
  /** Space-separated scopes. */
  scope?: string;
  /** Present on organization-scoped API resource tokens. */
  organization_id?: string;
  [claim: string]: unknown;
}

/** Claims that describe the token rather than the user; left out of the default `req.user`. */
const protocolClaims: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'at_hash', 'c_hash', 's_hash',
  'auth_time', 'sid', 'azp', 'acr', 'amr',
]);

/** The user's own claims from an ID token, without the token's bookkeeping claims. */
export function profileClaims(claims: IdTokenClaims): Record<string, unknown> {
  return Object.fromEntries(Object.entries(claims).filter(([name]) => !protocolClaims.has(name)));
}

/** One of the user's organizations, as the ID token tells it. */
export interface UserOrganization {
  /** The organization ID; its tokens have the audience `urn:logto:organization:<id>`. */
  id: string;
  /** The user's organization roles there, from `organization_roles` (empty without `UserScope.OrganizationRoles`). */
  roles: string[];
}

/** One of the user's organizations, as userinfo tells it: with its name and description. */
export interface UserOrganizationDetails extends UserOrganization {
  name: string;
  description: string | null;
}

/**
 * The organizations in a set of claims: every ID in `organizations`, then any that only
 * `organization_roles` names, each with its roles. An entry of `organization_roles` is
 * `<organizationId>:<roleName>`; organization IDs have no colon, role names may.
 */
export function organizationsOf(claims: Pick<UserClaims, 'organizations' | 'organization_roles'>): UserOrganization[] {
  const byId = new Map<string, UserOrganization>();
  const entry = (id: string): UserOrganization => {
    let organization = byId.get(id);
    if (!organization) byId.set(id, (organization = { id, roles: [] }));
    return organization;
  };
  for (const id of claims.organizations ?? []) {
    if (typeof id === 'string' && id !== '') entry(id);
  }
  for (const value of claims.organization_roles ?? []) {
    if (typeof value !== 'string') continue;
    const colon = value.indexOf(':');
    if (colon <= 0 || colon === value.length - 1) continue;
    const roles = entry(value.slice(0, colon)).roles;
    const role = value.slice(colon + 1);
    if (!roles.includes(role)) roles.push(role);
  }
  return [...byId.values()];
}

/** The organizations in a userinfo answer: `organization_data` for names, the role claims for roles. */
export function organizationDetailsOf(userInfo: UserInfoResponse): UserOrganizationDetails[] {
  const data = new Map((userInfo.organization_data ?? []).map((organization) => [organization.id, organization]));
  const listed = organizationsOf({
    // organization_data alone may name an organization when the ID-only claim is left out.
    organizations: [...(userInfo.organizations ?? []), ...data.keys()],
    ...(userInfo.organization_roles === undefined ? {} : { organization_roles: userInfo.organization_roles }),
  });
  return listed.map((organization) => {
    const details = data.get(organization.id);
    return { ...organization, name: details?.name ?? organization.id, description: details?.description ?? null };
  });
}
