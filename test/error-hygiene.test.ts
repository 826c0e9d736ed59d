/**
 * No token in an error, at any depth: apps log errors whole (util.inspect, Sentry, pino), so an
 * error passed to `next` or thrown from a helper must hold no access, refresh or ID token, even
 * deep in its `cause` chain. Each case provokes a real failure against the test provider and
 * looks for the real token strings in everything util.inspect can print.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, test } from 'node:test';
import type { Express } from 'express';
import { decodeJwt } from 'jose';
import { isLogtoError, LogtoError, UserScope, type LogtoStrategy } from '../lib/index.js';
import { toLogtoError } from '../lib/logto/provider-errors.js';
import { hardeningSetup, type RunningApp } from './support/app.js';
import { getJson, signIn, type SessionBody } from './support/flows.js';
import { TestBrowser } from './support/http-client.js';
import { API_RESOURCE, type TestProvider } from './support/provider/index.js';

let provider: TestProvider;
let running: RunningApp;
/** Errors that the helpers threw, as the route caught them (they also go on to `next`). */
const thrown: unknown[] = [];

/** Runs one client helper and hands what it throws to `next`, after keeping it for the test. */
function helperRoutes(app: Express, logto: LogtoStrategy): void {
  // Every token the sign-in holds, so that the test can look for each of them in errors.
  app.get('/all-tokens', logto.authenticated(), (req, res, next) => {
    const client = req.logto;
    client?.getAccessToken().then(
      (accessToken) => res.json({ idToken: client.getIdToken() ?? null, refreshToken: client.getRefreshToken() ?? null, accessToken }),
      next,
    );
  });
  app.get('/helper/:name', (req, res, next) => {
    const client = logto.client(req);
    const calls: Record<string, () => Promise<unknown>> = {
      refresh: () => client.refresh(),
      token: () => client.getAccessToken(API_RESOURCE),
      userinfo: () => client.fetchUserInfo(),
    };
    const call = calls[String(req.params.name)];
    if (!call) {
      res.status(404).end();
      return;
    }
    call().then(
      () => res.json({ ok: true }),
      (error: unknown) => {
        thrown.push(error);
        next(error);
      },
    );
  });
}

const setup = hardeningSetup({
  started: async (started) => {
    provider = started;
    running = await setup.app({
      strategy: { resources: [API_RESOURCE], scopes: [UserScope.Email, 'read:items'], accessTokenExpiryMargin: 0 },
      routes: helperRoutes,
    });
  },
});

/** A signed-in browser and every token its session holds. */
async function signedIn(): Promise<{ browser: TestBrowser; tokens: string[] }> {
  const browser = new TestBrowser();
  await signIn(browser, provider, running);
  const stored = (await getJson<{ idToken: string | null; refreshToken: string | null; accessToken: string | null }>(browser, `${running.url}/all-tokens`)).body;
  const tokens = [stored.idToken, stored.refreshToken, stored.accessToken].filter((value): value is string => typeof value === 'string');
  assert.equal(tokens.length, 3, 'the sign-in holds an ID token, a refresh token and an access token');
  return { browser, tokens };
}

/** Every way an app might print the error, as one string. */
function printed(error: unknown): string {
  return [
    inspect(error, { depth: Infinity }),
    inspect(error, { depth: Infinity, showHidden: true }),
    String(error),
    error instanceof Error ? String(error.stack) : '',
  ].join('\n');
}

function assertNoToken(error: unknown, tokens: readonly string[]): void {
  const text = printed(error);
  for (const token of tokens) {
    // The signature part alone is enough to replay nothing, but no part of a token may show.
    assert.ok(!text.includes(token), `the error shows a token (${token.slice(0, 12)}…):\n${text.slice(0, 3000)}`);
    const signature = token.split('.')[2];
    if (signature) assert.ok(!text.includes(signature), 'the error shows a token signature');
  }
}

/** Calls a helper that must fail; returns the error it threw, which is also the one the error handler got. */
async function failingHelper(browser: TestBrowser, name: string): Promise<LogtoError> {
  const before = thrown.length;
  const errorsBefore = running.errors.length;
  const response = await browser.get(`${running.url}/helper/${name}`);
  assert.notEqual(response.status, 200, `${name} should fail`);
  assert.equal(thrown.length, before + 1);
  const error = thrown[before];
  assert.equal(running.errors[errorsBefore], error, 'the error handler got the same error');
  assert.ok(error instanceof LogtoError, String(error));
  return error;
}

describe('no token in an error, at any depth', () => {
  test('a refresh whose ID token is for another audience (openid-client refuses it)', async () => {
    const { browser, tokens } = await signedIn();
    const issued: string[] = [];
    provider.setTokenResponseTamper(async (body, params) => {
      if (params.grant_type !== 'refresh_token') return body;
      for (const name of ['access_token', 'refresh_token', 'id_token']) if (typeof body[name] === 'string') issued.push(body[name]);
      const claims = decodeJwt(String(body.id_token));
      return { ...body, id_token: await provider.sign({ ...claims, aud: 'another-app' }) };
    });
    try {
      const error = await failingHelper(browser, 'refresh');
      assert.equal(error.code, 'invalid_id_token');
      assert.ok(issued.length >= 2, 'the refresh answered with tokens');
      assertNoToken(error, [...tokens, ...issued]);
    } finally {
      provider.setTokenResponseTamper(undefined);
    }
  });

  test('a refresh whose ID token is not an ID token at all (openid-client keeps the whole response body)', async () => {
    const { browser, tokens } = await signedIn();
    const issued: string[] = [];
    provider.setTokenResponseTamper((body, params) => {
      if (params.grant_type !== 'refresh_token') return body;
      for (const name of ['access_token', 'refresh_token', 'id_token']) if (typeof body[name] === 'string') issued.push(body[name]);
      return { ...body, id_token: 42 };
    });
    try {
      const error = await failingHelper(browser, 'refresh');
      assert.ok(isLogtoError(error), String(error));
      assert.ok(issued.length >= 2, 'the refresh answered with tokens');
      assertNoToken(error, [...tokens, ...issued]);
    } finally {
      provider.setTokenResponseTamper(undefined);
    }
  });

  test('a refresh whose ID token has a bad signature (jose refuses it)', async () => {
    const { browser, tokens } = await signedIn();
    const issued: string[] = [];
    provider.setTokenResponseTamper((body, params) => {
      if (params.grant_type !== 'refresh_token') return body;
      for (const name of ['access_token', 'refresh_token', 'id_token']) if (typeof body[name] === 'string') issued.push(body[name]);
      const [header, payload] = String(body.id_token).split('.');
      return { ...body, id_token: `${header}.${payload}.${Buffer.from('not the signature').toString('base64url')}` };
    });
    try {
      const error = await failingHelper(browser, 'refresh');
      assert.equal(error.code, 'invalid_id_token');
      assertNoToken(error, [...tokens, ...issued]);
    } finally {
      provider.setTokenResponseTamper(undefined);
    }
  });

  test('invalid_grant: a revoked refresh token; oauthError and status are kept', async () => {
    const { browser, tokens } = await signedIn();
    const refreshToken = tokens[1] ?? '';
    const revoke = await fetch(`${provider.issuer}/token/revocation`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${running.registered.appId}:${running.registered.appSecret}`).toString('base64')}` },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' }),
    });
    assert.equal(revoke.status, 200);
    const error = await failingHelper(browser, 'token');
    assert.equal(error.code, 'not_authenticated');
    assert.equal(error.oauthError, 'invalid_grant');
    assertNoToken(error, tokens);
    // The useful parts stay: Logto's error and the status, down the chain.
    const text = inspect(error, { depth: Infinity });
    assert.match(text, /invalid_grant/);
    assert.match(text, /400/);
  });

  test('userinfo about another user', async () => {
    const { browser, tokens } = await signedIn();
    provider.setFault('/oidc/me', { status: 200, body: JSON.stringify({ sub: 'someone-else', email: 'someone@example.com' }) });
    try {
      const error = await failingHelper(browser, 'userinfo');
      assert.equal(error.code, 'userinfo_mismatch');
      assertNoToken(error, tokens);
    } finally {
      provider.setFault('/oidc/me', undefined);
    }
  });

  test('a 5xx from the token endpoint; the status is kept', async () => {
    const { browser, tokens } = await signedIn();
    provider.setFault('/oidc/token', { status: 503, body: JSON.stringify({ error: 'server_error', error_description: 'down for maintenance' }) });
    try {
      const error = await failingHelper(browser, 'refresh');
      assert.equal(error.code, 'provider_error');
      assert.equal(error.status, 503);
      assertNoToken(error, tokens);
    } finally {
      provider.setFault('/oidc/token', undefined);
    }
  });
});

describe('what is kept of a cause', () => {
  test('an error without tokens is kept as it is; one with them is copied without them', () => {
    const network = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', port: 1 });
    const plain = new TypeError('fetch failed', { cause: network });
    const kept = toLogtoError(plain, 'fetch something');
    assert.equal(kept.cause, plain, 'identity holds for a clean cause');

    const jwt = 'eyJhbGciOiJFUzM4NCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const leaky = Object.assign(new Error(`bad token ${jwt}`, { cause: { body: { access_token: 'opaque-secret', id_token: jwt } } }), {
      code: 'OAUTH_INVALID_RESPONSE',
      status: 200,
      jwt,
    });
    const error = new LogtoError('invalid_provider_response', 'Logto gave an unexpected answer.', { cause: leaky });
    const text = printed(error);
    assert.ok(!text.includes(jwt) && !text.includes('opaque-secret'), text);
    const copy = error.cause as Error & { code?: string; status?: number };
    assert.notEqual(copy, leaky);
    assert.equal(copy.code, 'OAUTH_INVALID_RESPONSE');
    assert.equal(copy.status, 200);
    assert.match(copy.message, /bad token \[redacted JWT\]/);
  });
});
