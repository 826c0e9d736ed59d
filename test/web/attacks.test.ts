/**
 * Hardening: what an attacker can send to the app (callbacks, forged ID tokens, redirect targets,
 * stolen session cookies) and where tokens could leak. Every attack must end in a plain failure:
 * a redirect to /sign-in-failed or a 4xx, never a session, never a 500, never a crash.
 */
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes } from 'node:crypto';
import { format } from 'node:util';
import { describe, test } from 'node:test';
import type { Express, NextFunction, Request, Response } from 'express';
import { decodeJwt, SignJWT, type JWK } from 'jose';
import { LogtoError, UserScope, type LogtoClient, type LogtoStrategy } from '../../lib/index.js';
import { hardeningSetup, type ExpressFlavor, type PassportFlavor, type RunningApp, type StartAppOptions } from '../support/app.js';
import { callbackAfterSignIn, getJson, signIn, startSignIn, type HomeBody, type SessionBody } from '../support/flows.js';
import { endSessionAtProvider, TestBrowser, type TestResponse } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type TestProvider } from '../support/provider/index.js';

// One provider for the file, its apps closed at the end; a crash or a forgotten promise fails the test that caused it.
let provider: TestProvider;
const { app } = hardeningSetup({
  started: (started) => {
    provider = started;
  },
  appOptions: (options) => ({ routes: attackRoutes, ...options }),
});

type Passport = Parameters<NonNullable<StartAppOptions['routes']>>[2];

/** Answers with the helper's result, or with a 4xx naming the LogtoError code (what an API route would do). */
function helperRoute(logto: LogtoStrategy, work: (client: LogtoClient) => Promise<unknown>) {
  return (req: Request, res: Response, next: NextFunction): void => {
    work(logto.client(req)).then(
      (body) => res.json(body ?? { ok: true }),
      (error: unknown) => {
        if (error instanceof LogtoError) res.status(error.code === 'not_authenticated' ? 401 : 400).json({ error: error.code, message: error.message });
        else next(error);
      },
    );
  };
}

function attackRoutes(express: Express, logto: LogtoStrategy, passport: Passport): void {
  // Without failureRedirect, the strategy's own status (400 or 401) reaches the client.
  express.get('/raw-callback', passport.authenticate(logto.name));
  express.get('/sign-in-to', (req, res, next) => passport.authenticate(logto.name, { returnTo: String(req.query.to) })(req, res, next));
  // What an app's own "remember where the user was" code would do, unchecked.
  express.get('/set-return-to', (req, res) => {
    (req.session as unknown as Record<string, unknown>).returnTo = String(req.query.to);
    res.json({ ok: true });
  });
  express.get('/sign-out-to-signed-out', logto.signOut({ postLogoutRedirectUri: '/signed-out' }));
  express.get('/userinfo', helperRoute(logto, (client) => client.fetchUserInfo()));
}

async function lastFailure(browser: TestBrowser, running: RunningApp): Promise<string> {
  const { body } = await getJson<{ messages: string[] }>(browser, `${running.url}/sign-in-failed`);
  return body.messages.at(-1) ?? '';
}

async function expectSignedOut(browser: TestBrowser, running: RunningApp): Promise<void> {
  const home = (await getJson<HomeBody>(browser, `${running.url}/`)).body;
  assert.equal(home.user, null, 'no user in the session');
  assert.equal(home.authenticated, false);
}

/** The callback fails through Passport's failureRedirect, with a message, and the browser has no session. */
async function expectFailedCallback(browser: TestBrowser, running: RunningApp, url: string, message: RegExp): Promise<void> {
  const response = await browser.get(url);
  assert.equal(response.status, 302, `expected a failure redirect, got ${response.status}: ${response.text.slice(0, 200)}`);
  assert.equal(response.location, `${running.url}/sign-in-failed`);
  assert.match(await lastFailure(browser, running), message);
  await expectSignedOut(browser, running);
  assert.deepEqual(running.errors, [], 'nothing reached the error handler (no 500)');
}

function withParams(url: string, change: (params: URLSearchParams) => void): string {
  const parsed = new URL(url);
  change(parsed.searchParams);
  return parsed.href;
}

describe('callback attacks', () => {
  test('an unknown state fails and leaves the pending sign-in usable', async () => {
    const running = await app();
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    const forged = withParams(callback, (params) => params.set('state', randomBytes(32).toString('base64url')));
    await expectFailedCallback(browser, running, forged, /unknown to this browser/);
    assert.equal((await browser.get(callback)).location, `${running.url}/`, 'the real callback still completes');
  });

  test("a victim's callback replayed by a cookie-less attacker fails, and the victim still signs in", async () => {
    const running = await app();
    const victim = new TestBrowser();
    const callback = await callbackAfterSignIn(victim, provider, running);
    const attacker = new TestBrowser();
    await expectFailedCallback(attacker, running, callback, /unknown to this browser/);
    assert.equal((await victim.get(callback)).location, `${running.url}/`);
    assert.equal((await getJson<HomeBody>(victim, `${running.url}/`)).body.user?.id, provider.users.demo.sub);
  });

  test("code injection: the victim's code and state in a session that started its own sign-in", async () => {
    const running = await app();
    const victim = new TestBrowser();
    const victimCallback = await callbackAfterSignIn(victim, provider, running);
    const attacker = new TestBrowser();
    const attackerState = (await startSignIn(attacker, running)).searchParams.get('state') ?? '';
    await expectFailedCallback(attacker, running, victimCallback, /unknown to this browser/);
    const ownCookie = attacker.cookie('127.0.0.1', `logto.signin.${attackerState.slice(0, 16)}`);
    assert.ok(ownCookie, "the attacker's own pending sign-in is untouched");
  });

  test("code injection: the victim's code with the attacker's own state fails on PKCE (invalid_grant)", async () => {
    const running = await app();
    const victim = new TestBrowser();
    const victimCode = new URL(await callbackAfterSignIn(victim, provider, running)).searchParams.get('code') ?? '';
    const attacker = new TestBrowser();
    const attackerState = (await startSignIn(attacker, running)).searchParams.get('state') ?? '';
    const tokenRequests = provider.countRequests('/oidc/token');
    const injected = withParams(running.callbackURL, (params) => {
      params.set('code', victimCode);
      params.set('state', attackerState);
      params.set('iss', provider.issuer);
    });
    await expectFailedCallback(attacker, running, injected, /invalid_grant/);
    assert.equal(provider.countRequests('/oidc/token'), tokenRequests + 1, 'the code was sent, and Logto refused it');
  });

  describe('every error Logto can send fails with that error in the message', () => {
    const logtoErrors = ['access_denied', 'login_required', 'consent_required', 'interaction_required', 'server_error', 'temporarily_unavailable', 'invalid_request', 'invalid_scope'];
    for (const error of logtoErrors) {
      test(error, async () => {
        const running = await app();
        const browser = new TestBrowser();
        const state = (await startSignIn(browser, running)).searchParams.get('state') ?? '';
        const url = withParams(running.callbackURL, (params) => {
          params.set('error', error);
          params.set('error_description', `described ${error}`);
          params.set('state', state);
          params.set('iss', provider.issuer);
        });
        await expectFailedCallback(browser, running, url, new RegExp(`"${error}".*described ${error}`));
      });
    }

    test('an error without iss is refused as a mix-up, and one with a foreign state as unknown', async () => {
      const running = await app();
      const browser = new TestBrowser();
      const state = (await startSignIn(browser, running)).searchParams.get('state') ?? '';
      const base = `${running.callbackURL}?error=access_denied&state=${state}`;
      await expectFailedCallback(browser, running, base, /issuer/);
      await expectFailedCallback(browser, running, `${running.callbackURL}?error=access_denied&state=foreign&iss=${encodeURIComponent(provider.issuer)}`, /unknown/);
    });
  });

  test('oversized parameters: 400 on a bare callback route, a failure with a message on the app route', async () => {
    const running = await app();
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    for (const name of ['code', 'state', 'iss', 'error']) {
      const oversized = withParams(callback, (params) => params.set(name, 'x'.repeat(10_000)));
      const raw = await browser.get(oversized.replace('/callback?', '/raw-callback?'));
      assert.equal(raw.status, 400, `a 10k ${name}`);
      await expectFailedCallback(browser, running, oversized, new RegExp(`oversized "${name}"`));
    }
    // Beyond Node's header limit the server refuses the request itself, still with a 4xx.
    const huge = await browser.get(`${running.callbackURL}?code=${'x'.repeat(20_000)}`);
    assert.ok(huge.status >= 400 && huge.status < 500, `got ${huge.status}`);
    assert.equal((await browser.get(callback)).location, `${running.url}/`, 'none of it consumed the real sign-in');
  });

  test('the right state and iss but no usable code: a 4xx, not a 500', async () => {
    const running = await app();
    const wrong: string[] = [];
    for (const rest of ['', 'code=', 'code', 'code&error', 'code=&error=', 'error_description=no%20code', 'code=%20']) {
      for (const path of ['/raw-callback', '/callback']) {
        const browser = new TestBrowser();
        const state = (await startSignIn(browser, running)).searchParams.get('state') ?? '';
        const query = `${rest}&state=${state}&iss=${encodeURIComponent(provider.issuer)}`;
        const response = await browser.get(`${running.url}${path}?${query}`);
        const expected = path === '/callback' ? response.location === `${running.url}/sign-in-failed` : response.status >= 400 && response.status < 500;
        if (!expected) wrong.push(`${path}?${rest}&state=…: ${response.status} ${response.text.slice(0, 120)}`);
        await expectSignedOut(browser, running);
      }
    }
    // All outcomes at once, so that a failure lists every case.
    assert.deepEqual(wrong, []);
    assert.deepEqual(running.errors.map((error) => (error as LogtoError).code), []);
  });

  describe('non-string query values are refused with a 4xx', () => {
    const flavors: Array<[ExpressFlavor, PassportFlavor]> = [['express5', 'passport07'], ['express4', 'passport06']];
    const queries = ['code[]=a&state[]=b', 'state[x]=1', 'code[x]=1&state[y]=2&iss[]=z', 'code=a&state[x]=1', 'error[]=access_denied&state[]=s'];
    for (const [express, passport] of flavors) {
      test(`${express} (its own query parser) with ${passport}`, async () => {
        const running = await app({ express, passport });
        const wrong: string[] = [];
        for (const query of queries) {
          const browser = new TestBrowser();
          await startSignIn(browser, running);
          const raw = await browser.get(`${running.url}/raw-callback?${query}`);
          if (raw.status < 400 || raw.status >= 500) wrong.push(`${query} on a bare callback route: ${raw.status} ${raw.location?.split('?')[0] ?? ''}`);
          const routed = await browser.get(`${running.callbackURL}?${query}`);
          if (routed.location !== `${running.url}/sign-in-failed`) wrong.push(`${query} on the app's callback route: ${routed.status} ${routed.location?.split('?')[0] ?? ''}`);
          await expectSignedOut(browser, running);
        }
        // All outcomes at once, so that a failure lists every query that got through.
        assert.deepEqual(wrong, []);
        assert.deepEqual(running.errors, []);
      });
    }
  });
});

describe('forged ID tokens', () => {
  /** Runs a real sign-in whose token response carries the forged ID token; it must fail. */
  async function expectForgedRefused(running: RunningApp, on: TestProvider, forge: (idToken: string) => Promise<string>, message: RegExp): Promise<void> {
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, on, running);
    on.setTokenResponseTamper(async (body) => ({ ...body, id_token: await forge(String(body.id_token)) }));
    try {
      await expectFailedCallback(browser, running, callback, message);
    } finally {
      on.setTokenResponseTamper(undefined);
    }
  }

  async function publicJwk(on: TestProvider): Promise<JWK & { kid: string }> {
    const { keys } = (await (await fetch(`${on.issuer}/jwks`)).json()) as { keys: Array<JWK & { kid: string }> };
    assert.ok(keys[0], 'the provider publishes a key');
    return keys[0];
  }

  /** HS256 with the provider's public key as the HMAC secret: the classic algorithm confusion. */
  async function hmacWithPublicKey(idToken: string, jwk: JWK & { kid: string }, secret: Uint8Array): Promise<string> {
    return new SignJWT(decodeJwt(idToken)).setProtectedHeader({ alg: 'HS256', kid: jwk.kid, typ: 'JWT' }).sign(secret);
  }

  test('HS256 signed with the public JWK or its PEM as the secret (ES384 tenant)', async () => {
    const running = await app();
    const jwk = await publicJwk(provider);
    const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
    for (const secret of [Buffer.from(JSON.stringify(jwk)), Buffer.from(pem)]) {
      await expectForgedRefused(running, provider, (idToken) => hmacWithPublicKey(idToken, jwk, secret), /not valid/);
    }
  });

  test('HS256 signed with the RSA public key PEM as the secret (RS256 tenant)', async () => {
    const rsa = await startProvider({ alg: 'RS256' });
    try {
      const running = await app({}, rsa);
      const jwk = await publicJwk(rsa);
      const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs1', format: 'pem' });
      const spki = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
      for (const secret of [Buffer.from(pem), Buffer.from(spki)]) {
        await expectForgedRefused(running, rsa, (idToken) => hmacWithPublicKey(idToken, jwk, secret), /not valid/);
      }
    } finally {
      await rsa.close();
    }
  });

  test('iat in the future beyond the clock tolerance, with a valid signature', async () => {
    const running = await app({ strategy: { clockTolerance: 30 } });
    const now = Math.floor(Date.now() / 1000);
    await expectForgedRefused(running, provider, (idToken) => provider.sign({ ...decodeJwt(idToken), iat: now + 600, exp: now + 4200 }), /not valid|issued/i);
  });

  test('a missing nonce, with a valid signature', async () => {
    const running = await app();
    await expectForgedRefused(running, provider, (idToken) => {
      const { nonce: _dropped, ...claims } = decodeJwt(idToken);
      return provider.sign(claims);
    }, /nonce|not valid/i);
  });

  test('userinfo that names another subject: userinfo_mismatch from the helper, a failed sign-in from verify', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    assert.equal((await getJson<{ sub: string }>(browser, `${running.url}/userinfo`)).body.sub, provider.users.demo.sub);

    const verifying = await app({ verify: async ({ fetchUserInfo }) => ({ id: (await fetchUserInfo()).sub }) });
    const other = new TestBrowser();
    const callback = await callbackAfterSignIn(other, provider, verifying);

    provider.setFault('/oidc/me', { status: 200, body: JSON.stringify({ sub: 'someone-else' }) });
    try {
      const mismatch = await getJson<{ error: string }>(browser, `${running.url}/userinfo`);
      assert.equal(mismatch.status, 400);
      assert.equal(mismatch.body.error, 'userinfo_mismatch');
      await expectFailedCallback(other, verifying, callback, /userinfo names another user/);
    } finally {
      provider.setFault('/oidc/me', undefined);
    }
    assert.deepEqual(running.errors, []);
  });
});

describe('open redirects', () => {
  // Dot segments collapse into `//host` once the URL is resolved.
  const dotSegmentTargets = ['/.//evil.example', '/a/..//evil.example', '/%2e//evil.example', '/%2E%2E//evil.example/x'];
  const unsafeReturnTo = [
    '//evil.example', '/\\evil.example', '/%5Cevil.example', '/%2F%2Fevil.example', 'https://evil.example/', 'javascript:alert(1)',
    '\t//evil.example', '/ok\r\nLocation: https://evil.example', ' //evil.example', ...dotSegmentTargets,
  ];

  test('post-logout targets off the origin are refused at set-up', async () => {
    const running = await app();
    const refused = [
      ...unsafeReturnTo,
      'http://evil.example/', `${running.url}@evil.example/`, `http://127.0.0.1:1/`, 'data:text/html,<script>alert(1)</script>',
      `${running.url}/%2F%2Fevil.example`, `${running.url}/ok\r\nSet-Cookie: a=b`, 'HTTPS://EVIL.EXAMPLE/', 'http:evil.example',
    ];
    for (const target of refused) {
      assert.throws(
        () => running.logto.signOut({ postLogoutRedirectUri: target }),
        (error: unknown) => error instanceof LogtoError && error.code === 'invalid_config',
        `postLogoutRedirectUri ${JSON.stringify(target)} must be refused`,
      );
    }
    for (const target of ['/signed-out', `${running.url}/signed-out`]) {
      assert.doesNotThrow(() => running.logto.signOut({ postLogoutRedirectUri: target }));
    }
  });

  test('an accepted relative post-logout target resolves on the app and is honoured by Logto', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const signOut = await browser.get(`${running.url}/sign-out-to-signed-out`);
    const endSession = new URL(signOut.location ?? '');
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${running.url}/signed-out`);
    assert.equal(await endSessionAtProvider(browser, endSession.href), `${running.url}/signed-out`);
  });

  test('unsafe returnTo values in req.session.returnTo land on / (safe ones are honoured)', async () => {
    const running = await app();
    const setReturnTo = (browser: TestBrowser, to: string): Promise<TestResponse> => browser.get(`${running.url}/set-return-to?to=${encodeURIComponent(to)}`);

    const control = new TestBrowser();
    await setReturnTo(control, '/orders?page=2');
    assert.equal(await signIn(control, provider, running), `${running.url}/orders?page=2`, 'a safe returnTo survives');

    for (const to of unsafeReturnTo) {
      // Set before the sign-in starts, as a guard would.
      const before = new TestBrowser();
      await setReturnTo(before, to);
      assert.equal(await signIn(before, provider, running), `${running.url}/`, `returnTo ${JSON.stringify(to)} set before sign-in`);
      // Set while the sign-in is at Logto.
      const during = new TestBrowser();
      const callback = await callbackAfterSignIn(during, provider, running);
      await setReturnTo(during, to);
      assert.equal((await during.get(callback)).location, `${running.url}/`, `returnTo ${JSON.stringify(to)} set during sign-in`);
    }
  });

  test('unsafe returnTo values given to authenticate() land on /', async () => {
    const running = await app();
    for (const to of dotSegmentTargets) {
      const landed = await signIn(new TestBrowser(), provider, running, `/sign-in-to?to=${encodeURIComponent(to)}`);
      assert.equal(landed, `${running.url}/`, `returnTo ${JSON.stringify(to)}`);
    }
  });

  test("with Passport's keepSessionInfo, an unsafe req.session.returnTo still lands on /", async () => {
    // Passport's keepSessionInfo carries the pre-login session (and its returnTo) into the new one.
    const running = await app({ callbackOptions: { keepSessionInfo: true } });
    for (const to of ['//evil.example', 'https://evil.example/']) {
      const browser = new TestBrowser();
      await browser.get(`${running.url}/set-return-to?to=${encodeURIComponent(to)}`);
      const callback = await callbackAfterSignIn(browser, provider, running);
      const landed = await browser.get(callback);
      assert.equal(landed.location, `${running.url}/`, `returnTo ${JSON.stringify(to)} with keepSessionInfo`);
    }
  });
});

describe('session fixation', () => {
  const flavors: Array<[ExpressFlavor, PassportFlavor]> = [['express5', 'passport07'], ['express4', 'passport06'], ['express4', 'passport07'], ['express5', 'passport06']];
  for (const [express, passport] of flavors) {
    test(`${express} with ${passport}: a planted or stolen session id is worthless after sign-in and sign-out`, async () => {
      const running = await app({ express, passport });
      // startApp names the session cookie after the app's port.
      const cookieName = `sid-${new URL(running.url).port}`;
      const sid = (browser: TestBrowser): string => browser.cookie('127.0.0.1', cookieName) ?? '';
      const withCookie = (value: string, path: string): Promise<TestResponse> =>
        new TestBrowser().request(`${running.url}${path}`, { headers: { cookie: `${cookieName}=${value}` } });

      const browser = new TestBrowser();
      // The app's own code writes to the session, which gives the browser a session id.
      await browser.get(`${running.url}/set-return-to?to=%2F`);
      const planted = sid(browser);
      assert.notEqual(planted, '', 'a session exists before sign-in');
      await signIn(browser, provider, running);
      const signedIn = sid(browser);
      assert.notEqual(signedIn, planted, 'the session id changes at sign-in');
      assert.equal(JSON.parse((await withCookie(planted, '/')).text).user, null, 'the planted id is not signed in');
      assert.equal(JSON.parse((await withCookie(signedIn, '/')).text).user?.id, provider.users.demo.sub);

      await browser.get(`${running.url}/sign-out`);
      assert.notEqual(sid(browser), signedIn, 'the session id changes at sign-out');
      const stolen = JSON.parse((await withCookie(signedIn, '/session')).text) as SessionBody;
      assert.equal(stolen.session.logto, undefined, 'no sign-in behind the old id');
      assert.equal(stolen.session.passport, undefined);
      assert.equal(JSON.parse((await withCookie(signedIn, '/')).text).user, null, 'the stolen id is not signed in');
      await expectSignedOut(browser, running);
    });
  }
});

describe('tokens never leak', () => {
  test('no refresh or access token in req.user, in any response of the app, or in a log line', async () => {
    const issued = { refresh: new Set<string>(), access: new Set<string>(), id: new Set<string>() };
    let forgeIdToken = false;
    provider.setTokenResponseTamper(async (body) => {
      if (typeof body.refresh_token === 'string') issued.refresh.add(body.refresh_token);
      if (typeof body.access_token === 'string') issued.access.add(body.access_token);
      if (typeof body.id_token === 'string') issued.id.add(body.id_token);
      return forgeIdToken ? { ...body, id_token: await provider.sign({ ...decodeJwt(String(body.id_token)), aud: 'another-app' }) } : body;
    });
    const lines: string[] = [];
    const restore = captureOutput(lines);
    const responses: Array<{ what: string; response: TestResponse }> = [];
    const keep = (what: string, response: TestResponse): TestResponse => {
      responses.push({ what, response });
      return response;
    };
    try {
      const running = await app({
        strategy: { resources: [API_RESOURCE], scopes: [UserScope.Email, 'read:items'] },
        // A real app logs what reaches its error handler.
        onError: (error) => console.error('request failed:', error),
        routes: (express, logto, passport) => {
          attackRoutes(express, logto, passport);
          express.get('/use-token', (req, res, next) => {
            logto.client(req).getAccessToken(API_RESOURCE).then(() => res.json({ ok: true }), next);
          });
          express.get('/force-refresh', (req, res, next) => {
            logto.client(req).refresh().then(() => res.json({ ok: true }), next);
          });
        },
      });
      const browser = new TestBrowser();
      const callback = await callbackAfterSignIn(browser, provider, running);
      keep('callback', await browser.get(callback));
      for (const path of ['/', '/protected', '/api/profile', '/use-token', '/force-refresh', '/use-token', '/userinfo']) {
        const response = keep(path, await browser.get(`${running.url}${path}`));
        assert.equal(response.status, 200, `${path}: ${response.text}`);
      }
      const user = JSON.parse(responses[1]?.response.text ?? '{}') as HomeBody;
      assert.equal(user.user?.id, provider.users.demo.sub);

      // Failures: a replay, a forged ID token, Logto faults at the callback and at refresh.
      keep('replayed callback', await browser.get(callback));
      const forged = new TestBrowser();
      const forgedCallback = await callbackAfterSignIn(forged, provider, running);
      forgeIdToken = true;
      keep('forged callback', await forged.get(forgedCallback));
      forgeIdToken = false;
      keep('forged failure page', await forged.get(`${running.url}/sign-in-failed`));
      const faulted = new TestBrowser();
      const faultedCallback = await callbackAfterSignIn(faulted, provider, running);
      provider.setFault('/oidc/token', { status: 500, body: '<html><body>Internal error</body></html>', contentType: 'text/html' });
      try {
        keep('callback during a fault', await faulted.get(faultedCallback));
        keep('refresh during a fault', await browser.get(`${running.url}/force-refresh`));
      } finally {
        provider.setFault('/oidc/token', undefined);
      }
      keep('sign-out', await browser.get(`${running.url}/sign-out`));
      keep('home after sign-out', await browser.get(`${running.url}/`));

      assert.ok(issued.refresh.size >= 3 && issued.access.size >= 4, 'the flows issued several tokens');
      assert.ok(running.errors.length >= 2 && lines.some((line) => line.includes('provider_error')), 'the faults were logged');

      const secrets: Array<[string, string]> = [
        ...[...issued.refresh].map((token): [string, string] => ['refresh token', token]),
        ...[...issued.access].map((token): [string, string] => ['access token', token]),
      ];
      for (const { what, response } of responses) {
        const headers: string[] = [];
        response.headers.forEach((value, name) => headers.push(`${name}: ${value}`));
        const exposed = `${response.status}\n${headers.join('\n')}\n${response.text}`;
        for (const [kind, token] of secrets) assert.ok(!exposed.includes(token), `a ${kind} in the response to ${what}`);
        if (what !== 'sign-out') {
          for (const token of issued.id) assert.ok(!exposed.includes(token), `an ID token in the response to ${what}`);
        }
      }
      const signOutLocation = new URL(responses.find(({ what }) => what === 'sign-out')?.response.location ?? '');
      assert.ok(issued.id.has(signOutLocation.searchParams.get('id_token_hint') ?? ''), 'the id_token_hint is the one expected token');
      const log = lines.join('\n');
      for (const [kind, token] of secrets) assert.ok(!log.includes(token), `a ${kind} in the logs`);
    } finally {
      restore();
      provider.setTokenResponseTamper(undefined);
    }
  });
});

/** Records console output (swallowed) and stdout/stderr writes (passed through, the test runner uses them). */
function captureOutput(lines: string[]): () => void {
  const methods = ['log', 'error', 'warn', 'info', 'debug', 'trace'] as const;
  const originals = methods.map((method) => console[method]);
  for (const method of methods) {
    console[method] = (...args: unknown[]) => {
      lines.push(format(...args));
    };
  }
  const streams = [process.stdout, process.stderr];
  const writes = streams.map((stream) => stream.write);
  streams.forEach((stream, index) => {
    const original = writes[index] as (...args: unknown[]) => boolean;
    stream.write = ((chunk: unknown, ...rest: unknown[]) => {
      lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      return original.call(stream, chunk, ...rest);
    }) as typeof stream.write;
  });
  return () => {
    methods.forEach((method, index) => {
      console[method] = originals[index] as (typeof console)[typeof method];
    });
    streams.forEach((stream, index) => {
      stream.write = writes[index] as typeof stream.write;
    });
  };
}
