/**
 * Set-up mistakes that Logto answers for: a wrong app secret, an unregistered redirect URI, a
 * wrong endpoint, a resource Logto does not know, a sign-in without offline_access. Each gets its
 * own code and a message that says what to fix, never "Logto is down" and never a retry hint.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import type { Express } from 'express';
import session from 'express-session';
import { LogtoError, type LogtoStrategy } from '../../lib/index.js';
import { hardeningSetup, type RunningApp } from '../support/app.js';
import { callbackAfterSignIn, signIn } from '../support/flows.js';
import { TestBrowser } from '../support/http-client.js';
import { API_RESOURCE, type TestProvider } from '../support/provider/index.js';
import { captureWarnings } from '../support/warnings.js';

let provider: TestProvider;
const { app } = hardeningSetup({
  started: (started) => {
    provider = started;
  },
  appOptions: (options) => ({ ...options, routes: tokenRoute }),
});

/** An API route that asks for a resource token and shows the error's code and message. */
function tokenRoute(express: Express, logto: LogtoStrategy): void {
  express.get('/api-token', logto.authenticated(), (req, res) => {
    req.logto!.getAccessToken(API_RESOURCE).then(
      () => res.json({ ok: true }),
      (error: unknown) => {
        const logtoError = error as LogtoError;
        res.status(logtoError.httpStatus).json({ error: logtoError.code, message: logtoError.message });
      },
    );
  });
}

/** What the app's error handler got, and what the browser saw. */
async function callbackError(browser: TestBrowser, running: RunningApp, callback: string): Promise<LogtoError> {
  const response = await browser.get(callback);
  assert.equal(response.status, 500, response.text);
  const [error] = running.errors;
  assert.ok(error instanceof LogtoError, String(error));
  assert.equal((JSON.parse(response.text) as { error: string }).error, error.code);
  return error;
}

/** A port nothing listens on. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function assertSetupError(error: LogtoError, code: string): void {
  assert.equal(error.code, code, error.message);
  assert.deepEqual([error.causedBy, error.httpStatus], ['infrastructure', 500], 'a set-up mistake: 500, not the 503 of Logto being down');
  assert.doesNotMatch(error.message, /in a moment|try again|is down|5xx/i);
}

describe('a wrong app secret', () => {
  test('at the callback: invalid_client, naming the app ID and saying to check the secret and the authentication method', async () => {
    const running = await app({ strategy: { appSecret: 'not-the-app-secret' } });
    const browser = new TestBrowser();
    const callback = await callbackAfterSignIn(browser, provider, running);
    const error = await callbackError(browser, running, callback);
    assertSetupError(error, 'invalid_client');
    assert.equal(error.oauthError, 'invalid_client');
    assert.equal(error.status, 500, 'the status to answer, not Logto\'s 401');
    assert.equal(error.statusCode, 500);
    assert.ok(error.message.includes(`"${running.registered.appId}"`), error.message);
    assert.match(error.message, /App secret/);
    assert.match(error.message, /client_secret_basic/);
    assert.match(error.message, /Traditional web/);
    assert.ok(!error.message.includes('not-the-app-secret'), 'the secret is never in a message');
  });
  test('at a refresh: the message names the app ID and the secret, nothing is retried, and the sign-in still refreshes with the right secret', async () => {
    // Two instances of one app sharing sessions, the second deployed with a wrong secret.
    const store = new session.MemoryStore();
    const right = await app({ strategy: { resources: [API_RESOURCE] }, store, cookieName: 'sid-shared' });
    const wrong = await app({ strategy: { resources: [API_RESOURCE], appSecret: 'not-the-app-secret' }, store, cookieName: 'sid-shared', instanceOf: right.registered });
    const browser = new TestBrowser();
    await signIn(browser, provider, right);
    const before = provider.countRequests('/oidc/token');
    const refused = await browser.get(`${wrong.url}/api-token`);
    const body = JSON.parse(refused.text) as { error: string; message: string };
    // The Refresher reads token_request_failed as "Logto answered, nothing was rotated".
    assert.equal(body.error, 'token_request_failed');
    assert.ok(body.message.includes(`the app "${right.registered.appId}"`), body.message);
    assert.match(body.message, /App secret/);
    assert.equal(provider.countRequests('/oidc/token') - before, 1, 'sent once, not retried');
    const token = await browser.get(`${right.url}/api-token`);
    assert.equal(token.status, 200, token.text);
  });
});

describe('a redirect URI Logto does not know', () => {
  test('at the authorization endpoint: Logto answers 400 with oidc.invalid_redirect_uri, and the app never hears of it', async () => {
    const running = await app({ strategy: { callbackURL: `http://127.0.0.1:${await freePort()}/not-registered` } });
    const browser = new TestBrowser();
    const started = await browser.get(`${running.url}/sign-in`);
    assert.equal(started.status, 302);
    const atLogto = await browser.get(started.location!);
    assert.equal(atLogto.status, 400);
    const body = JSON.parse(atLogto.text) as { error: string; code: string; message: string };
    assert.deepEqual([body.error, body.code], ['invalid_redirect_uri', 'oidc.invalid_redirect_uri']);
    assert.match(body.message, /redirect_uri did not match/);
  });

  test('at the token endpoint (the code was issued for another callbackURL): the failure message names callbackURL', async () => {
    const first = await app();
    // Another instance of the same app with its own callbackURL: the code was issued for the first one's.
    const second = await app({ instanceOf: first.registered });
    const browser = new TestBrowser();
    const callback = new URL(await callbackAfterSignIn(browser, provider, first));
    const failed = await browser.get(`${second.callbackURL}${callback.search}`);
    assert.equal(failed.location, `${second.url}/sign-in-failed`);
    // Logto says only "grant request is invalid", which a replayed code also gets: a failure of this sign-in, with every likely reason.
    const { messages } = JSON.parse((await browser.get(failed.location)).text) as { messages: string[] };
    assert.equal(messages.length, 1);
    assert.match(messages[0] ?? '', /"invalid_grant"/);
    assert.ok(messages[0]?.includes(`issued for another redirect URI than \`callbackURL\` (${second.callbackURL})`), messages[0]);
    assert.match(messages[0] ?? '', /every instance must use the same callbackURL/);
  });
});

describe('a wrong endpoint', () => {
  test('with /oidc added (discovery answers 404): invalid_endpoint, saying to drop /oidc', async () => {
    const running = await app({ strategy: { endpoint: `${provider.endpoint}/oidc` } });
    const error = await callbackError(new TestBrowser(), running, `${running.url}/sign-in`);
    assertSetupError(error, 'invalid_endpoint');
    assert.ok(error.message.includes(`${provider.endpoint}/oidc/oidc/.well-known/openid-configuration answered HTTP 404`), error.message);
    assert.match(error.message, /without \/oidc/);
  });

  test('pointing at a site that is not Logto: invalid_endpoint', async () => {
    const other = await app();
    const running = await app({ strategy: { endpoint: other.url } });
    const error = await callbackError(new TestBrowser(), running, `${running.url}/sign-in`);
    assertSetupError(error, 'invalid_endpoint');
    assert.ok(error.message.includes(`(${other.url}) does not lead to a Logto tenant`), error.message);
  });

  test('nothing listening there: provider_unreachable names the URL it tried', async () => {
    const port = await freePort();
    const running = await app({ strategy: { endpoint: `http://127.0.0.1:${port}` } });
    const error = await callbackError(new TestBrowser(), running, `${running.url}/sign-in`);
    assert.equal(error.code, 'provider_unreachable');
    assert.ok(error.message.includes(`at http://127.0.0.1:${port}/oidc/.well-known/openid-configuration`), error.message);
    assert.match(error.message, /ECONNREFUSED/);
  });
});

describe('an API resource Logto does not know', () => {
  test('at sign-in: invalid_target, naming the resource and saying to create it in the Logto Console', async () => {
    const unknown = 'https://api.unknown.example.com';
    const running = await app({ strategy: { resources: [unknown] } });
    const browser = new TestBrowser();
    const started = await browser.get(`${running.url}/sign-in`);
    // Logto sends the browser back at once with error=invalid_target.
    const back = await browser.get(started.location!);
    assert.ok(back.location?.startsWith(running.callbackURL), `back to the callback, got ${back.status} ${back.location ?? back.text.slice(0, 200)}`);
    const error = await callbackError(browser, running, back.location ?? '');
    assertSetupError(error, 'invalid_target');
    assert.equal(error.oauthError, 'invalid_target');
    assert.ok(error.message.includes(unknown), error.message);
    assert.match(error.message, /API resources/);
  });
});

describe('a sign-in without offline_access', () => {
  test('prompt=login: signed in, one warning that says to keep consent, and a token request says why it cannot work', async () => {
    const warnings = captureWarnings(['PASSPORT_LOGTO_NO_REFRESH_TOKEN']);
    try {
      const running = await app({ strategy: { prompt: 'login', resources: [API_RESOURCE] } });
      const browser = new TestBrowser();
      assert.equal(await signIn(browser, provider, running), `${running.url}/`);
      await signIn(new TestBrowser(), provider, running);
      const token = await browser.get(`${running.url}/api-token`);
      const body = JSON.parse(token.text) as { error: string; message: string };
      assert.equal(body.error, 'not_authenticated');
      assert.match(body.message, /prompt=consent/);
    } finally {
      await warnings.stop();
    }
    assert.equal(warnings.warnings.length, 1, 'once per process');
    assert.equal(
      warnings.warnings[0]?.message,
      'passport-logto: a sign-in asks for offline_access with prompt=login, but Logto grants offline_access only when prompt includes consent: '
        + 'this sign-in will get no refresh token, so access tokens, organization tokens and refresh() will fail for it. '
        + 'Keep the default prompt (consent), or add consent to it.',
    );
  });
});
