import { decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import type { BearerSettings } from './configuration.js';
import { describeRejection, LogtoBearerError } from './errors.js';
import type { AccessTokenClaims } from '../logto/claims.js';
import { isLogtoError } from '../errors.js';
import { buildOrganizationUrn } from '../logto/scopes.js';
import { TokenVerifier } from '../logto/token-verifier.js';

/*
 * What makes an access token good for a request: its type, signature, issuer, audience and times
 * (against Logto's JWKS), the claims the rest of the code relies on, the organization it belongs
 * to, and its scopes. Kept apart from the Passport strategy, which only turns the outcome into a
 * response.
 */

/** A verified token and the organization it belongs to, if any. */
export interface CheckedToken {
  claims: AccessTokenClaims;
  organizationId: string | undefined;
}

const organizationAudiencePrefix = buildOrganizationUrn('');

/** The checks of one LogtoBearerStrategy, with its JWKS cache; throws LogtoBearerError for a token to refuse. */
export class AccessTokenChecks {
  private readonly verifier: TokenVerifier;

  constructor(private readonly settings: BearerSettings) {
    const { jwksUri } = settings;
    this.verifier = new TokenVerifier({
      issuer: settings.issuer,
      // Logto serves its JWKS at a fixed path, so no discovery request is needed.
      jwksUri: () => Promise.resolve(jwksUri),
      algorithms: settings.signingAlgorithms,
      clockTolerance: settings.clockTolerance,
      timeout: settings.timeout,
      cooldown: settings.jwksCooldown,
      fetch: settings.fetch,
    });
  }

  /** Every check of an access token, in order: the token itself, its organization, its scopes. */
  async check(token: string, routeScopes: readonly string[], expectedOrganization: string | undefined): Promise<CheckedToken> {
    const audiences = this.audiencesFor(token);
    const claims = await this.verifiedClaims(token, audiences);
    const organizationId = this.organizationOf(claims, audiences, expectedOrganization);
    this.requireScopes(claims, routeScopes);
    return { claims, organizationId };
  }

  /** The claims of a token that is an access token, signed by Logto, for one of `audiences`, and in date. */
  private async verifiedClaims(token: string, audiences: readonly string[]): Promise<AccessTokenClaims> {
    let typ: unknown;
    try {
      typ = decodeProtectedHeader(token).typ;
    } catch (error) {
      throw new LogtoBearerError('invalid_token', 'The token is not a well-formed JWT.', { cause: error });
    }
    // Logto marks access tokens `at+jwt` (RFC 9068); an ID token or another JWT must not pass as one.
    if (typ !== undefined && (typeof typ !== 'string' || typ.toLowerCase().replace(/^application\//, '') !== 'at+jwt')) {
      throw new LogtoBearerError('invalid_token', 'The token is not an access token.');
    }
    let payload: JWTPayload;
    try {
      payload = await this.verifier.verify<JWTPayload>(token, { audience: audiences, kind: 'invalid_access_token' });
    } catch (error) {
      if (isLogtoError(error, 'invalid_access_token')) {
        throw new LogtoBearerError('invalid_token', describeRejection(error.cause), { cause: error });
      }
      throw error;
    }
    return accessTokenClaimsOf(payload);
  }

  /** The organization the token belongs to, if any, once it is one this request may use. */
  private organizationOf(claims: AccessTokenClaims, audiences: readonly string[], expectedOrganization: string | undefined): string | undefined {
    const tokenOrganization = claims.organization_id ?? organizationInAudience(claims.aud, audiences);
    if (expectedOrganization !== undefined && tokenOrganization !== expectedOrganization) {
      throw new LogtoBearerError('insufficient_scope', `The token does not grant access to organization ${expectedOrganization}.`);
    }
    if (expectedOrganization === undefined && claims.organization_id !== undefined) {
      throw new LogtoBearerError('insufficient_scope', 'Organization-scoped tokens are not accepted here; use a token without an organization.');
    }
    // With `organizations: true` an organization token is only good for the organization the
    // request is about; a route about none must not take one of any organization.
    if (
      expectedOrganization === undefined && tokenOrganization !== undefined && claims.organization_id === undefined
      && !this.settings.organizationUnchecked && !this.settings.audiences.includes(buildOrganizationUrn(tokenOrganization))
    ) {
      throw new LogtoBearerError('insufficient_scope', 'Organization tokens are accepted here only for the organization the request is about, and it names none.');
    }
    return tokenOrganization;
  }

  /** The strategy's required scopes and the route's must all be granted. */
  private requireScopes(claims: AccessTokenClaims, routeScopes: readonly string[]): void {
    const required = [...new Set([...this.settings.requiredScopes, ...routeScopes])];
    const granted = new Set(scopesOf(claims));
    const missing = required.filter((scope) => !granted.has(scope));
    if (missing.length > 0) {
      throw new LogtoBearerError('insufficient_scope', `The token lacks the scope ${missing.join(' ')}.`, { requiredScopes: required });
    }
  }

  /**
   * The audiences to accept for this token. With `organizations: true` or `'any'` the organization audience
   * is read from the unverified token so that jose can compare it; the signature check that
   * follows still decides, so a forged audience gains nothing.
   */
  private audiencesFor(token: string): readonly string[] {
    if (!this.settings.anyOrganization) return this.settings.audiences;
    let aud: unknown;
    try {
      aud = decodeJwt(token).aud;
    } catch {
      return this.settings.audiences;
    }
    const claimed = (Array.isArray(aud) ? aud : [aud]).filter(
      (value): value is string => typeof value === 'string' && value.startsWith(organizationAudiencePrefix) && value.length > organizationAudiencePrefix.length,
    );
    return claimed.length === 0 ? this.settings.audiences : [...this.settings.audiences, ...claimed];
  }
}

export function scopesOf(claims: AccessTokenClaims): string[] {
  return claims.scope === undefined ? [] : claims.scope.split(' ').filter(Boolean);
}

/** Checks the claims that the rest of the code and the AccessTokenClaims type rely on. */
function accessTokenClaimsOf(payload: JWTPayload): AccessTokenClaims {
  const { sub, exp, iat, scope, organization_id: organizationId } = payload;
  // jose checks exp only when present; an access token without one would never expire.
  if (typeof exp !== 'number') throw new LogtoBearerError('invalid_token', 'The token has no expiry.');
  if (typeof sub !== 'string' || sub === '' || typeof iat !== 'number') {
    throw new LogtoBearerError('invalid_token', 'The token lacks its subject or issue time.');
  }
  if (scope !== undefined && typeof scope !== 'string') throw new LogtoBearerError('invalid_token', 'The token has a malformed scope claim.');
  if (organizationId !== undefined && (typeof organizationId !== 'string' || organizationId === '')) {
    throw new LogtoBearerError('invalid_token', 'The token has a malformed organization_id claim.');
  }
  return payload as AccessTokenClaims;
}

/** The organization an organization token is for: its accepted `urn:logto:organization:<id>` audience. */
function organizationInAudience(aud: string | string[], accepted: readonly string[]): string | undefined {
  const match = (Array.isArray(aud) ? aud : [aud]).find((value) => value.startsWith(organizationAudiencePrefix) && accepted.includes(value));
  return match?.slice(organizationAudiencePrefix.length);
}

