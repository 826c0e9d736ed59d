// Tests of the Logto-compatible test provider itself: every fact marked
// (provider) in logto-facts.md, asserted over plain HTTP.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import {
  API_RESOURCE,
  ORGANIZATIONS_RESOURCE,
  ORGANIZATIONS_SCOPE,
  ORGANIZATION_ROLES_SCOPE,
  startProvider,
  type TestApp,
  type TestProvider,
  type TestUser,
} from './support/provider/index.js';
import {
  TestBrowser,
  cancelAtProvider,
  endSessionAtProvider,
  parseForm,
  signInAtProvider,
} from './support/http-client.js';

const CALLBACK = 'http://127.0.0.1:3000/callback';
const AFTER_LOGOUT = 'http://127.0.0.1:3000/';
const FULL_SCOPE = [
  'openid',
  'offline_access',
  'profile',
  'email',
  'custom_data',
  'roles',
  ORGANIZATIONS_SCOPE,
  ORGANIZATION_ROLES_SCOPE,
  'read:items',
  'write:items',
  'read:members',
  'write:members',
].join(' ');

type Json = Record<string, unknown>;

let logto: TestProvider;

before(async () => {
  logto = await startProvider({ redirectUris: [CALLBACK], postLogoutRedirectUris: [AFTER_LOGOUT] });
});

after(async () => {
  await logto.close();
});

// --- helpers -----------------------------------------------------------------

function str(body: Json, key: string): string {
  const value = body[key];
  assert.equal(typeof value, 'string', `${key} should be a string in ${JSON.stringify(body)}`);
  return value as string;
}

interface SignInOptions {
  app?: TestApp;
  user?: TestUser;
  scope?: string;
  resources?: string[];
  /** null = no prompt parameter at all */
  prompt?: string | null;
  extra?: Record<string, string>;
  browser?: TestBrowser;
}

function authorizationUrl(p: TestProvider, options: SignInOptions, state: string, challenge: string): string {
  const url = new URL(`${p.issuer}/auth`);
  const params = new URLSearchParams({
    client_id: (options.app ?? p.app).appId,
    response_type: 'code',
    redirect_uri: CALLBACK,
    scope: options.scope ?? FULL_SCOPE,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    ...options.extra,
  });
  const prompt = options.prompt === undefined ? 'consent' : options.prompt;
  if (prompt !== null) params.set('prompt', prompt);
  for (const resource of options.resources ?? [API_RESOURCE, ORGANIZATIONS_RESOURCE]) params.append('resource', resource);
  url.search = params.toString();
  return url.href;
}

async function tokenRequest(p: TestProvider, params: Record<string, string>, app: TestApp = p.app): Promise<{ status: number; body: Json }> {
  const response = await fetch(`${p.issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${app.appId}:${app.appSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams(params),
  });
  return { status: response.status, body: (await response.json()) as Json };
}

async function signIn(p: TestProvider, options: SignInOptions = {}): Promise<{ tokens: Json; callback: URL; browser: TestBrowser }> {
  const browser = options.browser ?? new TestBrowser();
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(8).toString('hex');
  const callback = new URL(
    await signInAtProvider(browser, authorizationUrl(p, options, state, challenge), options.user ?? p.users.demo, CALLBACK),
  );
  assert.equal(callback.searchParams.get('state'), state);
  const code = callback.searchParams.get('code');
  assert.ok(code, `no code in ${callback.href}`);
  const { status, body } = await tokenRequest(
    p,
    { grant_type: 'authorization_code', code, redirect_uri: CALLBACK, code_verifier: verifier },
    options.app ?? p.app,
  );
  assert.equal(status, 200, JSON.stringify(body));
  return { tokens: body, callback, browser };
}

function refresh(p: TestProvider, refreshToken: string, extra: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  return tokenRequest(p, { grant_type: 'refresh_token', refresh_token: refreshToken, ...extra });
}

async function jwks(p: TestProvider): Promise<JSONWebKeySet> {
  return (await (await fetch(`${p.issuer}/jwks`)).json()) as JSONWebKeySet;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// --- discovery and signing ------------------------------------------------------

test('discovery: issuer, Logto paths, iss response parameter, ES384', async () => {
  const response = await fetch(`${logto.endpoint}/oidc/.well-known/openid-configuration`);
  assert.equal(response.status, 200);
  const discovery = (await response.json()) as Json;
  assert.equal(logto.issuer, `${logto.endpoint}/oidc`);
  assert.equal(discovery.issuer, logto.issuer);
  assert.equal(discovery.authorization_endpoint, `${logto.issuer}/auth`);
  assert.equal(discovery.token_endpoint, `${logto.issuer}/token`);
  assert.equal(discovery.userinfo_endpoint, `${logto.issuer}/me`);
  assert.equal(discovery.jwks_uri, `${logto.issuer}/jwks`);
  assert.equal(discovery.end_session_endpoint, `${logto.issuer}/session/end`);
  assert.equal(discovery.revocation_endpoint, `${logto.issuer}/token/revocation`);
  assert.equal(discovery.introspection_endpoint, `${logto.issuer}/token/introspection`);
  assert.equal(discovery.authorization_response_iss_parameter_supported, true);
  assert.deepEqual(discovery.id_token_signing_alg_values_supported, ['ES384']);
  assert.ok((discovery.code_challenge_methods_supported as string[]).includes('S256'));
  assert.equal(discovery.backchannel_logout_supported, true);

  const keys = (await jwks(logto)).keys;
  assert.equal(keys.length, 1);
  assert.equal(keys[0]?.kty, 'EC');
  assert.equal(keys[0]?.crv, 'P-384');
  assert.ok(keys[0]?.kid);
  assert.equal(keys[0]?.d, undefined, 'private part must not be published');
});

test('sign-in: callback carries code, state and iss; the ID token is ES384 with a kid', async () => {
  const { tokens, callback } = await signIn(logto);
  assert.equal(callback.searchParams.get('iss'), logto.issuer);
  const idToken = str(tokens, 'id_token');
  const header = decodeProtectedHeader(idToken);
  assert.equal(header.alg, 'ES384');
  assert.equal(header.kid, (await jwks(logto)).keys[0]?.kid);
  const { payload } = await jwtVerify(idToken, createLocalJWKSet(await jwks(logto)), {
    issuer: logto.issuer,
    audience: logto.app.appId,
  });
  assert.equal(payload.sub, logto.users.demo.sub);
});

test('RS256 when selected', async () => {
  const rsa = await startProvider({ alg: 'RS256', redirectUris: [CALLBACK] });
  try {
    const discovery = (await (await fetch(`${rsa.issuer}/.well-known/openid-configuration`)).json()) as Json;
    assert.deepEqual(discovery.id_token_signing_alg_values_supported, ['RS256']);
    assert.equal((await jwks(rsa)).keys[0]?.kty, 'RSA');
    const { tokens } = await signIn(rsa);
    assert.equal(decodeProtectedHeader(str(tokens, 'id_token')).alg, 'RS256');
    const resourceToken = await refresh(rsa, str(tokens, 'refresh_token'), { resource: API_RESOURCE });
    assert.equal(decodeProtectedHeader(str(resourceToken.body, 'access_token')).alg, 'RS256');
  } finally {
    await rsa.close();
  }
});

// --- tokens ---------------------------------------------------------------------------

test('code exchange: ID token + refresh token + opaque access token usable at /oidc/me', async () => {
  const { tokens } = await signIn(logto);
  const accessToken = str(tokens, 'access_token');
  str(tokens, 'refresh_token');
  assert.equal(accessToken.split('.').length, 1, 'access token must be opaque');
  assert.equal(tokens.token_type, 'Bearer');
  assert.ok((tokens.scope as string).split(' ').includes('offline_access'));

  const me = await fetch(`${logto.issuer}/me`, { headers: { authorization: `Bearer ${accessToken}` } });
  assert.equal(me.status, 200);
  assert.equal(((await me.json()) as Json).sub, logto.users.demo.sub);
});

test('offline_access is dropped without prompt=consent: no refresh token', async () => {
  const { tokens } = await signIn(logto, { prompt: null });
  assert.equal(tokens.refresh_token, undefined);
  assert.ok(!(tokens.scope as string).split(' ').includes('offline_access'));

  const withLogin = await signIn(logto, { prompt: 'login' });
  assert.equal(withLogin.tokens.refresh_token, undefined);

  const withConsent = await signIn(logto, { prompt: 'login consent' });
  assert.equal(typeof withConsent.tokens.refresh_token, 'string');
});

test('claims: userinfo has everything, the ID token leaves out userinfo-only claims', async () => {
  const { tokens } = await signIn(logto);
  const idClaims = decodeJwt(str(tokens, 'id_token'));
  assert.equal(idClaims.name, 'Demo User');
  assert.equal(idClaims.picture, null);
  assert.equal(idClaims.username, 'demo');
  assert.equal(idClaims.email, 'demo@example.com');
  assert.equal(idClaims.email_verified, true);
  assert.equal(idClaims.created_at, 1_700_000_000_000);
  assert.deepEqual(idClaims.roles, ['admin']);
  assert.deepEqual(idClaims.organizations, ['org-acme']);
  assert.deepEqual(idClaims.organization_roles, ['org-acme:member']);
  for (const claim of ['custom_data', 'identities', 'sso_identities', 'organization_data', 'phone_number', 'nonce']) {
    assert.ok(!(claim in idClaims), `${claim} must not be in the ID token`);
  }

  const me = await fetch(`${logto.issuer}/me`, { headers: { authorization: `Bearer ${str(tokens, 'access_token')}` } });
  const userinfo = (await me.json()) as Json;
  assert.deepEqual(userinfo.custom_data, { plan: 'pro' });
  assert.deepEqual(userinfo.organization_data, [
    { id: 'org-acme', name: 'Acme', description: 'Acme Corporation, the organization demo belongs to' },
  ]);
  assert.deepEqual(userinfo.organization_roles, ['org-acme:member']);
  assert.equal(userinfo.phone_number, undefined, 'phone scope was not requested');
  assert.equal(userinfo.identities, undefined, 'identities scope was not requested');
});

test('nonce is echoed in the ID token when sent', async () => {
  const { tokens } = await signIn(logto, { extra: { nonce: 'n-0S6_WzA2Mj' } });
  assert.equal(decodeJwt(str(tokens, 'id_token')).nonce, 'n-0S6_WzA2Mj');
});

test('API resource token: JWT at+jwt with aud, scope, client_id, sub, iss, exp, iat, jti', async () => {
  const { tokens } = await signIn(logto);
  const { status, body } = await refresh(logto, str(tokens, 'refresh_token'), { resource: API_RESOURCE });
  assert.equal(status, 200, JSON.stringify(body));
  const accessToken = str(body, 'access_token');
  assert.equal(decodeProtectedHeader(accessToken).typ, 'at+jwt');
  const { payload } = await jwtVerify(accessToken, createLocalJWKSet(await jwks(logto)), {
    issuer: logto.issuer,
    audience: API_RESOURCE,
    typ: 'at+jwt',
  });
  assert.equal(payload.scope, 'read:items write:items');
  assert.equal(payload.client_id, logto.app.appId);
  assert.equal(payload.sub, logto.users.demo.sub);
  assert.equal(typeof payload.jti, 'string');
  assert.equal((payload.exp ?? 0) - (payload.iat ?? 0), 3600);
  assert.equal(payload.organization_id, undefined);
  assert.equal(body.expires_in, 3600);
});

test('API scopes follow global roles: alice (no roles) gets an empty scope', async () => {
  const { tokens } = await signIn(logto, { user: logto.users.alice });
  const { status, body } = await refresh(logto, str(tokens, 'refresh_token'), { resource: API_RESOURCE });
  assert.equal(status, 200);
  assert.equal(decodeJwt(str(body, 'access_token')).scope ?? '', '');
});

test('invalid_target for a resource not sent at sign-in, and for an unknown resource', async () => {
  const { tokens } = await signIn(logto, { resources: [] });
  const undeclared = await refresh(logto, str(tokens, 'refresh_token'), { resource: API_RESOURCE });
  assert.equal(undeclared.status, 400);
  assert.equal(undeclared.body.error, 'invalid_target');
  assert.equal(undeclared.body.code, 'oidc.invalid_target');
  assert.equal(typeof undeclared.body.error_description, 'string');
  assert.equal(typeof undeclared.body.message, 'string');

  const full = await signIn(logto);
  const unknown = await refresh(logto, str(full.tokens, 'refresh_token'), { resource: 'https://unknown.example.com' });
  assert.equal(unknown.body.error, 'invalid_target');
});

test('organization token: aud urn:logto:organization:<id>, scope = role scopes ∩ requested', async () => {
  const { tokens } = await signIn(logto);
  const { status, body } = await refresh(logto, str(tokens, 'refresh_token'), { organization_id: 'org-acme' });
  assert.equal(status, 200, JSON.stringify(body));
  const accessToken = str(body, 'access_token');
  assert.equal(decodeProtectedHeader(accessToken).typ, 'at+jwt');
  const { payload } = await jwtVerify(accessToken, createLocalJWKSet(await jwks(logto)), {
    issuer: logto.issuer,
    audience: 'urn:logto:organization:org-acme',
  });
  // write:members was requested but the member role does not grant it.
  assert.equal(payload.scope, 'read:members');
  assert.equal(payload.organization_id, undefined);

  // Without read:members requested at sign-in, the intersection is empty.
  const narrow = await signIn(logto, { scope: `openid offline_access ${ORGANIZATIONS_SCOPE}` });
  const narrowToken = await refresh(logto, str(narrow.tokens, 'refresh_token'), { organization_id: 'org-acme' });
  assert.equal(narrowToken.status, 200);
  assert.equal(decodeJwt(str(narrowToken.body, 'access_token')).scope ?? '', '');
});

test('organization token for a non-member organization: access_denied, HTTP 400 JSON', async () => {
  const { tokens } = await signIn(logto);
  const { status, body } = await refresh(logto, str(tokens, 'refresh_token'), { organization_id: 'org-globex' });
  assert.equal(status, 400);
  assert.equal(body.error, 'access_denied');
  assert.equal(body.code, 'oidc.access_denied');
});

test('organization token without the organizations scope: insufficient_scope', async () => {
  const { tokens } = await signIn(logto, { scope: 'openid offline_access profile', resources: [API_RESOURCE] });
  const { status, body } = await refresh(logto, str(tokens, 'refresh_token'), { organization_id: 'org-acme' });
  assert.equal(status, 403);
  assert.equal(body.error, 'insufficient_scope');
});

test('organization-scoped API token: organization_id claim, scopes narrowed to organization roles', async () => {
  const { tokens } = await signIn(logto);
  const { status, body } = await refresh(logto, str(tokens, 'refresh_token'), {
    resource: API_RESOURCE,
    organization_id: 'org-acme',
  });
  assert.equal(status, 200, JSON.stringify(body));
  const payload = decodeJwt(str(body, 'access_token'));
  assert.equal(payload.aud, API_RESOURCE);
  assert.equal(payload.organization_id, 'org-acme');
  assert.equal(payload.scope, 'read:items');

  const denied = await refresh(logto, str(body, 'refresh_token'), { resource: API_RESOURCE, organization_id: 'org-globex' });
  assert.equal(denied.body.error, 'access_denied');
});

test('refresh without resource: a new opaque userinfo token and a new ID token', async () => {
  const { tokens } = await signIn(logto);
  const { status, body } = await refresh(logto, str(tokens, 'refresh_token'));
  assert.equal(status, 200);
  assert.equal(str(body, 'access_token').split('.').length, 1);
  assert.equal(decodeJwt(str(body, 'id_token')).sub, logto.users.demo.sub);
});

// --- refresh token rotation and reuse ---------------------------------------------------

test('the refresh token rotates on every use', async () => {
  const { tokens } = await signIn(logto);
  const seen = new Set([str(tokens, 'refresh_token')]);
  let current = str(tokens, 'refresh_token');
  for (let i = 0; i < 3; i++) {
    const { status, body } = await refresh(logto, current, i === 1 ? { resource: API_RESOURCE } : {});
    assert.equal(status, 200);
    current = str(body, 'refresh_token');
    assert.ok(!seen.has(current), 'a new refresh token every time');
    seen.add(current);
  }
});

test('reuse of a used refresh token: fine within the leeway, afterwards invalid_grant and the grant dies', async () => {
  const p = await startProvider({ redirectUris: [CALLBACK], reuseLeewaySeconds: 1 });
  try {
    const { tokens } = await signIn(p);
    const original = str(tokens, 'refresh_token');
    const first = await refresh(p, original);
    assert.equal(first.status, 200);
    const rotated = str(first.body, 'refresh_token');

    // Within the leeway (a racing tab): works and rotates again.
    const racing = await refresh(p, original);
    assert.equal(racing.status, 200, JSON.stringify(racing.body));
    assert.notEqual(str(racing.body, 'refresh_token'), rotated);

    await sleep(1300);
    const late = await refresh(p, original);
    assert.equal(late.status, 400);
    assert.equal(late.body.error, 'invalid_grant');

    // The whole grant is revoked: the rotated tokens and the access token die too.
    for (const token of [rotated, str(racing.body, 'refresh_token')]) {
      const dead = await refresh(p, token);
      assert.equal(dead.body.error, 'invalid_grant');
    }
    const me = await fetch(`${p.issuer}/me`, { headers: { authorization: `Bearer ${str(tokens, 'access_token')}` } });
    assert.equal(me.status, 401);
  } finally {
    await p.close();
  }
});

test('suspended user: refresh answers invalid_grant', async () => {
  const p = await startProvider({ redirectUris: [CALLBACK] });
  try {
    const { tokens } = await signIn(p);
    p.suspendUser(p.users.demo.sub);
    const { status, body } = await refresh(p, str(tokens, 'refresh_token'));
    assert.equal(status, 400);
    assert.equal(body.error, 'invalid_grant');
  } finally {
    await p.close();
  }
});

test('short lifetimes are honoured', async () => {
  const p = await startProvider({ redirectUris: [CALLBACK], accessTokenTtl: 2, idTokenTtl: 5, refreshTokenTtl: 1 });
  try {
    const { tokens } = await signIn(p);
    assert.equal(tokens.expires_in, 2);
    const idClaims = decodeJwt(str(tokens, 'id_token'));
    assert.equal((idClaims.exp ?? 0) - (idClaims.iat ?? 0), 5);
    await sleep(1100);
    const expired = await refresh(p, str(tokens, 'refresh_token'));
    assert.equal(expired.body.error, 'invalid_grant');
  } finally {
    await p.close();
  }
});

test('revocation with client authentication kills the refresh token', async () => {
  const { tokens } = await signIn(logto);
  const refreshToken = str(tokens, 'refresh_token');
  const unauthenticated = await fetch(`${logto.issuer}/token/revocation`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: refreshToken }),
  });
  assert.equal(unauthenticated.status, 400);
  assert.equal((await refresh(logto, refreshToken)).status, 200, 'unauthenticated revocation did nothing');

  const second = await signIn(logto);
  const token = str(second.tokens, 'refresh_token');
  const revoked = await fetch(`${logto.issuer}/token/revocation`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${logto.app.appId}:${logto.app.appSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token, token_type_hint: 'refresh_token' }),
  });
  assert.equal(revoked.status, 200);
  const after = await refresh(logto, token);
  assert.equal(after.body.error, 'invalid_grant');
});

test('introspection answers for the client\'s own tokens', async () => {
  const { tokens } = await signIn(logto);
  const response = await fetch(`${logto.issuer}/token/introspection`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${logto.app.appId}:${logto.app.appSecret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token: str(tokens, 'refresh_token') }),
  });
  const body = (await response.json()) as Json;
  assert.equal(body.active, true);
  assert.equal(body.sub, logto.users.demo.sub);
});

// --- interaction pages ----------------------------------------------------------------------

test('sign-in page: stable selectors; a wrong password re-renders with an error', async () => {
  const browser = new TestBrowser();
  const url = authorizationUrl(logto, { extra: { login_hint: 'demo' } }, 'st', createHash('sha256').update('v'.repeat(43)).digest('base64url'));
  const { response } = await browser.follow(url);
  assert.equal(response.status, 200);
  assert.match(response.url, /\/interaction\/[^/]+$/);
  assert.match(response.text, /<input id="username" name="username"[^>]*value="demo"/);
  assert.match(response.text, /<input id="password" name="password" type="password"/);
  assert.match(response.text, /<button type="submit" id="sign-in">/);
  assert.match(response.text, /id="cancel"/);
  const form = parseForm(response.text, response.url, 'login');
  assert.ok(form);
  const wrong = await browser.post(form.action, { username: 'demo', password: 'nope' });
  assert.equal(wrong.status, 200);
  assert.match(wrong.text, /id="error"[^>]*>Incorrect username or password/);
  // The same interaction still works with the right password.
  const right = await browser.post(form.action, { username: 'demo', password: 'demo-password' });
  assert.equal(right.status, 303);
});

test('cancel: the app receives error=access_denied with state and iss', async () => {
  const browser = new TestBrowser();
  const url = authorizationUrl(logto, {}, 'cancel-state', createHash('sha256').update('x'.repeat(43)).digest('base64url'));
  const callback = new URL(await cancelAtProvider(browser, url, CALLBACK));
  assert.equal(callback.origin + callback.pathname, CALLBACK);
  assert.equal(callback.searchParams.get('error'), 'access_denied');
  assert.equal(callback.searchParams.get('state'), 'cancel-state');
  assert.equal(callback.searchParams.get('iss'), logto.issuer);
});

test('a second sign-in in the same browser reuses the Logto session (no login page)', async () => {
  const { browser } = await signIn(logto);
  const again = await signIn(logto, { browser, user: { ...logto.users.demo, password: 'not-used' } });
  assert.equal(decodeJwt(str(again.tokens, 'id_token')).sub, logto.users.demo.sub);
});

test('Logto extra authorization parameters are accepted and recorded', async () => {
  logto.resetRequests();
  const extra = {
    first_screen: 'identifier:register',
    identifier: 'email username',
    direct_sign_in: 'social:google',
    login_hint: 'demo',
    organization_id: 'org-acme',
    ui_locales: 'fr-CA',
    one_time_token: 'ott-123',
    interaction_mode: 'signUp',
  };
  const { tokens } = await signIn(logto, { extra });
  const [authRequest] = logto.requests.filter((r) => r.path === '/oidc/auth');
  assert.ok(authRequest);
  for (const [key, value] of Object.entries(extra)) assert.equal(authRequest.params[key], value);
  assert.deepEqual(authRequest.values.resource, [API_RESOURCE, ORGANIZATIONS_RESOURCE]);
  // organization_id at sign-in does not make an organization token.
  assert.equal(str(tokens, 'access_token').split('.').length, 1);
  assert.equal(logto.countRequests('/oidc/token'), 1);
  const [tokenCall] = logto.requests.filter((r) => r.path === '/oidc/token');
  assert.equal(tokenCall?.params.grant_type, 'authorization_code');
  assert.match(tokenCall?.authorization ?? '', /^Basic /);
});

test('registerApp and addRedirectUris take effect immediately', async () => {
  const other = 'http://127.0.0.1:4000/callback';
  const app = await logto.registerApp({ redirectUris: ['http://127.0.0.1:4000/elsewhere'] });
  const browser = new TestBrowser();
  const url = new URL(authorizationUrl(logto, { app }, 's', createHash('sha256').update('y'.repeat(43)).digest('base64url')));
  url.searchParams.set('redirect_uri', other);
  const rejected = await browser.follow(url.href);
  assert.equal(rejected.response.status, 400);
  assert.match(rejected.response.text, /redirect_uri/);

  await logto.addRedirectUris(app.appId, [other]);
  const callback = await signInAtProvider(browser, url.href, logto.users.alice, other);
  assert.ok(new URL(callback).searchParams.get('code'));
});

// --- sign-out -----------------------------------------------------------------------------

test('RP-initiated logout confirms by itself, lands on post_logout_redirect_uri, ends the Logto session', async () => {
  const { tokens, browser } = await signIn(logto);
  const url = new URL(`${logto.issuer}/session/end`);
  url.search = new URLSearchParams({
    client_id: logto.app.appId,
    post_logout_redirect_uri: AFTER_LOGOUT,
    id_token_hint: str(tokens, 'id_token'),
    state: 'bye',
  }).toString();
  const landed = new URL(await endSessionAtProvider(browser, url.href));
  assert.equal(landed.origin + landed.pathname, AFTER_LOGOUT);
  assert.equal(landed.searchParams.get('state'), 'bye');
  // The next sign-in needs the login page again.
  const next = await browser.follow(authorizationUrl(logto, {}, 's', createHash('sha256').update('z'.repeat(43)).digest('base64url')));
  assert.match(next.response.url, /\/interaction\//);
});

test('back-channel logout: logout_token POSTed to the app when the session ends', async () => {
  const received: string[] = [];
  const receiver: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push(body);
      res.statusCode = 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  try {
    const backchannelLogoutUri = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel`;
    const app = await logto.registerApp({ redirectUris: [CALLBACK], postLogoutRedirectUris: [AFTER_LOGOUT], backchannelLogoutUri });
    const { tokens, browser } = await signIn(logto, { app });
    const sid = decodeJwt(str(tokens, 'id_token')).sid;
    assert.equal(typeof sid, 'string', 'session-required apps get sid in ID tokens');
    const url = new URL(`${logto.issuer}/session/end`);
    url.search = new URLSearchParams({ client_id: app.appId, post_logout_redirect_uri: AFTER_LOGOUT }).toString();
    await endSessionAtProvider(browser, url.href);

    assert.equal(received.length, 1);
    const logoutToken = new URLSearchParams(received[0]).get('logout_token');
    assert.ok(logoutToken);
    const { payload } = await jwtVerify(logoutToken, createLocalJWKSet(await jwks(logto)), {
      issuer: logto.issuer,
      audience: app.appId,
    });
    assert.equal(payload.sub, logto.users.demo.sub);
    assert.equal(payload.sid, sid);
    assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
    assert.equal(typeof payload.jti, 'string');
    assert.equal(payload.nonce, undefined);
  } finally {
    receiver.closeAllConnections();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
});

// --- test controls -------------------------------------------------------------------------

test('pause refuses connections, resume restores the same port with all state', async () => {
  const p = await startProvider({ redirectUris: [CALLBACK] });
  try {
    const { tokens } = await signIn(p);
    await p.pause();
    await assert.rejects(fetch(`${p.issuer}/jwks`), (err: unknown) => {
      const cause = (err as { cause?: { code?: string } }).cause;
      assert.equal(cause?.code, 'ECONNREFUSED');
      return true;
    });
    await p.resume();
    assert.equal((await fetch(`${p.issuer}/jwks`)).status, 200);
    const { status } = await refresh(p, str(tokens, 'refresh_token'));
    assert.equal(status, 200);
  } finally {
    await p.close();
  }
});

test('a fixed port lets a test stop "Logto" and start a new one in its place', async () => {
  const first = await startProvider();
  const port = Number(new URL(first.endpoint).port);
  await first.close();
  const second = await startProvider({ port });
  try {
    assert.equal(second.endpoint, first.endpoint);
    assert.equal((await fetch(`${second.issuer}/jwks`)).status, 200);
  } finally {
    await second.close();
  }
});

test('setFault answers a path with garbage until cleared, and the request is still recorded', async () => {
  logto.resetRequests();
  logto.setFault('/oidc/token', { status: 200, body: '{"access_token": ' });
  try {
    const { tokens } = await signIn(logto, { prompt: 'consent' }).then(
      () => assert.fail('the code exchange should have failed'),
      (err: unknown) => ({ tokens: err }),
    );
    assert.ok(tokens instanceof SyntaxError, String(tokens));
    assert.equal(logto.countRequests('/oidc/token', (r) => r.params.grant_type === 'authorization_code'), 1);

    logto.setFault('/oidc/jwks', { status: 502, body: '<html><body>Bad gateway</body></html>', contentType: 'text/html' });
    const page = await fetch(`${logto.issuer}/jwks`);
    assert.equal(page.status, 502);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
  } finally {
    logto.setFault('/oidc/token', undefined);
    logto.setFault('/oidc/jwks', undefined);
  }
  const { tokens } = await signIn(logto);
  str(tokens, 'refresh_token');
  assert.equal((await fetch(`${logto.issuer}/jwks`)).status, 200);
});

test('setTokenResponseTamper rewrites successful token responses only', async () => {
  const { tokens } = await signIn(logto);
  logto.setTokenResponseTamper((body, params) => ({ ...body, expires_in: 1, seen_grant: params.grant_type }));
  try {
    const tampered = await refresh(logto, str(tokens, 'refresh_token'));
    assert.equal(tampered.body.expires_in, 1);
    assert.equal(tampered.body.seen_grant, 'refresh_token');
    const failed = await refresh(logto, 'not-a-token');
    assert.equal(failed.body.error, 'invalid_grant');
    assert.equal(failed.body.seen_grant, undefined);
  } finally {
    logto.setTokenResponseTamper(undefined);
  }
});

test('rotateSigningKey: the new key signs and comes first, the old one stays published', async () => {
  const p = await startProvider({ redirectUris: [CALLBACK] });
  try {
    const before = await signIn(p);
    const oldKid = decodeProtectedHeader(str(before.tokens, 'id_token')).kid;
    await p.rotateSigningKey();
    const keys = (await jwks(p)).keys;
    assert.equal(keys.length, 2);
    assert.notEqual(keys[0]?.kid, oldKid);
    assert.equal(keys[1]?.kid, oldKid);

    // State survives: the old refresh token still works and new tokens use the new key.
    const refreshed = await refresh(p, str(before.tokens, 'refresh_token'), { resource: API_RESOURCE });
    assert.equal(refreshed.status, 200);
    assert.equal(decodeProtectedHeader(str(refreshed.body, 'access_token')).kid, keys[0]?.kid);
    const set = createLocalJWKSet({ keys });
    await jwtVerify(str(before.tokens, 'id_token'), set, { issuer: p.issuer });
    await jwtVerify(str(refreshed.body, 'id_token'), set, { issuer: p.issuer });
  } finally {
    await p.close();
  }
});

test('sign() forges tokens with a valid signature from the current key', async () => {
  const now = Math.floor(Date.now() / 1000);
  const forged = await logto.sign({ iss: logto.issuer, aud: logto.app.appId, sub: 'x', iat: now - 7200, exp: now - 3600 });
  const header = decodeProtectedHeader(forged);
  assert.equal(header.alg, 'ES384');
  const set = createLocalJWKSet(await jwks(logto));
  await assert.rejects(jwtVerify(forged, set), { code: 'ERR_JWT_EXPIRED' });
  await jwtVerify(forged, set, { currentDate: new Date((now - 5000) * 1000) });
});

// --- the test browser itself ------------------------------------------------------------------

test('TestBrowser: cookies by hostname and path (not port), deletion by Max-Age', async () => {
  const seen: (string | undefined)[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.headers.cookie);
    if (req.url === '/set') {
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/only', 'c=3; Max-Age=0', 'd=4; Expires=Thu, 01 Jan 1970 00:00:00 GMT']);
    } else if (req.url === '/delete') {
      res.setHeader('set-cookie', 'a=; Path=/; Max-Age=0');
    }
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const other: Server = createServer((req, res) => {
    seen.push(req.headers.cookie);
    res.end('ok');
  });
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  try {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    const browser = new TestBrowser();
    await browser.get(`${base}/set`);
    assert.equal(browser.cookie('127.0.0.1', 'a'), '1');
    assert.equal(browser.cookie('127.0.0.1', 'c'), undefined);
    assert.equal(browser.cookie('127.0.0.1', 'd'), undefined);
    await browser.get(`${base}/only/page`);
    await browser.get(`${otherBase}/`);
    await browser.get(`http://localhost:${(server.address() as AddressInfo).port}/`);
    await browser.get(`${base}/delete`);
    await browser.get(`${base}/`);
    assert.deepEqual(seen, [undefined, 'b=2; a=1', 'a=1', undefined, 'a=1', undefined]);
  } finally {
    server.closeAllConnections();
    other.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => other.close(() => resolve()));
  }
});
