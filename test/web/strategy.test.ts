import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, SignJWT, decodeJwt } from 'jose';
import { LogtoError, LogtoStrategy, ReservedResource, UserScope } from '../../lib/index.js';
import { startApp, type RunningApp, type StartAppOptions } from '../support/app.js';
import session from 'express-session';
import { callbackAfterSignIn, getJson, signIn, startSignIn, tokensOf, type HomeBody, type SessionBody } from '../support/flows.js';
import { cancelAtProvider, endSessionAtProvider, TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

let provider: TestProvider;
const apps: RunningApp[] = [];

async function app(options: StartAppOptions = {}): Promise<RunningApp> {
  const running = await startApp(provider, { strategy: { resources: [API_RESOURCE], scopes: [UserScope.Email, UserScope.Organizations] }, ...options });
  apps.push(running);
  return running;
}

before(async () => {
  provider = await startProvider();
});
after(async () => {
  await Promise.all(apps.map((running) => running.close()));
  await provider.close();
});

describe('sign-in', () => {
  test('redirects to Logto with PKCE, state, nonce, the scopes, the resources and prompt=consent', async () => {
    const running = await app();
    const url = await startSignIn(new TestBrowser(), running);
    assert.equal(`${url.origin}${url.pathname}`, `${provider.issuer}/auth`);
    const params = url.searchParams;
    assert.equal(params.get('response_type'), 'code');
    assert.equal(params.get('client_id'), running.logto.config.appId);
    assert.equal(params.get('redirect_uri'), running.callbackURL);
    assert.equal(params.get('code_challenge_method'), 'S256');
    assert.match(params.get('code_challenge') ?? '', /^[\w-]{43}$/);
    assert.ok((params.get('state') ?? '').length >= 32);
    assert.ok((params.get('nonce') ?? '').length >= 32);
    assert.deepEqual(params.get('scope')?.split(' '), ['openid', 'offline_access', 'profile', 'email', 'urn:logto:scope:organizations']);
    assert.deepEqual(params.getAll('resource'), [API_RESOURCE, ReservedResource.Organization]);
    assert.equal(params.get('prompt'), 'consent');
  });

  test('a full sign-in logs the user in, rotates the session id and keeps the tokens in the session', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await browser.get(`${running.url}/sign-in`);
    const before = (await getJson<SessionBody>(browser, `${running.url}/session`)).body.sessionID;

    const callback = await signInAtProviderFrom(browser, running);
    const response = await browser.get(callback);
    assert.equal(response.status, 302);
    assert.equal(response.location, `${running.url}/`);

    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.equal(home.authenticated, true);
    assert.equal(home.user?.id, provider.users.demo.sub);
    assert.equal(home.user?.name, 'Demo User');
    assert.equal(home.user?.email, provider.users.demo.email);
    assert.notEqual(home.sessionID, before, 'the session id changes at sign-in');
    for (const value of Object.values(home.user ?? {})) {
      assert.ok(typeof value !== 'string' || !value.startsWith('ey'), 'no token in req.user');
    }
    assert.equal(home.user?.iss, undefined, 'protocol claims stay out of req.user');

    const stored = await tokensOf(browser, running);
    assert.equal(decodeJwt(String(stored.idToken)).sub, provider.users.demo.sub);
    assert.equal(typeof stored.refreshToken, 'string');
    const { session } = (await getJson<SessionBody>(browser, `${running.url}/session`)).body;
    assert.equal(typeof session.logto, 'string', 'the session keeps only a reference to the token record');
    assert.doesNotMatch(JSON.stringify(session), /ey[A-Za-z0-9_-]{10,}\./, 'no token in the session');
    assert.ok(!JSON.stringify(session).includes(String(stored.refreshToken)), 'no refresh token in the session');
  });

  test('one sign-in sends one token request; discovery and the JWKS are fetched once per process', async () => {
    const running = await app();
    await signIn(new TestBrowser(), provider, running);
    provider.resetRequests();
    await signIn(new TestBrowser(), provider, running);
    assert.equal(provider.countRequests('/oidc/token'), 1);
    assert.equal(provider.countRequests('/oidc/.well-known/openid-configuration'), 0);
    assert.equal(provider.countRequests('/oidc/jwks'), 0);
    assert.equal(provider.countRequests('/oidc/me'), 0);
  });

  test('an app that serializes only user.id still keeps the sign-in through the new session', async () => {
    const running = await app({ serialize: 'id' });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.equal(home.user?.id, provider.users.demo.sub);
    assert.equal(home.authenticated, true);
    const stored = (await getJson<SessionBody>(browser, `${running.url}/session`)).body.session;
    assert.deepEqual((stored.passport as { user: string }).user, provider.users.demo.sub);
    assert.equal(typeof (await tokensOf(browser, running)).refreshToken, 'string');
  });

  test('two tabs signing in at once both succeed', async () => {
    const running = await app();
    const browser = new TestBrowser();
    const firstTab = await callbackAfterSignIn(browser, provider, running);
    const secondTab = await callbackAfterSignIn(browser, provider, running);
    const second = await browser.get(secondTab);
    assert.equal(second.location, `${running.url}/`);
    const first = await browser.get(firstTab);
    assert.equal(first.location, `${running.url}/`, 'the first tab completes after the second');
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.authenticated, true);
  });

  test('starting sign-ins writes no session: a visitor who never comes back costs the store nothing', async () => {
    const store = new session.MemoryStore();
    const running = await app({ store });
    const browser = new TestBrowser();
    for (let i = 0; i < 20; i += 1) await startSignIn(browser, running);
    const count = await new Promise<number>((resolve, reject) => store.length((error, length) => (error ? reject(error) : resolve(length ?? 0))));
    assert.equal(count, 0, 'nothing in the session store');
    assert.equal(browser.cookie('127.0.0.1', `sid-${new URL(running.url).port}`), undefined, 'no session cookie');
  });

  test('an expired pending sign-in is refused', async () => {
    const running = await app({ strategy: { signInTimeout: 1 } });
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const response = await browser.get(callback);
    assert.equal(response.location, `${running.url}/sign-in-failed`);
    const failed = await getJson<{ messages: string[] }>(browser, `${running.url}/sign-in-failed`);
    assert.match(failed.body.messages.join(), /expired/);
  });

  test('per-request options reach Logto as its parameters', async () => {
    const running = await app({
      routes: (express, logto, passport) => {
        express.get('/sign-up', passport.authenticate(logto.name, {
          firstScreen: 'register',
          identifiers: ['email', 'username'],
          loginHint: 'someone@example.com',
          directSignIn: { method: 'social', target: 'github' },
          organizationId: 'org-acme',
          uiLocales: 'fr-CA fr',
          prompt: 'login consent',
          extraParams: { one_time_token: 'abc' },
        }));
        express.get('/bad-extra', passport.authenticate(logto.name, { extraParams: { state: 'fixed' } }));
      },
    });
    const browser = new TestBrowser();
    const params = (await startSignIn(browser, running, '/sign-up')).searchParams;
    assert.equal(params.get('first_screen'), 'register');
    assert.equal(params.get('identifier'), 'email username');
    assert.equal(params.get('login_hint'), 'someone@example.com');
    assert.equal(params.get('direct_sign_in'), 'social:github');
    assert.equal(params.get('organization_id'), 'org-acme');
    assert.equal(params.get('ui_locales'), 'fr-CA fr');
    assert.equal(params.get('prompt'), 'login consent');
    assert.equal(params.get('one_time_token'), 'abc');

    const bad = await browser.get(`${running.url}/bad-extra`);
    assert.equal(bad.status, 500);
    assert.equal(JSON.parse(bad.text).error, 'invalid_config');
  });

  test('Logto down at start-up: the app starts, sign-in reports provider_unreachable, then works once Logto is back', async () => {
    const down = await startProvider();
    const running = await startApp(down);
    apps.push(running);
    await down.pause();
    try {
      const browser = new TestBrowser();
      const failed = await browser.get(`${running.url}/sign-in`);
      assert.equal(failed.status, 500);
      assert.equal(JSON.parse(failed.text).error, 'provider_unreachable');
      await down.resume();
      const url = await startSignIn(browser, running);
      assert.equal(`${url.origin}${url.pathname}`, `${down.issuer}/auth`);
    } finally {
      await down.close();
    }
  });
});

describe('callback', () => {
  async function failureMessages(browser: TestBrowser, running: RunningApp): Promise<string> {
    return (await getJson<{ messages: string[] }>(browser, `${running.url}/sign-in-failed`)).body.messages.join(' | ');
  }

  test('a replayed callback is refused elsewhere and creates no session; in the signed-in browser it lands like the first', async () => {
    const running = await app();
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    assert.equal((await browser.get(callback)).location, `${running.url}/`);
    provider.resetRequests();

    const attacker = new TestBrowser();
    const replay = await attacker.get(callback);
    assert.equal(replay.location, `${running.url}/sign-in-failed`);
    assert.equal((await getJson<HomeBody>(attacker, `${running.url}/`)).body.user, null);
    assert.match(await failureMessages(attacker, running), /unknown to this browser or was already completed/);

    const sameBrowser = await browser.get(callback);
    assert.equal(sameBrowser.location, `${running.url}/`, 'a reload of the callback while signed in goes to the return path');
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.authenticated, true);
    assert.equal(provider.countRequests('/oidc/token'), 0, 'the code was never exchanged again');
  });

  test('a callback without state, or with a state from another session, fails', async () => {
    const running = await app();
    const victim = new TestBrowser();
    const callback = new URL(await callbackAfterSignIn(victim, provider, running));
    const attacker = new TestBrowser();
    assert.equal((await attacker.get(callback.href)).location, `${running.url}/sign-in-failed`);
    callback.searchParams.delete('state');
    assert.equal((await victim.get(callback.href)).location, `${running.url}/sign-in-failed`);
    assert.match(await failureMessages(victim, running), /no state/);
  });

  test('access_denied from Logto fails with a clear message', async () => {
    const running = await app();
    const browser = new TestBrowser();
    const authorizationUrl = await startSignIn(browser, running);
    const callback = await cancelAtProvider(browser, authorizationUrl.href, running.callbackURL);
    assert.match(callback, /error=access_denied/);
    assert.equal((await browser.get(callback)).location, `${running.url}/sign-in-failed`);
    assert.match(await failureMessages(browser, running), /access_denied/);
  });

  test('a wrong or missing iss fails', async () => {
    const running = await app();
    for (const tamper of [(url: URL) => url.searchParams.set('iss', 'https://evil.example/oidc'), (url: URL) => url.searchParams.delete('iss')]) {
      const browser = new TestBrowser();
      const callback = new URL(await callbackAfterSignIn(browser, provider, running));
      tamper(callback);
      assert.equal((await browser.get(callback.href)).location, `${running.url}/sign-in-failed`);
      assert.match(await failureMessages(browser, running), /issuer/);
      assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null);
    }
  });

  test('duplicated parameters fail with 400 and no session', async () => {
    const running = await app({ routes: (express, logto, passport) => express.get('/raw-callback', passport.authenticate(logto.name)) });
    const browser = new TestBrowser();
    const callback = new URL(await callbackAfterSignIn(browser, provider, running));
    callback.pathname = '/raw-callback';
    callback.searchParams.append('code', 'second');
    const response = await browser.get(callback.href);
    assert.equal(response.status, 400);
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null);
  });

  describe('forged ID tokens are refused', () => {
    const cases: Array<[string, (idToken: string) => Promise<string>]> = [
      ['signed by a key that is not in the JWKS', async (idToken) => {
        const { privateKey } = await generateKeyPair('ES384');
        return new SignJWT(decodeJwt(idToken)).setProtectedHeader({ alg: 'ES384', kid: 'not-in-jwks' }).sign(privateKey);
      }],
      ['alg none', async (idToken) => {
        const header = Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url');
        return `${header}.${idToken.split('.')[1]}.`;
      }],
      ['expired, with a valid signature', async (idToken) => {
        const now = Math.floor(Date.now() / 1000);
        return provider.sign({ ...decodeJwt(idToken), iat: now - 7200, exp: now - 3600 });
      }],
      ['for another audience', async (idToken) => provider.sign({ ...decodeJwt(idToken), aud: 'another-app' })],
      ['with a wrong nonce', async (idToken) => provider.sign({ ...decodeJwt(idToken), nonce: 'not-the-nonce' })],
      ['from another issuer', async (idToken) => provider.sign({ ...decodeJwt(idToken), iss: 'https://evil.example/oidc' })],
    ];
    for (const [name, forge] of cases) {
      test(name, async () => {
        const running = await app();
        const browser = new TestBrowser();
        const callback = await callbackAfterSignIn(browser, provider, running);
        provider.setTokenResponseTamper(async (body) => ({ ...body, id_token: await forge(String(body.id_token)) }));
        try {
          const response = await browser.get(callback);
          assert.equal(response.location, `${running.url}/sign-in-failed`);
        } finally {
          provider.setTokenResponseTamper(undefined);
        }
        assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null);
      });
    }
  });

  test('returnTo: a safe path survives the round trip; unsafe ones are dropped', async () => {
    const running = await app({
      routes: (express, logto, passport) => {
        express.get('/sign-in-to', (req, res, next) => passport.authenticate(logto.name, { returnTo: String(req.query.to) })(req, res, next));
      },
    });
    const browser = new TestBrowser();
    const guarded = await browser.get(`${running.url}/protected?tab=2`);
    assert.equal(guarded.location, `${running.url}/sign-in`);
    assert.equal(await signIn(browser, provider, running), `${running.url}/protected?tab=2`);

    for (const unsafe of ['https://evil.example/', '//evil.example/x', '/\\evil.example', '/%2F%2Fevil.example', 'javascript:alert(1)', '/ok\r\nLocation: https://evil.example']) {
      const other = new TestBrowser();
      const landed = await signIn(other, provider, running, `/sign-in-to?to=${encodeURIComponent(unsafe)}`);
      assert.equal(landed, `${running.url}/`, `returnTo ${JSON.stringify(unsafe)} must be dropped`);
    }
    const safe = await signIn(new TestBrowser(), provider, running, `/sign-in-to?to=${encodeURIComponent('/orders?page=2')}`);
    assert.equal(safe, `${running.url}/orders?page=2`);
  });
});

describe('verify function', () => {
  test('callback style receives the claims and tokens; its user becomes req.user', async () => {
    let seenScope: string | undefined;
    const running = await app({
      verify: (context, done) => {
        seenScope = context.tokens.scope;
        done(null, { id: context.claims.sub, label: `user ${context.profile.name as string}` });
      },
    });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.deepEqual(home.user, { id: provider.users.demo.sub, label: 'user Demo User' });
    assert.match(seenScope ?? '', /offline_access/);
  });

  test('promise style with passReqToCallback, and userinfo from the context', async () => {
    const running = await app({
      strategy: { scopes: [UserScope.CustomData] },
      verifyWithRequest: async (req, context) => {
        const userInfo = await context.fetchUserInfo();
        return { id: context.claims.sub, plan: (userInfo.custom_data as { plan: string }).plan, path: req.path };
      },
    });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    assert.deepEqual((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, { id: provider.users.demo.sub, plan: 'pro', path: '/callback' });
  });

  test('returning false refuses the user', async () => {
    const running = await app({ verify: async () => false as const });
    const browser = new TestBrowser();
    assert.equal(await signIn(browser, provider, running), `${running.url}/sign-in-failed`);
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null);
  });

  test('a throwing verify function is an error, not a crash', async () => {
    const running = await app({ verify: () => { throw new Error('database down'); } });
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    const response = await browser.get(callback);
    assert.equal(response.status, 500);
    assert.match(JSON.parse(response.text).message, /database down/);
  });
});

describe('sign-out', () => {
  test('revokes the refresh token, logs out with a new session id, and ends the Logto session', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const { sessionID } = (await getJson<SessionBody>(browser, `${running.url}/session`)).body;
    const tokens = await tokensOf(browser, running);
    const refreshToken = String(tokens.refreshToken);
    const idToken = String(tokens.idToken);
    provider.resetRequests();

    const response = await browser.get(`${running.url}/sign-out`);
    assert.equal(response.status, 302);
    const endSession = new URL(response.location ?? '');
    assert.equal(`${endSession.origin}${endSession.pathname}`, `${provider.issuer}/session/end`);
    assert.equal(endSession.searchParams.get('client_id'), running.logto.config.appId);
    assert.equal(endSession.searchParams.get('id_token_hint'), idToken);
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${running.url}/`);
    assert.equal(provider.countRequests('/oidc/token/revocation'), 1);

    const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
    assert.equal(home.user, null);
    assert.equal(home.authenticated, false);
    assert.notEqual(home.sessionID, sessionID, 'the session id changes at sign-out');

    const refresh = await fetch(`${provider.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${running.logto.config.appId}:${running.logto.config.appSecret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    assert.equal(refresh.status, 400, 'the revoked refresh token no longer works');

    const landed = await endSessionAtProvider(browser, endSession.href);
    assert.equal(landed, `${running.url}/`);
    // The Logto session is gone too: a new sign-in asks for credentials again.
    const again = await startSignIn(browser, running);
    const page = await browser.follow(again.href, { stopAt: (url) => url.startsWith(running.callbackURL) });
    assert.match(page.response.text, /name="password"/);
  });

  test('a post-logout target on another origin is refused at set-up', () => {
    const strategy = new LogtoStrategy({ endpoint: 'http://127.0.0.1:1', appId: 'a', appSecret: 's', callbackURL: 'http://127.0.0.1:2/callback' });
    assert.throws(() => strategy.signOut({ postLogoutRedirectUri: 'https://evil.example/' }), (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config');
    assert.throws(() => strategy.signOut({ postLogoutRedirectUri: '//evil.example/' }), LogtoError);
    assert.doesNotThrow(() => strategy.signOut({ postLogoutRedirectUri: '/bye' }));
  });
});

async function signInAtProviderFrom(browser: TestBrowser, running: RunningApp): Promise<string> {
  return callbackAfterSignIn(browser, provider, running);
}
