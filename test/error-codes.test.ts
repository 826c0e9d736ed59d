/** The table of error codes in lib/errors.ts, and what LogtoError reads from it. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isCausedByRequest, logtoErrorCodes } from '../lib/errors.js';
import { LogtoBearerError, LogtoError, type LogtoErrorCode } from '../lib/index.js';

/** The codes that went to Passport's `fail` before the table existed, and those added since. */
const requestCausedBefore = [
  'invalid_callback', 'invalid_state', 'issuer_mismatch', 'authorization_failed', 'sign_in_required', 'invalid_id_token',
  'invalid_access_token', 'token_request_failed', 'not_authenticated', 'not_organization_member', 'userinfo_mismatch',
  'invalid_logout_token',
];
const requestCausedSince = ['unknown_tenant', 'callback_host_mismatch'];

describe('the table of error codes', () => {
  test('is frozen; what the request caused is a 4xx, the rest a 5xx', () => {
    assert.ok(Object.isFrozen(logtoErrorCodes));
    for (const [code, { causedBy, httpStatus }] of Object.entries(logtoErrorCodes)) {
      if (causedBy === 'request') assert.ok(httpStatus >= 400 && httpStatus < 500, code);
      else assert.ok(httpStatus === 500 || httpStatus === 503, code);
    }
  });

  test('sorts the codes as the set it replaced did', () => {
    const requestCaused = Object.keys(logtoErrorCodes).filter((code) => isCausedByRequest(new LogtoError(code as LogtoErrorCode, 'x')));
    assert.deepEqual(requestCaused.sort(), [...requestCausedBefore, ...requestCausedSince].sort());
  });

  test('gives each error its causedBy and httpStatus, and Logto\'s status as providerStatus', () => {
    const fromLogto = new LogtoError('provider_error', 'Logto answered HTTP 502.', { providerStatus: 502 });
    assert.equal(fromLogto.providerStatus, 502);
    assert.equal(fromLogto.httpStatus, 503);
    assert.equal(fromLogto.causedBy, 'infrastructure');
    const callback = new LogtoError('invalid_state', 'Unknown state.');
    assert.equal(callback.providerStatus, undefined);
    assert.deepEqual([callback.httpStatus, callback.causedBy], [400, 'request']);
    assert.equal(new LogtoError('not_organization_member', 'x').httpStatus, 403);
    assert.equal(new LogtoError('invalid_config', 'x').httpStatus, 500);
    assert.deepEqual([new LogtoError('unknown_tenant', 'x').httpStatus, new LogtoError('unknown_tenant', 'x').causedBy], [404, 'request']);
  });

  test('status and statusCode (what finalhandler and http-errors-style handlers read) are httpStatus; expose only for what the request caused', () => {
    for (const [code, { causedBy, httpStatus }] of Object.entries(logtoErrorCodes)) {
      const error = new LogtoError(code as LogtoErrorCode, 'x');
      assert.deepEqual([error.status, error.statusCode, error.expose], [httpStatus, httpStatus, causedBy === 'request'], code);
      assert.equal(error.providerStatus, undefined, `${code}: no status from Logto`);
    }
    // Logto's status is kept apart from the one to answer with.
    const refused = new LogtoError('token_request_failed', 'x', { providerStatus: 400, oauthError: 'invalid_grant' });
    assert.deepEqual([refused.providerStatus, refused.status, refused.statusCode, refused.httpStatus], [400, 401, 401, 401]);
    assert.equal(new LogtoBearerError('insufficient_scope', 'x').status, 403);
    assert.equal(new LogtoBearerError('insufficient_scope', 'x').statusCode, 403);
    assert.equal(new LogtoBearerError('invalid_request', 'x').expose, true);
    const unknown = new LogtoError('unknown_tenant', 'fixed text', { requestTarget: 'GET evil.example/x' });
    assert.deepEqual([unknown.message, unknown.requestTarget], ['fixed text', 'GET evil.example/x']);
    assert.equal(new LogtoError('invalid_state', 'x').requestTarget, undefined);
  });

  test('a code outside the table counts as an infrastructure fault', () => {
    const unknown = new LogtoError('no_such_code' as LogtoErrorCode, 'x');
    assert.deepEqual([unknown.causedBy, unknown.httpStatus], ['infrastructure', 500]);
    assert.equal(new LogtoError('toString' as LogtoErrorCode, 'x').httpStatus, 500);
  });

  test('a LogtoBearerError keeps the status of RFC 6750', () => {
    assert.equal(new LogtoBearerError('invalid_request', 'x').httpStatus, 400);
    assert.equal(new LogtoBearerError('invalid_token', 'x').httpStatus, 401);
    assert.equal(new LogtoBearerError('insufficient_scope', 'x').httpStatus, 403);
    assert.equal(new LogtoBearerError(undefined, 'x').httpStatus, 401);
    assert.equal(new LogtoBearerError('insufficient_scope', 'x').causedBy, 'request');
  });
});
