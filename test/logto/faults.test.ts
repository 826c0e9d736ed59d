/**
 * Hardening: Logto down, slow, or answering garbage; signing keys rotating under signed-in users;
 * the session store failing. Each fault must give the app a LogtoError with the right code (or a
 * plain 500 from its error handler), never a crash, and everything must work once it is gone.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, test } from 'node:test';
import type { Express, NextFunction, Request, Response } from 'express';
import session from 'express-session';
import { decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import { LogtoError, UserScope, type LogtoClient, type LogtoStrategy } from '../../lib/index.js';
import { hardeningSetup, type RunningApp } from '../support/app.js';
import { callbackAfterSignIn, getJson, signIn, startSignIn, type HomeBody } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, startProvider, type Fault, type RecordedRequest, type TestProvider } from '../support/provider/index.js';

// One provider for the file, its apps closed at the end; a crash or a forgotten promise fails the test that caused it.
let provider: TestProvider;
const { app } = hardeningSetup({
  started: (started) => {
    provider = started;
  },
  appOptions: (options) => ({
    ...options,
    strategy: { resources: [API_RESOURCE], scopes: [UserScope.Email, 'read:items'], ...options.strategy },
    routes: helperRoutes,
  }),
});

const infrastructureCodes = new Set(['provider_unreachable', 'provider_timeout', 'provider_error', 'invalid_provider_response', 'session_store_failed']);

interface HelperBody {
  error?: string;
  message?: string;
  authenticated?: boolean;
  refreshToken?: string | null;
  idToken?: string | null;
  sub?: string;
}

/** Helper routes the way an app's API would expose them: LogtoErrors become JSON with their code. */
function helperRoutes(express: Express, logto: LogtoStrategy): void {
  const send = (work: (client: LogtoClient) => Promise<unknown>) => (req: Request, res: Response, next: NextFunction): void => {
    work(logto.client(req)).then(
      (body) => res.json(body),
      (error: unknown) => {
        if (!(error instanceof LogtoError)) {
          next(error);
          return;
        }
        const status = error.code === 'not_authenticated' ? 401 : infrastructureCodes.has(error.code) ? 503 : 400;
        res.status(status).json({ error: error.code, message: error.message });
      },
    );
  };
  const state = (client: LogtoClient): HelperBody => ({
    authenticated: client.isAuthenticated(),
    refreshToken: client.getRefreshToken() ?? null,
    idToken: client.getIdToken() ?? null,
  });
  express.get('/helper/state', send(async (client) => state(client)));
  express.get('/helper/refresh', send(async (client) => {
    await client.refresh();
    return state(client);
  }));
  express.get('/helper/userinfo', send((client) => client.fetchUserInfo()));
  express.get('/helper/token', send(async (client) => ({ token: await client.getAccessToken(API_RESOURCE) })));
  // A request that needs two tokens of the sign-in at once: each getter's outcome, by its code.
  express.get('/helper/two-tokens', send(async (client) => {
    const outcome = (token: Promise<string>): Promise<string> => token.then(() => 'ok', (error: unknown) => (error instanceof LogtoError ? error.code : 'other'));
    return { codes: await Promise.all([outcome(client.getAccessToken()), outcome(client.getAccessToken(API_RESOURCE))]) };
  }));
}

async function helper(browser: TestBrowser, running: RunningApp, path: string): Promise<{ status: number; body: HelperBody }> {
  return getJson<HelperBody>(browser, `${running.url}/helper/${path}`);
}

/** A callback (or any app route) answered by the app's error handler with this code. */
async function expectAppError(browser: TestBrowser, url: string, code: string): Promise<void> {
  const response = await browser.get(url);
  assert.equal(response.status, 500, `expected the error handler's 500, got ${response.status}: ${response.text.slice(0, 200)}`);
  assert.equal((JSON.parse(response.text) as { error: string }).error, code, response.text);
}

async function expectSignedIn(browser: TestBrowser, running: RunningApp, sub = provider.users.demo.sub): Promise<void> {
  assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user?.id, sub);
}

describe('Logto down', () => {
  test('during sign-in: provider_unreachable from the error handler, and a new sign-in works once it is back', async () => {
    const running = await app();
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    await provider.pause();
    try {
      await expectAppError(browser, callback, 'provider_unreachable');
      assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null);
    } finally {
      await provider.resume();
    }
    assert.equal(await signIn(browser, provider, running), `${running.url}/`);
    await expectSignedIn(browser, running);
  });

  test('during a refresh: provider_unreachable, the session is kept, and the same session refreshes once it is back', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const before = (await helper(browser, running, 'state')).body;
    await provider.pause();
    try {
      const refused = await helper(browser, running, 'refresh');
      assert.equal(refused.status, 503);
      assert.equal(refused.body.error, 'provider_unreachable');
    } finally {
      await provider.resume();
    }
    assert.deepEqual((await helper(browser, running, 'state')).body, before, 'the session kept its tokens');
    const refreshed = await helper(browser, running, 'refresh');
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.notEqual(refreshed.body.refreshToken, before.refreshToken);
    await expectSignedIn(browser, running);
  });

  test('a request needing two tokens during a 5xx outage: the second shares the first\'s failure, and the refresh token stays', async () => {
    const running = await app({ strategy: { accessTokenExpiryMargin: 3600 * 24 } }); // every cached token counts as due
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    const before = (await helper(browser, running, 'state')).body;
    const refreshes = (): RecordedRequest[] => provider.requests.filter((request) => request.path === '/oidc/token' && request.params.grant_type === 'refresh_token');
    const earlier = refreshes().length;
    provider.setFault('/oidc/token', { status: 503, body: '<html>Service Unavailable</html>', contentType: 'text/html' });
    let during: { codes: string[] };
    try {
      during = (await getJson<{ codes: string[] }>(browser, `${running.url}/helper/two-tokens`)).body;
    } finally {
      provider.setFault('/oidc/token', undefined);
    }
    assert.deepEqual(during.codes, ['provider_error', 'provider_error'], 'the outage\'s error for both, not token_store_failed');
    const sent = refreshes().slice(earlier);
    assert.ok(sent.length > 0);
    assert.equal(new Set(sent.map((request) => request.params.resource ?? 'userinfo')).size, 1, 'only one token\'s refresh was tried: the one queued behind it shared its failure');
    assert.deepEqual((await helper(browser, running, 'state')).body, before, 'the refresh token was kept');
    // A new request tries again, and Logto is back.
    assert.deepEqual((await getJson<{ codes: string[] }>(browser, `${running.url}/helper/two-tokens`)).body.codes, ['ok', 'ok']);
  });

  test('during sign-out: signed out locally and sent to the end-session URL all the same', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    await provider.pause();
    try {
      const response = await browser.get(`${running.url}/sign-out`);
      assert.equal(response.status, 302, response.text);
      assert.equal(new URL(response.location ?? '').pathname, new URL(`${provider.issuer}/session/end`).pathname);
      assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null);
    } finally {
      await provider.resume();
    }
    assert.deepEqual(running.errors, []);
  });
});

/**
 * A minimal stand-in for Logto whose endpoints can be made to accept a request and never answer,
 * for the calls the test provider cannot slow down (discovery, JWKS, userinfo).
 */
interface FakeLogto {
  endpoint: string;
  issuer: string;
  /** Paths that accept and never answer. */
  hang: Set<string>;
  /** The nonce the next ID token carries (taken from the authorization URL). */
  nonce: string | undefined;
  close(): Promise<void>;
}

async function startFakeLogto(): Promise<FakeLogto> {
  const { privateKey, publicKey } = await generateKeyPair('ES384', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'fake-key', alg: 'ES384', use: 'sig' };
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = `${endpoint}/oidc`;
  const fake: FakeLogto = {
    endpoint,
    issuer,
    hang: new Set(),
    nonce: undefined,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  server.on('request', (req, res) => {
    const path = new URL(req.url ?? '/', endpoint).pathname;
    req.resume();
    if (fake.hang.has(path)) return;
    const json = (body: unknown): void => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    switch (path) {
      case '/oidc/.well-known/openid-configuration':
        json({
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          userinfo_endpoint: `${issuer}/me`,
          jwks_uri: `${issuer}/jwks`,
          end_session_endpoint: `${issuer}/session/end`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['ES384'],
          code_challenge_methods_supported: ['S256'],
          authorization_response_iss_parameter_supported: true,
        });
        return;
      case '/oidc/jwks':
        json({ keys: [jwk] });
        return;
      case '/oidc/me':
        json({ sub: 'fake-user' });
        return;
      case '/oidc/token': {
        const basic = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
        const clientId = decodeURIComponent(basic.split(':')[0] ?? '');
        new SignJWT({ nonce: fake.nonce })
          .setProtectedHeader({ alg: 'ES384', kid: 'fake-key' })
          .setIssuer(issuer)
          .setAudience(clientId)
          .setSubject('fake-user')
          .setIssuedAt()
          .setExpirationTime('1h')
          .sign(privateKey)
          .then((idToken) => json({
            access_token: 'fake-access-token',
            token_type: 'Bearer',
            expires_in: 3600,
            refresh_token: 'fake-refresh-token',
            scope: 'openid offline_access profile',
            id_token: idToken,
          }), () => res.writeHead(500).end());
        return;
      }
      default:
        res.writeHead(404).end();
    }
  });
  return fake;
}

describe('a slow Logto is bounded by the timeout option', () => {
  const timeout = 0.5;
  /**
   * Runs `work`. Logto's delay is longer than the test's own patience would allow if the timeout
   * did not fire; the answer's code (provider_timeout) is what proves it did, not a stopwatch.
   */
  function bounded<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }

  test('a slow token endpoint at the callback and at a refresh: provider_timeout', async () => {
    const running = await app({ strategy: { timeout } });
    const slow = new Set<string>();
    provider.setTokenResponseTamper(async (body, params) => {
      if (slow.has(params.grant_type ?? '')) await delay(3000);
      return body;
    });
    try {
      const browser = new TestBrowser();
      const callback = await callbackAfterSignIn(browser, provider, running);
      slow.add('authorization_code');
      await bounded(() => expectAppError(browser, callback, 'provider_timeout'));
      slow.clear();
      await signIn(browser, provider, running);
      await expectSignedIn(browser, running);

      slow.add('refresh_token');
      provider.resetRequests();
      const refused = await bounded(() => helper(browser, running, 'refresh'));
      assert.equal(refused.body.error, 'provider_timeout');
      slow.clear();
      // Logto rotated the refresh token but no answer arrived. It was asked again within Logto's
      // reuse grace, then kept: only Logto's word says it is dead. Here Logto did rotate it, so its
      // late use ends this same sign-in (Logto answers invalid_grant), as dropping it would have.
      const sent = provider.requests.filter((r) => r.path === '/oidc/token' && r.params.grant_type === 'refresh_token');
      assert.ok(sent.length >= 1);
      assert.equal(new Set(sent.map((r) => r.params.refresh_token)).size, 1, 'every attempt carried the same refresh token');
      await delay(3100); // past Logto's grace for the rotated token
      const retried = await helper(browser, running, 'refresh');
      assert.equal(retried.body.error, 'not_authenticated', JSON.stringify(retried.body));
      assert.equal((await helper(browser, running, 'refresh')).body.error, 'not_authenticated', 'the sign-in has ended');
    } finally {
      provider.setTokenResponseTamper(undefined);
    }
  });

  test('slow discovery, JWKS and userinfo: provider_timeout, and all works once they answer', async () => {
    const fake = await startFakeLogto();
    try {
      const running = await app({ strategy: { endpoint: fake.endpoint, timeout, jwksCooldown: 30 } });
      const browser = new TestBrowser();
      const callbackFor = (authorization: URL): string => {
        fake.nonce = authorization.searchParams.get('nonce') ?? undefined;
        const state = authorization.searchParams.get('state') ?? '';
        return `${running.callbackURL}?code=fake-code&state=${state}&iss=${encodeURIComponent(fake.issuer)}`;
      };

      fake.hang.add('/oidc/.well-known/openid-configuration');
      await bounded(() => expectAppError(browser, `${running.url}/sign-in`, 'provider_timeout'));
      fake.hang.clear();

      fake.hang.add('/oidc/jwks');
      const first = callbackFor(await startSignIn(browser, running));
      await bounded(() => expectAppError(browser, first, 'provider_timeout'));
      fake.hang.clear();
      const second = await browser.get(callbackFor(await startSignIn(browser, running)));
      assert.equal(second.location, `${running.url}/`, second.text);
      await expectSignedIn(browser, running, 'fake-user');

      fake.hang.add('/oidc/me');
      const refused = await bounded(() => helper(browser, running, 'userinfo'));
      assert.equal(refused.body.error, 'provider_timeout');
      fake.hang.clear();
      assert.equal((await helper(browser, running, 'userinfo')).body.sub, 'fake-user');
    } finally {
      await fake.close();
    }
  });
});

describe('garbage from Logto', () => {
  const html = (status: number): string => `<!DOCTYPE html><html><body><h1>${status}</h1><p>nginx</p></body></html>`;
  const faults: Array<[string, Fault, string]> = [
    ['200 with broken JSON', { status: 200, body: '{"access_token": "abc", ' }, 'invalid_provider_response'],
    ['200 with an HTML page', { status: 200, body: html(200), contentType: 'text/html' }, 'invalid_provider_response'],
    ['500 with an HTML page', { status: 500, body: html(500), contentType: 'text/html' }, 'provider_error'],
    ['502 with an HTML page', { status: 502, body: html(502), contentType: 'text/html' }, 'provider_error'],
    ['503 with a JSON OAuth error', { status: 503, body: '{"error":"temporarily_unavailable"}' }, 'provider_error'],
  ];

  test('from the token endpoint at the callback: the right code, then a new sign-in works', async () => {
    const running = await app();
    for (const [name, fault, code] of faults) {
      const browser = new TestBrowser();
      const callback = await callbackAfterSignIn(browser, provider, running);
      provider.setFault('/oidc/token', fault);
      try {
        await expectAppError(browser, callback, code).catch((error: unknown) => assert.fail(`${name}: ${String(error)}`));
      } finally {
        provider.setFault('/oidc/token', undefined);
      }
      assert.equal(await signIn(browser, provider, running), `${running.url}/`, `${name}: the next sign-in works`);
      await expectSignedIn(browser, running);
    }
  });

  test('from the token endpoint at a refresh: the right code, the refresh token kept, and the sign-in refreshes once Logto is back', async () => {
    const running = await app();
    for (const [name, fault, code] of faults) {
      const browser = new TestBrowser();
      await signIn(browser, provider, running);
      const grants = provider.revokedGrants();
      provider.setFault('/oidc/token', fault);
      try {
        const refused = await helper(browser, running, 'refresh');
        assert.equal(refused.body.error, code, `${name}: ${refused.body.message ?? ''}`);
        assert.equal(refused.status, 503);
      } finally {
        provider.setFault('/oidc/token', undefined);
      }
      // An outage ends no sign-in: only Logto's invalid_grant says a refresh token is dead. Once
      // Logto answers again, the same sign-in refreshes.
      assert.notEqual((await helper(browser, running, 'state')).body.refreshToken, null, `${name}: the refresh token was kept`);
      const again = await helper(browser, running, 'refresh');
      assert.equal(again.status, 200, `${name}: ${JSON.stringify(again.body)}`);
      assert.equal(provider.revokedGrants(), grants, `${name}: Logto revoked nothing`);
    }
  });

  test('from userinfo: the right code, and the next call works', async () => {
    const running = await app();
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    for (const [name, fault, code] of faults) {
      provider.setFault('/oidc/me', fault);
      try {
        const refused = await helper(browser, running, 'userinfo');
        assert.equal(refused.body.error, code, `${name}: ${refused.body.message ?? ''}`);
      } finally {
        provider.setFault('/oidc/me', undefined);
      }
      assert.equal((await helper(browser, running, 'userinfo')).body.sub, provider.users.demo.sub, name);
    }
  });

  test('from the JWKS of a fresh app: the right code, and the next sign-in works', async () => {
    const jwksFaults: Array<[string, Fault, string]> = [
      ...faults,
      ['200 with JSON that is no key set', { status: 200, body: '{"keys": "none"}' }, 'invalid_provider_response'],
    ];
    const outcomes: string[] = [];
    for (const [name, fault, code] of jwksFaults) {
      // The default cooldown: a failed download must not hold back the next one.
      const running = await app({ strategy: { jwksCooldown: 30 } });
      const browser = new TestBrowser();
      const callback = await callbackAfterSignIn(browser, provider, running);
      provider.setFault('/oidc/jwks', fault);
      let response;
      try {
        response = await browser.get(callback);
      } finally {
        provider.setFault('/oidc/jwks', undefined);
      }
      const got = response.status === 500 ? (JSON.parse(response.text) as { error: string }).error : `HTTP ${response.status}`;
      if (got !== code) outcomes.push(`${name}: expected ${code}, got ${got}`);
      assert.equal(await signIn(browser, provider, running), `${running.url}/`, `${name}: the next sign-in works`);
      await expectSignedIn(browser, running);
    }
    // All outcomes at once, so that a failure lists every fault with the wrong code.
    assert.deepEqual(outcomes, []);
  });
});

describe('signing key rotation', () => {
  test('users stay signed in, a refresh brings an ID token from the new key, and new sign-ins work', async () => {
    const running = await app();
    const first = new TestBrowser();
    const second = new TestBrowser();
    await signIn(first, provider, running);
    await signIn(second, provider, running);
    const oldKid = decodeProtectedHeader(String((await helper(first, running, 'state')).body.idToken)).kid;

    await provider.rotateSigningKey();
    const { keys } = (await (await fetch(`${provider.issuer}/jwks`)).json()) as { keys: Array<{ kid: string }> };
    assert.notEqual(keys[0]?.kid, oldKid, 'the provider signs with a new key');

    const refreshed = await helper(first, running, 'refresh');
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    assert.equal(decodeProtectedHeader(String(refreshed.body.idToken)).kid, keys[0]?.kid, 'the new ID token is from the new key');

    assert.equal((await first.get(`${running.url}/api/profile`)).status, 200);
    assert.equal((await second.get(`${running.url}/api/profile`)).status, 200, 'a session from before the rotation keeps working');
    assert.equal((await helper(second, running, 'token')).status, 200);
    const third = new TestBrowser();
    assert.equal(await signIn(third, provider, running), `${running.url}/`);
    await expectSignedIn(third, running);
  });

  test('with the default JWKS cooldown, a rotation right after the keys were downloaded still lets users sign in and refresh', async () => {
    const running = await app({ strategy: { jwksCooldown: 30 } });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    provider.resetRequests();
    await provider.rotateSigningKey();

    const refreshed = await helper(browser, running, 'refresh');
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    const other = new TestBrowser();
    assert.equal(await signIn(other, provider, running), `${running.url}/`);
    await expectSignedIn(other, running);
    assert.equal(provider.countRequests('/oidc/jwks'), 1, 'the new key is fetched once, for the first token that needs it');
  });
});

/** A MemoryStore whose reads and writes fail on demand, like a session database going away. */
class FlakyStore extends session.MemoryStore {
  failGet = false;
  failSet = false;

  override get(sid: string, callback: (error: unknown, session?: session.SessionData | null) => void): void {
    if (this.failGet) setImmediate(() => callback(new Error('session store down (get)')));
    else super.get(sid, callback);
  }

  override set(sid: string, data: session.SessionData, callback?: (error?: unknown) => void): void {
    if (this.failSet) setImmediate(() => callback?.(new Error('session store down (set)')));
    else super.set(sid, data, callback);
  }
}

describe('session store failures', () => {
  const storeErrors = (running: RunningApp): string[] =>
    running.errors.map((error) => (error instanceof Error ? error.message : String(error))).filter((message) => /session store down/.test(message));

  test('failing reads: a 500 from the error handler, and the session is back once the store is', async () => {
    const store = new FlakyStore();
    const running = await app({ store });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    store.failGet = true;
    for (const path of ['/', '/api/profile', '/sign-in', '/helper/token']) {
      const response = await browser.get(`${running.url}${path}`);
      assert.equal(response.status, 500, path);
      assert.equal((JSON.parse(response.text) as { error: string }).error, 'internal_error', path);
    }
    assert.equal(storeErrors(running).length, 4);
    store.failGet = false;
    await expectSignedIn(browser, running);
    assert.equal((await helper(browser, running, 'token')).status, 200);
  });

  test('failing writes at sign-in: an error, no session, and sign-in works once the store is back', async () => {
    const store = new FlakyStore();
    const running = await app({ store });
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    store.failSet = true;
    const response = await browser.get(callback);
    assert.equal(response.status, 500);
    assert.equal((JSON.parse(response.text) as { error: string }).error, 'session_store_failed');
    assert.ok(storeErrors(running).length >= 1, 'the store error reached the error handler');
    // A sign-in started while writes fail is not remembered.
    await browser.get(`${running.url}/sign-in`);
    store.failSet = false;
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null);
    assert.equal(await signIn(browser, provider, running), `${running.url}/`);
    await expectSignedIn(browser, running);
  });

  test('failing writes at sign-out: a 500, and sign-out works once the store is back', async () => {
    const store = new FlakyStore();
    const running = await app({ store });
    const browser = new TestBrowser();
    await signIn(browser, provider, running);
    store.failSet = true;
    const failed = await browser.get(`${running.url}/sign-out`);
    assert.equal(failed.status, 500);
    assert.equal((JSON.parse(failed.text) as { error: string }).error, 'session_store_failed');
    assert.ok(storeErrors(running).length >= 1, 'the store error reached the error handler');
    store.failSet = false;
    const signedOut = await browser.get(`${running.url}/sign-out`);
    assert.equal(signedOut.status, 302);
    assert.equal((await getJson<HomeBody>(browser, `${running.url}/`)).body.user, null);
  });

  test('failing writes after a refresh: the rotated refresh token is not lost', async () => {
    // A short reuse leeway: the refresh token the store still holds dies quickly.
    const quick = await startProvider({ reuseLeewaySeconds: 0.3 });
    try {
      const store = new FlakyStore();
      const running = await app({ store }, quick);
      const browser = new TestBrowser();
      await signIn(browser, quick, running);
      store.failSet = true;
      // The tokens live in the session store: their save fails after Logto rotated the refresh token.
      const failed = await helper(browser, running, 'refresh');
      assert.equal(failed.status, 503);
      assert.equal(failed.body.error, 'session_store_failed');
      store.failSet = false;
      await delay(500);
      const refreshed = await helper(browser, running, 'refresh');
      assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
      assert.equal((await helper(browser, running, 'state')).body.authenticated, true);
    } finally {
      await quick.close();
    }
  });
});
