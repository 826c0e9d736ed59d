/**
 * What a Passport user expects from any OAuth strategy, met as a user meets it: `scope` in the
 * constructor and per request shows in the authorization URL, options of other strategies are
 * refused by name, a passport-oauth2-style verify function is refused at construction, a
 * passport-openidconnect verify function `(issuer, profile, done)` keeps working with Passport's
 * normalized profile, a LogtoError answers with the status to send, and `req.logto.scopes` says
 * what Logto granted.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import type { Request, Response } from 'express';
import {
  LogtoBearerStrategy,
  LogtoError,
  LogtoStrategy,
  ReservedResource,
  UserScope,
  type LogtoBearerOptions,
  type LogtoProfile,
  type LogtoStrategyOptions,
  type LogtoVerifyContext,
  type VerifyDone,
} from '../../lib/index.js';
import { startApp, type RunningApp, type StartAppOptions } from '../support/app.js';
import { getJson, signIn, startSignIn } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

const require = createRequire(import.meta.url);
/** Express's default error handler, as an app without its own error handler gets it. */
const finalhandler = require('finalhandler') as (req: Request, res: Response) => (error: unknown) => void;

const valid: LogtoStrategyOptions = {
  endpoint: 'https://tenant.logto.app',
  appId: 'app-id',
  appSecret: 'app-secret',
  callbackURL: 'https://app.example/callback',
};

function refusedNaming(build: () => unknown, option: string, also?: RegExp): void {
  assert.throws(build, (error: unknown) => {
    assert.ok(error instanceof LogtoError, `throws a LogtoError: ${String(error)}`);
    assert.equal(error.code, 'invalid_config');
    if (option !== 'verify') assert.ok(error.message.includes(`\`${option}\``), `the message names ${option}: ${error.message}`);
    if (also) assert.match(error.message, also);
    return true;
  });
}

describe('options as Passport users write them', () => {
  test('the constructor takes `scope` as an array or a space-separated string, beside `scopes`', () => {
    assert.deepEqual(new LogtoStrategy({ ...valid, scope: ['email', 'phone'] }).config.scopes, ['openid', 'offline_access', 'profile', 'email', 'phone']);
    assert.deepEqual(new LogtoStrategy({ ...valid, scope: 'email  phone' }).config.scopes, ['openid', 'offline_access', 'profile', 'email', 'phone']);
    assert.deepEqual(
      new LogtoStrategy({ ...valid, scope: 'email', scopes: ['phone', 'email'] }).config.scopes,
      ['openid', 'offline_access', 'profile', 'email', 'phone'],
    );
    const organizations = new LogtoStrategy({ ...valid, scope: UserScope.Organizations });
    assert.deepEqual(organizations.config.resources, [ReservedResource.Organization], 'the same rules as scopes: organizations bring their resource');
    assert.deepEqual(new LogtoStrategy({ ...valid, scope: 'email', includeReservedScopes: false }).config.scopes, ['openid', 'email']);
    refusedNaming(() => new LogtoStrategy({ ...valid, scope: [''] } as unknown as LogtoStrategyOptions), 'scope');
    refusedNaming(() => new LogtoStrategy({ ...valid, scope: 42 } as unknown as LogtoStrategyOptions), 'scope');
  });

  test('options of other strategies are refused by name, in both strategies', () => {
    for (const option of ['state', 'store', 'pkce', 'issuer', 'clientID', 'clientSecret', 'scopeSeparator', 'callbackUrl']) {
      refusedNaming(() => new LogtoStrategy({ ...valid, [option]: true } as unknown as LogtoStrategyOptions), option, /not an option of LogtoStrategy/);
    }
    const bearer: LogtoBearerOptions = { endpoint: valid.endpoint, audience: 'https://api.example.com' };
    for (const option of ['issuer', 'secretOrKey', 'jwtFromRequest', 'requiredScope']) {
      refusedNaming(() => new LogtoBearerStrategy({ ...bearer, [option]: 'x' } as unknown as LogtoBearerOptions), option, /not an option of LogtoBearerStrategy/);
    }
    refusedNaming(() => new LogtoStrategy({ ...valid, refreshCoordinator: {} } as unknown as LogtoStrategyOptions), 'refreshCoordinator', /Removed in 0\.2\.0.*tokenStore/);
    refusedNaming(() => new LogtoStrategy({ ...valid, clientID: 'x' } as unknown as LogtoStrategyOptions), 'clientID', /`appId`/);
    // Every documented option is still taken.
    assert.ok(new LogtoStrategy({ ...valid, name: 'n', scopes: [], resources: [], prompt: 'consent', sessionKey: 'k', backchannelLogout: true, includeReservedScopes: true }));
  });

  test('a relative callbackURL is refused with the reason and the fix', () => {
    refusedNaming(
      () => new LogtoStrategy({ ...valid, callbackURL: '/auth/callback' }),
      'callbackURL',
      /absolute URL, such as https:\/\/app\.example\.com\/auth\/callback.*registered as a redirect URI.*Host header/,
    );
  });

  test('a passport-oauth2-style verify function is refused at construction, with the signatures that work', () => {
    const oauth2Style = (_accessToken: string, _refreshToken: string, _profile: object, done: (error: unknown, user?: object) => void): void => done(null, {});
    refusedNaming(
      () => new LogtoStrategy(valid, oauth2Style as never),
      'verify',
      /declares 4 parameters.*\(context, done\), async \(context\) => user, or \(issuer, profile, done\)/,
    );
    const withRequest = (_req: unknown, _a: unknown, _b: unknown, _c: unknown, done: unknown): unknown => done;
    refusedNaming(
      () => new LogtoStrategy({ ...valid, passReqToCallback: true }, withRequest as never),
      'verify',
      /declares 5 parameters.*\(req, context, done\)/,
    );
    refusedNaming(
      () => new LogtoBearerStrategy({ endpoint: valid.endpoint, audience: 'https://api.example.com' }, ((_a: unknown, _b: unknown, done: unknown) => done) as never),
      'verify',
      /\(claims, done\)/,
    );
    // The forms that work: (context, done), (issuer, profile, done), and each with req first.
    assert.ok(new LogtoStrategy(valid, (_context: LogtoVerifyContext, done) => done(null, {})));
    assert.ok(new LogtoStrategy(valid, (_issuer: string, _profile: LogtoProfile, done: VerifyDone) => done(null, {})));
    assert.ok(new LogtoStrategy({ ...valid, passReqToCallback: true }, (_req: Request, _issuer: string, _profile: LogtoProfile, done: VerifyDone) => done(null, {})));
  });
});

describe('sign-ins as Passport users write them', () => {
  let provider: TestProvider;
  const apps: RunningApp[] = [];

  before(async () => {
    provider = await startProvider();
  });
  after(async () => {
    for (const running of apps) await running.close();
    await provider.close();
  });

  async function app(options: StartAppOptions = {}): Promise<RunningApp> {
    const running = await startApp(provider, options);
    apps.push(running);
    return running;
  }

  test('`scope` and `scopes` per request reach the authorization URL, on top of the configured scopes', async () => {
    const running = await app({
      strategy: { scope: ['email'] },
      routes: (express, logto, passport) => {
        express.get('/with-phone', passport.authenticate(logto.name, { scope: ['phone'] }));
        express.get('/with-string', passport.authenticate(logto.name, { scope: 'phone roles' }));
        express.get('/with-scopes', passport.authenticate(logto.name, { scopes: [UserScope.Organizations] }));
        express.get('/with-bad-scope', (req, res, next) => passport.authenticate(logto.name, { scope: req.query.scope })(req, res, next));
      },
    });
    const browser = new TestBrowser();
    const scopeOf = async (path: string): Promise<string[]> => ((await startSignIn(browser, running, path)).searchParams.get('scope') ?? '').split(' ');
    assert.deepEqual(await scopeOf('/sign-in'), ['openid', 'offline_access', 'profile', 'email']);
    assert.deepEqual(await scopeOf('/with-phone'), ['openid', 'offline_access', 'profile', 'email', 'phone']);
    assert.deepEqual(await scopeOf('/with-string'), ['openid', 'offline_access', 'profile', 'email', 'phone', 'roles']);
    const organizations = await startSignIn(browser, running, '/with-scopes');
    assert.ok(organizations.searchParams.get('scope')?.split(' ').includes(UserScope.Organizations));
    assert.deepEqual(organizations.searchParams.getAll('resource'), [ReservedResource.Organization], 'a per-request organizations scope brings its resource');

    const bad = await browser.get(`${running.url}/with-bad-scope?scope=phone&scope=two%20words`);
    assert.equal(bad.status, 500);
    assert.equal(JSON.parse(bad.text).error, 'invalid_config');
    assert.match(JSON.parse(bad.text).message, /`scope`/);
  });

  test('per-request options of other strategies are refused by name; Passport\'s own are left to Passport', async () => {
    const running = await app({
      routes: (express, logto, passport) => {
        express.get('/with-state', passport.authenticate(logto.name, { state: 'fixed' }));
        express.get('/with-callback', passport.authenticate(logto.name, { callbackURL: 'https://elsewhere.example/cb' }));
        express.get('/typo', passport.authenticate(logto.name, { firstscreen: 'register' }));
        passport.use(new LogtoBearerStrategy({ endpoint: provider.endpoint, audience: API_RESOURCE }));
        // passport-http-bearer users may write `scope` where passport-logto needs `requiredScopes`: ignored, it would let any token in.
        express.get('/api/items', passport.authenticate('logto-bearer', { session: false, scope: ['read:items'] }), (_req, res) => {
          res.json({ items: [] });
        });
        express.get('/passport-options', passport.authenticate(logto.name, {
          session: true,
          keepSessionInfo: true,
          successRedirect: '/',
          successReturnToOrRedirect: '/',
          failureRedirect: '/',
          failureMessage: true,
          successMessage: true,
          failWithError: false,
          authInfo: true,
          assignProperty: undefined,
          userProperty: 'user',
          pauseStream: false,
          property: 'user',
        }));
      },
    });
    const browser = new TestBrowser();
    for (const [path, option] of [['/with-state', 'state'], ['/with-callback', 'callbackURL'], ['/typo', 'firstscreen'], ['/api/items', 'scope']] as const) {
      const answer = await browser.get(`${running.url}${path}`);
      assert.equal(answer.status, 500, path);
      const body = JSON.parse(answer.text) as { error: string; message: string };
      assert.equal(body.error, 'invalid_config', path);
      assert.ok(body.message.includes(`\`${option}\``), `names ${option}: ${body.message}`);
    }
    const started = await startSignIn(browser, running, '/passport-options');
    assert.equal(started.pathname, '/oidc/auth');
    const bearer = new LogtoBearerStrategy({ endpoint: provider.endpoint, audience: API_RESOURCE });
    refusedNaming(() => bearer.middleware({ scope: ['read:items'] } as never), 'scope', /`requiredScopes`/);
  });

  test('a passport-openidconnect verify function (issuer, profile, done) gets Passport\'s normalized profile', async () => {
    const seen: Array<{ issuer: string; profile: LogtoProfile }> = [];
    const running = await app({
      strategy: { scopes: [UserScope.Email] },
      verify: ((issuer: string, profile: LogtoProfile, done: (error: unknown, user?: object) => void) => {
        seen.push({ issuer, profile });
        done(null, { id: profile.id, name: profile.displayName, email: profile.emails?.[0]?.value });
      }) as never,
    });
    const browser = new TestBrowser();
    await signIn(browser, provider, running, '/sign-in', provider.users.alice);
    const home = await getJson<{ user: unknown }>(browser, `${running.url}/`);
    assert.deepEqual(home.body.user, { id: 'alice0user02', name: 'Alice Liddell', email: 'alice@example.com' });
    assert.equal(seen.length, 1);
    const [{ issuer, profile }] = seen as [{ issuer: string; profile: LogtoProfile }];
    assert.equal(issuer, provider.issuer);
    assert.equal(profile.provider, 'logto');
    assert.equal(profile.id, 'alice0user02');
    assert.equal(profile.displayName, 'Alice Liddell');
    assert.equal(profile.username, 'alice');
    assert.deepEqual(profile.emails, [{ value: 'alice@example.com', verified: true }]);
    assert.deepEqual(profile.photos, [{ value: 'https://example.com/alice.png' }]);
    assert.equal(profile._json.sub, 'alice0user02');
    assert.equal(profile._json.email, 'alice@example.com');
    assert.deepEqual(JSON.parse(profile._raw), profile._json);
    for (const protocolClaim of ['iss', 'aud', 'exp', 'iat', 'nonce', 'at_hash']) {
      assert.ok(!(protocolClaim in profile._json), `_json leaves out ${protocolClaim}`);
    }
    assert.ok(!JSON.stringify(profile).includes('eyJ'), 'no token in the profile');
  });

  test('with passReqToCallback, (req, issuer, profile, done); the context form gets the profile as passportProfile', async () => {
    const withRequest = await app({
      verifyWithRequest: ((req: Request, issuer: string, profile: LogtoProfile, done: (error: unknown, user?: object) => void) => {
        done(null, { id: profile.id, issuer, path: req.path, name: profile.displayName });
      }) as never,
    });
    const browser = new TestBrowser();
    await signIn(browser, provider, withRequest);
    const home = await getJson<{ user: unknown }>(browser, `${withRequest.url}/`);
    assert.deepEqual(home.body.user, { id: 'demo00user01', issuer: provider.issuer, path: '/callback', name: 'Demo User' });

    const withContext = await app({
      verify: async ({ claims, passportProfile }) => ({ id: claims.sub, profile: passportProfile }),
    });
    const other = new TestBrowser();
    await signIn(other, provider, withContext);
    const user = (await getJson<{ user: { id: string; profile: LogtoProfile } }>(other, `${withContext.url}/`)).body.user;
    assert.equal(user.profile.provider, 'logto');
    assert.equal(user.profile.id, 'demo00user01');
    assert.equal(user.profile.username, 'demo');
    assert.equal(user.profile.photos, undefined, 'demo has no picture (Logto sends null)');
  });

  test('without a verify function, req.user stays the id and the claims', async () => {
    const running = await app({ strategy: { scopes: [UserScope.Email] } });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const user = (await getJson<{ user: Record<string, unknown> }>(browser, `${running.url}/`)).body.user;
    assert.equal(user.id, 'demo00user01');
    assert.equal(user.name, 'Demo User');
    assert.equal(user.email, 'demo@example.com');
    assert.equal(user.provider, undefined, 'not the Passport profile');
  });

  test('req.logto.scopes lists what Logto granted at sign-in', async () => {
    const running = await app({
      strategy: { scopes: [UserScope.Email, UserScope.Roles] },
      routes: (express, logto) => {
        express.get('/scopes', logto.authenticated(), (req, res) => {
          res.json({ scopes: req.logto?.scopes });
        });
        express.get('/scopes-signed-out', (req, res, next) => {
          logto.client(req).load().then((client) => res.json({ scopes: client.scopes }), next);
        });
      },
    });
    const browser = new TestBrowser();
    assert.deepEqual((await getJson<{ scopes: string[] }>(browser, `${running.url}/scopes-signed-out`)).body.scopes, []);
    await signIn(browser, provider, running);
    const granted = (await getJson<{ scopes: string[] }>(browser, `${running.url}/scopes`)).body.scopes;
    assert.deepEqual([...granted].sort(), ['email', 'offline_access', 'openid', 'profile', 'roles']);
  });

  test('a LogtoError answers with status and statusCode the status to send; Logto\'s is providerStatus', async () => {
    const running = await app({
      strategy: { resources: [API_RESOURCE] },
      routes: (express, logto) => {
        express.get('/token', logto.authenticated(), (req, res) => {
          req.logto?.getAccessToken(API_RESOURCE).then(
            () => res.json({ ok: true }),
            (error: LogtoError) => {
              res.setHeader('x-error', JSON.stringify({ code: error.code, status: error.status, statusCode: error.statusCode, providerStatus: error.providerStatus }));
              // No error handler of the app's: Express's default one answers it.
              finalhandler(req, res)(error);
            },
          );
        });
      },
    });
    const tokenAnswer = async (fault: { status: number; body: string; contentType?: string }): Promise<{ status: number; error: unknown }> => {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      provider.setFault('/oidc/token', fault);
      try {
        const answer = await browser.get(`${running.url}/token`);
        return { status: answer.status, error: JSON.parse(answer.headers.get('x-error') ?? 'null') };
      } finally {
        provider.setFault('/oidc/token', undefined);
      }
    };
    assert.deepEqual(
      await tokenAnswer({ status: 502, body: 'Bad gateway', contentType: 'text/html' }),
      { status: 503, error: { code: 'provider_error', status: 503, statusCode: 503, providerStatus: 502 } },
      'provider_error is answered 503, not Logto\'s 502',
    );
    assert.deepEqual(
      await tokenAnswer({ status: 400, body: JSON.stringify({ error: 'invalid_request', error_description: 'broken' }) }),
      { status: 401, error: { code: 'token_request_failed', status: 401, statusCode: 401, providerStatus: 400 } },
      'token_request_failed is answered 401, not Logto\'s 400',
    );
    const error = new LogtoError('token_request_failed', 'refused', { status: 400 });
    assert.deepEqual([error.status, error.statusCode, error.providerStatus], [401, 401, 400], 'the 0.1.0 option name `status` still sets providerStatus');
  });
});
