import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { LogtoBearerStrategy, LogtoError, LogtoStrategy, ReservedResource, UserScope, type LogtoBearerOptions, type LogtoStrategyOptions } from '../lib/index.js';

const valid: LogtoStrategyOptions = {
  endpoint: 'https://tenant.logto.app',
  appId: 'app-id',
  appSecret: 'app-secret',
  callbackURL: 'https://app.example/callback',
};

function rejects(options: Record<string, unknown>, option: string): void {
  assert.throws(
    () => new LogtoStrategy(options as unknown as LogtoStrategyOptions),
    (error: unknown) => {
      assert.ok(error instanceof LogtoError, 'throws a LogtoError');
      assert.equal(error.code, 'invalid_config');
      assert.ok(error.message.includes(`\`${option}\``), `message names ${option}: ${error.message}`);
      return true;
    },
  );
}

describe('configuration', () => {
  test('defaults: name, issuer, scopes, prompt', () => {
    const strategy = new LogtoStrategy(valid);
    assert.equal(strategy.name, 'logto');
    assert.equal(strategy.config.issuer, 'https://tenant.logto.app/oidc');
    assert.deepEqual(strategy.config.scopes, ['openid', 'offline_access', 'profile']);
    assert.deepEqual(strategy.config.resources, []);
    assert.equal(strategy.config.prompt, 'consent');
  });

  test('a trailing slash on the endpoint is dropped; the organizations scope brings its resource', () => {
    const strategy = new LogtoStrategy({ ...valid, endpoint: 'https://tenant.logto.app/', scopes: [UserScope.Organizations, UserScope.Email, 'openid'], resources: ['https://api.example'], name: 'corp' });
    assert.equal(strategy.config.issuer, 'https://tenant.logto.app/oidc');
    assert.deepEqual(strategy.config.scopes, ['openid', 'offline_access', 'profile', UserScope.Organizations, 'email']);
    assert.deepEqual(strategy.config.resources, ['https://api.example', ReservedResource.Organization]);
    assert.equal(strategy.name, 'corp');
  });

  test('missing or invalid options name the option', () => {
    for (const option of ['endpoint', 'appId', 'appSecret', 'callbackURL'] as const) {
      rejects({ ...valid, [option]: undefined }, option);
      rejects({ ...valid, [option]: '' }, option);
    }
    rejects({ ...valid, endpoint: 'not a url' }, 'endpoint');
    rejects({ ...valid, endpoint: 'ftp://tenant.logto.app' }, 'endpoint');
    rejects({ ...valid, callbackURL: '/callback' }, 'callbackURL');
    rejects({ ...valid, postLogoutRedirectUri: 'nope' }, 'postLogoutRedirectUri');
    rejects({ ...valid, scopes: 'email' }, 'scopes');
    rejects({ ...valid, scopes: ['two words'] }, 'scopes');
    rejects({ ...valid, resources: ['not-absolute'] }, 'resources');
    rejects({ ...valid, prompt: 'always' }, 'prompt');
    rejects({ ...valid, signingAlgorithms: ['HS256'] }, 'signingAlgorithms');
    rejects({ ...valid, signingAlgorithms: ['none'] }, 'signingAlgorithms');
    rejects({ ...valid, timeout: -1 }, 'timeout');
    rejects({ ...valid, maxPendingSignIns: 0 }, 'maxPendingSignIns');
    rejects({ ...valid, passReqToCallback: true }, 'passReqToCallback');
  });

  test('http: works on loopback hosts only, unless the app opts in', () => {
    for (const endpoint of ['http://localhost:3001', 'http://127.0.0.1:3001', 'http://[::1]:3001']) {
      assert.equal(new LogtoStrategy({ ...valid, endpoint }).config.issuer, `${endpoint}/oidc`);
    }
    rejects({ ...valid, endpoint: 'http://logto.internal' }, 'endpoint');
    assert.equal(new LogtoStrategy({ ...valid, endpoint: 'http://logto.internal', allowInsecureEndpoint: true }).config.issuer, 'http://logto.internal/oidc');
  });

  test('constants mirror the official SDKs', () => {
    assert.equal(UserScope.Profile, 'profile');
    assert.equal(UserScope.Email, 'email');
    assert.equal(UserScope.Phone, 'phone');
    assert.equal(UserScope.Address, 'address');
    assert.equal(UserScope.CustomData, 'custom_data');
    assert.equal(UserScope.Identities, 'identities');
    assert.equal(UserScope.Roles, 'roles');
    assert.equal(UserScope.Organizations, 'urn:logto:scope:organizations');
    assert.equal(UserScope.OrganizationRoles, 'urn:logto:scope:organization_roles');
    assert.equal(ReservedResource.Organization, 'urn:logto:resource:organizations');
  });

  test('both strategies refuse a verify argument that is not a function, and passReqToCallback without one, alike', () => {
    const bearer: LogtoBearerOptions = { endpoint: valid.endpoint, audience: 'https://api.example' };
    const construct = {
      LogtoStrategy: (options: object, verify?: unknown) => new LogtoStrategy({ ...valid, ...options } as LogtoStrategyOptions, verify as undefined),
      LogtoBearerStrategy: (options: object, verify?: unknown) => new LogtoBearerStrategy({ ...bearer, ...options } as LogtoBearerOptions, verify as undefined),
    };
    for (const [name, make] of Object.entries(construct)) {
      const messageOf = (run: () => unknown): string => {
        try {
          run();
        } catch (error) {
          assert.ok(error instanceof LogtoError, `${name} throws a LogtoError`);
          return `${error.code}: ${error.message}`;
        }
        return 'no error';
      };
      assert.equal(messageOf(() => make({}, 'not a function')), 'invalid_config: passport-logto: the verify argument must be a function.', name);
      assert.equal(messageOf(() => make({ passReqToCallback: true })), 'invalid_config: passport-logto: option `passReqToCallback` needs a verify function.', name);
      assert.equal(messageOf(() => make({ passReqToCallback: true }, () => undefined)), 'no error', name);
      assert.equal(messageOf(() => make({})), 'no error', name);
    }
  });
});
