import type { ServerResponse } from 'node:http';
import type { HostRequest as Request } from '../host-types.js';
import { formBodyValues, queryParameters, singleValue } from '../request-parameters.js';
import type { BearerTokenLocation } from './configuration.js';
import { LogtoBearerError } from './errors.js';

/** RFC 6750 §2.1: the scheme, then a b64token. */
const bearerHeaderPattern = /^Bearer +([A-Za-z0-9\-._~+/]+=*)$/i;
export const tokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The token of the request, from the configured locations; exactly one is allowed (RFC 6750 §2). */
export function bearerTokenOf(req: Request, tokenLocations: ReadonlySet<BearerTokenLocation>): string {
  const found: string[] = [];
  if (tokenLocations.has('header')) {
    const header = req.headers.authorization;
    // Another scheme (Basic, Digest, ...) carries no bearer token: RFC 6750 §3.1 wants the bare
    // challenge for that, and a chain of Passport strategies must be able to try the next one.
    if (header !== undefined && schemeOf(header) === 'bearer') {
      const match = bearerHeaderPattern.exec(header);
      if (!match?.[1]) throw new LogtoBearerError('invalid_request', 'The Authorization header must have the form: Bearer <token>.');
      found.push(match[1]);
    }
  }
  if (tokenLocations.has('body') && req.method !== 'GET') {
    const values = formBodyValues(req, 'access_token');
    if (values.length > 0) found.push(singleToken(values));
  }
  if (tokenLocations.has('query')) {
    const values = queryParameters(req).getAll('access_token');
    if (values.length > 0) found.push(singleToken(values));
  }
  if (found.length > 1) throw new LogtoBearerError('invalid_request', 'The request carries the token in more than one place.');
  const token = found[0];
  if (token === undefined) throw new LogtoBearerError(undefined, 'The request carries no access token.');
  return token;
}

/** The auth-scheme of an Authorization header (RFC 9110 §11.4), lower-cased; schemes are case-insensitive. */
function schemeOf(header: string): string {
  return (/^[^\s,]*/.exec(header.trimStart())?.[0] ?? '').toLowerCase();
}

function singleToken(values: readonly unknown[]): string {
  const value = singleValue(values, (candidate) => tokenPattern.test(candidate));
  if (typeof value !== 'string') throw new LogtoBearerError('invalid_request', 'The access_token parameter must appear once and hold a token.');
  return value;
}

/**
 * Adds the challenge when the response goes out with the failure's status. Passport sets it only
 * for 401; waiting for the response (like the on-headers package does) keeps the header off a
 * redirect, or off a success when a later strategy in a Passport chain accepts the request.
 */
export function addChallengeOnResponse(res: ServerResponse, status: number, challenge: string): void {
  const writeHead = res.writeHead;
  const patched = function (this: ServerResponse, ...args: unknown[]): ServerResponse {
    res.writeHead = writeHead;
    const statusCode = typeof args[0] === 'number' ? args[0] : res.statusCode;
    if (statusCode === status && !res.hasHeader('WWW-Authenticate')) res.setHeader('WWW-Authenticate', challenge);
    return (writeHead as (...values: unknown[]) => ServerResponse).apply(this, args);
  };
  res.writeHead = patched as typeof res.writeHead;
}
