import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import passportModule from 'passport';
import { decodeProtectedHeader, exportSPKI, generateKeyPair, importJWK, SignJWT, type JWK } from 'jose';
import {
  isLogtoError,
  LogtoBearerError,
  LogtoBearerStrategy,
  LogtoError,
  logtoBearer,
  UserScope,
  type AccessTokenClaims,
  type LogtoBearerOptions,
  type LogtoBearerRouteOptions,
  type LogtoStrategy,
} from '../../lib/index.js';
import { startApp, type RunningApp } from '../support/app.js';
import { signIn } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

// Any unhandled rejection fails the file: the strategy must route every failure somewhere.
const unhandledRejections: unknown[] = [];
process.on('unhandledRejection', (reason) => unhandledRejections.push(reason));

type Passport = InstanceType<typeof passportModule.Passport>;

interface Tokens {
  resource: string;
  organization: string;
  organizationScopedResource: string;
  id: string;
}

/** A route on the signed-in app that hands out real tokens, the way a frontend would get them. */
function tokenRoutes(app: Express, logto: LogtoStrategy): void {
  app.get('/tokens', (req, res, next) => {
    const client = logto.client(req);
    (async (): Promise<Tokens> => ({
      resource: await client.getAccessToken(API_RESOURCE),
      organization: await client.getOrganizationToken('org-acme'),
      organizationScopedResource: await client.getAccessToken(API_RESOURCE, 'org-acme'),
      id: client.getIdToken() ?? '',
    }))().then((tokens) => res.json(tokens), next);
  });
}

/** Signs in as demo through the provider and returns real tokens of each kind. */
async function realTokens(provider: TestProvider): Promise<{ tokens: Tokens; app: RunningApp }> {
  const app = await startApp(provider, {
    strategy: { scopes: [UserScope.Organizations, 'read:items', 'read:members'], resources: [API_RESOURCE] },
    routes: tokenRoutes,
  });
  try {
    const browser = new TestBrowser();
    await signIn(browser, provider, app);
    const response = await browser.get(`${app.url}/tokens`);
    assert.equal(response.status, 200, response.text);
    return { tokens: JSON.parse(response.text) as Tokens, app };
  } catch (error) {
    await app.close();
    throw error;
  }
}

interface RunningApi {
  url: string;
  /** Errors that reached the API's error handler. */
  errors: unknown[];
  close(): Promise<void>;
}

/** An Express 5 API with a fresh Passport instance; the error handler answers 503 when Logto is at fault. */
async function startApi(setup: (app: Express, passport: Passport) => void): Promise<RunningApi> {
  const app = express();
  const passport = new passportModule.Passport();
  app.use(passport.initialize());
  setup(app, passport);
  const errors: unknown[] = [];
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
    errors.push(error);
    const providerFault = isLogtoError(error) && error.code.startsWith('provider_');
    res.status(providerFault ? 503 : 500).json({ error: isLogtoError(error) ? error.code : 'internal_error' });
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    errors,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const showAuth = (req: Request, res: Response): void => {
  res.json({ user: req.user, authInfo: req.authInfo });
};

interface AuthBody {
  user: Record<string, unknown>;
  authInfo: { scopes: string[]; claims: AccessTokenClaims; organizationId?: string };
}

interface Answer {
  status: number;
  /** The WWW-Authenticate header, or null. */
  challenge: string | null;
  /** The challenge's attributes. */
  attributes: Record<string, string>;
  body: AuthBody;
}

async function call(url: string, token?: string, init: { headers?: Record<string, string>; method?: string; body?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...init.headers };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const response = await fetch(url, { method: init.method ?? 'GET', headers, ...(init.body === undefined ? {} : { body: init.body }) });
  const text = await response.text();
  const challenge = response.headers.get('www-authenticate');
  const attributes = Object.fromEntries([...(challenge ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((match) => [match[1], match[2]]));
  let body = {} as AuthBody;
  if (response.headers.get('content-type')?.includes('json')) body = JSON.parse(text) as AuthBody;
  return { status: response.status, challenge, attributes, body };
}

function assertRefused(answer: Answer, status: number, error: string, description?: RegExp, realm = API_RESOURCE): void {
  assert.equal(answer.status, status, `expected ${status}, got ${answer.status} (${answer.challenge})`);
  assert.ok(answer.challenge?.startsWith('Bearer '), `a Bearer challenge, got ${answer.challenge}`);
  assert.equal(answer.attributes.realm, realm);
  assert.equal(answer.attributes.error, error);
  if (description) assert.match(answer.attributes.error_description ?? '', description);
}

const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Claims of a well-formed resource token for demo; `undefined` in overrides removes a claim. */
function accessClaims(provider: TestProvider, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: provider.issuer,
    sub: provider.users.demo.sub,
    aud: API_RESOURCE,
    client_id: provider.app.appId,
    scope: 'read:items',
    iat: nowSeconds(),
    exp: nowSeconds() + 300,
    jti: randomUUID(),
    ...overrides,
  };
}

/** Signed with the provider's real current key, typ at+jwt unless told otherwise. */
function signAccess(provider: TestProvider, overrides: Record<string, unknown> = {}, header: { alg?: string; kid?: string; typ?: string } = {}): Promise<string> {
  return provider.sign(accessClaims(provider, overrides), { typ: 'at+jwt', ...header });
}

/**
 * Servers to close after each suite, newest first. Registered as they open, so that a `before`
 * that fails half-way still lets the test process exit.
 */
const toClose: Array<{ close(): Promise<void> }> = [];
async function closeAll(): Promise<void> {
  for (let item = toClose.pop(); item; item = toClose.pop()) await item.close();
}

const base64url = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('LogtoBearerStrategy against the Logto-compatible provider', () => {
  let provider: TestProvider;
  let signedIn: RunningApp;
  let tokens: Tokens;
  let api: RunningApi;
  let shared: LogtoBearerStrategy;

  before(async () => {
    provider = await startProvider();
    toClose.push(provider);
    ({ tokens, app: signedIn } = await realTokens(provider));
    toClose.push(signedIn);
    const endpoint = provider.endpoint;
    shared = new LogtoBearerStrategy({ endpoint, audience: API_RESOURCE, requiredScopes: ['read:items'] });
    const organizationId = (req: Request): string | undefined => (typeof req.params.org === 'string' ? req.params.org : undefined);
    const organizations = new LogtoBearerStrategy({ endpoint, name: 'organizations', organizations: true, organizationId, requiredScopes: ['read:members'] });
    const anyOrganization = new LogtoBearerStrategy({ endpoint, name: 'any-organization', organizations: 'any', requiredScopes: ['read:members'] });
    const organizationApi = new LogtoBearerStrategy({ endpoint, name: 'organization-api', audience: API_RESOURCE, organizationId, requiredScopes: ['read:items'] });
    const flexible = new LogtoBearerStrategy({ endpoint, name: 'flexible', audience: API_RESOURCE, tokenLocations: ['header', 'query', 'body'] });
    const withVerify = new LogtoBearerStrategy({ endpoint, name: 'with-verify', audience: API_RESOURCE }, async (claims) =>
      claims.sub === provider.users.demo.sub ? { id: claims.sub, source: 'verify' } : false);
    // An async verify function that declares `done` and calls it after its promise has resolved.
    const lateDone = new LogtoBearerStrategy({ endpoint, name: 'late-done', audience: API_RESOURCE }, async (claims, done) => {
      setImmediate(() => done(null, { id: claims.sub, source: 'late done' }));
    });
    const withRequest = new LogtoBearerStrategy(
      { endpoint, name: 'with-request', audience: API_RESOURCE, passReqToCallback: true },
      (req, claims, done) => {
        if (req.get('x-refuse') === 'yes') done(null, false);
        else if (req.get('x-fail') === 'yes') done(new Error('user directory down'));
        else done(null, { id: claims.sub, path: req.path });
      },
    );

    api = await startApi((app, passport) => {
      for (const strategy of [shared, organizations, anyOrganization, organizationApi, flexible, withVerify, lateDone, withRequest]) passport.use(strategy);
      const session = { session: false };
      app.get('/passport/items', passport.authenticate('logto-bearer', session), showAuth);
      app.get('/passport/items/write', passport.authenticate('logto-bearer', { ...session, requiredScopes: ['write:items'] } as LogtoBearerRouteOptions), showAuth);
      app.get('/passport/orgs/:org/members', passport.authenticate('organizations', session), showAuth);
      // The same strategy on a route that names no organization.
      app.get('/passport/members', passport.authenticate('organizations', session), showAuth);
      app.get('/passport/any-organization/members', passport.authenticate('any-organization', session), showAuth);
      app.get('/passport/orgs/:org/items', passport.authenticate('organization-api', session), showAuth);
      app.get('/passport/flexible', passport.authenticate('flexible', session), showAuth);
      app.post('/passport/flexible', express.urlencoded({ extended: false }), passport.authenticate('flexible', session), showAuth);
      app.get('/passport/verify', passport.authenticate('with-verify', session), showAuth);
      app.get('/passport/verify-request', passport.authenticate('with-request', session), showAuth);
      app.get('/passport/late-done', passport.authenticate('late-done', session), showAuth);
      app.get('/middleware/items', logtoBearer({ endpoint, audience: API_RESOURCE, requiredScopes: ['read:items'] }), showAuth);
      app.get('/middleware/items/write', shared.middleware({ requiredScopes: ['write:items'] }), showAuth);
      app.get('/middleware/orgs/:org/items', organizationApi.middleware(), showAuth);
    });
    toClose.push(api);
  });

  after(async () => {
    await closeAll();
    assert.deepEqual(unhandledRejections, []);
  });

  const forms = ['passport', 'middleware'] as const;

  describe('accepted tokens', () => {
    for (const form of forms) {
      test(`${form}: a real API resource token; req.user holds the claims, req.authInfo the scopes and claims`, async () => {
        const answer = await call(`${api.url}/${form}/items`, tokens.resource);
        assert.equal(answer.status, 200);
        assert.equal(answer.challenge, null);
        assert.equal(answer.body.user.sub, provider.users.demo.sub);
        assert.equal(answer.body.user.aud, API_RESOURCE);
        assert.equal(answer.body.user.iss, provider.issuer);
        assert.deepEqual(answer.body.authInfo.scopes, ['read:items']);
        assert.deepEqual(answer.body.authInfo.claims, answer.body.user);
        assert.equal(answer.body.authInfo.organizationId, undefined, 'a token of no organization');
      });

      test(`${form}: a real organization-scoped API token at its organization's route`, async () => {
        const answer = await call(`${api.url}/${form}/orgs/org-acme/items`, tokens.organizationScopedResource);
        assert.equal(answer.status, 200, answer.challenge ?? '');
        assert.equal(answer.body.user.organization_id, 'org-acme');
        assert.equal(answer.body.user.aud, API_RESOURCE);
        assert.deepEqual(answer.body.authInfo.scopes, ['read:items']);
        assert.equal(answer.body.authInfo.organizationId, 'org-acme');
      });
    }

    test('a real organization token at its organization\'s route', async () => {
      const answer = await call(`${api.url}/passport/orgs/org-acme/members`, tokens.organization);
      assert.equal(answer.status, 200, answer.challenge ?? '');
      assert.equal(answer.body.user.aud, 'urn:logto:organization:org-acme');
      assert.deepEqual(answer.body.authInfo.scopes, ['read:members']);
      assert.equal(answer.body.authInfo.organizationId, 'org-acme');
    });

    test('organizations: \'any\' accepts a token of any organization and names it in req.authInfo.organizationId', async () => {
      const answer = await call(`${api.url}/passport/any-organization/members`, tokens.organization);
      assert.equal(answer.status, 200, answer.challenge ?? '');
      assert.equal(answer.body.authInfo.organizationId, 'org-acme');
      const other = await call(`${api.url}/passport/any-organization/members`, await signAccess(provider, { aud: 'urn:logto:organization:org-globex', scope: 'read:members' }));
      assert.equal(other.status, 200, other.challenge ?? '');
      assert.equal(other.body.authInfo.organizationId, 'org-globex');
    });

    test('a verify function returning a promise decides req.user; req.authInfo keeps the claims', async () => {
      const answer = await call(`${api.url}/passport/verify`, tokens.resource);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body.user, { id: provider.users.demo.sub, source: 'verify' });
      assert.equal(answer.body.authInfo.claims.sub, provider.users.demo.sub);
    });

    test('an async verify function that calls done after its promise resolved: its user, not a refusal', async () => {
      const answer = await call(`${api.url}/passport/late-done`, tokens.resource);
      assert.equal(answer.status, 200);
      assert.deepEqual(answer.body.user, { id: provider.users.demo.sub, source: 'late done' });
    });

    test('a verify function with the request and a callback: user, refusal (401) and failure (error handler)', async () => {
      const ok = await call(`${api.url}/passport/verify-request`, tokens.resource);
      assert.deepEqual(ok.body.user, { id: provider.users.demo.sub, path: '/passport/verify-request' });
      const refused = await call(`${api.url}/passport/verify-request`, tokens.resource, { headers: { 'x-refuse': 'yes' } });
      assertRefused(refused, 401, 'invalid_token', /refused/);
      const errorsBefore = api.errors.length;
      const failed = await call(`${api.url}/passport/verify-request`, tokens.resource, { headers: { 'x-fail': 'yes' } });
      assert.equal(failed.status, 500);
      assert.equal(failed.challenge, null);
      assert.equal((api.errors[errorsBefore] as Error).message, 'user directory down');
    });

    test('times within the clock tolerance pass, and typ application/at+jwt is an access token too', async () => {
      for (const token of [
        await signAccess(provider, { exp: nowSeconds() - 10 }),
        await signAccess(provider, { nbf: nowSeconds() + 10 }),
        await signAccess(provider, {}, { typ: 'application/at+jwt' }),
      ]) {
        assert.equal((await call(`${api.url}/passport/items`, token)).status, 200);
      }
    });

    test('verifyAccessToken: the same checks outside a request', async () => {
      const claims = await shared.verifyAccessToken(tokens.resource);
      assert.equal(claims.sub, provider.users.demo.sub);
      await assert.rejects(shared.verifyAccessToken(tokens.resource, { requiredScopes: ['write:items'] }), (error: unknown) =>
        error instanceof LogtoBearerError && error.bearerError === 'insufficient_scope' && error.httpStatus === 403);
      await assert.rejects(shared.verifyAccessToken(tokens.id), (error: unknown) =>
        error instanceof LogtoBearerError && error.bearerError === 'invalid_token' && error.code === 'invalid_access_token');
    });
  });

  describe('refused tokens: 401 invalid_token', () => {
    let kid: string;
    before(() => {
      kid = String(decodeProtectedHeader(tokens.resource).kid);
    });

    const cases: Array<{ name: string; token: () => Promise<string>; description: RegExp }> = [
      {
        name: 'signed by a key that is not in the JWKS, with the real key id',
        token: async () => {
          const { privateKey } = await generateKeyPair('ES384');
          return new SignJWT(accessClaims(provider)).setProtectedHeader({ alg: 'ES384', kid, typ: 'at+jwt' }).sign(privateKey);
        },
        description: /signature/,
      },
      {
        name: 'signed by a key that is not in the JWKS, with its own key id',
        token: async () => {
          const { privateKey } = await generateKeyPair('ES384');
          return new SignJWT(accessClaims(provider)).setProtectedHeader({ alg: 'ES384', kid: 'forged-key', typ: 'at+jwt' }).sign(privateKey);
        },
        description: /unknown key/,
      },
      {
        name: 'HS256 with the public key as the secret',
        token: async () => {
          const jwks = (await (await fetch(`${provider.issuer}/jwks`)).json()) as { keys: JWK[] };
          const jwk = jwks.keys.find((key) => key.kid === kid);
          assert.ok(jwk);
          const pem = await exportSPKI((await importJWK(jwk, 'ES384', { extractable: true })) as CryptoKey);
          return new SignJWT(accessClaims(provider)).setProtectedHeader({ alg: 'HS256', kid, typ: 'at+jwt' }).sign(new TextEncoder().encode(pem));
        },
        description: /algorithm/,
      },
      {
        name: 'alg none',
        token: async () => `${base64url({ alg: 'none', kid, typ: 'at+jwt' })}.${base64url(accessClaims(provider))}.`,
        description: /algorithm/,
      },
      { name: 'expired beyond the clock tolerance', token: () => signAccess(provider, { iat: nowSeconds() - 600, exp: nowSeconds() - 60 }), description: /expired/ },
      { name: 'not valid yet beyond the clock tolerance', token: () => signAccess(provider, { nbf: nowSeconds() + 60 }), description: /not valid yet/ },
      { name: 'for another audience', token: () => signAccess(provider, { aud: 'https://other.example.com' }), description: /not meant for this API/ },
      { name: 'from another issuer', token: () => signAccess(provider, { iss: 'https://evil.example.com/oidc' }), description: /not issued/ },
      { name: 'from the issuer with a trailing slash', token: () => signAccess(provider, { iss: `${provider.issuer}/` }), description: /not issued/ },
      { name: 'without an expiry', token: () => signAccess(provider, { exp: undefined }), description: /no expiry/ },
      { name: 'typ JWT, as ID tokens and other JWTs have', token: () => signAccess(provider, {}, { typ: 'JWT' }), description: /not an access token/ },
      { name: 'a real ID token', token: async () => tokens.id, description: /not meant for this API|not an access token/ },
      { name: 'a real organization token at a resource route', token: async () => tokens.organization, description: /not meant for this API/ },
      { name: 'not a JWT', token: async () => 'not-a-jwt', description: /well-formed/ },
      { name: 'a JWT with a garbage payload', token: async () => `${base64url({ alg: 'ES384', kid, typ: 'at+jwt' })}.bm9wZQ.c2ln`, description: /malformed|signature/ },
    ];

    test('control: a token signed with the real key and well-formed claims is accepted', async () => {
      for (const form of forms) assert.equal((await call(`${api.url}/${form}/items`, await signAccess(provider))).status, 200);
    });

    for (const { name, token, description } of cases) {
      test(name, async () => {
        const value = await token();
        for (const form of forms) {
          const answer = await call(`${api.url}/${form}/items`, value);
          assertRefused(answer, 401, 'invalid_token', description);
          assert.equal(answer.attributes.scope, undefined);
        }
      });
    }
  });

  describe('403 insufficient_scope', () => {
    for (const form of forms) {
      test(`${form}: a token without a route's scope: 403 naming it, with the challenge header`, async () => {
        const answer = await call(`${api.url}/${form}/items/write`, tokens.resource);
        assertRefused(answer, 403, 'insufficient_scope', /write:items/);
        assert.equal(answer.attributes.scope, 'read:items write:items');
        assert.doesNotMatch(answer.attributes.error_description ?? '', /read:items/, 'only the missing scope is named as missing');
      });
    }

    test('a token without the strategy\'s required scope', async () => {
      const answer = await call(`${api.url}/passport/items`, await signAccess(provider, { scope: 'write:items' }));
      assertRefused(answer, 403, 'insufficient_scope', /read:items/);
      assert.equal(answer.attributes.scope, 'read:items');
    });

    for (const form of forms) {
      test(`${form}: an organization-scoped API token at another organization's route`, async () => {
        assertRefused(await call(`${api.url}/${form}/orgs/org-globex/items`, tokens.organizationScopedResource), 403, 'insufficient_scope', /organization org-globex/);
      });
    }

    test('an organization token at another organization\'s route', async () => {
      // Without an audience the realm defaults to "logto".
      assertRefused(await call(`${api.url}/passport/orgs/org-globex/members`, tokens.organization), 403, 'insufficient_scope', /organization org-globex/, 'logto');
    });

    test('a signed token whose organization_id names another organization', async () => {
      const token = await signAccess(provider, { organization_id: 'org-globex' });
      assertRefused(await call(`${api.url}/passport/orgs/org-acme/items`, token), 403, 'insufficient_scope', /organization org-acme/);
      assert.equal((await call(`${api.url}/passport/orgs/org-globex/items`, token)).status, 200, 'control: its own organization');
    });

    test('organizations: true, at a route whose organizationId names none: an organization token is refused', async () => {
      // Else a member, or an admin, of one organization would pass wherever the route forgot to say which.
      assertRefused(await call(`${api.url}/passport/members`, tokens.organization), 403, 'insufficient_scope', /organization the request is about/, 'logto');
      assertRefused(
        await call(`${api.url}/passport/members`, await signAccess(provider, { aud: 'urn:logto:organization:org-globex', scope: 'read:members' })),
        403,
        'insufficient_scope',
        /organization the request is about/,
        'logto',
      );
    });

    test('a token without an organization at an organization route', async () => {
      assertRefused(await call(`${api.url}/passport/orgs/org-acme/items`, tokens.resource), 403, 'insufficient_scope', /organization org-acme/);
    });

    test('an organization-scoped API token at a route that expects no organization', async () => {
      for (const form of forms) {
        assertRefused(await call(`${api.url}/${form}/items`, tokens.organizationScopedResource), 403, 'insufficient_scope', /Organization-scoped/);
      }
    });
  });

  describe('requests without a usable token', () => {
    for (const form of forms) {
      test(`${form}: no token: 401 with a bare challenge`, async () => {
        const answer = await call(`${api.url}/${form}/items`);
        assert.equal(answer.status, 401);
        assert.equal(answer.challenge, `Bearer realm="${API_RESOURCE}"`);
      });

      test(`${form}: another scheme (Basic, ...) carries no bearer token: 401 with a bare challenge (RFC 6750 §3.1)`, async () => {
        for (const header of ['Basic ZGVtbzpkZW1v', `Token ${tokens.resource}`, `Digest username="demo"`, `Bearerish ${tokens.resource}`]) {
          const answer = await call(`${api.url}/${form}/items`, undefined, { headers: { authorization: header } });
          assert.equal(answer.status, 401, header);
          assert.equal(answer.challenge, `Bearer realm="${API_RESOURCE}"`, header);
        }
      });

      test(`${form}: a malformed Bearer header: 400 invalid_request`, async () => {
        for (const header of ['Bearer', 'bearer ', 'Bearer a b', `Bearer ${tokens.resource}, Bearer x`, 'Bearer,x']) {
          assertRefused(await call(`${api.url}/${form}/items`, undefined, { headers: { authorization: header } }), 400, 'invalid_request', /Authorization header/);
        }
      });
    }

    test('the scheme is case-insensitive', async () => {
      assert.equal((await call(`${api.url}/passport/items`, undefined, { headers: { authorization: `bearer ${tokens.resource}` } })).status, 200);
    });

    test('by default a token in the query string is not looked at', async () => {
      const answer = await call(`${api.url}/passport/items?access_token=${tokens.resource}`);
      assert.equal(answer.status, 401);
      assert.equal(answer.challenge, `Bearer realm="${API_RESOURCE}"`);
    });

    test('with query and body enabled: one place is fine, two are 400 invalid_request', async () => {
      const url = `${api.url}/passport/flexible`;
      const form = { 'content-type': 'application/x-www-form-urlencoded' };
      assert.equal((await call(`${url}?access_token=${tokens.resource}`)).status, 200);
      assert.equal((await call(url, undefined, { method: 'POST', headers: form, body: `access_token=${tokens.resource}` })).status, 200);
      assertRefused(await call(`${url}?access_token=${tokens.resource}`, tokens.resource), 400, 'invalid_request', /more than one place/);
      assertRefused(await call(url, tokens.resource, { method: 'POST', headers: form, body: `access_token=${tokens.resource}` }), 400, 'invalid_request', /more than one place/);
      assertRefused(await call(`${url}?access_token=${tokens.resource}&access_token=${tokens.resource}`), 400, 'invalid_request', /once/);
    });
  });

  describe('the JWKS', () => {
    test('is downloaded once for many requests, concurrent ones included, and nothing else is asked of Logto', async () => {
      const strategy = new LogtoBearerStrategy({ endpoint: provider.endpoint, audience: API_RESOURCE });
      const fresh = await startApi((app) => {
        app.get('/items', strategy.middleware(), showAuth);
      });
      try {
        provider.resetRequests();
        const concurrent = await Promise.all(Array.from({ length: 10 }, () => call(`${fresh.url}/items`, tokens.resource)));
        for (let i = 0; i < 20; i += 1) concurrent.push(await call(`${fresh.url}/items`, tokens.resource));
        assert.deepEqual(concurrent.map((answer) => answer.status), Array.from({ length: 30 }, () => 200));
        assert.equal(provider.countRequests('/oidc/jwks'), 1);
        assert.equal(provider.requests.length, 1);

        // Within the cooldown an unknown key id is refused without asking Logto again.
        const { privateKey } = await generateKeyPair('ES384');
        const forged = await new SignJWT(accessClaims(provider)).setProtectedHeader({ alg: 'ES384', kid: 'unknown', typ: 'at+jwt' }).sign(privateKey);
        assert.equal((await call(`${fresh.url}/items`, forged)).status, 401);
        assert.equal(provider.countRequests('/oidc/jwks'), 1);
      } finally {
        await fresh.close();
      }
    });
  });

  describe('options', () => {
    const endpoint = 'https://tenant.logto.app';
    // Loosely typed on purpose: these are the mistakes that TypeScript would not catch in JavaScript apps.
    const refusals: Array<[string, Record<string, unknown>]> = [
      ['endpoint', { endpoint: undefined }],
      ['endpoint', { endpoint: 'not a url' }],
      ['endpoint', { endpoint: 'http://tenant.logto.app' }],
      ['audience', { audience: undefined }],
      ['audience', { audience: 'not-a-uri' }],
      ['organizations', { organizations: 'org-acme' }],
      ['organizations', { organizations: 'all' }],
      // Any organization must be asked for by name: 'any'. `true` is for the request's own organization.
      ['organizationId', { audience: undefined, organizations: true }],
      ['organizationId', { organizations: true }],
      ['requiredScopes', { requiredScopes: ['read items'] }],
      ['signingAlgorithms', { signingAlgorithms: ['HS256'] }],
      ['signingAlgorithms', { signingAlgorithms: ['none'] }],
      ['signingAlgorithms', { signingAlgorithms: [] }],
      ['tokenLocations', { tokenLocations: ['cookie'] }],
      ['realm', { realm: 'a "quoted" realm' }],
      ['clockTolerance', { clockTolerance: -1 }],
      ['passReqToCallback', { passReqToCallback: true }],
    ];
    for (const [option, overrides] of refusals) {
      test(`refuses ${option}: ${JSON.stringify(overrides)}`, () => {
        assert.throws(
          () => new LogtoBearerStrategy({ endpoint, audience: API_RESOURCE, ...overrides } as unknown as LogtoBearerOptions),
          (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config' && error.message.includes(`\`${option}\``),
        );
      });
    }

    test('accepts an http: endpoint on a non-loopback host only when told, and organization tokens without an audience', () => {
      assert.equal(new LogtoBearerStrategy({ endpoint: 'http://tenant.logto.app', audience: API_RESOURCE, allowInsecureEndpoint: true }).name, 'logto-bearer');
      assert.equal(new LogtoBearerStrategy({ endpoint, organizations: ['org-acme'], name: 'orgs' }).name, 'orgs');
      assert.equal(new LogtoBearerStrategy({ endpoint, organizations: 'any' }).name, 'logto-bearer');
      assert.equal(new LogtoBearerStrategy({ endpoint, organizations: true, organizationId: 'org-acme' }).name, 'logto-bearer');
    });

    test('organizations: true without organizationId: the message says what to do', () => {
      assert.throws(() => new LogtoBearerStrategy({ endpoint, organizations: true }), (error: unknown) =>
        isLogtoError(error, 'invalid_config') && /organizationId/.test(error.message) && /organizations: 'any'/.test(error.message));
    });
  });
});

describe('a signing key rotation', () => {
  let provider: TestProvider;
  let api: RunningApi;
  before(async () => {
    provider = await startProvider();
    toClose.push(provider);
    const strategy = new LogtoBearerStrategy({ endpoint: provider.endpoint, audience: API_RESOURCE, jwksCooldown: 0.5 });
    api = await startApi((app) => {
      app.get('/items', strategy.middleware(), showAuth);
    });
    toClose.push(api);
  });
  after(closeAll);

  test('tokens signed by the new key are accepted once the cooldown allows a new download; old-key tokens still pass', async () => {
    const first = await realTokens(provider);
    try {
      provider.resetRequests();
      assert.equal((await call(`${api.url}/items`, first.tokens.resource)).status, 200);
      assert.equal(provider.countRequests('/oidc/jwks'), 1);

      await provider.rotateSigningKey();
      await new Promise((resolve) => setTimeout(resolve, 600));
      const second = await realTokens(provider);
      try {
        const newKid = decodeProtectedHeader(second.tokens.resource).kid;
        assert.notEqual(newKid, decodeProtectedHeader(first.tokens.resource).kid, 'the new token uses the new key');
        provider.resetRequests();
        const answer = await call(`${api.url}/items`, second.tokens.resource);
        assert.equal(answer.status, 200, answer.challenge ?? '');
        assert.equal(provider.countRequests('/oidc/jwks'), 1, 'one new download for the new key');
        assert.equal((await call(`${api.url}/items`, first.tokens.resource)).status, 200);
        assert.equal((await call(`${api.url}/items`, second.tokens.resource)).status, 200);
        assert.equal(provider.countRequests('/oidc/jwks'), 1);
      } finally {
        await second.app.close();
      }
    } finally {
      await first.app.close();
    }
  });
});

describe('Logto down before the JWKS was ever downloaded', () => {
  let provider: TestProvider;
  let api: RunningApi;
  before(async () => {
    provider = await startProvider();
    toClose.push(provider);
    const options = { endpoint: provider.endpoint, audience: API_RESOURCE };
    const strategy = new LogtoBearerStrategy(options);
    api = await startApi((app, passport) => {
      passport.use(strategy);
      app.get('/passport/items', passport.authenticate('logto-bearer', { session: false }), showAuth);
      app.get('/middleware/items', logtoBearer(options), showAuth);
    });
    toClose.push(api);
  });
  after(closeAll);

  test('is an error for the app (503 here), never a 401; the same strategy works once Logto is back', async () => {
    const token = await signAccess(provider);
    await provider.pause();
    try {
      for (const form of ['passport', 'middleware']) {
        const errorsBefore = api.errors.length;
        const answer = await call(`${api.url}/${form}/items`, token);
        assert.equal(answer.status, 503, `${form}: ${answer.status}`);
        assert.equal(answer.challenge, null);
        const error = api.errors[errorsBefore];
        assert.ok(isLogtoError(error, 'provider_unreachable'), `${form}: ${String(error)}`);
        // A malformed token is still the client's fault, Logto or not.
        assertRefused(await call(`${api.url}/${form}/items`, 'not-a-jwt'), 401, 'invalid_token');
      }
    } finally {
      await provider.resume();
    }
    for (const form of ['passport', 'middleware']) {
      assert.equal((await call(`${api.url}/${form}/items`, token)).status, 200);
    }
  });
});
