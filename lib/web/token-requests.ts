import type { ResolvedConfig } from '../configuration.js';
import { LogtoError } from '../errors.js';
import { UserScope } from '../logto/scopes.js';

/**
 * Refuses, without a network call, an access token that Logto would refuse anyway: a resource
 * the sign-in never declared, or an organization without the organizations scope.
 */
export function checkTokenRequest(config: ResolvedConfig, resource: string | undefined, organizationId: string | undefined): void {
  if (resource !== undefined && !config.resources.includes(resource)) {
    throw new LogtoError(
      'invalid_resource',
      `The resource "${resource}" was not declared in the \`resources\` option at sign-in, so Logto will not grant it. Add it and sign in again.`,
    );
  }
  if (organizationId !== undefined) {
    if (typeof organizationId !== 'string' || organizationId === '') {
      throw new LogtoError('invalid_resource', 'The organization ID must be a non-empty string.');
    }
    if (!config.scopes.includes(UserScope.Organizations)) {
      throw new LogtoError(
        'missing_scope_organizations',
        `Organization tokens need the scope ${UserScope.Organizations}: add UserScope.Organizations to \`scopes\` and sign in again.`,
      );
    }
  }
}

/** Refuses a `clearAccessTokens()` filter that can match no cached token, most likely a typo. */
export function checkClearRequest(config: ResolvedConfig, resource: string | undefined, organizationId: string | undefined): void {
  for (const [name, value] of [['resource', resource], ['organizationId', organizationId]] as const) {
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw new LogtoError('invalid_resource', `clearAccessTokens: \`${name}\` must be a non-empty string; leave it out to clear every access token.`);
    }
  }
  if (resource !== undefined && !config.resources.includes(resource)) {
    throw new LogtoError('invalid_resource', `clearAccessTokens: the resource "${resource}" is not in the \`resources\` option, so no token of it can be cached.`);
  }
}
